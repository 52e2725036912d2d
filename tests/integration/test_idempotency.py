"""client_message_id: a retried send returns (or reattaches to) the existing exchange
instead of adding a second user message."""
import threading
import time

import harness


def test_a_retried_stream_reattaches_and_a_finished_one_replays(stack, fake_upstream):
    cid = harness.uniq("client")
    body = {"message": f"idem {harness.uniq('q')} [[fake: tokens=30, gap_ms=40]]",
            "client_message_id": cid}
    seen = []

    def stop(result, item):
        if item.kind == "event" and item.json and item.json.get("token"):
            seen.append(item)
        return len(seen) >= 5

    # The client drops after 5 tokens (keeping the answer going) and retries the send.
    first = stack.stream({**body, "on_disconnect": "finish"}, stop=stop)
    retry = stack.stream({**body, "on_disconnect": "finish"})
    assert retry.done and retry.done["status"] == "complete", retry
    assert retry.first["message_id"] == first.first["message_id"]
    assert retry.first["conversation_id"] == first.first["conversation_id"]
    assert retry.text == harness.fake_tokens_answer(30)
    conv = stack.conversation(first.first["conversation_id"])
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"], conv["messages"]
    # One upstream call for both sends.
    assert len([r for r in fake_upstream.chat_requests()
                if body["message"] in harness.last_user_text(r)]) == 1
    # Once finished: the non-streaming route returns the same exchange.
    r = stack.post_json("/api/chat/message", body)
    assert r.status == 200, r
    assert r.json["message_id"] == first.first["message_id"]
    assert r.json["response"] == harness.fake_tokens_answer(30)


def test_concurrent_retries_make_one_exchange(stack, fake_upstream):
    body = {"message": f"race {harness.uniq('q')} [[fake: tokens=5, gap_ms=20]]",
            "client_message_id": harness.uniq("c")}
    results = [None] * 6

    def send(i):
        results[i] = stack.stream(body)
    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r and r.done and r.done["status"] == "complete" for r in results), results
    assert len({r.first["message_id"] for r in results}) == 1
    conv = stack.conversation(results[0].first["conversation_id"])
    assert len(conv["messages"]) == 2


def test_a_key_is_bound_to_its_first_request(stack, fake_upstream):
    """As Stripe's idempotency keys: scoped to the tenant, bound to the request it first came
    with. The same key with another message (in any conversation, or none) is 409 and writes
    nothing; with the same request it replays."""
    cid = harness.uniq("same")
    a = stack.stream({"message": "first [[fake: tokens=3]]", "client_message_id": cid})
    assert a.done and a.done["status"] == "complete", a
    conv = a.first["conversation_id"]
    before = stack.conversation_ids(limit=100)
    for other in ({"message": "second [[fake: tokens=3]]", "client_message_id": cid},
                  {"message": "second [[fake: tokens=3]]", "client_message_id": cid,
                   "conversation_id": conv},
                  {"message": "first [[fake: tokens=3]]", "client_message_id": cid,
                   "top_k": 2}):
        r = stack.post_json("/api/chat/message/stream", other)
        assert r.status == 409 and r.json["error"]["code"] == "idempotency_key_reused", (other, r)
        r = stack.post_json("/api/chat/message", other)
        assert r.status == 409 and r.json["error"]["code"] == "idempotency_key_reused", (other, r)
    assert stack.conversation_ids(limit=100) == before
    assert len(stack.conversation(conv)["messages"]) == 2
    again = stack.post_json("/api/chat/message",
                            {"message": "first [[fake: tokens=3]]", "client_message_id": cid})
    assert again.status == 200 and again.json["message_id"] == a.first["message_id"], again
    # Deleting the conversation frees the key.
    assert stack.request("DELETE", f"/api/conversations/{conv}").status in (200, 204)
    fresh = stack.stream({"message": "second [[fake: tokens=3]]", "client_message_id": cid})
    assert fresh.done and fresh.done["status"] == "complete", fresh
    assert fresh.first["message_id"] != a.first["message_id"]


def test_keys_expire(stack_factory, fake_upstream):
    s = stack_factory(workers=1, env={"RAGSTREAM_IDEMPOTENCY_TTL_S": "1"})
    cid = harness.uniq("ttl")
    a = s.post_json("/api/chat/message", {"message": "one [[fake: tokens=2]]",
                                          "client_message_id": cid})
    assert a.status == 200, a
    time.sleep(1.5)
    b = s.post_json("/api/chat/message", {"message": "two [[fake: tokens=2]]",
                                          "client_message_id": cid})
    assert b.status == 200 and b.json["message_id"] != a.json["message_id"], b


def test_client_ids_are_validated(stack, fake_upstream):
    for bad in ("", "x" * 129, "has space", "slash/no"):
        r = stack.post_json("/api/chat/message", {"message": "x", "client_message_id": bad})
        assert r.status == 400 and r.json["error"]["code"] == "invalid_field", (bad, r)
