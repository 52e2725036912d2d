"""Tools on the OpenAI-compatible API and the native one: `tools`, `tool_choice` and
`parallel_tool_calls` reach the model as sent, its tool calls stream back as OpenAI deltas
(finish_reason tool_calls), `tool` turns are accepted, and the round trip is stored so the
conversation shows it. Retrieval still runs on the user's question."""
import json

import harness

COMPLETIONS = "/v1/chat/completions"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def _tool_answer(content):
    return "Tool said: " + " ".join(content.split())[:60] + "."


def _deltas(result):
    return [e.json for e in result.events if e.text != "[DONE]"]


def test_streamed_tool_call_round_trip_is_stored(stack, fake_upstream):
    q = f"What is the weather in Oslo? {harness.uniq('w')}"
    first = harness.stream_request(stack.port, {
        "model": "m", "stream": True, "tools": [WEATHER], "tool_choice": "auto",
        "parallel_tool_calls": False,
        "messages": [{"role": "user", "content": q}]}, path=COMPLETIONS)
    assert first.status == 200
    chunks = _deltas(first)
    calls = {}
    for c in chunks:
        for tc in c["choices"][0]["delta"].get("tool_calls", []) if c.get("choices") else []:
            call = calls.setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
            call["id"] = tc.get("id") or call["id"]
            call["name"] += tc.get("function", {}).get("name", "")
            call["arguments"] += tc.get("function", {}).get("arguments", "")
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {
        "city": "Oslo"}
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")]
    assert finish[-1] == "tool_calls"
    # The upstream saw the tools exactly as sent, and the question after ragstream's prompt.
    sent = fake_upstream.chat_requests(q)[-1]["body"]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "auto"
    assert sent["parallel_tool_calls"] is False

    # The client runs the tool and sends the whole history back.
    call_id = calls[0]["id"]
    result = '{"temp_c": 7, "sky": "snow"}'
    second = harness.stream_request(stack.port, {
        "model": "m", "stream": True, "tools": [WEATHER],
        "messages": [
            {"role": "user", "content": q},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": "get_weather", "arguments": calls[0]["arguments"]}}]},
            {"role": "tool", "tool_call_id": call_id, "content": result}]}, path=COMPLETIONS)
    chunks = _deltas(second)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c.get("choices"))
    assert text == _tool_answer(result)
    # The upstream got the question, the call and the result in order, after the system prompt.
    upstream = fake_upstream.chat_requests(q)[-1]["body"]["messages"]
    assert [m["role"] for m in upstream] == ["system", "user", "assistant", "tool"]
    assert upstream[2]["tool_calls"][0]["id"] == call_id
    assert upstream[3] == {"role": "tool", "content": result, "tool_call_id": call_id}
    # Both exchanges are stored; the second shows the round trip.
    conv = chunks[-1]["x_ragstream"]["conversation_id"]
    msgs = stack.conversation(conv)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant"]
    assert msgs[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert msgs[2]["tool_call_id"] == call_id and msgs[2]["content"] == result
    assert msgs[3]["content"] == _tool_answer(result)
    first_conv = _deltas(first)[-1]["x_ragstream"]["conversation_id"]
    stored_call = stack.conversation(first_conv)["messages"][1]
    assert stored_call["finish_reason"] == "tool_calls"
    assert stored_call["tool_calls"][0]["id"] == call_id


def test_parallel_calls_non_streaming(stack, fake_upstream):
    fake_upstream.script([{"tool_calls": [
        {"name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"name": "get_time", "arguments": '{"tz": "Europe/Rome"}'}]}])
    r = stack.post_json(COMPLETIONS, {
        "model": "m", "tools": [WEATHER, TIME],
        "messages": [{"role": "user", "content": f"weather and time {harness.uniq('p')}"}]})
    assert r.status == 200, r
    choice = r.json["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[1]["function"]["arguments"]) == {"tz": "Europe/Rome"}
    assert all(c["type"] == "function" and c["id"] for c in calls)


def test_native_stream_ends_with_the_calls(stack, fake_upstream):
    r = stack.stream({"message": f"What is the weather in Lima? {harness.uniq('n')}",
                      "tools": [WEATHER]})
    assert r.done["status"] == "complete" and r.done["finish_reason"] == "tool_calls"
    assert r.done["tool_calls"][0]["function"]["name"] == "get_weather"
    assert json.loads(r.done["tool_calls"][0]["function"]["arguments"]) == {"city": "Lima"}


def test_bad_tool_requests_are_400_and_store_nothing(stack, fake_upstream):
    before = set(stack.conversation_ids())
    q = f"bad tools {harness.uniq('b')}"
    cases = [
        {"tools": {"not": "a list"}},
        {"tools": [{"type": "retrieval"}]},
        {"tools": [{"type": "function", "function": {}}]},
        {"tools": [WEATHER], "tool_choice": 7},
        {"messages": [{"role": "user", "content": q}, {"role": "tool", "content": "x"}]},
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "hi"}]},
    ]
    for extra in cases:
        body = {"model": "m", "messages": [{"role": "user", "content": q}]}
        body.update(extra)
        r = stack.post_json(COMPLETIONS, body)
        assert r.status == 400, (extra, r)
        assert r.json["error"]["type"] == "invalid_request_error"
    assert set(stack.conversation_ids()) == before
    assert not fake_upstream.chat_requests(q)
