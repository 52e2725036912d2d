"""docs/openapi.yaml against the code.

* The set of (method, path) operations in the spec equals the route table, read two ways:
  from the source (`r.Add("GET", "/api/health", ...)` in handlers/routes.cc) and from a
  running stack (for every spec path, a method the spec does not list gets 405 with an
  `Allow` header naming exactly the spec's methods; a made-up path gets 404).
* A self-check: the comparison fails for a route set with one route missing or one added.
* Real responses (health, documents, search, chat, conversations, errors, both event
  streams, the /v1 API) have a status the spec lists for that operation, the media type it
  names, and a body that validates against its schema (a small JSON Schema subset below:
  $ref, type, required, properties, items, enum, const, allOf/anyOf/oneOf, bounds,
  pattern).

Parses the YAML with python3-yaml (Debian's; scripts/install_deps.sh --test installs it).
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from harness import ROOT, assert_json_error, uniq

SPEC_PATH = ROOT / "docs" / "openapi.yaml"
ROUTES_CC = ROOT / "handlers" / "routes.cc"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# A well-formed id for each `{id}` placeholder, by the path's prefix (the id need not exist:
# a method the path does not take is refused before the handler looks at the id).
SAMPLE_IDS = {"/api/conversations/": "conv_" + "0" * 24, "/api/documents/": "doc_" + "0" * 24,
              "/api/chat/messages/": "msg_" + "0" * 24}


# --------------------------------------------------------------------------- route sets


def load_spec() -> dict:
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def spec_routes(spec: dict) -> set[tuple[str, str]]:
    out = set()
    for path, item in spec["paths"].items():
        for key in item:
            if key in HTTP_METHODS:
                out.add((key.upper(), path))
    return out


ADD_RE = re.compile(r'\br\.Add\(\s*"([A-Z]+)"\s*,\s*"([^"]+)"')


def source_routes(text: str) -> set[tuple[str, str]]:
    """The (method, pattern) pairs registered in handlers/routes.cc."""
    return {(m, p) for m, p in ADD_RE.findall(text)}


def route_differences(spec_set: set, router_set: set) -> list[str]:
    """Human-readable differences; empty when the sets are equal."""
    problems = [f"route {m} {p} is in the router but not in docs/openapi.yaml"
                for m, p in sorted(router_set - spec_set)]
    problems += [f"docs/openapi.yaml names {m} {p}, which the router does not have"
                 for m, p in sorted(spec_set - router_set)]
    return problems


def methods_by_path(routes: set) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m, p in routes:
        out.setdefault(p, set()).add(m)
    return out


def concrete_path(pattern: str) -> str:
    for prefix, sample in SAMPLE_IDS.items():
        if pattern.startswith(prefix):
            return pattern.replace("{id}", sample)
    assert "{" not in pattern, f"no sample id for {pattern}: extend SAMPLE_IDS"
    return pattern


@pytest.fixture(scope="module")
def spec() -> dict:
    return load_spec()


def test_spec_basics(spec):
    assert spec["openapi"] == "3.1.0"
    assert {"url": "http://127.0.0.1:8080"}.items() <= spec["servers"][0].items()
    schemas = spec["components"]["schemas"]
    for name in ("Conversation", "Message", "Document", "Source", "Usage", "Error",
                 "StreamFirstEvent", "StreamTokenEvent", "StreamDoneEvent", "StreamErrorEvent",
                 "ChatCompletionChunk"):
        assert name in schemas, f"components.schemas.{name} is missing"
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    stream = spec["paths"]["/api/chat/message/stream"]["post"]["responses"]["200"]["content"]
    assert "text/event-stream" in stream
    # Every {placeholder} is declared as a path parameter.
    for path, item in spec["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for key, op in item.items():
            if key not in HTTP_METHODS:
                continue
            params = [resolve(spec, p) for p in item.get("parameters", []) + op.get("parameters", [])]
            declared = {p["name"] for p in params if p["in"] == "path"}
            assert declared == names, f"{key.upper()} {path}: path parameters {declared} != {names}"


def test_spec_routes_equal_source_routes(spec):
    router = source_routes(ROUTES_CC.read_text(encoding="utf-8"))
    assert len(router) >= 10, f"could not read the route table of {ROUTES_CC}: {router}"
    problems = route_differences(spec_routes(spec), router)
    assert not problems, "\n".join(problems)


def test_route_comparison_catches_drift(spec):
    """Self-check: the comparison above fails when a route is missing or made up."""
    text = ROUTES_CC.read_text(encoding="utf-8")
    router = source_routes(text)
    assert route_differences(spec_routes(spec), router) == []
    # A route added to the router but not to the spec.
    added = router | {("PUT", "/api/documents/{id}")}
    assert route_differences(spec_routes(spec), added) == [
        "route PUT /api/documents/{id} is in the router but not in docs/openapi.yaml"]
    # A route the spec names that the router lost.
    dropped = set(router)
    dropped.remove(("GET", "/api/health"))
    assert route_differences(spec_routes(spec), dropped) == [
        "docs/openapi.yaml names GET /api/health, which the router does not have"]
    # The same drift seen through the source parser: a modified copy of routes.cc.
    modified = text.replace('r.Add("GET", "/api/health"', 'r.Add("GET", "/api/healthz"', 1)
    assert modified != text
    diff = route_differences(spec_routes(spec), source_routes(modified))
    assert sorted(diff) == sorted([
        "route GET /api/healthz is in the router but not in docs/openapi.yaml",
        "docs/openapi.yaml names GET /api/health, which the router does not have"])
    # And through the spec: a copy with one operation removed.
    spec_copy = json.loads(json.dumps(spec))
    del spec_copy["paths"]["/api/conversations/{id}"]["patch"]
    assert route_differences(spec_routes(spec_copy), router) == [
        "route PATCH /api/conversations/{id} is in the router but not in docs/openapi.yaml"]


def test_running_router_matches_spec(spec, stack):
    """Every spec path exists with exactly the spec's methods (405 + Allow for another
    method), and paths the spec does not have are 404."""
    problems = []
    for path, methods in sorted(methods_by_path(spec_routes(spec)).items()):
        other = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in methods)
        url = concrete_path(path)
        r = stack.request(other, url, body=b"" if other in ("PUT", "PATCH", "POST") else None)
        if r.status != 405:
            problems.append(f"{other} {url}: expected 405, got {r.status} {r.body[:200]!r}")
            continue
        allow = {m.strip() for m in (r.header("Allow") or "").split(",") if m.strip()}
        if allow != methods:
            problems.append(f"{other} {url}: Allow {sorted(allow)} but the spec has {sorted(methods)}")
        assert_json_error(r, 405, "method_not_allowed")
        validate(spec, schema_ref("Error"), r.json, f"405 {url}")
    assert not problems, "\n".join(problems)
    for made_up in ("/api/no-such-route", "/api/documents/doc_x/chunks", "/api/health/",
                    "/v1/no-such-route", "/api/conversation"):
        r = stack.request("GET", made_up)
        assert_json_error(r, 404, "not_found")
        validate(spec, schema_ref("Error"), r.json, f"404 {made_up}")


# --------------------------------------------------------------------------- schemas


def schema_ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def resolve(spec: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _type_ok(value, t: str) -> bool:
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    raise AssertionError(f"unknown type {t}")


def errors(spec: dict, schema, value, where: str = "$") -> list[str]:
    """JSON Schema (the subset the spec uses) errors of `value`; empty when valid."""
    schema = resolve(spec, schema)
    out: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, t) for t in types):
            return [f"{where}: {value!r:.80} is not of type {types}"]
    if "const" in schema and value != schema["const"]:
        out.append(f"{where}: {value!r:.80} != const {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r:.80} not in {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            out.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{where}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{where}: {value!r:.80} does not match {schema['pattern']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{where}: required field {name!r} is missing")
        props = schema.get("properties", {})
        for name, sub in props.items():
            if name in value:
                out += errors(spec, sub, value[name], f"{where}.{name}")
        extra = schema.get("additionalProperties", True)
        for name in value:
            if name in props:
                continue
            if extra is False:
                out.append(f"{where}: unexpected field {name!r}")
            elif isinstance(extra, dict):
                out += errors(spec, extra, value[name], f"{where}.{name}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                out += errors(spec, schema["items"], item, f"{where}[{i}]")
    for sub in schema.get("allOf", []):
        out += errors(spec, sub, value, where)
    if "anyOf" in schema:
        results = [errors(spec, sub, value, where) for sub in schema["anyOf"]]
        if all(results):
            out.append(f"{where}: matches none of anyOf: {results}")
    if "oneOf" in schema:
        results = [errors(spec, sub, value, where) for sub in schema["oneOf"]]
        matched = sum(1 for r in results if not r)
        if matched != 1:
            out.append(f"{where}: matches {matched} of oneOf (want 1): {results}")
    return out


def validate(spec: dict, schema, value, what: str) -> None:
    problems = errors(spec, schema, value)
    assert not problems, f"{what}: " + "; ".join(problems) + f"\nvalue: {json.dumps(value)[:1500]}"


def test_validator_self_check(spec):
    """The validator rejects what it should (else the checks below would prove nothing)."""
    source = {"document_id": "doc_" + "a" * 24, "title": "t", "chunk_id": "doc_x:0",
              "score": 0.5, "text": "x", "start_char": 0, "end_char": 1}
    assert errors(spec, schema_ref("Source"), source) == []
    assert errors(spec, schema_ref("Source"), {**source, "score": "high"})
    assert errors(spec, schema_ref("Source"), {k: v for k, v in source.items() if k != "text"})
    assert errors(spec, schema_ref("Source"), {**source, "document_id": "doc_1"})
    assert errors(spec, schema_ref("Usage"), {"prompt_tokens": True, "completion_tokens": 1,
                                              "total_tokens": 1})
    first = {"token": "", "done": False, "conversation_id": "conv_" + "a" * 24,
             "message_id": "msg_" + "b" * 24}
    assert errors(spec, schema_ref("StreamEvent"), first) == []
    assert errors(spec, schema_ref("StreamEvent"), {"token": "", "done": False})
    assert errors(spec, schema_ref("StreamEvent"), {"token": None, "done": True})


def operation_response(spec: dict, method: str, path: str, status: int, media: str) -> dict:
    """The schema the spec gives for this answer; fails if the status or media type is not
    documented for the operation."""
    op = spec["paths"][path][method.lower()]
    responses = op["responses"]
    assert str(status) in responses, \
        f"{method} {path} answered {status}, which the spec does not list ({sorted(responses)})"
    response = resolve(spec, responses[str(status)])
    content = response.get("content", {})
    assert media in content, f"{method} {path} {status}: media type {media} not in {list(content)}"
    return content[media]["schema"]


def check(spec: dict, r, method: str, path: str, media: str = "application/json"):
    """Validates a plain (non-streaming) response against the spec; returns its JSON."""
    ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
    assert ctype == media, f"{method} {path}: Content-Type {ctype!r}, want {media}: {r!r}"
    schema = operation_response(spec, method, path, r.status, media)
    if media != "application/json":
        validate(spec, schema, r.body.decode("utf-8"), f"{method} {path} {r.status}")
        return r.body
    body = r.json
    validate(spec, schema, body, f"{method} {path} {r.status}")
    return body


# --------------------------------------------------------------------------- real responses


def test_health_matches_spec(spec, stack):
    health = check(spec, stack.get("/api/health"), "GET", "/api/health")
    assert health["status"] == "ok"


def test_metrics_match_spec(spec, stack):
    r = stack.get("/metrics")
    assert r.status == 200, r
    body = check(spec, r, "GET", "/metrics", media="text/plain")
    assert b"ragstream_lmdb_map_size_bytes" in body


def test_documents_and_search_match_spec(spec, stack):
    marker = uniq("zebrafinch")
    text = (f"# Refund policy {marker}\n\nYou can return any item within 30 days of delivery. "
            f"The {marker} clause covers sale items too.\n")
    r = stack.post_json("/api/documents", {"title": f"Refunds {marker}", "text": text})
    assert r.status == 201, r
    created = check(spec, r, "POST", "/api/documents")
    assert created["duplicate"] is False
    doc_id = created["id"]

    again = stack.post_json("/api/documents", {"text": text})
    assert again.status == 200, again
    assert check(spec, again, "POST", "/api/documents")["duplicate"] is True

    raw = stack.request("POST", f"/api/documents?title=Plain%20{marker}",
                        body=f"A plain text note about {marker} shipping.",
                        headers={"Content-Type": "text/markdown"})
    assert raw.status == 201, raw
    check(spec, raw, "POST", "/api/documents")

    listing = check(spec, stack.get("/api/documents"), "GET", "/api/documents")
    assert doc_id in {d["id"] for d in listing["documents"]}
    one = check(spec, stack.get(f"/api/documents/{doc_id}"), "GET", "/api/documents/{id}")
    assert one["text"] == text

    for mode in ("hybrid", "vector", "lexical"):
        found = stack.post_json("/api/search", {"query": f"{marker} refund", "top_k": 3,
                                                "mode": mode, "document_ids": [doc_id]})
        result = check(spec, found, "POST", "/api/search")
        assert result["mode"] == mode and result["results"], found

    # Errors of these operations, in the documented shape and status.
    check(spec, stack.request("POST", "/api/documents", body=b"x",
                              headers={"Content-Type": "image/png"}), "POST", "/api/documents")
    check(spec, stack.post_json("/api/documents", {"text": "   "}), "POST", "/api/documents")
    check(spec, stack.post_json("/api/search", {"query": "x", "top_k": 99}), "POST", "/api/search")
    check(spec, stack.post_json("/api/search", {"query": "x", "document_ids": ["doc_" + "0" * 24]}),
          "POST", "/api/search")
    check(spec, stack.post_json("/api/search", {"top_k": 2}), "POST", "/api/search")
    check(spec, stack.request("POST", "/api/search", body=b"{}",
                              headers={"Content-Type": "text/plain"}), "POST", "/api/search")
    check(spec, stack.get("/api/documents/doc_" + "0" * 24), "GET", "/api/documents/{id}")

    gone = check(spec, stack.request("DELETE", f"/api/documents/{doc_id}"),
                 "DELETE", "/api/documents/{id}")
    assert gone == {"id": doc_id, "deleted": True}
    check(spec, stack.request("DELETE", f"/api/documents/{doc_id}"), "DELETE", "/api/documents/{id}")


def test_chat_and_conversations_match_spec(spec, stack, fake_upstream):
    question = f"What is the refund window {uniq()}?"
    r = stack.post_json("/api/chat/message", {"message": question, "top_k": 2})
    assert r.status == 200, r
    answer = check(spec, r, "POST", "/api/chat/message")
    conv_id = answer["conversation_id"]

    listing = check(spec, stack.get("/api/conversations?limit=5"), "GET", "/api/conversations")
    assert conv_id in {c["id"] for c in listing["conversations"]}
    check(spec, stack.get("/api/conversations?limit=0"), "GET", "/api/conversations")
    check(spec, stack.get("/api/conversations?cursor=nonsense"), "GET", "/api/conversations")

    conv = check(spec, stack.get(f"/api/conversations/{conv_id}"), "GET", "/api/conversations/{id}")
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]

    renamed = check(spec, stack.request("PATCH", f"/api/conversations/{conv_id}",
                                        body={"title": "Refunds"}),
                    "PATCH", "/api/conversations/{id}")
    assert renamed["title"] == "Refunds"
    check(spec, stack.request("PATCH", f"/api/conversations/{conv_id}", body={"title": ""}),
          "PATCH", "/api/conversations/{id}")
    check(spec, stack.request("PATCH", f"/api/conversations/{conv_id}", body={"title": "x" * 201}),
          "PATCH", "/api/conversations/{id}")

    # Chat errors.
    for body in ({"message": ""}, {"message": 5}, {"nothing": True}):
        check(spec, stack.post_json("/api/chat/message", body), "POST", "/api/chat/message")
    check(spec, stack.post_json("/api/chat/message", {"message": "hi", "mode": "psychic"}),
          "POST", "/api/chat/message")
    check(spec, stack.post_json("/api/chat/message", {"message": "hi",
                                                      "conversation_id": "conv_" + "0" * 24}),
          "POST", "/api/chat/message")
    check(spec, stack.post_json("/api/chat/message", {"message": "x" * 1001}),
          "POST", "/api/chat/message")  # RAGSTREAM_MAX_MESSAGE_CHARS is 1000 in the tests
    check(spec, stack.request("POST", "/api/chat/message", body=b'{"message":"hi"}',
                              headers={"Content-Type": "text/plain"}), "POST", "/api/chat/message")

    # An upstream failure after the exchange was saved: 502 with the answer object.
    failed = stack.post_json("/api/chat/message",
                             {"message": f"please fail {uniq()} [[fake: status=500]]"})
    assert failed.status == 502, failed
    body = check(spec, failed, "POST", "/api/chat/message")
    assert body["status"] == "error"

    deleted = check(spec, stack.request("DELETE", f"/api/conversations/{conv_id}"),
                    "DELETE", "/api/conversations/{id}")
    assert deleted == {"id": conv_id, "deleted": True}
    check(spec, stack.get(f"/api/conversations/{conv_id}"), "GET", "/api/conversations/{id}")
    check(spec, stack.request("DELETE", f"/api/conversations/{conv_id}"),
          "DELETE", "/api/conversations/{id}")


def stream_schemas(spec: dict, path: str) -> dict:
    return operation_response(spec, "POST", path, 200, "text/event-stream")


def test_event_stream_matches_spec(spec, stack, fake_upstream):
    s = stack.stream({"message": f"Tell me about refunds {uniq()}"})
    assert s.status == 200, s
    assert (s.header("Content-Type") or "").startswith("text/event-stream")
    event_schema = stream_schemas(spec, "/api/chat/message/stream")
    events = s.events
    assert len(events) >= 3, s
    for e in events:
        validate(spec, event_schema, e.json, f"event {e.id}")
    validate(spec, schema_ref("StreamFirstEvent"), events[0].json, "first event")
    for e in events[1:-1]:
        validate(spec, schema_ref("StreamTokenEvent"), e.json, f"token event {e.id}")
    validate(spec, schema_ref("StreamDoneEvent"), events[-1].json, "last event")

    # A failure mid-stream: the last event is a StreamErrorEvent.
    bad = stack.stream({"message": f"fail midway {uniq()} [[fake: tokens=6, cut_after=2]]"})
    assert bad.status == 200, bad
    for e in bad.events:
        validate(spec, event_schema, e.json, f"event {e.id}")
    validate(spec, schema_ref("StreamErrorEvent"), bad.events[-1].json, "error event")

    # Errors before the stream starts are plain JSON with a documented status.
    pre = stack.stream({"message": "hi", "top_k": 0})
    assert pre.status == 422, pre
    validate(spec, operation_response(spec, "POST", "/api/chat/message/stream", 422,
                                      "application/json"), pre.json_body(), "422 stream")


# --------------------------------------------------------------------------- /v1


def test_openai_api_matches_spec(spec, stack, fake_upstream):
    models = check(spec, stack.get("/v1/models"), "GET", "/v1/models")
    assert models["data"], models

    path = "/v1/chat/completions"
    req = {"model": "ragstream", "messages": [{"role": "user", "content": f"Refunds? {uniq()}"}]}
    done = check(spec, stack.post_json(path, req), "POST", path)
    assert done["choices"][0]["message"]["content"], done

    s = stack.stream({**req, "stream": True, "stream_options": {"include_usage": True}}, path=path)
    assert s.status == 200, s
    schema = stream_schemas(spec, path)
    assert s.events and s.events[-1].text == "[DONE]", s
    for e in s.events:
        validate(spec, schema, e.json if e.text != "[DONE]" else e.text, f"chunk {e.text[:80]}")
    chunks = [e.json for e in s.events[:-1]]
    for c in chunks:
        validate(spec, schema_ref("ChatCompletionChunk"), c, "chunk")
    assert chunks[-1]["choices"] == [] and "usage" in chunks[-1], chunks[-1]
    assert chunks[-2]["choices"][0]["finish_reason"] and "x_ragstream" in chunks[-2], chunks[-2]

    # OpenAI-shaped errors with documented statuses.
    for body in ({"messages": []}, {"messages": [{"role": "assistant", "content": "hi"}]},
                 {"messages": [{"role": "user", "content": "hi"}], "top_k": 0},
                 {"messages": [{"role": "user", "content": "hi"}],
                  "conversation_id": "conv_" + "0" * 24}):
        r = stack.post_json(path, body)
        assert r.status in (400, 404, 422), r
        check(spec, r, "POST", path)
    r = stack.request("POST", path, body=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status == 415, r
    check(spec, r, "POST", path)
