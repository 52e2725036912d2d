"""POST /v1/responses (OpenAI's Responses API) on the ragstream pipeline: retrieval,
persistence, previous_response_id, function tools translated to and from chat completions,
the documented stream events, and real statuses before the first token."""
import json

import harness

RESPONSES = "/v1/responses"
WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def _events(result):
    return [(e.fields[0][1] if e.fields and e.fields[0][0] == "event" else None, e.json)
            for e in result.events]


def test_non_streaming_answer_and_previous_response_id(stack, fake_upstream):
    doc = stack.post_json("/api/documents", {
        "title": "Brightwater ferry", "text": "The Brightwater ferry leaves the pier at 07:40 "
        "every weekday and takes 35 minutes to cross."})
    assert doc.status in (200, 201)
    q = f"When does the Brightwater ferry leave? {harness.uniq('r')}"
    r = stack.post_json(RESPONSES, {"model": "m", "input": q, "instructions": "Be brief."})
    assert r.status == 200, r
    body = r.json
    assert body["object"] == "response" and body["status"] == "completed"
    assert body["id"].startswith("resp_msg_")
    item = body["output"][0]
    assert item["type"] == "message" and item["role"] == "assistant"
    assert item["content"][0]["type"] == "output_text"
    assert item["content"][0]["text"] == harness.fake_default_answer(q)
    u = body["usage"]
    assert u["output_tokens"] > 0 and u["total_tokens"] == u["input_tokens"] + u["output_tokens"]
    assert body["x_ragstream"]["sources"][0]["document_id"] == doc.json["id"]
    conv = body["x_ragstream"]["conversation_id"]

    # previous_response_id continues that conversation, as items this time.
    q2 = f"And how long is the crossing? {harness.uniq('r2')}"
    r2 = stack.post_json(RESPONSES, {"model": "m", "previous_response_id": body["id"], "input": [
        {"role": "user", "content": [{"type": "input_text", "text": q2}]}]})
    assert r2.status == 200, r2
    assert r2.json["previous_response_id"] == body["id"]
    assert r2.json["x_ragstream"]["conversation_id"] == conv
    assert [m["role"] for m in stack.conversation(conv)["messages"]] == ["user", "assistant"] * 2
    upstream = fake_upstream.chat_requests(q2)[-1]["body"]["messages"]
    assert [m["role"] for m in upstream] == ["system", "user", "assistant", "user"]
    # An unknown previous response is 404, OpenAI-shaped.
    bad = stack.post_json(RESPONSES, {"input": "x", "previous_response_id": "resp_msg_nope"})
    assert bad.status == 404 and bad.json["error"]["type"] == "not_found_error"


def test_streaming_events_in_order(stack, fake_upstream):
    q = f"stream me {harness.uniq('s')} [[fake: tokens=4]]"
    r = harness.stream_request(stack.port, {"model": "m", "input": q, "stream": True},
                               path=RESPONSES)
    assert r.status == 200
    events = _events(r)
    names = [n for n, _ in events]
    assert names == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added"] + ["response.output_text.delta"] * 4 + [
        "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed"]
    assert all(d["type"] == n for n, d in events)
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    text = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    assert text == harness.fake_tokens_answer(4)
    done = events[-1][1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0]["text"] == text
    assert done["usage"]["output_tokens"] > 0
    assert events[0][1]["response"]["id"] == done["id"]


def test_function_call_round_trip(stack, fake_upstream):
    q = f"What is the weather in Quito? {harness.uniq('f')}"
    r = harness.stream_request(stack.port, {"model": "m", "input": q, "stream": True,
                                            "tools": [WEATHER]}, path=RESPONSES)
    events = _events(r)
    added = [d for n, d in events if n == "response.output_item.added"]
    assert added[0]["item"]["type"] == "function_call"
    args = "".join(d["delta"] for n, d in events if n == "response.function_call_arguments.delta")
    assert json.loads(args) == {"city": "Quito"}
    final = events[-1][1]["response"]
    call = final["output"][0]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert call["arguments"] == args and call["call_id"]
    # The upstream got the tool in chat-completions shape.
    sent = fake_upstream.chat_requests(q)[-1]["body"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"

    # The result goes back with previous_response_id and a function_call_output item.
    result = '{"temp_c": 18}'
    r2 = stack.post_json(RESPONSES, {"model": "m", "previous_response_id": final["id"],
                                     "tools": [WEATHER], "input": [
        {"type": "function_call_output", "call_id": call["call_id"], "output": result}]})
    assert r2.status == 200, r2
    assert r2.json["output"][0]["content"][0]["text"] == (
        "Tool said: " + " ".join(result.split())[:60] + ".")
    upstream = fake_upstream.chat_requests(q)[-1]["body"]["messages"]
    assert [m["role"] for m in upstream] == ["system", "user", "assistant", "tool"]
    # Or without previous_response_id, the whole history as items.
    r3 = stack.post_json(RESPONSES, {"model": "m", "tools": [WEATHER], "input": [
        {"role": "user", "content": q},
        {"type": "function_call", "call_id": call["call_id"], "name": "get_weather",
         "arguments": args},
        {"type": "function_call_output", "call_id": call["call_id"], "output": result}]})
    assert r3.status == 200 and r3.json["output"][0]["content"][0]["text"].startswith("Tool said")


def test_failures(stack, fake_upstream):
    before = set(stack.conversation_ids())
    fake_upstream.script([{"status": 429, "retry_after": 0}] * 3)
    r = harness.stream_request(stack.port, {"input": f"limited {harness.uniq('l')}",
                                            "stream": True}, path=RESPONSES)
    assert r.status == 429 and r.header("Retry-After") is not None
    assert r.json_body()["error"]["code"] == "upstream_rate_limited"
    assert set(stack.conversation_ids()) == before
    # Mid-stream: an error event, then response.failed.
    r = harness.stream_request(stack.port, {
        "input": f"mid {harness.uniq('m')} [[fake: tokens=5, error_event_after=2]]",
        "stream": True}, path=RESPONSES)
    names = [n for n, _ in _events(r)]
    assert names[-2:] == ["error", "response.failed"]
    assert _events(r)[-1][1]["response"]["error"]["code"] == "upstream_error"
    for body in ({"input": 5}, {"input": []}, {"input": [{"type": "image", "url": "x"}]},
                 {"input": [{"type": "function_call_output", "output": "x"}]}):
        bad = stack.post_json(RESPONSES, body)
        assert bad.status == 400, (body, bad)
