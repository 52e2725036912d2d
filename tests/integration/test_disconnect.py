"""A client that leaves mid-stream: the upstream call is cancelled within a second and the
partial answer is saved as cancelled; with on_disconnect=finish the answer is completed."""

import time

from harness import fake_tokens_answer, poll_message, uniq, wait_until


def _leave_after_tokens(n):
    def stop(res, item):
        return len(res.token_events) >= n
    return stop


def _record(fake, marker):
    recs = fake.chat_requests(marker)
    assert len(recs) == 1, recs
    return recs[0]


def test_disconnect_cancels_upstream_and_saves_partial(stack, fake_upstream):
    marker = uniq("leave-")
    r = stack.stream({"message": f"A long answer {marker} [[fake: tokens=100, gap_ms=100]]"},
                     stop=_leave_after_tokens(3), timeout=30)
    assert r.closed_by_us, r
    assert r.status == 200 and r.first and len(r.token_events) == 3
    assert r.done is None
    conv_id = r.first["conversation_id"]
    closed_at = r.closed_at_wall

    rec = wait_until(lambda: _record(fake_upstream, marker)["closed_by_client_at"] and
                     _record(fake_upstream, marker), 10, what="the upstream call to be closed")
    delay = rec["closed_by_client_at"] - closed_at
    print(f"client close -> upstream close: {delay * 1000:.0f} ms "
          f"(tokens sent upstream: {rec['tokens_sent']})")
    assert delay < 1.5, f"the upstream call was closed {delay:.2f}s after the client left"
    assert rec["completed"] is False
    assert rec["tokens_sent"] < 100

    conv = poll_message(stack, conv_id, lambda c: c["messages"][1]["status"] != "streaming",
                        timeout=10)
    user, assistant = conv["messages"]
    assert user["status"] == "complete"
    assert assistant["status"] == "cancelled", assistant
    full = fake_tokens_answer(100)
    assert assistant["content"], assistant
    assert full.startswith(assistant["content"]), assistant["content"]
    assert assistant["content"].startswith(r.text)
    assert len(assistant["content"]) < len(full)


def test_disconnect_with_finish_completes_the_answer(stack, fake_upstream):
    marker = uniq("finish-")
    n = 40
    r = stack.stream({"message": f"Finish anyway {marker} [[fake: tokens={n}, gap_ms=100]]",
                      "on_disconnect": "finish"},
                     stop=_leave_after_tokens(3), timeout=30)
    assert r.closed_by_us and r.first, r
    conv_id = r.first["conversation_id"]
    t0 = time.monotonic()
    conv = poll_message(stack, conv_id, lambda c: c["messages"][1]["status"] != "streaming",
                        timeout=15)
    print(f"answer finished {time.monotonic() - t0:.1f}s after the client left")
    assistant = conv["messages"][1]
    assert assistant["status"] == "complete", assistant
    assert assistant["content"] == fake_tokens_answer(n)
    rec = _record(fake_upstream, marker)
    assert rec["completed"] is True
    assert rec["closed_by_client_at"] is None
    assert rec["tokens_sent"] == n


def test_invalid_on_disconnect_is_rejected(stack, fake_upstream):
    r = stack.post_json("/api/chat/message/stream", {"message": "hi", "on_disconnect": "explode"})
    assert r.status == 400, r
    assert fake_upstream.chat_requests() == []
