"""/v1 streams hold their headers until the model's first token, as OpenAI does: a failure
before it is a real HTTP status (429 with Retry-After, 502, 504) with an OpenAI-shaped error,
and the conversation the request would have created is not stored, so an SDK's retry stores
the question once. A failure after the first token stays an error event in the stream."""
import harness

COMPLETIONS = "/v1/chat/completions"


def _v1_stream(stack, question, **extra):
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": question}]}
    body.update(extra)
    return harness.stream_request(stack.port, body, path=COMPLETIONS)


def test_429_before_the_first_token_is_http_429_and_stores_nothing(stack, fake_upstream):
    marker = harness.uniq("rl")
    before = set(stack.conversation_ids())
    fake_upstream.script([{"status": 429, "retry_after": 0}] * 3)
    r = _v1_stream(stack, f"rate limited {marker}")
    assert r.status == 429, r
    assert r.header("Retry-After") is not None
    err = r.json_body()["error"]
    assert err["code"] == "upstream_rate_limited" and err["type"] == "rate_limit_error"
    assert set(stack.conversation_ids()) == before
    # The client's retry succeeds and is the one exchange stored.
    ok = _v1_stream(stack, f"rate limited {marker}")
    assert ok.status == 200 and ok.events[-1].text == "[DONE]"
    new = set(stack.conversation_ids()) - before
    assert len(new) == 1
    assert [m["status"] for m in stack.conversation(new.pop())["messages"]] == ["complete",
                                                                               "complete"]


def test_5xx_before_the_first_token_is_502(stack, fake_upstream):
    fake_upstream.script([{"status": 500}] * 3)
    before = set(stack.conversation_ids())
    r = _v1_stream(stack, f"server error {harness.uniq('s')}")
    assert r.status == 502
    assert r.json_body()["error"]["code"] == "upstream_server_error"
    assert set(stack.conversation_ids()) == before


def test_first_token_timeout_is_504(stack_factory, fake_upstream):
    stack = stack_factory(workers=1, env={"RAGSTREAM_FIRST_TOKEN_TIMEOUT_MS": "500",
                                          "RAGSTREAM_MAX_RETRIES": "0"})
    r = _v1_stream(stack, f"slow {harness.uniq('t')} [[fake: first_token_ms=3000]]")
    assert r.status == 504
    assert r.json_body()["error"]["code"] == "upstream_first_token_timeout"


def test_a_failure_after_the_first_token_stays_in_the_stream(stack, fake_upstream):
    r = _v1_stream(stack, f"mid {harness.uniq('m')} [[fake: tokens=6, error_event_after=2]]")
    assert r.status == 200
    datas = [e.json for e in r.events if e.text != "[DONE]"]
    assert datas[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(d["choices"][0]["delta"].get("content") or "" for d in datas
                   if d.get("choices")) == "tok0 tok1 "
    err = datas[-1]["error"]
    assert err["code"] == "upstream_error" and err["type"] == "server_error"
    conv = datas[-1]["x_ragstream"]["conversation_id"]
    assert [m["status"] for m in stack.conversation(conv)["messages"]] == ["complete", "error"]
