"""Conversations in LMDB: what a stream leaves behind, listing and paging, the
non-streaming endpoint, follow-up messages with history."""

from harness import assert_json_error, fake_default_answer, fake_tokens_answer, uniq


def test_streamed_exchange_is_stored_before_done(stack, fake_upstream):
    question = f"Please remember this exchange {uniq()}"
    r = stack.stream({"message": question})
    assert r.status == 200 and r.done and r.done["status"] == "complete", r
    conv_id = r.done["conversation_id"]

    # No polling: a finished exchange is durable before its done event is sent.
    conv = stack.conversation(conv_id)
    assert conv["id"] == conv_id
    assert conv["message_count"] == 2
    msgs = conv["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant"], msgs
    user, assistant = msgs
    assert user["content"] == question
    assert user["status"] == "complete"
    assert assistant["id"] == r.done["message_id"] == r.first["message_id"]
    assert assistant["content"] == r.text == fake_default_answer(question)
    assert assistant["status"] == "complete"
    assert assistant["finish_reason"] == "stop"
    assert isinstance(assistant["usage"], dict)
    assert assistant["usage"] == r.done["usage"]
    assert isinstance(assistant["sources"], list)
    assert "error" not in assistant


def test_non_streaming_message(stack, fake_upstream):
    question = f"Answer without streaming {uniq()}"
    r = stack.post_json("/api/chat/message", {"message": question})
    assert r.status == 200, r
    assert (r.header("Content-Type") or "").startswith("application/json")
    body = r.json
    for k in ("message_id", "conversation_id", "response", "sources", "language", "usage", "status"):
        assert k in body, (k, body)
    assert body["response"] == fake_default_answer(question)
    assert body["status"] == "complete"
    assert body["language"] == "en"
    assert isinstance(body["sources"], list)
    assert isinstance(body["usage"], dict) and body["usage"]["completion_tokens"] > 0
    assert "error" not in body

    conv = stack.conversation(body["conversation_id"])
    assert [(m["role"], m["content"], m["status"]) for m in conv["messages"]] == [
        ("user", question, "complete"),
        ("assistant", body["response"], "complete"),
    ]
    assert conv["messages"][1]["id"] == body["message_id"]


def test_follow_up_uses_the_same_conversation_and_history(stack, fake_upstream):
    q1 = f"First question about static libraries {uniq()}"
    r1 = stack.stream({"message": q1})
    assert r1.done and r1.done["status"] == "complete", r1
    conv_id = r1.done["conversation_id"]
    a1 = r1.text

    q2 = f"And a follow-up about dynamic ones {uniq()}"
    r2 = stack.post_json("/api/chat/message", {"message": q2, "conversation_id": conv_id})
    assert r2.status == 200, r2
    assert r2.json["conversation_id"] == conv_id
    assert r2.json["response"] == fake_default_answer(q2)

    conv = stack.conversation(conv_id)
    assert conv["message_count"] == 4
    assert [(m["role"], m["content"], m["status"]) for m in conv["messages"]] == [
        ("user", q1, "complete"),
        ("assistant", a1, "complete"),
        ("user", q2, "complete"),
        ("assistant", r2.json["response"], "complete"),
    ]

    recs = fake_upstream.chat_requests(q2)
    assert len(recs) == 1
    messages = recs[0]["body"]["messages"]
    assert messages[0]["role"] == "system"
    assert [(m["role"], m["content"]) for m in messages if m["role"] != "system"] == [
        ("user", q1), ("assistant", a1), ("user", q2)], messages

    # A streamed follow-up lands there too.
    q3 = f"Third one {uniq()}"
    r3 = stack.stream({"message": q3, "conversation_id": conv_id})
    assert r3.done and r3.done["status"] == "complete", r3
    assert r3.first["conversation_id"] == r3.done["conversation_id"] == conv_id
    assert stack.conversation(conv_id)["message_count"] == 6


def test_list_newest_first_with_paging(stack_factory, fake_upstream):
    s = stack_factory(workers=1)  # a fresh store: exactly the conversations made here
    assert s.get("/api/conversations").json == {"conversations": [], "next_cursor": None}
    ids = []
    for i in range(3):
        r = s.post_json("/api/chat/message", {"message": f"Conversation number {i} {uniq()}"})
        assert r.status == 200, r
        ids.append(r.json["conversation_id"])
    c1, c2, c3 = ids

    full = s.get("/api/conversations").json
    assert [c["id"] for c in full["conversations"]] == [c3, c2, c1]
    assert full["next_cursor"] is None
    for c in full["conversations"]:
        assert c["message_count"] == 2
        assert isinstance(c["title"], str) and c["title"]
        assert c["updated_at"] >= c["created_at"]

    page1 = s.get("/api/conversations?limit=2").json
    assert [c["id"] for c in page1["conversations"]] == [c3, c2]
    assert isinstance(page1["next_cursor"], str) and page1["next_cursor"]
    page2 = s.get(f"/api/conversations?limit=2&cursor={page1['next_cursor']}").json
    assert [c["id"] for c in page2["conversations"]] == [c1]
    assert page2["next_cursor"] is None

    # A new message moves its conversation to the front.
    r = s.post_json("/api/chat/message", {"message": f"bump {uniq()}", "conversation_id": c1})
    assert r.status == 200, r
    assert s.conversation_ids() == [c1, c3, c2]

    for bad in ("limit=0", "limit=101", "limit=abc", "limit=-1", "cursor=zz-not-a-cursor"):
        assert_json_error(s.get(f"/api/conversations?{bad}"), 400)
    s.assert_alive()


def test_partial_answer_is_persisted_while_streaming(stack, fake_upstream):
    """While an answer streams, its partial content is saved at least every 500 ms, with
    status "streaming", so that any worker can see (and resume) it."""
    seen = {}

    def peek(res, item):
        # 1.5 s into a 100 ms/token stream: look at the store from another connection.
        if len(res.token_events) == 15 and "conv" not in seen:
            seen["text"] = res.text
            seen["conv"] = stack.conversation(res.first["conversation_id"])
        return False

    r = stack.stream({"message": f"Persist me {uniq()} [[fake: tokens=30, gap_ms=100]]"},
                     stop=peek, timeout=30)
    assert r.done and r.done["status"] == "complete", r
    assistant = seen["conv"]["messages"][1]
    assert assistant["status"] == "streaming", assistant
    stored = assistant["content"]
    print(f"stored while streaming: {len(stored)} of {len(seen['text'])} characters shown")
    assert seen["text"].startswith(stored)
    # Saved at least every 500 ms: at most ~5 tokens behind (plus a tick and scheduling
    # slack), so far more than just the first save.
    assert len(stored) >= len(fake_tokens_answer(6)), (stored, seen["text"])
    final = stack.conversation(r.done["conversation_id"])["messages"][1]
    assert final["status"] == "complete" and final["content"] == fake_tokens_answer(30)


def test_conversation_deleted_while_streaming(stack, fake_upstream):
    """Deleting a conversation mid-answer: the stream still ends with one done event, which
    must not claim "complete" (nothing could be saved), and the conversation stays gone."""
    box = {}

    def delete_midway(res, item):
        if len(res.token_events) == 3 and "deleted" not in box:
            box["deleted"] = stack.request("DELETE", f"/api/conversations/{res.first['conversation_id']}")
        return False

    r = stack.stream({"message": f"Delete me midway {uniq()} [[fake: tokens=10, gap_ms=100]]"},
                     stop=delete_midway, timeout=30)
    assert box["deleted"].status == 200, box
    conv_id = r.first["conversation_id"]
    assert len(r.done_events) == 1 and r.items[-1] is r.done_events[0], r
    done = r.done
    assert_json_error(stack.get(f"/api/conversations/{conv_id}"), 404)
    assert conv_id not in stack.conversation_ids()
    if "error" in done:
        assert done["status"] == "error", f"a done event with an error says status {done['status']!r}: {done}"
    assert done["status"] != "complete", f"the answer was not saved, yet: {done}"


def test_title_from_a_long_non_ascii_message(stack, fake_upstream):
    message = ("שאלה ארוכה מאוד 👨‍👩‍👧 על ספריות " * 20) + uniq()
    r = stack.post_json("/api/chat/message", {"message": message})
    assert r.status == 200, r
    raw = stack.get(f"/api/conversations/{r.json['conversation_id']}").body
    conv = __import__("json").loads(raw.decode("utf-8"))  # strict UTF-8
    title = conv["title"]
    assert title and message.startswith(title), title
    assert len(title) < len(message)


def test_finish_reason_and_empty_answer(stack, fake_upstream):
    r = stack.stream({"message": f"Cut by length {uniq()} [[fake: tokens=3, finish_reason=length]]"})
    assert r.done and r.done["status"] == "complete" and r.done["finish_reason"] == "length", r
    assert stack.conversation(r.done["conversation_id"])["messages"][1]["finish_reason"] == "length"

    r = stack.stream({"message": f"Say nothing {uniq()} [[fake: tokens=0]]"})
    assert r.done and r.done["status"] == "complete", r
    assert r.token_events == []
    assert r.done["ttft_ms"] is None or r.done["ttft_ms"] >= 0
    assistant = stack.conversation(r.done["conversation_id"])["messages"][1]
    assert assistant["status"] == "complete" and assistant["content"] == ""
