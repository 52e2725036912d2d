"""Several worker processes behind one nginx, sharing one LMDB environment."""

import collections
import concurrent.futures
import signal
import threading
import time

import harness
from harness import fake_tokens_answer, uniq

STREAMS = 50
TOKENS = 10


def test_concurrent_streams_across_four_workers(stack_factory, fake_upstream):
    s = stack_factory(workers=4)
    questions = [f"Concurrent question {i} {uniq()} [[fake: tokens={TOKENS}, gap_ms=20]]"
                 for i in range(STREAMS)]

    def one(q):
        return s.stream({"message": q}, timeout=90)

    with concurrent.futures.ThreadPoolExecutor(max_workers=STREAMS) as pool:
        results = list(pool.map(one, questions))

    conv_ids = []
    for q, r in zip(questions, results):
        assert r.status == 200, r
        assert r.done is not None and r.done["status"] == "complete", (q, r)
        assert len(r.done_events) == 1
        assert r.text == fake_tokens_answer(TOKENS), (q, r)
        assert r.first["conversation_id"] == r.done["conversation_id"]
        conv_ids.append(r.done["conversation_id"])
    assert len(set(conv_ids)) == STREAMS, "two exchanges shared a conversation"

    # Every conversation exists exactly once, with its two messages.
    listed = s.conversation_ids(limit=100)
    assert sorted(listed) == sorted(conv_ids), (len(listed), len(conv_ids))
    for q, conv_id in zip(questions, conv_ids):
        conv = s.conversation(conv_id)
        assert conv["message_count"] == 2
        msgs = conv["messages"]
        assert [(m["role"], m["status"]) for m in msgs] == [("user", "complete"),
                                                             ("assistant", "complete")], msgs
        assert msgs[0]["content"] == q
        assert msgs[1]["content"] == fake_tokens_answer(TOKENS)

    # The upstream saw each question exactly once.
    recs = fake_upstream.chat_requests()
    seen = collections.Counter(r["body"]["messages"][-1]["content"] for r in recs)
    assert all(seen[q] == 1 for q in questions), seen

    # More than one worker process served them.
    pids = collections.Counter(
        rec["pid"] for rec in s.log_records()
        if rec.get("msg") == "request" and rec.get("route") == "/api/chat/message/stream"
        and rec.get("status") == 200)
    print(f"streams per worker pid: {dict(pids)}")
    assert sum(pids.values()) == STREAMS, pids
    assert len(pids) > 1, f"one worker served everything: {pids}"
    assert set(pids) <= {p.pid for p in s.workers}
    s.assert_alive()


def _stream_in_background(s, message, ready_tokens=2):
    """Starts a stream on a thread; returns (thread, result box, event set once
    `ready_tokens` tokens arrived)."""
    box, ready = {}, threading.Event()

    def stop(res, item):
        if len(res.token_events) >= ready_tokens:
            ready.set()
        return False

    def run():
        try:
            box["r"] = s.stream({"message": message}, stop=stop, timeout=60)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            box["e"] = e
        finally:
            ready.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box, ready


def test_sigterm_drains_then_ends_streams(stack_factory, fake_upstream):
    """SIGTERM: running streams may finish within RAGSTREAM_GRACE_S (2 s here); longer ones
    end with a shutting_down error event and their partial answer saved; exit code 0."""
    s = stack_factory(workers=1)
    long_t, long_box, long_ready = _stream_in_background(
        s, f"A very long answer {uniq()} [[fake: tokens=100, gap_ms=100]]")
    short_t, short_box, short_ready = _stream_in_background(
        s, f"A short answer {uniq()} [[fake: tokens=8, gap_ms=100]]", ready_tokens=1)
    assert long_ready.wait(15) and short_ready.wait(15)
    t0 = time.monotonic()
    s.workers[0].send_signal(signal.SIGTERM)
    long_t.join(30)
    short_t.join(30)
    assert "e" not in long_box and "e" not in short_box, (long_box, short_box)
    short, long_ = short_box["r"], long_box["r"]
    assert short.done and short.done["status"] == "complete", short
    assert short.text == fake_tokens_answer(8)
    assert len(long_.done_events) == 1, long_
    done = long_.done
    assert done["status"] == "error" and done["error"]["code"] == "shutting_down", done
    elapsed = long_.t_end - t0
    print(f"long stream ended {elapsed:.2f}s after SIGTERM")
    assert 1.5 <= elapsed <= 8, elapsed
    assert s.workers[0].wait(15) == 0

    # The partial answer is on disk: look with a fresh worker on the same store.
    again = stack_factory(workers=1, env={"RAGSTREAM_DATA_DIR": str(s.data_dir)})
    msgs = again.conversation(long_.first["conversation_id"])["messages"]
    assert msgs[1]["status"] == "error"
    assert msgs[1]["content"] == long_.text != ""


def test_requests_during_drain_go_to_other_workers(stack_factory, fake_upstream):
    """While one of two workers drains after SIGTERM, new requests must be served by the
    other one promptly, not parked in the draining worker's listen backlog until it exits
    (and then reset: a 502, since nginx never retries a POST that reached a worker)."""
    s = stack_factory(workers=2, env={"RAGSTREAM_GRACE_S": "4"})
    # One long stream on each worker (nginx balances round-robin).
    bg = [_stream_in_background(s, f"Keep busy {i} {uniq()} [[fake: tokens=60, gap_ms=100]]")
          for i in range(2)]
    for _, _, ready in bg:
        assert ready.wait(15)
    s.workers[0].send_signal(signal.SIGTERM)
    time.sleep(0.3)
    outcomes = []
    for i in range(4):
        t = time.monotonic()
        try:
            r = s.post_json("/api/chat/message", {"message": f"during the drain {i} {uniq()}"},
                            timeout=20)
            outcomes.append((r.status, round(time.monotonic() - t, 2)))
        except OSError as e:
            outcomes.append((repr(e), round(time.monotonic() - t, 2)))
    for t, _, _ in bg:
        t.join(30)
    print(f"requests during the drain (status, seconds): {outcomes}")
    assert s.workers[0].wait(15) == 0
    assert all(status == 200 and secs < 2.0 for status, secs in outcomes), outcomes


def test_health(stack, fake_upstream):
    r = stack.get("/api/health")
    assert r.status == 200, r
    body = r.json
    assert body["status"] == "ok"
    assert body["chat_model"] == "fake-model"
    assert body["store"]["readable"] is True


def test_a_busy_worker_answers_503_at_once(stack_factory, fake_upstream):
    """Admission control: with every request thread busy, a new request waits at most
    RAGSTREAM_QUEUE_WAIT_MS for one, then gets 503 `overloaded` with Retry-After: 1 -- it is
    not left waiting silently in the backlog while the others stream (before: no byte until a
    thread freed). The streams already running complete."""
    s = stack_factory(workers=1, env={"RAGSTREAM_THREADS": "2", "RAGSTREAM_QUEUE_WAIT_MS": "100"})
    results, threads = [None, None], []
    for i in range(2):
        def run(i=i):
            results[i] = s.stream({"message": f"long {harness.uniq()} "
                                              "[[fake: tokens=60, gap_ms=50]]"}, timeout=60)
        threads.append(threading.Thread(target=run))
        threads[-1].start()
    harness.wait_until(lambda: len(fake_upstream.chat_requests()) >= 2, 10,
                       what="both streams to reach the model")
    waits = []
    for _ in range(5):
        t0 = time.monotonic()
        r = s.post_json("/api/chat/message", {"message": "one more?"}, timeout=10)
        waits.append(time.monotonic() - t0)
        assert r.status == 503, r
        assert r.json["error"]["code"] == "overloaded", r
        assert r.header("Retry-After") == "1", r
    assert max(waits) < 1.0, waits
    for t in threads:
        t.join(60)
    assert all(x and x.done and x.done["status"] == "complete" for x in results), results
    # Capacity again: served.
    r = s.get("/api/health")
    assert r.status == 200, r
    # Counted: five 503s on the non-streaming chat route.
    m = s.get("/metrics")
    assert m.status == 200
    text = m.body.decode()
    assert 'route="/api/chat/message",status="503"} 5' in text, [x for x in text.splitlines() if "requests_total" in x]
