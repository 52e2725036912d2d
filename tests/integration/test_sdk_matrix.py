"""The client matrix: real, unmodified client libraries (pinned in tests/sdk/package-lock.json)
against a real stack and the fake upstream. Each client runs as a small Node script
(tests/sdk/*.mjs) that prints one JSON line of what it saw; the assertions are all here.

/v1 clients (openai 5 and 4, chat completions and Responses; the AI SDK's Responses and chat
models; LangChain's ChatOpenAI with a tool bound), each:
    text       exact text, usage (total = prompt + completion), finish reason; streamed and not
    tools      a get_weather tool call round trip
    ratelimit  a 429 before the first token: the SDK retries, and the question is stored once
    midstream  an upstream failure after the first tokens: the partial text, then an error
Native API clients (@microsoft/fetch-event-source, eventsource): resume from a random event,
a reconnect after the done event is 204 (the client stops), a replayed POST with Last-Event-ID.

Plus the /v1 wire format checked directly (was test_openai_sdk.py)."""
from __future__ import annotations

import fcntl
import hashlib
import json
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import harness

SDK_DIR = harness.ROOT / "tests" / "sdk"
SCRIPT_TIMEOUT = 60

TOOL_ANSWER = 'Tool said: {"temp_c": 21}.'  # the fake's answer to the clients' tool result
MIDSTREAM = "[[fake: tokens=6, error_event_after=2]]"
MIDSTREAM_TEXT = "tok0 tok1 "
RATE_LIMITED = [{"status": 429, "retry_after": 0}] * 3  # every attempt ragstream makes (1 + 2 retries)


# --------------------------------------------------------------------------- running clients


def _lock_digest() -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((SDK_DIR / name).read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def sdk():
    """Installs tests/sdk/package-lock.json exactly (npm ci) when node_modules is missing or
    was installed from another lock file (a stamp holds the lock's digest)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are needed for the SDK matrix")
    stamp = SDK_DIR / "node_modules" / ".ragstream-lock-digest"
    lock = Path(tempfile.gettempdir()) / f"ragstream-sdk-{hashlib.sha1(bytes(SDK_DIR)).hexdigest()[:12]}.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # one npm ci at a time per checkout
        digest = _lock_digest()
        if not stamp.exists() or stamp.read_text().strip() != digest:
            r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SDK_DIR, timeout=300,
                               capture_output=True, text=True)
            assert r.returncode == 0, f"npm ci failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
            stamp.write_text(digest)
    return node


def run_client(node: str, script: str, *args, timeout: float = SCRIPT_TIMEOUT) -> dict:
    cmd = [node, str(SDK_DIR / script), *map(str, args)]
    try:
        r = subprocess.run(cmd, cwd=SDK_DIR, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{script} {args[:2]} did not finish within {timeout}s: {e.stdout!r} {e.stderr!r}")
    lines = r.stdout.strip().splitlines()
    assert lines, f"{script} printed nothing (exit {r.returncode}): {r.stderr[-3000:]}"
    out = json.loads(lines[-1])
    assert r.returncode == 0 and "fatal" not in out, \
        f"{script} {args[:2]} failed (exit {r.returncode}): {json.dumps(out)[:3000]}\n{r.stderr[-2000:]}"
    return out


def dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)[:4000]


def no_error(x, what: str):
    assert isinstance(x, dict), f"{what}: {x!r}"
    assert not x.get("error"), f"{what} failed: {dump(x)}"


def check_usage(what: str, usage, prompt_key: str, completion_key: str, total_key: str = "total_tokens"):
    assert isinstance(usage, dict), f"{what}: no usage: {usage!r}"
    p, c, t = usage.get(prompt_key), usage.get(completion_key), usage.get(total_key)
    assert isinstance(p, int) and p > 0, f"{what}: {prompt_key} {usage!r}"
    assert isinstance(c, int) and c > 0, f"{what}: {completion_key} {usage!r}"
    assert t == p + c, f"{what}: {total_key} != {prompt_key} + {completion_key}: {usage!r}"


def statuses(http: list, path_end: str) -> list:
    return [h.get("status") for h in http if h["path"].endswith(path_end)]


def stored_once(stack, before: set, question: str, answer: str):
    """Exactly one new conversation since `before`: the question and its complete answer."""
    new = set(stack.conversation_ids()) - before
    assert len(new) == 1, f"expected one stored conversation, got {len(new)}"
    msgs = stack.conversation(new.pop())["messages"]
    assert [(m["role"], m["status"]) for m in msgs] == [("user", "complete"), ("assistant", "complete")], msgs
    assert msgs[0]["content"] == question and msgs[1]["content"] == answer, msgs


def upstream_statuses(fake_upstream, marker: str) -> list:
    return [r["status"] for r in fake_upstream.chat_requests(marker)]


# --------------------------------------------------------------------------- /v1 clients
#
# Each client family reads its script's output into common shapes: a list of (label, text,
# usage, finish) for `text`, and of (label, first call, final text) for `tools`.

CLIENTS = {
    # id: (script, leading args, API path the client calls)
    "openai5-chat": ("openai_chat.mjs", ["openai"], "/v1/chat/completions"),
    "openai4-chat": ("openai_chat.mjs", ["openai4"], "/v1/chat/completions"),
    "openai5-responses": ("openai_responses.mjs", ["openai"], "/v1/responses"),
    "openai4-responses": ("openai_responses.mjs", ["openai4"], "/v1/responses"),
    "ai-sdk-responses": ("ai_sdk.mjs", ["responses"], "/v1/responses"),
    "ai-sdk-chat": ("ai_sdk.mjs", ["chat"], "/v1/chat/completions"),
    "langchain": ("langchain.mjs", [], "/v1/chat/completions"),
}
CLIENT_IDS = list(CLIENTS)


def family(client: str) -> str:
    if client.endswith("-chat") and client.startswith("openai"):
        return "openai-chat"
    if client.startswith("openai"):
        return "openai-responses"
    if client.startswith("ai-sdk"):
        return "ai-sdk"
    return "langchain"


def run_v1(node, stack, client: str, scenario: str, question: str, **kw) -> dict:
    script, lead, _ = CLIENTS[client]
    return run_client(node, script, *lead, f"http://127.0.0.1:{stack.port}/v1", scenario, question, **kw)


def text_views(client: str, out: dict) -> list:
    """[(label, text, usage as (prompt, completion, total) keys + dict, finish reason, expected finish)]"""
    f = family(client)
    views = []
    if f == "openai-chat":
        for label in ("plain", "stream", "helper"):
            x = out[label]
            no_error(x, label)
            views.append((label, x["text"], (x["usage"], "prompt_tokens", "completion_tokens"),
                          x["finish_reason"], "stop"))
    elif f == "openai-responses":
        for label in ("plain", "items", "helper"):
            x = out[label]
            no_error(x, label)
            views.append((label, x["text"], (x["usage"], "input_tokens", "output_tokens"), x["status"], "completed"))
            assert x["object"] == "response" and x["output_types"] == ["message"], dump(x)
            if label != "helper":
                assert x["sdk_output_text"] == x["text"], dump(x)
        s = out["stream"]
        no_error(s, "stream")
        c = s.get("completed") or {}
        views.append(("stream", s["text"], (c.get("usage"), "input_tokens", "output_tokens"), c.get("status"),
                      "completed"))
        views.append(("stream: response.completed", c.get("text"), (c.get("usage"), "input_tokens", "output_tokens"),
                      c.get("status"), "completed"))
    elif f == "ai-sdk":
        for label in ("generate", "stream"):
            x = out[label]
            no_error(x, label)
            views.append((label, x["text"], (x["usage"], "inputTokens", "outputTokens", "totalTokens"),
                          x.get("finishReason"), "stop"))
            if label == "stream":
                assert not x["errors"] and not x.get("thrown"), dump(x)
    else:
        for label in ("invoke", "stream"):
            x = out[label]
            no_error(x, label)
            assert x["tool_calls"] == [], dump(x)
            views.append((label, x["content"], (x["usage_metadata"], "input_tokens", "output_tokens"),
                          x["finish_reason"], "stop"))
    return views


@pytest.mark.parametrize("client", CLIENT_IDS)
def test_text_usage_finish(stack, fake_upstream, sdk, client):
    question = f"When does the Quillmere observatory open? {harness.uniq('t')}"
    out = run_v1(sdk, stack, client, "text", question)
    expected = harness.fake_default_answer(question)
    for label, text, usage, finish, want_finish in text_views(client, out):
        assert text == expected, f"{label}: {text!r} != {expected!r}\n{dump(out)}"
        check_usage(label, usage[0], *usage[1:])
        assert finish == want_finish, f"{label}: finish {finish!r}\n{dump(out)}"
    if family(client) == "openai-chat":
        assert out["stream"]["deltas"] > 1, "the answer did not arrive as several deltas"
    if family(client) == "openai-responses":
        s = out["stream"]
        events = [e for e in s["events"] if e != "response.in_progress"]
        # The documented event sequence of a one-message text answer (deltas collapsed).
        assert events == ["response.created", "response.output_item.added", "response.content_part.added",
                          "response.output_text.delta", "response.output_text.done",
                          "response.content_part.done", "response.output_item.done",
                          "response.completed"], s["events"]
        assert s["sequence_ok"], "sequence_number does not increase"
        assert s["text_done"] == expected and s["deltas"] > 1, dump(s)
        assert s["created"]["id"] == s["completed"]["id"] and s["created"]["status"] == "in_progress", dump(s)


@pytest.fixture(scope="module")
def quillmere(stack):
    doc = stack.post_json("/api/documents", {
        "title": "Quillmere observatory",
        "text": "The Quillmere observatory opens its dome every clear night at 21:00. "
                "Its main telescope has a 60 centimetre mirror."})
    assert doc.status in (200, 201), doc
    return doc.json["id"]


@pytest.mark.parametrize("client", ["openai5-chat", "openai4-chat"])
def test_openai_chat_extras_history_and_errors(stack, fake_upstream, sdk, quillmere, client):
    """The official SDK sees x_ragstream (sources), the request's messages reach the upstream as
    history, each exchange is a conversation of its own, and errors are the SDK's own type."""
    question = f"When does the Quillmere observatory open its dome? {harness.uniq('q')}"
    out = run_v1(sdk, stack, client, "text", question)
    expected = harness.fake_default_answer(question)
    assert out["models"] == ["fake-model"]
    plain, streamed = out["plain"], out["stream"]
    assert plain["object"] == "chat.completion" and plain["id"].startswith("chatcmpl-")
    assert plain["text"] == expected and plain["role"] == "assistant"
    assert streamed["object"] == "chat.completion.chunk" and len(streamed["ids"]) == 1
    assert streamed["role"] == "assistant"
    for extra in (plain["extra"], streamed["extra"]):
        assert extra["sources"][0]["document_id"] == quillmere, extra
    assert plain["extra"]["language"] == "en"
    assert out["error"]["error"]["status"] == 400, out["error"]
    assert out["error"]["error"]["name"] == "BadRequestError", out["error"]

    # Without conversation_id the request's messages were the history: the upstream saw the
    # earlier turns, and each exchange was saved as a conversation of its own.
    sent = [x for x in fake_upstream.chat_requests() if question in harness.last_user_text(x)]
    assert len(sent) == 3, len(sent)  # plain, stream, the SDK's stream helper
    roles = [(m["role"], m["content"]) for m in sent[0]["body"]["messages"]]
    assert ("user", "Earlier question?") in roles and ("assistant", "Earlier answer.") in roles
    assert not any(c == "You are terse." for _, c in roles), "a client system prompt leaked in"
    extras = (plain["extra"], streamed["extra"], out["helper"]["extra"])
    assert len({x["conversation_id"] for x in extras}) == 3, extras
    for extra in extras:
        conv = stack.conversation(extra["conversation_id"])
        assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]
        assert conv["messages"][1]["content"] == expected
        assert conv["messages"][1]["status"] == "complete"


def tool_views(client: str, out: dict) -> list:
    """[(label, first call {name, args}, first finish, expected first finish, final text, final finish, expected)]"""
    f = family(client)
    views = []

    def args_of(s):
        try:
            return json.loads(s) if isinstance(s, str) else s
        except ValueError:
            return s

    if f == "openai-chat":
        for label in ("stream", "plain"):
            rt = out[label]
            first, second = rt["first"], rt.get("second") or {}
            no_error(first, f"{label}: the tool call")
            call = (first.get("tool_calls") or [{}])[0]
            assert not first.get("tool_calls") or (call.get("id") and call.get("type") == "function"), dump(first)
            views.append((label, {"name": call.get("name"), "args": args_of(call.get("arguments"))},
                          first.get("finish_reason"), "tool_calls", second, "text", "finish_reason", "stop"))
    elif f == "openai-responses":
        for label, key in (("plain (items sent back)", "plain"), ("stream (previous_response_id)", "stream")):
            rt = out[key]
            first, second = rt["first"], rt.get("second") or {}
            no_error(first, f"{label}: the tool call")
            if key == "stream":
                first = dict(first.get("completed") or {}, stream=first)
                if second:
                    no_error(second, f"{label}: the answer")
                    second = dict(second.get("completed") or {}, stream=second)
            call = (first.get("function_calls") or [{}])[0]
            assert not first.get("function_calls") or call.get("call_id"), dump(first)
            views.append((label, {"name": call.get("name"), "args": args_of(call.get("arguments"))},
                          first.get("status"), "completed", second, "text", "status", "completed"))
    elif f == "ai-sdk":
        for label in ("generate", "stream"):
            x = out[label]
            no_error(x, label)
            steps = x.get("steps") or []
            first = steps[0] if steps else {}
            call = (first.get("toolCalls") or [{}])[0]
            second = {"text": x.get("text"), "finish": x.get("finishReason"),
                      "steps": len(steps), "last_step_text": steps[-1]["text"] if steps else None}
            views.append((label, {"name": call.get("toolName"), "args": call.get("input")},
                          first.get("finishReason"), "tool-calls", second, "text", "finish", "stop"))
            assert len(steps) == 2, f"{label}: {len(steps)} steps: {dump(x)}"
    else:
        for label in ("invoke", "stream"):
            rt = out[label]
            first, second = rt["first"], rt.get("second") or {}
            no_error(first, f"{label}: the tool call")
            call = (first.get("tool_calls") or [{}])[0]
            views.append((label, {"name": call.get("name"), "args": call.get("args")},
                          first.get("finish_reason"), "tool_calls", second, "content", "finish_reason", "stop"))
    return views


@pytest.mark.parametrize("client", CLIENT_IDS)
def test_tool_call_round_trip(stack, fake_upstream, sdk, client):
    marker = harness.uniq("w")
    question = f"What is the weather in Paris? {marker}"
    out = run_v1(sdk, stack, client, "tools", question)
    for label, call, finish, want_finish, second, text_key, finish_key, want_final in tool_views(client, out):
        assert call == {"name": "get_weather", "args": {"city": "Paris"}}, f"{label}: the tool call {call}\n{dump(out)}"
        assert finish == want_finish, f"{label}: the tool call's finish {finish!r}\n{dump(out)}"
        assert second, f"{label}: no answer after the tool result\n{dump(out)}"
        no_error(second, f"{label}: the answer after the tool result")
        assert second.get(text_key) == TOOL_ANSWER, f"{label}: {second.get(text_key)!r}\n{dump(out)}"
        assert second.get(finish_key) == want_final, f"{label}: final finish {second.get(finish_key)!r}\n{dump(out)}"
    f = family(client)
    if f == "openai-responses":
        s = out["stream"]["first"]
        call = s["completed"]["function_calls"][0]
        assert {"response.function_call_arguments.delta", "response.function_call_arguments.done"} \
            <= set(s["events"]), s["events"]
        assert s["args"].get(call["id"]) == call["arguments"], dump(s)
        assert out["stream"]["second"]["completed"]["previous_response_id"] == s["completed"]["id"]
    if f == "ai-sdk":
        assert out["toolInputs"] == [{"city": "Paris"}] * 2, out["toolInputs"]
    if f == "openai-chat":
        # The SDK's runTools drove the same round trip by itself.
        rt = out["runTools"]
        no_error(rt, "runTools")
        assert rt["calls"] == [{"city": "Paris"}], dump(rt)
        assert rt["roles"] == ["user", "assistant", "tool", "assistant"], dump(rt)
        assert rt["final"]["text"] == TOOL_ANSWER and rt["final"]["finish_reason"] == "stop", dump(rt)
        # The tool request reached the upstream as OpenAI's, and so did the round trip.
        sent = fake_upstream.chat_requests(marker)
        assert len(sent) == 6, len(sent)
        first, second = sent[0]["body"], sent[1]["body"]
        assert [t["function"]["name"] for t in first.get("tools", [])] == ["get_weather"], first
        assert first.get("tool_choice") == "auto" and first.get("parallel_tool_calls") is False, first
        roles = [m["role"] for m in second["messages"]]
        assert roles[-3:] == ["user", "assistant", "tool"], roles
        assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert second["messages"][-1]["content"] == '{"temp_c": 21}'
        assert second["messages"][-1]["tool_call_id"] == second["messages"][-2]["tool_calls"][0]["id"]


def ratelimit_view(client: str, out: dict):
    """(final text, finish, expected finish)"""
    f = family(client)
    s = out["stream"]
    if f == "openai-chat":
        no_error(s, "stream")
        return s["text"], s["finish_reason"], "stop"
    if f == "openai-responses":
        no_error(s, "stream")
        c = s.get("completed") or {}
        return c.get("text"), c.get("status"), "completed"
    if f == "ai-sdk":
        assert not s.get("errors") and not s.get("thrown"), dump(s)
        return s["text"], s.get("finishReason"), "stop"
    no_error(s, "stream")
    return s["content"], s["finish_reason"], "stop"


@pytest.mark.parametrize("client", CLIENT_IDS)
def test_429_before_first_token_is_retried_and_stored_once(stack, fake_upstream, sdk, client):
    marker = harness.uniq("rl")
    question = f"Rate limited at first {marker}"
    before = set(stack.conversation_ids())
    fake_upstream.script(RATE_LIMITED)
    out = run_v1(sdk, stack, client, "ratelimit", question)
    text, finish, want_finish = ratelimit_view(client, out)
    assert text == harness.fake_default_answer(question), dump(out)
    assert finish == want_finish, dump(out)
    # ragstream tried the upstream 3 times, answered 429, and the SDK's retry went through.
    assert upstream_statuses(fake_upstream, marker) == [429, 429, 429, 200]
    if out.get("http") is not None:
        assert statuses(out["http"], CLIENTS[client][2]) == [429, 200], out["http"]
    stored_once(stack, before, question, harness.fake_default_answer(question))


def midstream_view(client: str, out: dict):
    """(partial text, the error the client surfaced or None, a sign that it did not end normally)"""
    f = family(client)
    s = out["stream"]
    if f == "openai-chat":
        assert "error" in s or s.get("finish_reason") is None, dump(s)
        return s.get("text"), s.get("error"), s.get("finish_reason") is None
    if f == "openai-responses":
        if "events" not in s:  # the request itself failed
            return None, s.get("error"), False
        failure = s.get("error") or s.get("error_events") or (s.get("failed") or {}).get("error")
        return s["text"], failure or None, s.get("completed") is None
    if f == "ai-sdk":
        failure = s.get("errors") or s.get("thrown")
        return s.get("text"), failure or None, s.get("finishReason") not in ("stop", None)
    return s.get("text"), s.get("error"), s.get("finish_reason") != "stop"


@pytest.mark.parametrize("client", CLIENT_IDS)
def test_500_mid_stream_surfaces_an_error_after_the_partial_text(stack, fake_upstream, sdk, client):
    question = f"Failing midway {harness.uniq('m')} {MIDSTREAM}"
    out = run_v1(sdk, stack, client, "midstream", question)
    text, error, abnormal = midstream_view(client, out)
    assert text == MIDSTREAM_TEXT, f"partial text {text!r}\n{dump(out)}"
    assert error, f"no error surfaced\n{dump(out)}"
    assert abnormal, f"the stream ended as if complete\n{dump(out)}"


# --------------------------------------------------------------------------- native API clients

NATIVE_TOKENS = 10  # ids 1..10 are tokens, 11 is the done event


def native_question(tag: str) -> tuple[str, str]:
    return f"native {tag} {harness.uniq('n')} [[fake: tokens={NATIVE_TOKENS}, gap_ms=20]]", \
        harness.fake_tokens_answer(NATIVE_TOKENS)


def ids_of(events) -> list:
    return [int(e["id"]) for e in events]


def tokens_of(events) -> str:
    return "".join(e["json"]["token"] for e in events if e["json"] and e["json"].get("done") is False)


def complete_exchange(stack, conv_id: str, question: str, answer: str):
    conv = harness.poll_message(stack, conv_id, lambda c: c["messages"][-1]["status"] != "streaming")
    assert [(m["role"], m["status"]) for m in conv["messages"]] == \
        [("user", "complete"), ("assistant", "complete")], conv["messages"]
    assert conv["messages"][0]["content"] == question and conv["messages"][1]["content"] == answer


def run_native(node, stack, client, scenario, question, **opts) -> dict:
    return run_client(node, "native_sse.mjs", client, f"http://127.0.0.1:{stack.port}", scenario, question,
                      json.dumps(opts))


def test_fetch_event_source_replayed_post_resumes_and_204_ends_it(stack, fake_upstream, sdk):
    question, answer = native_question("replay")
    k = random.randrange(0, NATIVE_TOKENS)
    out = run_native(sdk, stack, "fetch-event-source", "post_replay", question, resume_after=k,
                     client_message_id=harness.uniq("cm_"))
    ctx = f"resume after {k}: {dump(out)}"
    done_id = NATIVE_TOKENS + 1
    assert out["dropped_after"] == k, ctx
    first = [e for e in out["events"] if e["connection"] == 1]
    second = [e for e in out["events"] if e["connection"] == 2]
    last_seen = ids_of(first)[-1]
    assert ids_of(first) == list(range(0, last_seen + 1)) and last_seen >= k, ctx
    # The library's retry: the same POST with Last-Event-ID; the events after it, no repeats.
    reqs = [(r["method"], r["last_event_id"], r["status"]) for r in out["requests"]]
    assert reqs == [("POST", None, 200), ("POST", str(last_seen), 200), ("POST", str(done_id), 204)], ctx
    assert ids_of(second) == list(range(last_seen + 1, done_id + 1)), ctx
    assert tokens_of(first) + tokens_of(second) == answer, ctx
    done = out["events"][-1]["json"]
    assert done["done"] is True and done["status"] == "complete" and done["retryable"] is False, ctx
    # The reconnect after the done event got 204 and ended the client.
    assert out["ended"] == "stopped_by_204" and out["reconnected_after_done"], ctx
    assert [e["name"] for e in out["errors"]] == ["Error", "Reconnect"], ctx
    complete_exchange(stack, first[0]["json"]["conversation_id"], question, answer)


def test_fetch_event_source_get_resume_from_a_random_event(stack, fake_upstream, sdk):
    question, answer = native_question("get")
    k = random.randrange(0, NATIVE_TOKENS)
    out = run_native(sdk, stack, "fetch-event-source", "get_resume", question, resume_after=k)
    ctx = f"resume after {k}: {dump(out)}"
    done_id = NATIVE_TOKENS + 1
    original = out["original"]
    assert ids_of(original) == list(range(0, done_id + 1)) and tokens_of(original) == answer, ctx
    msg = original[0]["json"]["message_id"]
    reqs = [(r["method"], r["path"], r["last_event_id"], r["status"]) for r in out["requests"]]
    path = f"/api/chat/messages/{msg}/stream"
    assert reqs == [("GET", path, str(k), 200), ("GET", path, str(done_id), 204)], ctx
    assert ids_of(out["events"]) == list(range(k + 1, done_id + 1)), ctx
    assert tokens_of(original[:k + 1]) + tokens_of(out["events"]) == answer, ctx
    assert out["events"][-1]["json"] == original[-1]["json"], ctx
    assert out["ended"] == "stopped_by_204", ctx


def test_eventsource_resumes_from_a_random_event_and_204_stops_it(stack, fake_upstream, sdk):
    question, answer = native_question("es")
    k = random.randrange(0, NATIVE_TOKENS)
    out = run_native(sdk, stack, "eventsource", "get_resume", question, resume_after=k)
    ctx = f"resume after {k}: {dump(out)}"
    done_id = NATIVE_TOKENS + 1
    post = out["post"]
    assert ids_of(post["events"]) == list(range(0, k + 1)), ctx  # dropped after event k
    msg = post["events"][0]["json"]["message_id"]
    path = f"/api/chat/messages/{msg}/stream"
    for name, first_query, first_header in (("query", f"?last_event_id={k}", None), ("header", "", str(k))):
        f = out[name]
        assert ids_of(f["events"]) == list(range(k + 1, done_id + 1)), (name, ctx)
        assert tokens_of(post["events"]) + tokens_of(f["events"]) == answer, (name, ctx)
        assert f["events"][-1]["json"]["status"] == "complete", (name, ctx)
        # EventSource reconnected by itself after the stream ended, with the done event's id,
        # got 204 and stopped for good.
        reqs = [(r["path"], r["query"], r["last_event_id"], r["status"]) for r in out["requests"]
                if r["follower"] == name]
        assert reqs == [(path, first_query, first_header, 200), (path, first_query, str(done_id), 204)], (name, ctx)
        assert f["ended"] == "closed" and f["readyState"] == 2, (name, ctx)
        assert f["errors"][-1]["code"] == 204, (name, ctx)
    complete_exchange(stack, post["events"][0]["json"]["conversation_id"], question, answer)


# --------------------------------------------------------------------------- /v1 wire format


def test_wire_format_and_conversation_header(stack, fake_upstream):
    question = f"First question {harness.uniq('w')}"
    r = stack.post_json("/v1/chat/completions", {"messages": [{"role": "user", "content": question}]})
    assert r.status == 200, r
    conv_id = r.json["x_ragstream"]["conversation_id"]
    # A follow-up in the same conversation, chosen by header: the stored history is used.
    follow = f"Second question {harness.uniq('w')}"
    res = harness.stream_request(stack.port, {"messages": [{"role": "user", "content": follow}],
                                              "stream": True},
                                 path="/v1/chat/completions",
                                 headers={"X-Conversation-Id": conv_id})
    assert res.status == 200, res
    assert res.header("Content-Type").startswith("text/event-stream")
    data = [e.text for e in res.events]
    assert data[-1] == "[DONE]", data[-3:]
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in chunks[-1] or chunks[-1]["usage"] is None  # no include_usage asked
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == harness.fake_default_answer(follow)
    conv = stack.conversation(conv_id)
    assert [m["content"] for m in conv["messages"] if m["role"] == "user"] == [question, follow]
    sent = [x for x in fake_upstream.chat_requests() if follow in harness.last_user_text(x)][0]
    assert any(m["content"] == question for m in sent["body"]["messages"])


@pytest.mark.parametrize("body,status,code", [
    ({"messages": []}, 400, "missing_field"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "invalid_messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400,
     "unsupported_content"),
    ({"messages": [{"role": "user", "content": "x"}], "conversation_id": "conv_" + "0" * 24},
     404, "not_found"),
    ({"messages": [{"role": "user", "content": "x"}], "top_k": 99}, 422, "invalid_top_k"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, 400, "invalid_field"),
])
def test_openai_shaped_errors(stack, body, status, code):
    before = len(stack.conversation_ids())
    r = stack.post_json("/v1/chat/completions", body)
    assert r.status == status, r
    err = r.json["error"]
    assert err["code"] == code and err["message"] and err["type"] and "param" in err
    assert len(stack.conversation_ids()) == before
