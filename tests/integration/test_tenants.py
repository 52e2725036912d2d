"""API keys and tenants through nginx and real workers: two tenants with canary documents
and conversations; every route tried with the other tenant's ids answers exactly like an
unknown id, no canary text crosses over, limits are per tenant, and no key is logged."""
import json
import os
import sys
import subprocess
import threading

import pytest

import harness
from harness import assert_json_error, uniq

FAKE_CONV = "conv_" + "0" * 24
FAKE_MSG = "msg_" + "0" * 24
FAKE_DOC = "doc_" + "0" * 24


class Client:
    """Requests to one stack with one tenant's key."""

    def __init__(self, stack, key):
        self.stack, self.key = stack, key
        self.bodies = []  # every response body, for the canary check

    def headers(self, extra=None):
        h = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, headers=None):
        r = self.stack.request(method, path, body=body, headers=self.headers(headers))
        self.bodies.append(r.body)
        return r

    def stream(self, body, path="/api/chat/message/stream", method="POST", headers=None, **kw):
        r = self.stack.stream(body, path=path, method=method, headers=self.headers(headers), **kw)
        self.bodies.append(r.raw)
        return r


@pytest.fixture(scope="module")
def tenants(session_dir, _fake_process):
    keyfile = session_dir / "tenants-api-keys"
    keys = harness.make_api_keys(keyfile, "alpha", "bravo")
    s = harness.Stack(session_dir / "stack-tenants", _fake_process.base_url, workers=2,
                      env={"RAGSTREAM_API_KEYS_FILE": str(keyfile)})
    alpha, bravo = Client(s, keys["alpha"]), Client(s, keys["bravo"])
    data = {}
    for name, c in (("alpha", alpha), ("bravo", bravo)):
        # The canary is only in the tenant's own document: never in a question or a probe,
        # so finding it in the other tenant's responses can only mean a leak.
        canary = f"{name}-canary-{uniq()}"
        r = c.request("POST", "/api/documents",
                      {"title": f"{name} notes", "text": f"The secret word is {canary}.\n\n"
                       f"Only {name} may read about the secret word {canary}."})
        assert r.status == 201, r
        st = c.stream({"message": "What is the secret word?",
                       "client_message_id": f"send-{name}"})
        assert st.done and st.done["status"] == "complete", st
        conv = st.done["conversation_id"]
        msgs = c.request("GET", f"/api/conversations/{conv}").json["messages"]
        data[name] = {"canary": canary, "doc": r.json["id"], "conv": conv,
                      "answer": st.done["message_id"], "question": msgs[0]["id"], "client": c}
    yield {"stack": s, "keys": keys, "keyfile": keyfile, **data}
    s.stop()


def _same_as_unknown(real, unknown):
    """Another tenant's id must answer exactly like an id that does not exist."""
    assert real.status == unknown.status, (real, unknown)
    if unknown.status >= 400:
        assert real.json["error"]["code"] == unknown.json["error"]["code"], (real, unknown)


def test_every_route_needs_a_valid_key(tenants):
    s = tenants["stack"]
    a = tenants["alpha"]
    routes = [("GET", "/api/conversations"), ("GET", f"/api/conversations/{a['conv']}"),
              ("PATCH", f"/api/conversations/{a['conv']}"),
              ("DELETE", f"/api/conversations/{a['conv']}"),
              ("POST", "/api/chat/message"), ("POST", "/api/chat/message/stream"),
              ("GET", f"/api/chat/messages/{a['answer']}/stream"),
              ("POST", f"/api/chat/messages/{a['answer']}/cancel"),
              ("GET", "/api/documents"), ("POST", "/api/documents"),
              ("GET", f"/api/documents/{a['doc']}"), ("DELETE", f"/api/documents/{a['doc']}"),
              ("POST", "/api/search"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models")]
    for auth in (None, "Bearer rsk_not_a_key", "Basic YWxwaGE6YWxwaGE=", "Bearer "):
        for method, path in routes:
            body = {"message": "hi", "query": "hi", "text": "x", "title": "t",
                    "messages": [{"role": "user", "content": "hi"}]} \
                if method in ("POST", "PATCH") else None
            r = s.request(method, path, body=body,
                          headers={"Authorization": auth} if auth else {})
            assert r.status == 401, (auth, method, path, r)
            assert (r.header("WWW-Authenticate") or "").startswith("Bearer"), r
            err = r.json["error"]
            assert err["code"] == "unauthorized" and err["message"], r
            assert "rsk_not_a_key" not in r.body.decode()
    # Nothing was changed by any of that.
    c = a["client"]
    assert c.request("GET", f"/api/conversations/{a['conv']}").status == 200
    assert c.request("GET", f"/api/documents/{a['doc']}").status == 200
    # Health stays open (load balancers probe it) but says only that the worker lives: not
    # the map's use, which would let anyone watch the other tenants' activity (before:
    # map_used_bytes), nor counts or the model.
    h = s.get("/api/health")
    assert h.status == 200 and h.json["status"] == "ok", h
    assert set(h.json) == {"status", "version", "uptime_s", "store"}, h.json
    assert h.json["store"] == {"readable": True}, h.json


def test_other_tenants_ids_answer_like_unknown_ones(tenants):
    a, b = tenants["alpha"], tenants["bravo"]["client"]
    pairs = [
        ("GET", "/api/conversations/{conv}", None),
        ("PATCH", "/api/conversations/{conv}", {"title": "taken"}),
        ("DELETE", "/api/conversations/{conv}", None),
        ("GET", "/api/documents/{doc}", None),
        ("DELETE", "/api/documents/{doc}", None),
        ("POST", "/api/chat/messages/{answer}/cancel", {}),
        ("GET", "/api/chat/messages/{answer}/stream", None),
        ("GET", "/api/chat/messages/{question}/stream", None),
        ("POST", "/api/chat/message", {"message": "append to it", "conversation_id": "{conv}"}),
        ("POST", "/api/chat/message/stream",
         {"message": "append to it", "conversation_id": "{conv}"}),
        ("POST", "/api/chat/message", {"message": "use it", "document_ids": ["{doc}"]}),
        ("POST", "/api/search", {"query": "secret word", "document_ids": ["{doc}"]}),
        ("POST", "/v1/chat/completions",
         {"model": "ragstream", "conversation_id": "{conv}",
          "messages": [{"role": "user", "content": "append"}]}),
    ]
    real_ids = {"conv": a["conv"], "doc": a["doc"], "answer": a["answer"],
                "question": a["question"]}
    fake_ids = {"conv": FAKE_CONV, "doc": FAKE_DOC, "answer": FAKE_MSG, "question": FAKE_MSG}
    for method, path, body in pairs:
        def fill(ids):
            text = json.dumps(body) if body is not None else None
            for k, v in ids.items():
                text = text.replace("{" + k + "}", v) if text else text
            return path.format(**ids), (json.loads(text) if text else None)
        rp, rb = fill(real_ids)
        fp, fb = fill(fake_ids)
        real = b.request(method, rp, rb)
        unknown = b.request(method, fp, fb)
        assert real.status in (404, 422), (method, rp, real)
        _same_as_unknown(real, unknown)
    # The OpenAI route also takes the conversation from a header.
    r = b.request("POST", "/v1/chat/completions",
                  {"model": "ragstream", "messages": [{"role": "user", "content": "x"}]},
                  headers={"X-Conversation-Id": a["conv"]})
    assert r.status == 404, r
    # Alpha's data survived bravo's attempts: rename, delete and cancel did nothing.
    c = a["client"]
    conv = c.request("GET", f"/api/conversations/{a['conv']}")
    assert conv.status == 200 and conv.json["title"] != "taken"
    assert len(conv.json["messages"]) == 2
    assert c.request("GET", f"/api/documents/{a['doc']}").status == 200
    replay = c.stream(b"", path=f"/api/chat/messages/{a['answer']}/stream", method="GET")
    assert replay.done and replay.done["status"] == "complete", replay


def test_lists_searches_and_answers_hold_only_the_callers_data(tenants):
    a, bd = tenants["alpha"], tenants["bravo"]
    b = bd["client"]
    convs = b.request("GET", "/api/conversations?limit=100").json["conversations"]
    assert a["conv"] not in [c["id"] for c in convs] and bd["conv"] in [c["id"] for c in convs]
    docs = b.request("GET", "/api/documents").json["documents"]
    assert [d["id"] for d in docs] == [bd["doc"]]
    for mode in ("hybrid", "vector", "lexical"):
        r = b.request("POST", "/api/search", {"query": "what is the secret word",
                                              "mode": mode, "top_k": 20})
        assert r.status == 200, r
        assert all(h["document_id"] != a["doc"] for h in r.json["results"]), r
    # Asking what alpha's document answers: sources are bravo's only.
    st = b.stream({"message": "Who may read about the secret word?"})
    assert st.done and st.done["status"] == "complete", st
    assert all(src["document_id"] != a["doc"] for src in st.done["sources"])
    oc = b.request("POST", "/v1/chat/completions",
                   {"model": "ragstream",
                    "messages": [{"role": "user", "content": "tell me the secret word"}]})
    assert oc.status == 200, oc
    # A header or body field naming the other tenant changes nothing: only the key counts.
    spoof = b.request("GET", "/api/documents", headers={"X-Tenant": "alpha",
                                                        "X-Ragstream-Tenant": "alpha"})
    assert [d["id"] for d in spoof.json["documents"]] == [bd["doc"]]
    # The same client_message_id in another tenant is another send.
    again = b.stream({"message": "What is the secret word?", "client_message_id": "send-alpha"})
    assert again.done and again.done["message_id"] != a["answer"], again


def test_no_canary_crossed_and_no_key_was_logged(tenants):
    """Runs after the probes above (pytest keeps file order): nothing bravo received holds
    alpha's canary, and the logs hold neither key."""
    a, b = tenants["alpha"], tenants["bravo"]
    for body in b["client"].bodies:
        assert a["canary"].encode() not in body
    for body in a["client"].bodies:
        assert b["canary"].encode() not in body
    s = tenants["stack"]
    s_logs = s.logs_text()
    nginx_logs = "".join(p.read_text(errors="replace")
                         for p in (s.prefix / "logs").glob("*.log"))
    for key in tenants["keys"].values():
        assert key not in s_logs and key not in nginx_logs
        assert key[4:20] not in s_logs
    records = [r for r in s.log_records() if r.get("msg") == "request"]
    assert {"alpha", "bravo"} <= {r.get("tenant") for r in records}, records[-3:]
    assert any(r.get("msg") == "API keys required" and r.get("tenants") == 2
               for r in s.log_records())


def test_concurrent_streams_are_limited_per_tenant_across_workers(stack_factory, tmp_path):
    keys = harness.make_api_keys(tmp_path / "keys", "alpha", "bravo")
    s = stack_factory(workers=2, env={"RAGSTREAM_API_KEYS_FILE": str(tmp_path / "keys"),
                                      "RAGSTREAM_MAX_STREAMS_PER_TENANT": "2"})
    alpha, bravo = Client(s, keys["alpha"]), Client(s, keys["bravo"])
    started = threading.Barrier(3)
    results = []

    def slow():
        def first(res, item):
            if item.kind == "event" and item.json and item.json.get("token"):
                try:
                    started.wait(10)
                except threading.BrokenBarrierError:
                    pass
            return False
        results.append(alpha.stream({"message": f"slow {uniq()} [[fake: tokens=60, gap_ms=50]]"},
                                    stop=first, timeout=60))
    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    started.wait(15)  # both are streaming (nginx spreads them over the two workers)
    third = alpha.request("POST", "/api/chat/message/stream", {"message": "one more"})
    err = assert_json_error(third, 429, "too_many_streams")
    assert third.header("Retry-After") == "1"
    assert "RAGSTREAM_MAX_STREAMS_PER_TENANT" in err["message"]
    other = bravo.stream({"message": f"bravo is not limited {uniq()}"})
    assert other.done and other.done["status"] == "complete", other
    for t in threads:
        t.join(60)
    assert all(r.done and r.done["status"] == "complete" for r in results), results
    after = alpha.stream({"message": f"a slot is free again {uniq()}"})
    assert after.done and after.done["status"] == "complete", after
    # The refused send wrote nothing: alpha has the two slow ones and the last one.
    assert len(alpha.request("GET", "/api/conversations").json["conversations"]) == 3


def test_documents_are_limited_per_tenant(stack_factory, tmp_path):
    keys = harness.make_api_keys(tmp_path / "keys", "alpha")
    s = stack_factory(workers=1, env={"RAGSTREAM_API_KEYS_FILE": str(tmp_path / "keys"),
                                      "RAGSTREAM_MAX_DOCUMENTS_PER_TENANT": "2"})
    c = Client(s, keys["alpha"])
    for i in range(2):
        assert c.request("POST", "/api/documents", {"text": f"document {i} {uniq()}"}).status \
            == 201
    r = c.request("POST", "/api/documents", {"text": f"one too many {uniq()}"})
    assert_json_error(r, 403, "document_limit")
    assert len(c.request("GET", "/api/documents").json["documents"]) == 2


def test_without_a_key_file_the_worker_says_it_serves_loopback_only(stack):
    records = stack.log_records()
    assert any("loopback" in r.get("msg", "") for r in records), records[:5]
    # Loopback clients (nginx passes the client's address) are served as the default tenant.
    assert stack.get("/api/conversations").status == 200
    assert any(r.get("tenant") == "default" for r in stack.log_records()
               if r.get("msg") == "request")


def test_a_bad_key_file_stops_the_worker_with_a_clear_error(tmp_path):
    bad = tmp_path / "keys"
    bad.write_text("alpha:rsk_this_is_a_key_not_a_hash\n")
    env = {"RAGSTREAM_API_KEYS_FILE": str(bad), "RAGSTREAM_DATA_DIR": str(tmp_path / "d"),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(harness.WORKER_BIN), "--check-config"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out
    assert "line 1" in out.stderr and "SHA-256" in out.stderr, out.stderr
    assert "rsk_this_is_a_key" not in out.stderr + out.stdout


_FCGI_CLIENT = r'''
import os, socket, struct, sys
def record(kind, body):
    return struct.pack(">BBHHBB", 1, kind, 1, len(body), 0, 0) + body
def pairs(d):
    out = b""
    for k, v in d.items():
        k, v = k.encode(), v.encode()
        out += bytes([len(k), len(v)]) + k + v
    return out
if len(sys.argv) > 2:
    os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[2]))
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
params = {"REQUEST_METHOD": "GET", "DOCUMENT_URI": "/api/conversations", "REQUEST_URI": "/api/conversations",
          "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1"}
s.sendall(record(1, struct.pack(">HB5x", 1, 0)) + record(4, pairs(params)) + record(4, b"")
          + record(5, b""))
out = b""
while True:
    h = s.recv(8, socket.MSG_WAITALL)
    if len(h) < 8:
        break
    _, kind, _, n, pad, _ = struct.unpack(">BBHHBB", h)
    body = s.recv(n + pad, socket.MSG_WAITALL)[:n] if n + pad else b""
    if kind == 6:
        out += body
    if kind == 3:
        break
print(out.decode(errors="replace").split("\r\n")[0])
'''


def test_a_forged_remote_addr_is_not_loopback_trust(stack, tmp_path):
    """With RAGSTREAM_TRUST_LOOPBACK=1 and no key file, a client is served only if the FastCGI
    peer itself is local (SO_PEERCRED: this user or root): a process of another user that
    connects to the worker's socket and claims REMOTE_ADDR 127.0.0.1 gets 403 (before: served
    as the default tenant)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the forging client as another user")
    client = tmp_path / "fcgi_client.py"
    client.write_text(_FCGI_CLIENT)
    client.chmod(0o755)
    tmp_path.chmod(0o755)
    sock = str(stack.worker_socket(0))
    os.chmod(sock, 0o777)  # let another user reach it, as a group member of www-data could
    for d in stack.worker_socket(0).parents:  # the test's own temp dirs: let it through
        if str(d) in ("/", "/tmp") or not str(d).startswith("/tmp/"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o011)
    own = subprocess.run([sys.executable, str(client), sock], capture_output=True, text=True,
                         timeout=30)
    assert "Status: 200" in own.stdout or own.stdout.startswith("Content-Type"), own
    forged = subprocess.run([sys.executable, str(client), sock, "65534"], capture_output=True,
                            text=True, timeout=30)
    assert "Status: 403" in forged.stdout, (forged.stdout, forged.stderr)
