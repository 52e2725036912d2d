"""The SSE stream through nginx: incremental delivery and the event contract."""

from harness import fake_default_answer, fake_tokens_answer, uniq


def test_tokens_arrive_incrementally_through_nginx(stack, fake_upstream):
    """20 tokens 100 ms apart must reach the client as they are generated, not in one
    buffered lump at the end (fastcgi_buffering off, a flush per event)."""
    r = stack.stream({"message": f"Stream slowly please {uniq()} [[fake: tokens=20, gap_ms=100]]"},
                     timeout=30)
    assert r.status == 200, r
    tokens = r.token_events
    assert len(tokens) == 20, r
    assert r.text == fake_tokens_answer(20)
    done = r.done_events
    assert len(done) == 1, r
    spread = done[0].t - tokens[0].t
    print(f"first token -> done event: {spread * 1000:.0f} ms")
    assert spread > 1.0, f"the first token arrived only {spread:.3f}s before the done event"
    # The opening event goes out before the upstream's first token.
    assert r.events[0].t <= tokens[0].t
    # Arrival times fall into many separate bursts >= 50 ms apart.
    times = sorted(e.t for e in tokens)
    bursts, last = 1, times[0]
    for t in times[1:]:
        if t - last >= 0.05:
            bursts += 1
            last = t
    print(f"token arrival bursts >= 50 ms apart: {bursts}")
    assert bursts >= 10, f"tokens arrived in only {bursts} bursts: {[round(t - times[0], 3) for t in times]}"


def test_event_stream_contract(stack, fake_upstream):
    question = f"What is the event stream contract {uniq()}?"
    r = stack.stream({"message": question}, timeout=30)

    # Status and headers.
    assert r.status == 200, r
    ctype = r.header("Content-Type") or ""
    assert ctype.split(";")[0].strip() == "text/event-stream", ctype
    assert r.header("Cache-Control") == "no-cache"
    # X-Accel-Buffering is a directive *to* nginx, which consumes it (it is not forwarded
    # to the client); if some proxy setup does forward it, it must say "no".
    assert r.header("X-Accel-Buffering") in (None, "no")
    assert r.complete, "the response body did not end cleanly"

    # The stream opens with a retry hint.
    assert r.raw.startswith(b"retry: "), r.raw[:50]
    retry_line = r.raw.split(b"\n", 1)[0]
    assert retry_line[len(b"retry: "):].isdigit(), retry_line

    events = r.events
    assert len(events) >= 3, r
    # ids 0, 1, 2, ... ; exactly one data line; no event names (EventSource.onmessage).
    assert [e.id for e in events] == [str(i) for i in range(len(events))], [e.id for e in events]
    for e in events:
        assert e.data_lines == 1, e
        assert [name for name, _ in e.fields] == ["id", "data"], e.fields
        assert isinstance(e.json, dict), e.text

    first = events[0].json
    assert set(first) == {"token", "done", "conversation_id", "message_id"}, first
    assert first["token"] == "" and first["done"] is False
    assert first["conversation_id"].startswith("conv_")
    assert first["message_id"].startswith("msg_")

    middle = events[1:-1]
    assert middle, "no token events"
    for e in middle:
        assert set(e.json) == {"token", "done"}, e.json
        assert isinstance(e.json["token"], str) and e.json["token"] != ""
        assert e.json["done"] is False

    done = events[-1].json
    assert len(r.done_events) == 1
    assert done["done"] is True and done["token"] is None
    assert done["status"] == "complete"
    assert "error" not in done
    assert done["conversation_id"] == first["conversation_id"]
    assert done["message_id"] == first["message_id"]
    assert isinstance(done["sources"], list)
    assert done["language"] == "en"
    usage = done["usage"]
    assert isinstance(usage, dict)
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert isinstance(usage[k], int) and usage[k] >= 0, usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == len(middle)
    assert isinstance(done["ttft_ms"], int) and not isinstance(done["ttft_ms"], bool)
    assert done["ttft_ms"] >= 0
    assert done["finish_reason"] == "stop"

    # Nothing after the done event: no more events, comments or bytes.
    assert r.items[-1] is events[-1], r.items[-3:]
    assert r.raw.endswith(b"\n\n")
    last_data = r.raw.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    assert last_data.startswith(b"data: ") and b'"done":true' in last_data

    # The concatenated tokens are exactly what the upstream sent.
    assert r.text == fake_default_answer(question)
    recs = fake_upstream.chat_requests(question)
    assert len(recs) == 1
    assert recs[0]["completed"] is True
    assert recs[0]["tokens_sent"] == len(middle)
    assert recs[0]["body"]["stream"] is True
    assert recs[0]["body"]["model"] == "fake-model"


def test_tokens_with_newlines_and_sse_syntax(stack, fake_upstream):
    """Deltas containing newlines, CRs, and text that looks like SSE fields must stay inside
    one data line each (JSON escapes) and come out unchanged."""
    parts = ["line one\n", "\n", "data: fake\n\nid: 99\n", ": not a comment\r\n", "retry: 1\r",
             "\u2028\u2029", "end"]
    fake_upstream.script([{"answer": parts}])
    r = stack.stream({"message": f"Tricky tokens {uniq()}"})
    assert r.done and r.done["status"] == "complete", r
    assert [e.json["token"] for e in r.token_events] == parts
    assert all(e.data_lines == 1 for e in r.events)
    assert all(c.text == "ping" for c in r.comments), [c.text for c in r.comments]
    assert [e.id for e in r.events] == [str(i) for i in range(len(parts) + 2)]


def test_upstream_framing_quirks(stack, fake_upstream):
    """CRLF line ends, SSE comments between events, and events cut at arbitrary byte
    boundaries (inside "data:", inside \\uXXXX escapes) by the upstream."""
    text = "Ünïcödé ✓ — 😀 end"
    fake_upstream.script([{"text": text, "tokens": 24, "crlf": True, "comments": True,
                           "split": True, "seed": 11}])
    r = stack.stream({"message": f"Quirky framing {uniq()}"})
    assert r.done and r.done["status"] == "complete", r
    toks = text.split(" ")
    toks = [t if i == 0 else " " + t for i, t in enumerate(toks)]
    assert r.text == "".join(toks[i % len(toks)] for i in range(24))
    # Upstream comments (": keep-alive") are not relayed; only our own pings may appear.
    assert all(c.text == "ping" for c in r.comments), [c.text for c in r.comments]
