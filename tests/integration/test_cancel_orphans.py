"""Stopping an answer from any worker, and answers orphaned by a worker that died."""
import signal
import threading
import time

import harness


def _start_stream(stack, body, got_first: threading.Event, out: dict):
    def first_token(result, item):
        if item.kind == "event" and item.json and item.json.get("token"):
            got_first.set()
        return False

    def run():
        out["result"] = stack.stream(body, stop=first_token, timeout=60)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_cancel_through_another_worker_stops_the_upstream(stack_factory, fake_upstream, tmp_path):
    # Two independent nginx + worker stacks over one data dir: the stream runs on one
    # worker process, the cancel arrives at another.
    data = tmp_path / "shared-data"
    a = stack_factory(workers=1, env={"RAGSTREAM_DATA_DIR": str(data)})
    b = stack_factory(workers=1, env={"RAGSTREAM_DATA_DIR": str(data)})
    marker = harness.uniq("cancel")
    got_first, out = threading.Event(), {}
    t = _start_stream(a, {"message": f"{marker} [[fake: tokens=200, gap_ms=50]]"}, got_first, out)
    assert got_first.wait(10), "no token arrived"
    # Find the message id from the conversation the stream created.
    conv_id = harness.wait_until(lambda: next(iter(a.conversation_ids(limit=5)), None), 5,
                                 what="conversation")
    msg_id = a.conversation(conv_id)["messages"][1]["id"]
    sent = time.monotonic()
    r = b.post_json(f"/api/chat/messages/{msg_id}/cancel", {})
    assert r.status == 202, r
    assert r.json["cancel_requested"] is True and r.json["status"] == "streaming"
    t.join(15)
    res = out["result"]
    done = res.done
    assert done and done["status"] == "cancelled", res
    ended = res.done_events[-1].t
    assert ended - sent < 1.5, f"the stream ended {ended - sent:.2f}s after the cancel"
    # The upstream saw its connection closed promptly.
    rec = harness.wait_until(
        lambda: next((x for x in fake_upstream.chat_requests()
                      if marker in harness.last_user_text(x) and x.get("closed_by_client_at")),
                     None), 5, what="upstream closed")
    assert rec["closed_by_client_at"] - time.time() < 5
    stored = a.conversation(conv_id)["messages"][1]
    assert stored["status"] == "cancelled"
    tokens = "".join(e.json["token"] for e in res.token_events if e.json.get("token"))
    assert stored["content"] == tokens and stored["content"]
    # Cancelling a finished answer says so and changes nothing.
    r = b.post_json(f"/api/chat/messages/{msg_id}/cancel", {})
    assert r.status == 200 and r.json["cancel_requested"] is False, r
    assert r.json["status"] == "cancelled"
    # Unknown and malformed ids are 404.
    assert b.post_json("/api/chat/messages/msg_" + "0" * 24 + "/cancel", {}).status == 404
    assert b.post_json("/api/chat/messages/nope/cancel", {}).status == 404


def test_answers_of_a_killed_worker_end_interrupted(stack_factory, fake_upstream):
    stack = stack_factory(workers=2, env={"RAGSTREAM_ORPHAN_TIMEOUT_S": "2"})
    marker = harness.uniq("orphan")
    got_first, out = threading.Event(), {}
    t = _start_stream(stack, {"message": f"{marker} [[fake: tokens=200, gap_ms=50]]"},
                      got_first, out)
    assert got_first.wait(10)
    time.sleep(0.8)  # let a partial save land
    # SIGKILL the workers (whichever served the stream dies with them).
    conv_id = stack.conversation_ids(limit=5)[0]
    for p in stack.workers:
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    t.join(10)
    assert not (out["result"].done), "a killed worker cannot send a done event"
    # A fresh worker on the same data dir notices the stale heartbeat and marks it.
    fresh = stack_factory(workers=1, env={"RAGSTREAM_DATA_DIR": str(stack.data_dir),
                                          "RAGSTREAM_ORPHAN_TIMEOUT_S": "2"})
    msg = harness.wait_until(
        lambda: (lambda m: m if m["status"] != "streaming" else None)(
            fresh.conversation(conv_id)["messages"][1]), 10, interval=0.2,
        what="the orphan marked")
    assert msg["status"] == "interrupted", msg
    assert msg["error"]["code"] == "interrupted"
    streamed = "".join(e.json["token"] for e in out["result"].token_events
                       if e.json.get("token"))
    assert msg["content"] and streamed.startswith(msg["content"])


def test_a_slow_embeddings_call_is_not_taken_for_a_dead_worker(stack_factory, fake_upstream):
    """The answer is `streaming` in the store from before retrieval; a query embedding that
    takes longer than the orphan timeout must not get it marked `interrupted` (its
    heartbeat runs during retrieval), and its final state is the one it streams."""
    stack = stack_factory(workers=2, env={"RAGSTREAM_ORPHAN_TIMEOUT_S": "2",
                                          "RAGSTREAM_EMBEDDER": "openai",
                                          "RAGSTREAM_EMBED_DIMENSIONS": "64"})
    r = stack.post_json("/api/documents", {"title": "Kettles",
                                           "text": "A kettle boils water in about three minutes."})
    assert r.status == 201, r
    marker = harness.uniq("slowembed")
    got_first, out = threading.Event(), {}
    # The directive slows the embeddings call (and the chat call) by 4.5 s each.
    t = _start_stream(stack, {"message": f"How long does a kettle take? {marker} "
                                         "[[fake: headers_delay_ms=4500, tokens=3]]"},
                      got_first, out)
    conv_id = harness.wait_until(lambda: (stack.conversation_ids(limit=1) or [None])[0], 5,
                                 what="the exchange to begin")
    time.sleep(3.5)  # past the orphan timeout, still inside the embeddings call
    msg = stack.conversation(conv_id)["messages"][1]
    assert msg["status"] == "streaming", msg
    t.join(30)
    done = out["result"].done
    assert done and done["status"] == "complete", out["result"]
    stored = stack.conversation(conv_id)["messages"][1]
    assert stored["status"] == "complete", stored
    # A resume agrees.
    res = harness.stream_request(stack.port, b"", path=f"/api/chat/messages/{stored['id']}/stream",
                                 method="GET")
    assert res.done and res.done["status"] == "complete", res
