"""What SSE clients rely on when they reconnect or retry (issue: a well-behaved SSE server):
a resume at or past the done event is 204 (SSE's "nothing more", which ends an EventSource's
reconnects), a retried POST with the same client_message_id honours Last-Event-ID exactly as a
resume does, and every done event says whether sending again is worth it (`retryable`)."""
import harness

RESUME = "/api/chat/messages/{}/stream"


def _token_ids(result):
    return [int(e.id) for e in result.events if e.kind == "event"]


def test_resume_at_or_past_done_is_204_and_before_it_gets_the_same_done(stack, fake_upstream):
    live = stack.stream({"message": f"204 {harness.uniq('a')} [[fake: tokens=5, gap_ms=2]]"})
    assert live.done["status"] == "complete"
    done_id = int(live.done_events[-1].id)
    assert done_id == 6  # tokens 1..5, done 6
    msg = live.first["message_id"]
    for last in (done_id, done_id + 1, done_id + 50):
        r = harness.stream_request(stack.port, b"", path=RESUME.format(msg), method="GET",
                                   headers={"Last-Event-ID": str(last)})
        assert r.status == 204, (last, r)
        assert r.raw == b"" and not r.events
    # One before the done event: the same done event, with its original id, every time.
    for _ in range(2):
        r = harness.stream_request(stack.port, b"", path=RESUME.format(msg), method="GET",
                                   headers={"Last-Event-ID": str(done_id - 1)})
        assert r.status == 200 and _token_ids(r) == [done_id]
        assert r.done == live.done


def test_retried_post_honours_last_event_id(stack, fake_upstream):
    body = {"message": f"replayed post {harness.uniq('p')} [[fake: tokens=8, gap_ms=2]]",
            "client_message_id": harness.uniq("cm")}
    first = stack.stream(body)
    assert first.done["status"] == "complete"
    tokens = [e.json["token"] for e in first.token_events]
    # fetch-event-source's own retry: the same body, with the last id it saw.
    again = harness.stream_request(stack.port, body, headers={"Last-Event-ID": "3"})
    assert again.status == 200
    assert _token_ids(again) == list(range(4, 10))  # tokens 4..8, done 9
    resumed = [e.json["token"] for e in again.events if not e.json["done"]]
    assert "".join(tokens[:3] + resumed) == first.text
    assert again.done == first.done
    # By query parameter too, and past the done event: 204.
    q = harness.stream_request(stack.port, body, path="/api/chat/message/stream?last_event_id=9")
    assert q.status == 204
    # Only one exchange was stored for the three sends.
    conv = stack.conversation(first.first["conversation_id"])
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]


def test_bad_last_event_id_on_a_send_is_400_and_stores_nothing(stack, fake_upstream):
    marker = harness.uniq("bad")
    before = set(stack.conversation_ids())
    r = harness.stream_request(stack.port, {"message": f"x {marker}"},
                               headers={"Last-Event-ID": "three"})
    assert r.status == 400 and r.json_body()["error"]["code"] == "invalid_last_event_id"
    assert set(stack.conversation_ids()) == before
    assert not fake_upstream.chat_requests(marker)


def test_done_event_says_whether_to_retry(stack, fake_upstream):
    ok = stack.stream({"message": f"fine {harness.uniq('f')}"})
    assert ok.done["status"] == "complete" and ok.done["retryable"] is False
    # A 5xx on every attempt is worth retrying later; a quota refusal is not.
    fake_upstream.script([{"status": 500}] * 3)
    failed = stack.stream({"message": f"5xx {harness.uniq('s')}"})
    assert failed.done["status"] == "error"
    assert failed.done["error"]["code"] == "upstream_server_error"
    assert failed.done["retryable"] is True
    fake_upstream.script([{"status": 429, "error_code": "insufficient_quota"}])
    quota = stack.stream({"message": f"quota {harness.uniq('q')}"})
    assert quota.done["error"]["code"] == "upstream_quota_exceeded"
    assert quota.done["retryable"] is False
    # The stored answer's resume carries the same flag.
    r = harness.stream_request(stack.port, b"", method="GET",
                               path=RESUME.format(failed.first["message_id"]))
    assert r.done["retryable"] is True
