"""The upstream API key is never logged or echoed. Named test_zz_* so that it runs after the
other files and also checks every log file and response body they produced."""

import subprocess

import harness
from harness import API_KEY, uniq

CANARY = API_KEY.encode()


def _exercise(s, fake):
    """Requests that take every logging path: success, retries, upstream auth failure,
    quota, a cut, a client that leaves, rejected input."""
    s.stream({"message": f"hello {uniq()}"})
    s.post_json("/api/chat/message", {"message": f"plain {uniq()}"})
    s.stream({"message": f"retry me {uniq()} [[fake: status=500]]"})
    s.stream({"message": f"auth {uniq()} [[fake: status=401]]"})
    s.stream({"message": f"quota {uniq()} [[fake: status=429, error_code=insufficient_quota]]"})
    s.stream({"message": f"cut {uniq()} [[fake: tokens=5, cut_after=2]]"})
    s.stream({"message": f"leave {uniq()} [[fake: tokens=30, gap_ms=50]]"},
             stop=lambda res, item: len(res.token_events) >= 2)
    s.request("POST", "/api/chat/message/stream", body=b'{"message": 1e-2147483649}',
              headers={"Content-Type": "application/json"})
    s.get("/api/health")
    s.get("/api/nope")


def test_api_key_never_in_logs_or_responses(stack_factory, fake_upstream):
    # A debug-level stack, plus one whose upstream is unreachable (connect errors).
    s = stack_factory(workers=1, env={"RAGSTREAM_LOG_LEVEL": "debug"})
    _exercise(s, fake_upstream)
    dead = stack_factory(workers=1, upstream=f"http://127.0.0.1:{harness.free_port()}/v1",
                         env={"RAGSTREAM_LOG_LEVEL": "debug", "RAGSTREAM_CONNECT_TIMEOUT_MS": "500"})
    r = dead.stream({"message": f"nobody home {uniq()}"}, timeout=30)
    assert r.done and r.done["status"] == "error", r
    # The key was really configured and sent: the fake requires it (401 otherwise).
    ok = s.stream({"message": f"authorised {uniq()}"})
    assert ok.done and ok.done["status"] == "complete", ok

    # The worker's own configuration printout masks it.
    env = dict(s.env)
    out = subprocess.run([str(harness.WORKER_BIN), "--check-config"], env=env, capture_output=True,
                         timeout=30)
    assert out.returncode == 0, out
    assert b"OPENAI_API_KEY=(set)" in out.stdout
    assert CANARY not in out.stdout + out.stderr

    for stk in (s, dead):
        stk.stop()  # flush and close every log
    files = [p for p in harness.PRODUCT_LOG_FILES if p.exists()]
    assert any(p.name.startswith("worker-") for p in files)
    assert any(p.name == "access.log" for p in files)
    leaks = [str(p) for p in files if CANARY in p.read_bytes()]
    assert not leaks, f"the API key appears in {leaks}"
    with harness.SEEN_LOCK:
        bodies = list(harness.SEEN_BODIES)
    assert len(bodies) > 10
    leaked = [b[:300] for b in bodies if CANARY in b]
    assert not leaked, f"the API key appears in response bodies: {leaked}"
    print(f"checked {len(files)} log files and {len(bodies)} response bodies")


def test_upstream_error_echoing_the_key_is_not_relayed(stack, fake_upstream):
    """Some OpenAI-compatible servers and proxies quote the Authorization header they got
    in their error text. The worker relays upstream error messages to the client and
    stores them, so it must redact its own key from them."""
    fake_upstream.script([{"status": 401,
                           "error_message": f"Incorrect API key provided: {API_KEY}. "
                                            "You can find your API key at https://example.invalid."}])
    r = stack.stream({"message": f"who am I {uniq()}"})
    assert r.done and r.done["status"] == "error", r
    conv = stack.get(f"/api/conversations/{r.done['conversation_id']}")
    stack.stop()
    logs = b"".join(p.read_bytes() for p in stack.worker_logs)
    assert CANARY not in logs, "the key appears in the worker log"
    assert CANARY not in r.raw, f"the key was relayed to the client: {r.done}"
    assert CANARY not in conv.body, "the key was stored with the message"
