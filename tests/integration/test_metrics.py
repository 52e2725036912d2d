"""GET /metrics: Prometheus text with the totals of every worker process of the host,
whichever worker answers, validated with promtool (Debian's prometheus package)."""
import json
import re
import shutil
import signal
import subprocess
import time

import pytest

import harness


def parse(text: str) -> dict[str, float]:
    """{"name{labels}": value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def metrics(stack) -> tuple[str, dict[str, float]]:
    r = stack.get("/metrics")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain"), r.header("Content-Type")
    text = r.body.decode()
    return text, parse(text)


HEALTH = 'ragstream_requests_total{route="/api/health",status="200"}'


def pids_serving_health(stack) -> set[int]:
    pids = set()
    for log in stack.worker_logs:
        for line in log.read_text(errors="replace").splitlines():
            if '"route":"/api/health"' in line:
                pids.add(json.loads(line)["pid"])
    return pids


def test_metrics_sum_every_worker_and_pass_promtool(stack_factory, tmp_path):
    stack = stack_factory(workers=2, offline=True)
    stack.post_json("/api/documents", {"title": "Metrics note",
                                       "text": "The lighthouse keeper counts ships at dawn."})
    _, before = metrics(stack)
    n = 40
    for _ in range(n):
        assert stack.get("/api/health").status == 200
    res = stack.stream({"message": "What does the lighthouse keeper count?"})
    assert res.done and res.done["status"] == "complete", res
    # Both workers served health checks, yet every answer of /metrics has the host total.
    assert len(pids_serving_health(stack)) == 2
    seen = []
    for _ in range(4):
        text, m = metrics(stack)
        seen.append(m)
        assert m[HEALTH] - before.get(HEALTH, 0) >= n, (m[HEALTH], before.get(HEALTH))
        assert m["ragstream_workers"] == 2
        assert m['ragstream_requests_total{route="/api/chat/message/stream",status="200"}'] >= 1
        assert m["ragstream_tokens_relayed_total"] >= 1
        assert m["ragstream_ttft_seconds_count"] >= 1
        assert m["ragstream_retrieval_seconds_count"] >= 1
        assert m['ragstream_stream_duration_seconds_bucket{le="+Inf"}'] == \
            m["ragstream_stream_duration_seconds_count"]
        assert m["ragstream_lmdb_map_size_bytes"] > m["ragstream_lmdb_map_used_bytes"] > 0
        assert m["ragstream_active_streams"] == 0
    # The health total is the same whichever worker answered (only /metrics calls differ).
    assert len({s[HEALTH] for s in seen}) == 1, [s[HEALTH] for s in seen]

    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian package prometheus)")
    good = tmp_path / "metrics.txt"
    good.write_text(text)
    r = subprocess.run([promtool, "check", "metrics"], stdin=good.open(), capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # The check can fail: a histogram with a broken bucket order does.
    bad = re.sub(r'ragstream_ttft_seconds_bucket\{le="0.05"\} \d+',
                 'ragstream_ttft_seconds_bucket{le="0.05"} 99999', text)
    bad = bad.replace("# TYPE ragstream_workers gauge\n", "# TYPE ragstream_workers gauge\n"
                      "# TYPE ragstream_workers counter\n")
    r = subprocess.run([promtool, "check", "metrics"], input=bad, capture_output=True, text=True)
    assert r.returncode != 0, "promtool accepted a corrupted exposition"


def test_totals_survive_a_worker_restart(stack_factory):
    stack = stack_factory(workers=2, offline=True)
    for _ in range(20):
        assert stack.get("/api/health").status == 200
    _, before = metrics(stack)
    # SIGKILL one worker, then start a replacement on the same socket.
    victim = stack.workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    sock = stack.sock_dir / "worker-1.sock"
    log = open(stack.log_dir / "worker-1b.log", "ab")
    stack._files.append(log)
    replacement = harness.start_process([str(harness.WORKER_BIN), "--listen", f"unix:{sock}"],
                                        env=stack.env, stdout=log, stderr=log)
    stack.workers[0] = replacement
    stack.worker_logs.append(stack.log_dir / "worker-1b.log")
    harness.wait_until(lambda: stack.get("/metrics").status == 200, 10, what="metrics")
    harness.wait_until(lambda: metrics(stack)[1]["ragstream_workers"] == 2, 10,
                       what="two live workers")
    _, after = metrics(stack)
    # The replacement took the dead worker's slot and kept its counts: no total went back.
    for name, value in before.items():
        if name.endswith("_total") or "_total{" in name or name.endswith("_count"):
            assert after.get(name, 0) >= value, (name, value, after.get(name))


def test_dropped_early_model_calls_are_counted(stack_factory, fake_upstream):
    """Two questions into one conversation while this test holds LMDB's write lock (as an
    ingest's commit would): both are asked of the model before their writes (the early model
    call) with the history a read gave them; the write that comes second sees the other
    question, so its call is dropped and made again, and /metrics counts the dropped one."""
    import threading

    import lmdb

    stack = stack_factory(workers=2)
    first = stack.stream({"message": "What was said before the two questions?"})
    assert first.done and first.done["status"] == "complete", first
    conv = first.first["conversation_id"]
    _, before = metrics(stack)
    assert before["ragstream_model_calls_dropped_total"] == 0
    asked_before = len(fake_upstream.chat_requests())
    env = lmdb.open(str(stack.data_dir), max_dbs=256, subdir=True, lock=True)
    txn = env.begin(write=True)  # LMDB's one write lock, held
    results = {}
    try:
        def ask(name):
            results[name] = stack.stream({"message": f"Question {name}?", "conversation_id": conv})

        threads = [threading.Thread(target=ask, args=(n,)) for n in ("A", "B")]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(fake_upstream.chat_requests()) < asked_before + 2:
            assert time.monotonic() < deadline, "the model was not asked while the write waited"
            time.sleep(0.02)
        assert not results, "an answer finished while its question could not be saved"
    finally:
        txn.abort()
        env.close()
    for t in threads:
        t.join(30)
    for name in ("A", "B"):
        assert results[name].done and results[name].done["status"] == "complete", results[name]
    asked = fake_upstream.chat_requests()[asked_before:]
    assert len(asked) == 3, [harness.last_user_text(r) for r in asked]
    # The call made again carries both questions: the other one in its history.
    again = [r for r in asked if all(f"Question {n}?" in json.dumps(r["body"]) for n in "AB")]
    assert len(again) == 1, [json.dumps(r["body"])[:300] for r in asked]
    _, after = metrics(stack)
    assert after["ragstream_model_calls_dropped_total"] == 1
