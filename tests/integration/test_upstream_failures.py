"""Upstream failures: 5xx with retries, 429 with Retry-After, insufficient_quota, a cut
mid-stream, a slow first token (pings), an error event mid-stream."""

import json

import pytest

import harness
from harness import fake_tokens_answer, uniq


def _assert_error_done(r):
    """The stream ends with exactly one done event that carries an error."""
    assert r.status == 200, r
    done_events = r.done_events
    assert len(done_events) == 1, r
    assert r.items[-1] is done_events[0], "something came after the done event"
    done = done_events[0].json
    assert done["token"] is None and done["done"] is True
    assert done["status"] == "error", done
    err = done.get("error")
    assert isinstance(err, dict), done
    assert isinstance(err.get("code"), str) and err["code"], done
    assert isinstance(err.get("message"), str) and err["message"], done
    assert done["conversation_id"] == r.first["conversation_id"]
    assert done["message_id"] == r.first["message_id"]
    return done


def _messages(stack, r):
    conv = stack.conversation(r.first["conversation_id"])
    return conv["messages"]


def test_5xx_on_every_attempt(stack, fake_upstream):
    # The inline directive applies to every attempt (each retry sends the same question).
    marker = uniq("five-hundred-")
    question = f"Will this fail {marker}? [[fake: status=500]]"
    r = stack.stream({"message": question}, timeout=30)
    done = _assert_error_done(r)
    assert r.token_events == []
    # RAGSTREAM_MAX_RETRIES defaults to 2: three attempts in all.
    recs = fake_upstream.chat_requests(marker)
    assert len(recs) == 3, [x["status"] for x in recs]
    assert all(x["status"] == 500 for x in recs)
    user, assistant = _messages(stack, r)
    assert (user["role"], user["content"], user["status"]) == ("user", question, "complete")
    assert assistant["role"] == "assistant"
    assert assistant["status"] == "error"
    assert assistant["id"] == done["message_id"]
    assert assistant["content"] == ""
    assert assistant.get("error", {}).get("code") == done["error"]["code"]


def test_5xx_non_streaming_is_502(stack, fake_upstream):
    marker = uniq("plain-500-")
    r = stack.post_json("/api/chat/message", {"message": f"fail {marker} [[fake: status=503]]"})
    assert r.status == 502, r
    body = r.json
    assert isinstance(body.get("error"), dict) and body["error"].get("code"), body
    assert body["status"] == "error"
    conv = stack.conversation(body["conversation_id"])
    assert [m["status"] for m in conv["messages"]] == ["complete", "error"]


def test_429_then_success_is_retried(stack, fake_upstream):
    fake_upstream.script([{"status": 429, "retry_after": 0}])
    marker = uniq("rate-limited-")
    question = f"Rate limit me once {marker}"
    r = stack.stream({"message": question}, timeout=30)
    assert r.status == 200, r
    assert r.done and r.done["status"] == "complete", r
    assert "error" not in r.done
    recs = fake_upstream.chat_requests(marker)
    assert [x["status"] for x in recs] == [429, 200]
    assert _messages(stack, r)[1]["status"] == "complete"
    assert _messages(stack, r)[1]["content"] == r.text != ""


def test_insufficient_quota_is_not_retried(stack, fake_upstream):
    marker = uniq("quota-")
    r = stack.stream({"message": f"No money {marker} [[fake: status=429, error_code=insufficient_quota]]"},
                     timeout=30)
    done = _assert_error_done(r)
    recs = fake_upstream.chat_requests(marker)
    assert len(recs) == 1, [x["status"] for x in recs]
    assert "quota" in (done["error"]["code"] + done["error"]["message"]).lower(), done
    assert _messages(stack, r)[1]["status"] == "error"


def test_cut_mid_stream_keeps_partial_answer(stack, fake_upstream):
    marker = uniq("cut-")
    r = stack.stream({"message": f"Cut me off {marker} [[fake: tokens=10, cut_after=3, gap_ms=20]]"},
                     timeout=30)
    _assert_error_done(r)
    assert r.text == fake_tokens_answer(3)
    assistant = _messages(stack, r)[1]
    assert assistant["status"] == "error"
    assert assistant["content"] == fake_tokens_answer(3) == r.text
    # A cut after the first token is never retried (tokens were already shown).
    assert len(fake_upstream.chat_requests(marker)) == 1


def test_slow_first_token_gets_pings(stack, fake_upstream):
    # The stack runs with RAGSTREAM_PING_INTERVAL_MS=300.
    r = stack.stream({"message": f"Think first {uniq()} [[fake: tokens=3, first_token_ms=1500]]"},
                     timeout=30)
    assert r.done and r.done["status"] == "complete", r
    first_token = r.token_events[0]
    before = [c for c in r.comments if c.t <= first_token.t]
    print(f"pings before the first token: {len(before)}")
    assert all(c.text == "ping" for c in r.comments), [c.text for c in r.comments]
    assert len(before) >= 2, r.raw[:500]
    # They come after the opening event, spread out (not in one burst).
    assert before[0].t >= r.events[0].t
    assert before[-1].t - before[0].t >= 0.25
    assert b": ping\n\n" in r.raw


def test_error_event_mid_stream_keeps_partial_answer(stack, fake_upstream):
    marker = uniq("error-event-")
    r = stack.stream({"message": f"Break midway {marker} [[fake: tokens=6, error_event_after=2, gap_ms=20]]"},
                     timeout=30)
    _assert_error_done(r)
    assert r.text == fake_tokens_answer(2)
    assistant = _messages(stack, r)[1]
    assert assistant["status"] == "error"
    assert assistant["content"] == fake_tokens_answer(2)
    assert len(fake_upstream.chat_requests(marker)) == 1


@pytest.mark.parametrize("directive,code", [
    ("status=500", "upstream_server_error"),
    ("status=429, retry_after=0", "upstream_rate_limited"),
    ("status=403", "upstream_auth"),
    ("tokens=6, error_event_after=2", "upstream_error"),
])
def test_upstream_text_stays_in_the_log(stack, fake_upstream, directive, code):
    """An upstream's error text may name internal hosts and organisations: the client and
    the store get our stable code and words; the upstream's text goes only to the log."""
    secret_host = f"egress-proxy-{uniq()}.corp.internal:3128"
    org = f"org-{uniq()}"
    marker = uniq("leak-")
    message = f"upstream connect error via {secret_host} for {org}"
    r = stack.stream({"message": f"Leak? {marker} [[fake: {directive}, "
                                 f"error_message=\"{message}\", error_code=\"proxy_{org}\"]]"},
                     timeout=30)
    done = _assert_error_done(r)
    assert done["error"]["code"] == code, done
    raw = r.raw.decode("utf-8", "replace")
    for leaked in (secret_host, org):
        assert leaked not in json.dumps(done) and leaked not in raw, done
    assistant = _messages(stack, r)[1]
    assert assistant["error"]["code"] == code
    assert secret_host not in json.dumps(assistant) and org not in json.dumps(assistant)
    # The operator still sees what the upstream said.
    harness.wait_until(lambda: secret_host in stack.logs_text(), 5,
                       what="the upstream's text in the worker log")


def test_answers_are_capped_by_max_tokens(stack_factory, fake_upstream):
    """Every upstream call carries max_tokens (RAGSTREAM_MAX_TOKENS, 2048 by default; 0 sends
    none), so no answer can run on without bound (before: none was sent)."""
    for setting, want in ((None, 2048), ("300", 300), ("0", None)):
        s = stack_factory(workers=1, env={} if setting is None else {"RAGSTREAM_MAX_TOKENS": setting})
        marker = uniq("cap-")
        r = s.stream({"message": f"Capped {marker} [[fake: tokens=2]]"}, timeout=30)
        assert r.done and r.done["status"] == "complete", r
        (rec,) = fake_upstream.chat_requests(marker)
        assert rec["body"].get("max_tokens") == want, (setting, rec["body"])
        s.stop()
