#!/usr/bin/env bash
# Self-test for fake_openai.py: starts it on an ephemeral port, drives it with curl,
# checks the wire format and the control interface, runs the 1000-stream load
# check, then stops it with SIGTERM. Prints "N passed, M failed"; exits non-zero on
# any failure. Needs only bash, curl and python3.
#   SKIP_LOAD=1 ./selftest.sh    # skip the load check
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP="$(mktemp -d)"
KEY="selftest-key-123"
PASS=0
FAIL=0
SERVER_PID=""

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

ok()   { PASS=$((PASS + 1)); echo "ok   - $1"; }
nok()  { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [[ $# -gt 1 ]] && echo "       $2"; }
# check NAME COMMAND...: passes if COMMAND succeeds; its output is shown on failure.
check() {
  local name="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then ok "$name"; else nok "$name" "$out"; fi
}

# Python helper: `py CODE ARGS...` with an SSE parser and a few loaders in scope.
py() {
  local code="$1"; shift
  python3 - "$@" <<EOF
import json, sys, re, math, base64, struct
def sse_events(raw: bytes):
    """Minimal spec-following SSE parser: returns the data payloads, comments skipped."""
    events, data = [], []
    for line in re.split(rb"\r\n|\r|\n", raw):
        if line == b"":
            if data:
                events.append(b"\n".join(data).decode())
            data = []
        elif line.startswith(b":"):
            continue
        elif line.startswith(b"data:"):
            v = line[5:]
            data.append(v[1:] if v.startswith(b" ") else v)
    return events
def load(path): return open(path, "rb").read()
def chunks(path):
    """JSON chunks of an SSE body file (excluding [DONE])."""
    return [json.loads(e) for e in sse_events(load(path)) if e != "[DONE]"]
def content(path):
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks(path) if c.get("choices"))
def records():
    import urllib.request
    return json.load(urllib.request.urlopen(sys.argv[1] + "/_fake/requests"))
def api(body, path="/v1/chat/completions"):
    """POST a JSON body with the key; returns (status, raw response body)."""
    import urllib.request, urllib.error
    req = urllib.request.Request(sys.argv[1] + path, data=json.dumps(body).encode(), headers={
        "Authorization": "Bearer $KEY", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
def tool_deltas(chs):
    """The tool_calls entries of a list of chunks, in order."""
    return [tc for c in chs if c.get("choices") for tc in c["choices"][0]["delta"].get("tool_calls") or []]
def joined_calls(chs):
    """{index: {"id", "name", "arguments"}} accumulated the way a client must."""
    out = {}
    for tc in tool_deltas(chs):
        e = out.setdefault(tc["index"], {"id": None, "name": None, "arguments": ""})
        if "id" in tc: e["id"] = tc["id"]
        if "name" in tc.get("function", {}): e["name"] = tc["function"]["name"]
        e["arguments"] += tc.get("function", {}).get("arguments", "")
    return out
WEATHER_TOOLS = [{"type": "function", "function": {"name": "lookup_doc", "parameters": {"type": "object", "properties": {}}}},
                 {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
$code
EOF
}

# ---------------------------------------------------------------- start the server
python3 "$HERE/fake_openai.py" --port 0 --port-file "$TMP/port" --require-key "$KEY" >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do [[ -s "$TMP/port" ]] && break; sleep 0.05; done
if [[ ! -s "$TMP/port" ]]; then
  echo "server did not start:"; cat "$TMP/server.err"; exit 1
fi
PORT="$(cat "$TMP/port")"
BASE="http://127.0.0.1:$PORT"
sleep 0.1
check "prints 'listening on 127.0.0.1:PORT'" grep -qx "listening on 127.0.0.1:$PORT" "$TMP/server.out"

AUTH=(-H "Authorization: Bearer $KEY" -H "Content-Type: application/json")
# chat BODYJSON [curl args...]: POST a chat completion, body to stdout.
chat() { local body="$1"; shift; curl -sS -N "${AUTH[@]}" -d "$body" "$@" "$BASE/v1/chat/completions"; }
stream_body() {  # stream_body USER_CONTENT -> a streaming request body with include_usage
  python3 -c 'import json,sys; print(json.dumps({"model":"fake-model","stream":True,"stream_options":{"include_usage":True},"messages":[{"role":"system","content":"be brief"},{"role":"user","content":sys.argv[1]}]}))' "$1"
}

check "health" bash -c "curl -sf $BASE/_fake/health | grep -qx '{\"ok\":true}'"
check "GET /v1/models" bash -c "curl -sf -H 'Authorization: Bearer $KEY' $BASE/v1/models | grep -q '\"id\":\"fake-model\"'"

# ---------------------------------------------------------------- streaming
chat "$(stream_body 'What is RAG?')" -D "$TMP/s1.h" -o "$TMP/s1"
check "stream: headers chunked + text/event-stream" bash -c \
  "grep -qi '^content-type: text/event-stream' $TMP/s1.h && grep -qi '^transfer-encoding: chunked' $TMP/s1.h"
check "stream: OpenAI event sequence ending in [DONE] with usage chunk" py '
ev = sse_events(load(sys.argv[2]))
assert ev[-1] == "[DONE]", ev[-1]
ch = [json.loads(e) for e in ev[:-1]]
assert ch[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}, ch[0]
assert all(c["object"] == "chat.completion.chunk" and c["id"].startswith("chatcmpl-") and c["model"] == "fake-model" and "created" in c for c in ch)
assert ch[-2]["choices"][0]["delta"] == {} and ch[-2]["choices"][0]["finish_reason"] == "stop", ch[-2]
assert ch[-1]["choices"] == [] and ch[-1]["usage"]["completion_tokens"] == len(ch) - 3, ch[-1]
assert all(c["usage"] is None for c in ch[:-1])
text = "".join(c["choices"][0]["delta"].get("content", "") for c in ch[1:-2])
assert text == "This is a fake answer to: What is RAG?.", text
assert [c["choices"][0]["delta"]["content"] for c in ch[1:4]] == ["This", " is", " a"]
' "$BASE" "$TMP/s1"

chat '{"model":"fake-model","stream":true,"messages":[{"role":"user","content":"hi"}]}' -o "$TMP/s2"
check "stream without include_usage: no usage field, no usage chunk" py '
ch = chunks(sys.argv[2])
assert all("usage" not in c and c["choices"] for c in ch), ch
' "$BASE" "$TMP/s2"

chat "$(stream_body 'count [[fake: tokens=5, gap_ms=0]]')" -o "$TMP/s3"
check "tokens=5 gives exactly tok0..tok4" py '
assert content(sys.argv[2]) == "tok0 tok1 tok2 tok3 tok4 ", content(sys.argv[2])
' "$BASE" "$TMP/s3"

# ---------------------------------------------------------------- non-streaming
chat '{"model":"m1","messages":[{"role":"user","content":"Tell me about vectors"}]}' -D "$TMP/n1.h" -o "$TMP/n1"
check "non-stream: chat.completion with Content-Length and usage" py '
h = load(sys.argv[3]).decode().lower()
assert "content-length:" in h and "transfer-encoding" not in h, h
o = json.loads(load(sys.argv[2]))
assert o["object"] == "chat.completion" and o["model"] == "m1"
assert o["choices"][0]["message"]["content"] == "This is a fake answer to: Tell me about vectors.", o
assert o["choices"][0]["finish_reason"] == "stop"
u = o["usage"]; assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] > 0, u
' "$BASE" "$TMP/n1" "$TMP/n1.h"

# ---------------------------------------------------------------- auth
code="$(curl -s -o "$TMP/a1" -w '%{http_code}' -d '{"messages":[]}' "$BASE/v1/chat/completions")"
check "missing key -> 401 invalid_api_key" bash -c "[[ $code == 401 ]] && grep -q invalid_api_key $TMP/a1"

# ---------------------------------------------------------------- scripted errors
curl -sf -X POST -d '{"scenarios":[{"status":429,"retry_after":7},{"status":429,"error_code":"insufficient_quota"}]}' "$BASE/_fake/script" >/dev/null
code="$(chat "$(stream_body q)" -D "$TMP/e1.h" -o "$TMP/e1" -w '%{http_code}')"
check "script 429 -> 429 + Retry-After: 7 + rate_limit_exceeded" bash -c \
  "[[ $code == 429 ]] && grep -qi '^retry-after: 7' $TMP/e1.h && grep -q '\"code\":\"rate_limit_exceeded\"' $TMP/e1"
code="$(chat "$(stream_body q)" -o "$TMP/e2" -w '%{http_code}')"
check "script 429 insufficient_quota (FIFO second entry)" bash -c \
  "[[ $code == 429 ]] && grep -q '\"type\":\"insufficient_quota\"' $TMP/e2 && grep -q '\"code\":\"insufficient_quota\"' $TMP/e2"
code="$(chat "$(stream_body q)" -o /dev/null -w '%{http_code}')"
check "queue empty -> default scenario (200)" test "$code" = 200
code="$(chat "$(stream_body 'x [[fake: status=503]]')" -o "$TMP/e3" -w '%{http_code}')"
check "inline status=503 -> 503 server_error" bash -c "[[ $code == 503 ]] && grep -q '\"type\":\"server_error\"' $TMP/e3"
code="$(chat "$(stream_body 'x [[fake: bogus=1]]')" -o /dev/null -w '%{http_code}')"
check "unknown directive -> 400" test "$code" = 400
code="$(curl -s -o /dev/null -w '%{http_code}' -d '{"scenarios":[{"tokns":3}]}' "$BASE/_fake/script")"
check "unknown script field -> 400" test "$code" = 400

# ---------------------------------------------------------------- records
check "/_fake/requests records body, scenario, redacted Authorization" py '
recs = records()
assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
r = [r for r in recs if r["path"] == "/v1/chat/completions" and r["body"] and r["body"].get("model") == "m1"][0]
assert r["headers"]["Authorization"] == "<redacted>", r["headers"]
assert r["body"]["messages"][0]["content"] == "Tell me about vectors"
assert r["completed"] is True and r["closed_by_client_at"] is None and isinstance(r["received_at"], float)
e = [r for r in recs if r["status"] == 429]
assert e[0]["scenario"]["retry_after"] == 7 and e[1]["scenario"]["error_code"] == "insufficient_quota", e
assert "'"$KEY"'" not in json.dumps(recs)
' "$BASE"

# ---------------------------------------------------------------- keep-alive
curl -sS -v -N "${AUTH[@]}" -d "$(stream_body 'first')" "$BASE/v1/chat/completions" "$BASE/v1/chat/completions" \
  >"$TMP/k1" 2>"$TMP/k1.err"
check "keep-alive: two streamed requests on one connection" bash -c \
  "grep -qi 're-using existing connection' $TMP/k1.err && [[ \$(grep -c '^data: \[DONE\]' $TMP/k1) == 2 ]]"
curl -sS -v -H 'Connection: close' "$BASE/_fake/health" "$BASE/_fake/health" >"$TMP/k2" 2>"$TMP/k2.err"
check "Connection: close is honoured" bash -c \
  "! grep -qi 're-using existing connection' $TMP/k2.err && grep -qi '< connection: close' $TMP/k2.err && [[ \$(grep -c ok $TMP/k2) == 2 ]]"

# ---------------------------------------------------------------- request body framing
stream_body 'chunked body' >"$TMP/cb.json"
chat "@$TMP/cb.json" -H 'Transfer-Encoding: chunked' -o "$TMP/cb"
check "chunked request body accepted" py '
assert content(sys.argv[2]) == "This is a fake answer to: chunked body.", content(sys.argv[2])
assert sse_events(load(sys.argv[2]))[-1] == "[DONE]"
assert records()[-1]["body"]["messages"][-1]["content"] == "chunked body"
' "$BASE" "$TMP/cb"
start=$(date +%s%N)
chat "$(stream_body 'expect')" -H 'Expect: 100-continue' -o "$TMP/ex"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "Expect: 100-continue answered promptly (${elapsed_ms} ms)" bash -c "grep -q '\[DONE\]' $TMP/ex && (( $elapsed_ms < 800 ))"

# ---------------------------------------------------------------- framing quirks
QUIRK_TEXT='שלום עולם 😀 done, "quoted" \ back'
BODY="$(python3 -c 'import json,sys; print(json.dumps({"model":"fake-model","stream":True,"stream_options":{"include_usage":True},"messages":[{"role":"user","content":"q [[fake: split, crlf, comments, gap_ms=1, seed=7, text=" + json.dumps(sys.argv[1]) + "]]"}]}))' "$QUIRK_TEXT")"
chat "$BODY" --raw -o "$TMP/q1.raw"
chat "$BODY" -o "$TMP/q1"
check "split+crlf+comments: exact text survives, \\u escapes, CRLF, comments" py '
raw = load(sys.argv[3])
body = load(sys.argv[4])
assert content(sys.argv[4]) == sys.argv[2], (content(sys.argv[4]), sys.argv[2])
assert b"\\ud83d\\ude00" in body and b"\\u05e9" in body, "expected \\u escapes"
assert b"\r\n\r\n" in body and b": keep-alive\r\n" in body
assert sse_events(body)[-1] == "[DONE]"
# HTTP chunk payloads: at least one must not end at an event boundary.
pos, pieces = 0, []
while True:
    eol = raw.index(b"\r\n", pos); size = int(raw[pos:eol], 16); pos = eol + 2
    if size == 0: break
    pieces.append(raw[pos:pos + size]); pos += size + 2
assert sum(1 for p in pieces if not p.endswith(b"\r\n\r\n")) >= 3, pieces[:5]
assert any(re.search(rb"\\u[0-9a-f]{0,3}$", p) for p in pieces), "no split inside a \\u escape"
' "$BASE" "$QUIRK_TEXT" "$TMP/q1.raw" "$TMP/q1"

# ---------------------------------------------------------------- failures mid-stream
curl -sS -N "${AUTH[@]}" -d "$(stream_body 'cut [[fake: tokens=10, cut_after=3, gap_ms=1]]')" \
  -o "$TMP/c1" "$BASE/v1/chat/completions" 2>/dev/null
rc=$?
check "cut_after=3: curl sees a broken transfer (rc=$rc), 3 tokens, no [DONE]" py '
assert sys.argv[3] == "18", sys.argv[3]
assert content(sys.argv[2]) == "tok0 tok1 tok2 ", content(sys.argv[2])
assert b"[DONE]" not in load(sys.argv[2])
r = records()[-1]
assert r["completed"] is False and r["tokens_sent"] == 3 and r["closed_by_client_at"] is None, r
' "$BASE" "$TMP/c1" "$rc"

chat "$(stream_body 'err [[fake: tokens=10, error_event_after=2, gap_ms=1]]')" -o "$TMP/c2"
rc=$?
check "error_event_after=2: error event then clean end" py '
ev = sse_events(load(sys.argv[2]))
assert sys.argv[3] == "0"
assert json.loads(ev[-1])["error"]["code"] == "upstream_test", ev[-1]
assert "[DONE]" not in ev and content(sys.argv[2]) == "tok0 tok1 "
' "$BASE" "$TMP/c2" "$rc"

chat "$(stream_body 'err0 [[fake: tokens=10, error_event_after=0]]')" -o "$TMP/c3"
check "error_event_after=0: the error event comes right after the role chunk" py '
ev = sse_events(load(sys.argv[2]))
assert len(ev) == 2, ev
assert json.loads(ev[0])["choices"][0]["delta"] == {"role": "assistant", "content": ""}, ev[0]
assert json.loads(ev[1])["error"]["code"] == "upstream_test", ev[1]
assert records()[-1]["tokens_sent"] == 0 and records()[-1]["completed"] is True
' "$BASE" "$TMP/c3"

# ---------------------------------------------------------------- tool calls
# Scripted: one call whose arguments hold non-ASCII text, then two parallel calls (the
# second with its own id), the parallel pair again with split+crlf+comments framing.
ARGS1='{"city":"Zürich","note":"שלום 😀 \"q\"","days":[1,2,3]}'
python3 -c 'import json,sys; a=sys.argv[1]; print(json.dumps({"scenarios":[
  {"tool_calls":[{"name":"get_weather","arguments":a}],"gap_ms":1},
  {"tool_calls":[{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"},{"name":"lookup_doc","arguments":"{\"q\":\"opening hours\"}","id":"call_given"}],"gap_ms":1},
  {"tool_calls":[{"name":"get_weather","arguments":a},{"name":"lookup_doc","arguments":"{\"q\":\"x\"}"}],"gap_ms":1,"split":True,"crlf":True,"comments":True,"seed":3}]}))' "$ARGS1" >"$TMP/tc.script"
curl -sf -X POST -d "@$TMP/tc.script" "$BASE/_fake/script" >/dev/null
chat "$(stream_body 'tools one')" -o "$TMP/tc1"
check "stream tool call: role chunk content null, id/type/name chunk, argument pieces, finish tool_calls, usage" py '
ev = sse_events(load(sys.argv[2]))
assert ev[-1] == "[DONE]", ev[-1]
ch = [json.loads(e) for e in ev[:-1]]
assert ch[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}, ch[0]
first = ch[1]["choices"][0]["delta"]
seq = records()[-1]["seq"]
assert first == {"tool_calls": [{"index": 0, "id": "call_%d_0" % seq, "type": "function",
                                 "function": {"name": "get_weather", "arguments": ""}}]}, first
pieces = [c["choices"][0]["delta"] for c in ch[2:-2]]
assert all(list(p) == ["tool_calls"] and len(p["tool_calls"]) == 1 and p["tool_calls"][0]["index"] == 0
           and list(p["tool_calls"][0]) == ["index", "function"] and list(p["tool_calls"][0]["function"]) == ["arguments"]
           for p in pieces), pieces
args = [p["tool_calls"][0]["function"]["arguments"] for p in pieces]
assert "".join(args) == sys.argv[3], ("".join(args), sys.argv[3])
assert len(args) >= 5 and all(1 <= len(a) <= 8 for a in args) and all(len(a) >= 3 for a in args[:-1]), args
assert ch[-2]["choices"][0]["delta"] == {} and ch[-2]["choices"][0]["finish_reason"] == "tool_calls", ch[-2]
assert all(c["choices"][0]["finish_reason"] is None for c in ch[:-2])
assert ch[-1]["choices"] == [] and ch[-1]["usage"]["completion_tokens"] == len(pieces) + 1 > 0, ch[-1]
assert not any("content" in c["choices"][0]["delta"] for c in ch[1:-1])
raw = load(sys.argv[2])
assert b"\\u05e9" in raw and b"\\ud83d\\ude00" in raw and not re.search(rb"[\x80-\xff]", raw)
r = records()[-1]
assert r["tool_calls"] == [{"id": "call_%d_0" % seq, "name": "get_weather", "arguments": sys.argv[3]}], r["tool_calls"]
assert r["tokens_sent"] == len(pieces) + 1 and r["completed"] is True
' "$BASE" "$TMP/tc1" "$ARGS1"

chat "$(stream_body 'tools two')" -o "$TMP/tc2"
check "stream: two parallel tool calls, one after another with index 0 then 1" py '
ch = chunks(sys.argv[2])
idx = [tc["index"] for tc in tool_deltas(ch)]
assert idx == sorted(idx) and idx[0] == 0 and idx[-1] == 1 and set(idx) == {0, 1}, idx
calls = joined_calls(ch)
seq = records()[-1]["seq"]
assert calls == {0: {"id": "call_%d_0" % seq, "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
                 1: {"id": "call_given", "name": "lookup_doc", "arguments": "{\"q\":\"opening hours\"}"}}, calls
heads = [tc for tc in tool_deltas(ch) if "id" in tc]
assert [h["index"] for h in heads] == [0, 1] and all(h["type"] == "function" and h["function"]["arguments"] == "" for h in heads)
assert ch[-2]["choices"][0]["finish_reason"] == "tool_calls"
' "$BASE" "$TMP/tc2"

chat "$(stream_body 'tools quirks')" -o "$TMP/tc3"
check "stream tool calls survive split+crlf+comments framing" py '
body = load(sys.argv[2])
assert b"\r\n\r\n" in body and b": keep-alive\r\n" in body
calls = joined_calls(chunks(sys.argv[2]))
assert calls[0]["arguments"] == sys.argv[3] and calls[1]["arguments"] == "{\"q\":\"x\"}", calls
assert sse_events(body)[-1] == "[DONE]"
' "$BASE" "$TMP/tc3" "$ARGS1"

check "non-stream tool call: message content null + tool_calls, finish_reason tool_calls" py '
st, raw = api({"model": "m", "messages": [{"role": "user", "content": "x [[fake: tool_calls=[{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}]]]"}]})
assert st == 200, (st, raw)
o = json.loads(raw)
seq = records()[-1]["seq"]
assert o["choices"][0]["message"] == {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_%d_0" % seq, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]}, o
assert o["choices"][0]["finish_reason"] == "tool_calls"
u = o["usage"]; assert u["completion_tokens"] > 0 and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
' "$BASE"

check "merge_role_chunk; text + tool_calls streams the text first" py '
tc = "tool_calls=[{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}]"
st, raw = api({"model": "m", "stream": True, "messages": [{"role": "user", "content": "x [[fake: merge_role_chunk, " + tc + "]]"}]})
ch = [json.loads(e) for e in sse_events(raw) if e != "[DONE]"]
d0 = ch[0]["choices"][0]["delta"]
assert d0["role"] == "assistant" and d0["content"] is None and d0["tool_calls"][0]["function"]["name"] == "get_weather", d0
assert joined_calls(ch)[0]["arguments"] == "{\"city\":\"Rome\"}"
st, raw = api({"model": "m", "stream": True, "messages": [{"role": "user", "content": "x [[fake: text=\"Let me check.\", " + tc + "]]"}]})
ch = [json.loads(e) for e in sse_events(raw) if e != "[DONE]"]
assert ch[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
kinds = ["c" if "content" in c["choices"][0]["delta"] else "t" for c in ch[1:-1]]
assert kinds == sorted(kinds) and "c" in kinds and "t" in kinds, kinds
assert "".join(c["choices"][0]["delta"].get("content", "") for c in ch) == "Let me check."
assert ch[-1]["choices"][0]["finish_reason"] == "tool_calls"
st, raw = api({"model": "m", "messages": [{"role": "user", "content": "x [[fake: text=\"Let me check.\", " + tc + "]]"}]})
m = json.loads(raw)["choices"][0]["message"]
assert m["content"] == "Let me check." and m["tool_calls"][0]["function"]["arguments"] == "{\"city\":\"Rome\"}", m
' "$BASE"

check "auto tool use: \"weather\" calls the weather tool with the city after \"in \"; tool_choice rules" py '
def ask(text, stream=False, **extra):
    st, raw = api(dict({"model": "m", "stream": stream, "tools": WEATHER_TOOLS,
                        "messages": [{"role": "user", "content": text}]}, **extra))
    assert st == 200, (st, raw)
    if stream:
        ch = [json.loads(e) for e in sse_events(raw) if e != "[DONE]"]
        calls = joined_calls(ch)
        return [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())], ch[-1]["choices"][0]["finish_reason"]
    ch0 = json.loads(raw)["choices"][0]
    return [(t["function"]["name"], json.loads(t["function"]["arguments"])) for t in ch0["message"].get("tool_calls") or []], ch0["finish_reason"]
assert ask("What is the WEATHER in Lisbon?") == ([("get_weather", {"city": "Lisbon"})], "tool_calls")
assert ask("Weather in Zürich, please!", stream=True) == ([("get_weather", {"city": "Zürich"})], "tool_calls")
assert ask("how is the weather today") == ([("get_weather", {"city": "Paris"})], "tool_calls")
assert ask("What is RAG?") == ([], "stop")
assert ask("weather in Oslo", tool_choice="none") == ([], "stop")
assert ask("weather in Oslo", tool_choice="auto", parallel_tool_calls=False) == ([("get_weather", {"city": "Oslo"})], "tool_calls")
assert ask("hello in Rome", tool_choice="required") == ([("lookup_doc", {"city": "Rome"})], "tool_calls")
assert ask("weather in Rome", tool_choice={"type": "function", "function": {"name": "lookup_doc"}}) == ([("lookup_doc", {"city": "Rome"})], "tool_calls")
assert ask("hi", tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True) == ([("get_weather", {"city": "Paris"})], "tool_calls")
assert ask("weather in Oslo [[fake: text=\"scripted\"]]") == ([], "stop")
st, raw = api({"model": "m", "tools": WEATHER_TOOLS[:1], "messages": [{"role": "user", "content": "weather in Bergen"}]})
assert json.loads(raw)["choices"][0]["message"]["tool_calls"][0]["function"] == {"name": "lookup_doc", "arguments": "{\"city\":\"Bergen\"}"}
rec = [r for r in records() if isinstance(r["body"], dict) and r["body"].get("tool_choice") == "auto"][-1]
assert rec["body"]["tools"] == WEATHER_TOOLS and rec["body"]["parallel_tool_calls"] is False, rec["body"]
' "$BASE"

check "tool result: last message role tool -> \"Tool said: ...\" streamed as text, finish stop" py '
msgs = [{"role": "user", "content": "weather in Oslo? [[fake: tool_calls=[{\"name\":\"get_weather\",\"arguments\":\"{}\"}]]]"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Bergen\"}"}}]},
        {"role": "tool", "tool_call_id": "call_b", "content": "Bergen: rain"},
        {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 21,\n \"sky\": \"clear\", \"wind\": \"calm\", \"humidity\": 40, \"uv\": 3}"}]
st, raw = api({"model": "m", "stream": True, "tools": WEATHER_TOOLS, "messages": msgs})
assert st == 200, (st, raw)
ch = [json.loads(e) for e in sse_events(raw) if e != "[DONE]"]
text = "".join(c["choices"][0]["delta"].get("content") or "" for c in ch)
assert text == "Tool said: " + "{\"temp\": 21, \"sky\": \"clear\", \"wind\": \"calm\", \"humidity\": 40, \"uv\": 3}"[:60] + ".", text
assert not tool_deltas(ch) and ch[-1]["choices"][0]["finish_reason"] == "stop"
assert ch[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
st, raw = api({"model": "m", "messages": msgs[:2] + [msgs[3], msgs[2]]})
o = json.loads(raw)
assert st == 200 and o["choices"][0]["message"] == {"role": "assistant", "content": "Tool said: Bergen: rain."}, raw
assert records()[-1]["tool_calls"] is None
' "$BASE"

check "bad tools / tool messages -> 400 invalid_request_error with OpenAI param" py '
u = [{"role": "user", "content": "weather"}]
call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
cases = [
    ({"tools": {"type": "function"}, "messages": u}, "tools"),
    ({"tools": [], "messages": u}, "tools"),
    ({"tools": ["get_weather"], "messages": u}, "tools[0]"),
    ({"tools": [{"type": "retrieval"}], "messages": u}, "tools[0].type"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}], "messages": u}, "tools[0].function.name"),
    ({"tools": [{"type": "function"}], "messages": u}, "tools[0].function"),
    ({"tools": [{"type": "function", "function": {"name": "has space"}}], "messages": u}, "tools[0].function.name"),
    ({"tools": WEATHER_TOOLS, "tool_choice": "sometimes", "messages": u}, "tool_choice"),
    ({"tools": WEATHER_TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}, "messages": u}, "tool_choice"),
    ({"tool_choice": "auto", "messages": u}, "tool_choice"),
    ({"parallel_tool_calls": True, "messages": u}, "parallel_tool_calls"),
    ({"messages": u + [{"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "content": "x"}]}, "messages[2].tool_call_id"),
    ({"messages": u + [{"role": "tool", "tool_call_id": "c1", "content": "x"}]}, "messages.[1].role"),
    ({"messages": u + [{"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "tool_call_id": "c9", "content": "x"}]}, "messages.[2].tool_call_id"),
    ({"messages": u + [{"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "user", "content": "and?"}]}, "messages.[1].role"),
    ({"messages": u + [{"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "x"}]}, "messages[1].tool_calls[0].function.arguments"),
]
n = len(records())
for body, param in cases:
    for stream in (False, True):
        st, raw = api(dict(body, model="m", stream=stream))
        e = json.loads(raw)["error"]
        assert st == 400 and e["type"] == "invalid_request_error" and e["param"] == param and e["message"], (body, st, raw)
assert all(r["status"] == 400 and r["completed"] and r["scenario"] is None for r in records()[n:])
st, raw = api({"scenarios": [{"tool_calls": [{"name": "f", "arguments": {"a": 1}}]}]}, "/_fake/script")
assert st == 400, raw
st, raw = api({"scenarios": [{"tool_calls": [{"arguments": "{}"}]}]}, "/_fake/script")
assert st == 400, raw
' "$BASE"

# Client gives up during a long first_token_ms: the server must notice promptly.
chat "$(stream_body 'slow [[fake: first_token_ms=5000]]')" --max-time 0.5 -o /dev/null 2>/dev/null
sleep 0.3
check "client close during first_token_ms is noticed promptly" py '
r = records()[-1]
assert r["closed_by_client_at"] is not None and r["completed"] is False, r
d = r["closed_by_client_at"] - r["received_at"]
assert 0.3 < d < 1.5, d
assert r["tokens_sent"] == 0
' "$BASE"
chat "$(stream_body 'slow [[fake: tokens=100, gap_ms=100]]')" --max-time 0.5 -o /dev/null 2>/dev/null
sleep 0.3
check "client close between tokens is noticed, stream stopped" py '
r = records()[-1]
assert r["closed_by_client_at"] is not None and r["completed"] is False, r
assert 2 <= r["tokens_sent"] <= 7, r["tokens_sent"]
' "$BASE"

# ---------------------------------------------------------------- timing / stamps
chat "$(stream_body 'st [[fake: tokens=3, stamp, stamp_content, gap_ms=1]]')" -o "$TMP/t1"
check "stamp / stamp_content" py '
import time
ch = [c for c in chunks(sys.argv[2]) if c.get("choices") and c["choices"][0]["delta"].get("content")]
assert len(ch) == 3
for c in ch:
    m = re.fullmatch(r"\|(\d+\.\d{6})\|", c["choices"][0]["delta"]["content"]); assert m, c
    assert abs(float(m.group(1)) - c["x_sent_at"]) < 1e-5 and abs(time.time() - c["x_sent_at"]) < 10
' "$BASE" "$TMP/t1"
curl -sS -N "${AUTH[@]}" -d "$(stream_body 'hd [[fake: headers_delay_ms=300, first_token_ms=200, tokens=1]]')" \
  -o /dev/null -w '%{time_starttransfer} %{time_total}\n' "$BASE/v1/chat/completions" >"$TMP/t2"
check "headers_delay_ms / first_token_ms timing ($(cat "$TMP/t2"))" py '
ttfb, total = map(float, load(sys.argv[2]).split())
assert 0.28 < ttfb < 0.45 and 0.48 < total < 0.8, (ttfb, total)
' "$BASE" "$TMP/t2"

# ---------------------------------------------------------------- embeddings
curl -sS "${AUTH[@]}" -d '{"model":"emb","input":["hello","world","hello"]}' "$BASE/v1/embeddings" -o "$TMP/em1"
curl -sS "${AUTH[@]}" -d '{"model":"emb","input":"hello","dimensions":8}' "$BASE/v1/embeddings" -o "$TMP/em2"
curl -sS "${AUTH[@]}" -d '{"input":"hello","encoding_format":"base64"}' "$BASE/v1/embeddings" -o "$TMP/em3"
check "embeddings: deterministic, L2-normalised, dimensions, base64" py '
a, b, c = (json.loads(load(p)) for p in sys.argv[2:5])
assert a["object"] == "list" and a["model"] == "emb" and a["usage"]["prompt_tokens"] == 3
v = [d["embedding"] for d in a["data"]]
assert [d["index"] for d in a["data"]] == [0, 1, 2] and all(d["object"] == "embedding" for d in a["data"])
assert len(v[0]) == 64 and v[0] == v[2] and v[0] != v[1]
assert all(abs(math.sqrt(sum(x * x for x in e)) - 1) < 1e-9 for e in v)
assert len(b["data"][0]["embedding"]) == 8
f = struct.unpack("<64f", base64.b64decode(c["data"][0]["embedding"]))
assert all(abs(x - y) < 1e-6 for x, y in zip(f, v[0]))
' "$BASE" "$TMP/em1" "$TMP/em2" "$TMP/em3"

# ---------------------------------------------------------------- reset / default scenario
curl -sf -X POST -d '{"default":{"text":"always this"},"scenarios":[{"status":500}]}' "$BASE/_fake/script" >/dev/null
curl -sf -X POST "$BASE/_fake/reset" >/dev/null
check "reset clears queue, default and records" py '
import urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1] + "/_fake/script"))
assert s == {"scenarios": [], "default": {}}, s
assert records() == []
' "$BASE"
curl -sf -X POST -d '{"default":{"text":"always this","gap_ms":0}}' "$BASE/_fake/script" >/dev/null
chat "$(stream_body 'a')" -o "$TMP/d1"; chat "$(stream_body 'b')" -o "$TMP/d2"
check "default scenario applies to every request" py '
assert content(sys.argv[2]) == content(sys.argv[3]) == "always this"
assert [r["seq"] for r in records()] == [1, 2]
' "$BASE" "$TMP/d1" "$TMP/d2"
curl -sf -X POST "$BASE/_fake/reset" >/dev/null

# ---------------------------------------------------------------- load
if [[ "${SKIP_LOAD:-0}" != 1 ]]; then
  if python3 "$HERE/loadcheck.py" --port "$PORT" --key "$KEY" --n 1000 --tokens 20 --gap-ms 50 >"$TMP/load" 2>&1; then
    ok "1000 concurrent streams"; sed 's/^/       /' "$TMP/load"
  else
    nok "1000 concurrent streams" "$(cat "$TMP/load")"
  fi
fi

# ---------------------------------------------------------------- shutdown
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
SERVER_PID=""
check "SIGTERM: clean exit (rc=$rc) and port file removed" bash -c "[[ $rc == 0 && ! -e $TMP/port ]]"
if [[ -s "$TMP/server.err" ]]; then
  nok "server stderr is empty" "$(head -20 "$TMP/server.err")"
fi

echo "$PASS passed, $FAIL failed"
[[ $FAIL == 0 ]]
