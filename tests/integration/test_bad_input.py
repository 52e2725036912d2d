"""Bad requests: each gets the right status and a JSON error body, writes nothing, calls no
upstream, and leaves every worker serving. Includes the inputs that crash or hang Debian's
RapidJSON 1.1.0 when parsed naively."""

import json

import pytest

from harness import Stack, assert_json_error, uniq

JSON = {"Content-Type": "application/json"}
STREAM = "/api/chat/message/stream"
PLAIN = "/api/chat/message"
WELL_FORMED_UNKNOWN = "conv_" + "0123456789abcdef01234567"


def _body(**fields) -> bytes:
    return json.dumps(fields).encode()


def _nested(levels: int) -> bytes:
    return b'{"message":' + b"[" * levels + b"]" * levels + b"}"


# (id, path, raw body, headers, status, error code or None)
CASES = [
    ("malformed-json", STREAM, b'{"message": "hi"', JSON, 400, "invalid_json"),
    ("not-json", PLAIN, b"message=hi", JSON, 400, "invalid_json"),
    ("trailing-garbage", STREAM, b'{"message":"hi"} {"x":1}', JSON, 400, "invalid_json"),
    ("array-body", STREAM, b'["hi"]', JSON, 400, None),
    ("string-body", STREAM, b'"hi"', JSON, 400, None),
    ("empty-body", STREAM, b"", JSON, 400, None),
    ("deep-nesting-30000", STREAM, _nested(30000), JSON, 400, "invalid_json"),
    ("closers-then-openers", STREAM, b"]" * 30000 + b"[" * 30000, JSON, 400, "invalid_json"),
    ("invalid-utf8-ff", STREAM, b'{"message":"\xff\xfe hello"}', JSON, 400, "invalid_json"),
    ("invalid-utf8-overlong", PLAIN, b'{"message":"a \xc0\xaf b"}', JSON, 400, "invalid_json"),
    ("invalid-utf8-surrogate-bytes", STREAM, b'{"message":"a \xed\xa0\x80 b"}', JSON, 400, "invalid_json"),
    ("invalid-utf8-truncated", STREAM, b'{"message":"a \xe2\x82"}', JSON, 400, "invalid_json"),
    ("invalid-utf8-in-key", STREAM, b'{"message":"hi","\xfe":1}', JSON, 400, "invalid_json"),
    ("escaped-lone-high-surrogate", STREAM, b'{"message":"\\ud800 hello"}', JSON, 400, "invalid_json"),
    ("message-number", STREAM, b'{"message": 42}', JSON, 400, None),
    ("message-object", STREAM, b'{"message": {"text": "hi"}}', JSON, 400, None),
    ("message-array", PLAIN, b'{"message": ["hi"]}', JSON, 400, None),
    ("message-bool", STREAM, b'{"message": true}', JSON, 400, None),
    ("message-null", STREAM, b'{"message": null}', JSON, 400, None),
    ("missing-message", STREAM, b'{"text": "hi"}', JSON, 400, None),
    ("empty-object", PLAIN, b"{}", JSON, 400, None),
    ("empty-message", STREAM, _body(message=""), JSON, 400, None),
    ("whitespace-message", STREAM, _body(message="  \n\t \r "), JSON, 400, None),
    ("message-too-long", STREAM, _body(message="x" * 1001), JSON, 413, None),
    ("hebrew-message-too-long", PLAIN, _body(message="ש" * 1001), JSON, 413, None),
    ("conversation-id-number", STREAM, b'{"message":"hi","conversation_id":7}', JSON, 400, None),
    ("unknown-conversation", STREAM, _body(message="hi", conversation_id=WELL_FORMED_UNKNOWN), JSON, 404, None),
    ("unknown-conversation-plain", PLAIN, _body(message="hi", conversation_id=WELL_FORMED_UNKNOWN), JSON, 404, None),
    ("garbage-conversation", STREAM, _body(message="hi", conversation_id="../../etc/passwd"), JSON, 404, None),
    ("wrong-content-type", STREAM, _body(message="hi"), {"Content-Type": "text/plain"}, 415, None),
    ("form-content-type", PLAIN, _body(message="hi"),
     {"Content-Type": "application/x-www-form-urlencoded"}, 415, None),
    ("no-content-type", STREAM, _body(message="hi"), {}, 415, None),
    # Debian RapidJSON 1.1.0 number bugs (CVE-2024-38517 / CVE-2024-39684 and friends).
    ("exponent-overflow", STREAM, b'{"message":"x","n":1e-2147483649}', JSON, 400, "invalid_json"),
    ("long-mantissa-tiny-exponent", STREAM,
     b'{"message":"x","n":128.74836467836484838364836483643636483648e-336}', JSON, 400, "invalid_json"),
    ("ten-thousand-digits", STREAM, b'{"message":"x","n":' + b"9" * 10000 + b"}", JSON, 400, "invalid_json"),
    ("ten-thousand-fraction-digits", PLAIN, b'{"message":"x","n":0.' + b"0" * 10000 + b"1}", JSON, 400, "invalid_json"),
    ("huge-positive-exponent", STREAM, b'{"message":"x","n":1e99999999999}', JSON, 400, "invalid_json"),
    ("body-over-worker-limit", STREAM, _body(message="x" * 100_000), JSON, 413, None),
]


def _conversation_count(stack) -> int:
    return len(stack.conversation_ids(limit=100))


def _check_rejected(stack, fake, method, path, body, headers, status, code, json_required=True):
    before = _conversation_count(stack)
    r = stack.request(method, path, body=body, headers=headers)
    if json_required:
        assert_json_error(r, status, code)
    else:
        assert r.status == status, r
    # Validation happens before a stream starts: never a 200 event stream.
    assert not (r.header("Content-Type") or "").startswith("text/event-stream")
    assert _conversation_count(stack) == before, "a rejected request wrote a conversation"
    assert fake.chat_requests() == [], "a rejected request reached the upstream"
    stack.assert_alive()
    return r


@pytest.mark.parametrize("name,path,body,headers,status,code", CASES, ids=[c[0] for c in CASES])
def test_rejected_chat_request(stack, fake_upstream, name, path, body, headers, status, code):
    _check_rejected(stack, fake_upstream, "POST", path, body, headers, status, code)


@pytest.fixture(scope="module")
def roomy_stack(session_dir, _fake_process):
    """One worker with the default 1 MiB body limit (and messages up to 100,000 characters, so
    the chat routes' own limit, 6 bytes a character, is above 200 KB), so that 100,000
    nesting levels reach the JSON parser instead of the size check (and a crash would mean
    502s)."""
    import tempfile
    from pathlib import Path
    s = Stack(Path(tempfile.mkdtemp(prefix="roomy-", dir=session_dir)), _fake_process.base_url,
              workers=1, env={"RAGSTREAM_MAX_BODY_BYTES": str(1 << 20),
                              "RAGSTREAM_MAX_MESSAGE_CHARS": "100000"})
    try:
        yield s
    finally:
        codes = s.stop()
        assert codes.get("worker-1") == 0, codes


@pytest.mark.parametrize("path", [STREAM, PLAIN])
def test_deep_nesting_100000_levels(roomy_stack, fake_upstream, path):
    body = _nested(100_000)
    assert len(body) > 200_000
    _check_rejected(roomy_stack, fake_upstream, "POST", path, body, JSON, 400, "invalid_json")
    # Nested objects too, and nesting hidden after a long valid prefix.
    obj = b'{"message":"x","a":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}"
    _check_rejected(roomy_stack, fake_upstream, "POST", path, obj, JSON, 400, "invalid_json")


def test_body_limits_are_per_route(stack_factory, fake_upstream):
    """One 8 MiB limit no longer applies to every route: a chat message body is bounded by
    RAGSTREAM_MAX_MESSAGE_CHARS (6 bytes a character plus 64 KiB), small JSON routes by
    256 KiB, while documents keep the whole RAGSTREAM_MAX_BODY_BYTES."""
    s = stack_factory(workers=1, env={"RAGSTREAM_MAX_BODY_BYTES": str(4 << 20),
                                      "RAGSTREAM_MAX_MESSAGE_CHARS": "1000"})
    big = "w" * 300_000  # 300 KB: over 1000 x 6 + 64 KiB and over 256 KiB
    for path, body in (("/api/chat/message", _body(message=big)),
                       ("/api/search", json.dumps({"query": big}).encode()),
                       (f"/api/conversations/{WELL_FORMED_UNKNOWN}",
                        json.dumps({"title": big}).encode())):
        method = "PATCH" if path.startswith("/api/conversations/") else "POST"
        r = s.request(method, path, body=body, headers=JSON)
        assert r.status == 413 and r.json["error"]["code"] == "body_too_large", (path, r)
    doc = " ".join(f"word{i}" for i in range(300_000))  # about 2.5 MB
    r = s.post_json("/api/documents", {"title": "Big", "text": doc}, timeout=120)
    assert r.status == 201, r


def test_body_limits(stack, roomy_stack, fake_upstream):
    # Far over the worker's 64 KiB: more than a socket buffer, so the worker answers
    # without reading the body.
    _check_rejected(stack, fake_upstream, "POST", STREAM, _body(message="y" * 1_000_000),
                    JSON, 413, "body_too_large")
    # Over the worker's default 1 MiB but under nginx's client_max_body_size (4m).
    _check_rejected(roomy_stack, fake_upstream, "POST", STREAM, _body(message="y" * 2_000_000),
                    JSON, 413, "body_too_large")
    # Over nginx's own limit: nginx answers 413 itself (its body need not be our JSON).
    _check_rejected(stack, fake_upstream, "POST", STREAM, _body(message="z" * 5_000_000),
                    JSON, 413, None, json_required=False)


def test_message_at_the_limit_is_accepted(stack, fake_upstream):
    # 1000 characters (2000 bytes in Hebrew): the limit is in characters, not bytes.
    before = _conversation_count(stack)
    msg = "ש" * 999 + "?"
    r = stack.post_json(PLAIN, {"message": msg})
    assert r.status == 200, r
    assert _conversation_count(stack) == before + 1
    conv = stack.conversation(r.json["conversation_id"])
    assert conv["messages"][0]["content"] == msg
    # The charset parameter and letter case of the media type do not matter.
    r = stack.request("POST", PLAIN, body=_body(message=f"hello {uniq()}"),
                      headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert r.status == 200, r


@pytest.mark.parametrize("method,path,allow", [
    ("GET", PLAIN, {"POST"}),
    ("GET", STREAM, {"POST"}),
    ("DELETE", STREAM, {"POST"}),
    ("PUT", f"/api/conversations/{WELL_FORMED_UNKNOWN}", {"GET", "PATCH", "DELETE"}),
    ("POST", "/api/conversations", {"GET"}),
])
def test_wrong_method(stack, fake_upstream, method, path, allow):
    r = _check_rejected(stack, fake_upstream, method, path, None, {}, 405, None)
    got = {m.strip() for m in (r.header("Allow") or "").split(",") if m.strip()}
    assert got == allow, r.headers


@pytest.mark.parametrize("path", ["/api/nope", "/api/chat", "/api/chat/message/stream/extra",
                                  "/v1/nope"])
def test_unknown_route(stack, fake_upstream, path):
    _check_rejected(stack, fake_upstream, "GET", path, None, {}, 404, None)


def test_unknown_static_path(stack):
    """Outside /api/ and /v1/ nginx serves the web page's files (web/): a missing one is a
    plain 404, and no worker is involved."""
    r = stack.get("/no-such-page.html")
    assert r.status == 404, r


@pytest.mark.parametrize("conv_id", [WELL_FORMED_UNKNOWN, "conv_nothex", "garbage",
                                     "CONV_0123456789ABCDEF01234567"])
def test_unknown_conversation_get_and_delete(stack, fake_upstream, conv_id):
    _check_rejected(stack, fake_upstream, "GET", f"/api/conversations/{conv_id}", None, {}, 404, None)
    _check_rejected(stack, fake_upstream, "DELETE", f"/api/conversations/{conv_id}", None, {}, 404, None)
    _check_rejected(stack, fake_upstream, "PATCH", f"/api/conversations/{conv_id}",
                    _body(title="x"), JSON, 404, None)


@pytest.mark.parametrize("escape", ["\\udc00", "\\udfff"])
def test_escaped_lone_low_surrogate_is_rejected(stack, fake_upstream, escape):
    """A lone low-surrogate escape decodes (in RapidJSON 1.1.0) to the bytes ED B0 80..., which
    are not UTF-8: the text must be rejected, never stored, echoed or sent upstream."""
    r = stack.post_json(PLAIN, {"message": f"a conversation {uniq()}"})
    assert r.status == 200, r
    conv_id = r.json["conversation_id"]
    fake_upstream.reset()
    title = stack.conversation(conv_id)["title"]
    message = ('{"message":"%s hello"}' % escape).encode()
    _check_rejected(stack, fake_upstream, "POST", STREAM, message, JSON, 400, None)
    _check_rejected(stack, fake_upstream, "POST", PLAIN, message, JSON, 400, None)
    _check_rejected(stack, fake_upstream, "PATCH", f"/api/conversations/{conv_id}",
                    ('{"title":"%s"}' % escape).encode(), JSON, 400, None)
    assert stack.conversation(conv_id)["title"] == title
    # Every response is still UTF-8.
    stack.get("/api/conversations?limit=100").body.decode("utf-8")
    stack.get(f"/api/conversations/{conv_id}").body.decode("utf-8")


def test_patch_title_validation(stack, fake_upstream):
    r = stack.post_json(PLAIN, {"message": f"A conversation to rename {uniq()}"})
    assert r.status == 200, r
    conv_id = r.json["conversation_id"]
    path = f"/api/conversations/{conv_id}"
    fake_upstream.reset()
    original = stack.conversation(conv_id)["title"]

    bad = [
        (_body(title=""), JSON, 400),
        (b"{}", JSON, 400),
        (b'{"title": 5}', JSON, 400),
        (b'{"title": null}', JSON, 400),
        (b'{"title": "x"', JSON, 400),
        (b'{"title":"\xff"}', JSON, 400),
        (b'["title"]', JSON, 400),
        (_body(title="t" * 201), JSON, 422),
        (_body(title="ok"), {"Content-Type": "text/plain"}, 415),
        (b'{"title":"x","n":1e-2147483649}', JSON, 400),
    ]
    for body, headers, status in bad:
        _check_rejected(stack, fake_upstream, "PATCH", path, body, headers, status, None)
        assert stack.conversation(conv_id)["title"] == original

    title = "כותרת חדשה — new title " + "t" * 150
    r = stack.request("PATCH", path, body=_body(title=title), headers=JSON)
    assert r.status == 200, r
    assert r.json["id"] == conv_id and r.json["title"] == title
    assert stack.conversation(conv_id)["title"] == title
    r = stack.request("PATCH", path, body=_body(title="x" * 200), headers=JSON)
    assert r.status == 200, r


def test_delete_conversation(stack, fake_upstream):
    r = stack.post_json(PLAIN, {"message": f"A conversation to delete {uniq()}"})
    assert r.status == 200, r
    conv_id = r.json["conversation_id"]
    assert conv_id in stack.conversation_ids()
    r = stack.request("DELETE", f"/api/conversations/{conv_id}")
    assert r.status == 200, r
    assert r.json.get("id") == conv_id
    assert_json_error(stack.get(f"/api/conversations/{conv_id}"), 404)
    assert conv_id not in stack.conversation_ids()
    assert_json_error(stack.request("DELETE", f"/api/conversations/{conv_id}"), 404)
    # A message to a deleted conversation is a 404, and creates nothing.
    before = _conversation_count(stack)
    r = stack.post_json(STREAM, {"message": "hello?", "conversation_id": conv_id})
    assert_json_error(r, 404)
    assert _conversation_count(stack) == before
    stack.assert_alive()
