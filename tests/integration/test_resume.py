"""Resuming a stream from any worker with Last-Event-ID: the events after that id come
from the store, then the live answer is followed until its final event."""
import random
import signal
import threading
import time

import harness

RESUME = "/api/chat/messages/{}/stream"


def _ids_and_tokens(result):
    """Event ids in order, and the token of every token event (ids 1..n)."""
    events = [e for e in result.events if e.kind == "event"]
    tokens = [e.json["token"] for e in events if int(e.id) > 0 and not e.json.get("done")]
    return [int(e.id) for e in events], tokens


def _resume(stack, msg_id, last=None, use_query=False, timeout=30):
    path = RESUME.format(msg_id)
    headers = {}
    if last is not None:
        if use_query:
            path += f"?last_event_id={last}"
        else:
            headers["Last-Event-ID"] = str(last)
    return harness.stream_request(stack.port, b"", path=path, method="GET", headers=headers,
                                  timeout=timeout)


def test_a_finished_answer_replays_whole(stack, fake_upstream):
    live = stack.stream({"message": f"replay {harness.uniq('r')} [[fake: tokens=12, gap_ms=5]]"})
    assert live.done and live.done["status"] == "complete"
    msg_id = live.first["message_id"]
    again = _resume(stack, msg_id)
    assert again.status == 200 and again.header("Content-Type").startswith("text/event-stream")
    assert _ids_and_tokens(again) == _ids_and_tokens(live)
    assert again.done == live.done
    # From the middle, by header and by query parameter.
    for use_query in (False, True):
        part = _resume(stack, msg_id, last=5, use_query=use_query)
        ids, tokens = _ids_and_tokens(part)
        assert ids[0] == 6 and ids == list(range(6, ids[-1] + 1))
        assert "".join(_ids_and_tokens(live)[1][:5] + tokens) == live.text


def test_cut_and_resume_on_another_worker(stack_factory, fake_upstream, tmp_path):
    data = tmp_path / "shared"
    a = stack_factory(workers=1, env={"RAGSTREAM_DATA_DIR": str(data)})
    b = stack_factory(workers=1, env={"RAGSTREAM_DATA_DIR": str(data)})
    cut_at = random.randint(2, 25)
    seen = []

    def stop(result, item):
        if item.kind == "event" and item.json and item.json.get("token"):
            seen.append(item)
        return len(seen) >= cut_at

    # The client leaves at a random token; with on_disconnect=finish the answer goes on.
    first = a.stream({"message": f"cut {harness.uniq('c')} [[fake: tokens=40, gap_ms=40]]",
                      "on_disconnect": "finish"}, stop=stop)
    msg_id = first.first["message_id"]
    last_id = int(seen[-1].id)
    got = [e.json["token"] for e in seen]
    resumed = _resume(b, msg_id, last=last_id)
    ids, tokens = _ids_and_tokens(resumed)
    assert ids == list(range(last_id + 1, last_id + 1 + len(ids))), ids  # no gap, no repeat
    assert resumed.done and resumed.done["status"] == "complete", resumed
    stored = b.conversation(first.first["conversation_id"])["messages"][1]
    assert "".join(got + tokens) == stored["content"] == harness.fake_tokens_answer(40)


def test_resume_across_a_worker_kill_ends_interrupted(stack_factory, fake_upstream, tmp_path):
    data = tmp_path / "shared"
    env = {"RAGSTREAM_DATA_DIR": str(data), "RAGSTREAM_ORPHAN_TIMEOUT_S": "2"}
    a = stack_factory(workers=1, env=env)
    b = stack_factory(workers=1, env=env)
    seen = []

    def stop(result, item):
        if item.kind == "event" and item.json and item.json.get("token"):
            seen.append(item)
        return len(seen) >= 5

    first = a.stream({"message": f"kill {harness.uniq('k')} [[fake: tokens=200, gap_ms=50]]",
                      "on_disconnect": "finish"}, stop=stop)
    msg_id = first.first["message_id"]
    time.sleep(0.7)  # a partial save lands
    a.workers[0].send_signal(signal.SIGKILL)
    a.workers[0].wait(10)
    t0 = time.monotonic()
    resumed = _resume(b, msg_id, last=int(seen[-1].id), timeout=30)
    assert resumed.done, resumed
    assert resumed.done["status"] == "interrupted" and resumed.done["error"]["code"] == "interrupted"
    assert time.monotonic() - t0 < 10
    stored = b.conversation(first.first["conversation_id"])["messages"][1]
    assert stored["status"] == "interrupted"
    ids, tokens = _ids_and_tokens(resumed)
    assert stored["content"].startswith("".join(e.json["token"] for e in seen))


def test_bad_resume_requests(stack):
    assert _resume(stack, "msg_" + "0" * 24).status == 404
    assert _resume(stack, "nope").status == 404
    live = stack.stream({"message": f"bad {harness.uniq('b')} [[fake: tokens=3]]"})
    r = stack.get(RESUME.format(live.first["message_id"]) + "?last_event_id=abc")
    assert r.status == 400 and r.json["error"]["code"] == "invalid_last_event_id"
    user_msg = stack.conversation(live.first["conversation_id"])["messages"][0]["id"]
    assert _resume(stack, user_msg).status == 404


def _start_live(stack, tokens=60, gap_ms=50):
    got, out = threading.Event(), {}

    def stop(result, item):
        if item.kind == "event" and item.json and item.json.get("message_id"):
            out.setdefault("msg_id", item.json["message_id"])
            got.set()
        return False

    def run():
        out["result"] = stack.stream(
            {"message": f"follow {harness.uniq()} [[fake: tokens={tokens}, gap_ms={gap_ms}]]"},
            stop=stop, timeout=60)
    t = threading.Thread(target=run)
    t.start()
    assert got.wait(10)
    return t, out


def test_a_follow_whose_answer_is_deleted_ends_with_an_error_event(stack, fake_upstream):
    """A resume that cannot read the answer any more ends with an error event that says so
    (before: done with status `streaming` and an empty error)."""
    t, out = _start_live(stack)
    follower = {}
    ft = threading.Thread(target=lambda: follower.setdefault("r", _resume(stack, out["msg_id"])))
    ft.start()
    time.sleep(0.5)
    conv = stack.conversation_ids(limit=1)[0]
    assert stack.request("DELETE", f"/api/conversations/{conv}").status in (200, 204)
    ft.join(30)
    t.join(30)
    done = follower["r"].done
    assert done and done["status"] == "error", follower["r"]
    assert done["error"]["code"] == "message_deleted", done


def test_a_draining_worker_hands_its_followers_on(stack_factory, fake_upstream):
    """On SIGTERM a worker lets its own answers finish (grace), but ends the streams that
    only follow an answer at once, without a done event, so the client resumes on a worker
    that stays (before: the follow held the drain until the followed answer ended)."""
    s = stack_factory(workers=1, env={"RAGSTREAM_GRACE_S": "10"})
    t, out = _start_live(s, tokens=120, gap_ms=50)  # about 6 s, within the grace
    follower = {}

    def follow():
        follower["r"] = _resume(s, out["msg_id"])
        follower["ended"] = time.monotonic()
    ft = threading.Thread(target=follow)
    ft.start()
    time.sleep(0.5)
    sent = time.monotonic()
    s.workers[0].send_signal(signal.SIGTERM)
    ft.join(30)
    assert follower["ended"] - sent < 2.0, follower["ended"] - sent
    assert follower["r"].done is None, follower["r"].done  # a cut: resume elsewhere
    t.join(30)
    live = out["result"]
    assert live.done and live.done["status"] == "complete", live  # the worker's own answer
