"""The upstream timeouts: no first token in time, and a stall between tokens."""
import harness


def test_first_token_timeout_ends_the_stream_with_an_error(stack_factory, fake_upstream):
    stack = stack_factory(workers=1, env={"RAGSTREAM_FIRST_TOKEN_TIMEOUT_MS": "800"})
    res = stack.stream({"message": f"slow {harness.uniq('t')} [[fake: first_token_ms=5000]]"})
    assert res.done and res.done["status"] == "error", res
    assert res.done["error"]["code"] == "upstream_first_token_timeout"
    elapsed = res.done_events[-1].t - res.events[0].t
    assert elapsed < 3, f"the timeout took {elapsed:.1f}s"
    msg = stack.conversation(res.first["conversation_id"])["messages"][1]
    assert msg["status"] == "error" and msg["error"]["code"] == "upstream_first_token_timeout"


def test_idle_timeout_keeps_what_arrived(stack_factory, fake_upstream):
    stack = stack_factory(workers=1, env={"RAGSTREAM_IDLE_TIMEOUT_MS": "800"})
    res = stack.stream({"message": f"stall {harness.uniq('t')} [[fake: tokens=5, gap_ms=3000]]"})
    assert res.done and res.done["status"] == "error", res
    assert res.done["error"]["code"] == "upstream_idle_timeout"
    msg = stack.conversation(res.first["conversation_id"])["messages"][1]
    assert msg["status"] == "error" and msg["content"] == res.text and res.text
