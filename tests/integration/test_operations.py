"""Operational faults: rolling restarts, backups under load, drains, kill -9.

Each test runs its own stack (stack_factory) on loopback, with the fake upstream; every
process it starts itself (replacement workers) is stopped by its pid in a `finally`, and the
stack's own processes by the fixture. Run with -s to see the printed numbers.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import harness
from harness import (fake_tokens_answer, socket_accepts, start_process, stop_process, uniq,
                     wait_until)


# --------------------------------------------------------------------------- helpers


def sock_path(stack, i: int) -> Path:
    return stack.worker_socket(i)


def logged_started(log: Path, pid: int) -> bool:
    if not log.exists():
        return False
    for line in log.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("pid") == pid and rec.get("msg") == "started":
            return True
    return False


def spawn_worker(stack, i: int, tag: str) -> subprocess.Popen:
    """Starts a replacement worker for slot i on the same socket path, with the stack's env
    and the session's private copy of the binary (harness.WORKER_BIN is repointed to it by
    the worker_binary fixture). Its log goes to a file of its own, which the stack's
    log_records() and the secret canary also read. Must run on the main thread."""
    log = stack.log_dir / f"worker-{i + 1}.{tag}.log"
    harness.PRODUCT_LOG_FILES.append(log)
    stack.worker_logs.append(log)
    f = open(log, "ab")
    stack._files.append(f)  # closed by Stack.stop()
    return start_process([str(harness.WORKER_BIN), "--listen", f"unix:{sock_path(stack, i)}"],
                         env=stack.env, stdout=f, stderr=f)


def wait_worker_ready(stack, i: int, p: subprocess.Popen, timeout: float = 10.0) -> None:
    log = stack.worker_logs[-1]

    def ready():
        if p.poll() is not None:
            raise AssertionError(f"replacement worker {i + 1} exited with {p.returncode}: "
                                 f"{log.read_text(errors='replace')[-2000:]}")
        return socket_accepts(sock_path(stack, i)) and logged_started(log, p.pid)
    wait_until(ready, timeout, interval=0.02, what=f"replacement worker {i + 1} to accept")


def all_conversation_ids(stack) -> list[str]:
    ids, cursor = [], None
    while True:
        path = "/api/conversations?limit=100" + (f"&cursor={cursor}" if cursor else "")
        r = stack.get(path)
        assert r.status == 200, r
        ids += [c["id"] for c in r.json["conversations"]]
        cursor = r.json.get("next_cursor")
        if not cursor:
            return ids


def unix_connections(pid: int, path: Path) -> int:
    """How many connected unix sockets process `pid` holds that were accepted on `path`: its
    running FastCGI requests (nginx's fastcgi_keep_conn is off, so one per request)."""
    wanted = str(path)
    connected = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            if len(parts) >= 8 and parts[7] == wanted and parts[5] == "03":
                connected.add(parts[6])
    n = 0
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in connected:
            n += 1
    return n


class StreamRunner:
    """Runs streams on threads; keeps each result (or exception) and when events arrived."""

    def __init__(self, stack, timeout: float = 60.0):
        self.stack = stack
        self.timeout = timeout
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.results: dict[str, object] = {}  # question -> StreamResult | BaseException
        self.first_at: dict[str, float] = {}  # question -> monotonic time of the first event
        self.done_at: dict[str, float] = {}  # question -> monotonic time of the done event
        self.conv_of: dict[str, str] = {}  # question -> conversation id (from the first event)

    def _stop(self, q):
        def stop(res, item):
            if item.kind != "event" or not isinstance(item.json, dict):
                return False
            with self.lock:
                if q not in self.first_at:
                    self.first_at[q] = item.t
                    if isinstance(item.json.get("conversation_id"), str):
                        self.conv_of[q] = item.json["conversation_id"]
                if item.json.get("done") is True and q not in self.done_at:
                    self.done_at[q] = item.t
            return False
        return stop

    def start(self, question: str) -> None:
        def run():
            try:
                r = self.stack.stream({"message": question}, stop=self._stop(question),
                                      timeout=self.timeout)
            except BaseException as e:  # noqa: BLE001 - reported by the test
                r = e
            with self.lock:
                self.results[question] = r
        t = threading.Thread(target=run, daemon=True)
        with self.lock:
            self.threads.append(t)
        t.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in list(self.threads):
            t.join(max(0.1, deadline - time.monotonic()))
        alive = sum(t.is_alive() for t in self.threads)
        assert alive == 0, f"{alive} stream threads still running after {timeout}s"

    def done_convs_now(self) -> dict[str, str]:
        """{conversation id: question} of the streams whose done event arrived so far."""
        with self.lock:
            return {self.conv_of[q]: q for q in self.done_at if q in self.conv_of}


def mdb(*args) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60)


def stop_extra(procs) -> None:
    for p in procs:
        stop_process(p, signal.SIGKILL, timeout=5)


# --------------------------------------------------------------------------- 1


ROLL_TOKENS = 40
ROLL_INITIAL = 100
ROLL_DURING = 20


def test_rolling_restart_drops_no_stream(stack_factory, fake_upstream):
    """Four workers restarted one by one (SIGTERM, wait for the socket file to go, start a
    replacement on the same path) while 100 four-second streams run and 20 more start:
    every stream completes, every old worker exits 0, every exchange is stored complete."""
    s = stack_factory(workers=4, env={"RAGSTREAM_GRACE_S": "20"})
    fake_upstream.script(default={"tokens": ROLL_TOKENS, "gap_ms": 100})
    old = list(s.workers)
    replacements: list[subprocess.Popen] = []
    runner = StreamRunner(s, timeout=60)
    questions = [f"Rolling {i} {uniq()}" for i in range(ROLL_INITIAL + ROLL_DURING)]
    timeline = []
    t0 = time.monotonic()

    def mark(what):
        timeline.append((round(time.monotonic() - t0, 2), what))

    try:
        # 100 streams, staggered over ~2 s (a thread starts them so the main thread is free).
        def start_initial():
            for q in questions[:ROLL_INITIAL]:
                runner.start(q)
                time.sleep(2.0 / ROLL_INITIAL)
        starter = threading.Thread(target=start_initial, daemon=True)
        starter.start()
        time.sleep(1.0)

        # 20 more, started while the restarts happen (one every ~0.3 s).
        def start_during():
            for q in questions[ROLL_INITIAL:]:
                runner.start(q)
                time.sleep(0.3)
        during = threading.Thread(target=start_during, daemon=True)
        during.start()

        in_flight = {}
        for i in range(4):
            p = old[i]
            in_flight[i] = unix_connections(p.pid, sock_path(s, i))
            mark(f"SIGTERM worker {i + 1} (pid {p.pid}, {in_flight[i]} requests running)")
            p.send_signal(signal.SIGTERM)
            try:
                wait_until(lambda: not sock_path(s, i).exists(), 3, interval=0.01,
                           what="the draining worker to remove its socket")
                mark(f"socket {i + 1} gone")
            except AssertionError:
                mark(f"socket {i + 1} still there after 3 s")
            np = spawn_worker(s, i, f"r{i + 1}")
            replacements.append(np)
            s.workers[i] = np  # the stack's teardown stops the replacement
            wait_worker_ready(s, i, np)
            mark(f"replacement {i + 1} accepting (pid {np.pid})")
            if i < 3:
                time.sleep(1.0)

        starter.join(10)
        during.join(20)
        runner.join(60)
        mark("all streams ended")
        codes = {}
        for i, p in enumerate(old):
            try:
                codes[i + 1] = p.wait(30)
            except subprocess.TimeoutExpired:
                codes[i + 1] = None
        mark(f"old workers exited: {codes}")
    finally:
        stop_extra(old)

    print("\nrestart timeline (s):")
    for t, what in timeline:
        print(f"  {t:6.2f}  {what}")

    problems = []
    statuses = collections.Counter()
    for q in questions:
        r = runner.results.get(q)
        if not isinstance(r, harness.StreamResult):
            problems.append((q, repr(r)))
            statuses["exception"] += 1
            continue
        statuses[r.status] += 1
        dones = r.done_events
        if r.status != 200 or len(dones) != 1 or dones[0].json.get("status") != "complete" \
                or "error" in dones[0].json or r.text != fake_tokens_answer(ROLL_TOKENS):
            problems.append((q, r.status, [e.json for e in dones], repr(r)[:300]))
    by_pid = collections.Counter(
        rec["pid"] for rec in s.log_records()
        if rec.get("msg") == "request" and rec.get("route") == "/api/chat/message/stream")
    old_pids = {p.pid for p in old}
    print(f"streams: {len(questions)} ({ROLL_INITIAL} initial + {ROLL_DURING} during the "
          f"restarts); HTTP statuses {dict(statuses)}; complete: {len(questions) - len(problems)}")
    print(f"requests running on each worker at its SIGTERM: {in_flight}")
    print(f"streams per pid (old: {sorted(old_pids)}): {dict(by_pid)}")
    print(f"old worker exit codes: {codes}")
    assert not problems, f"{len(problems)} streams did not complete: {problems[:5]}"
    assert codes == {1: 0, 2: 0, 3: 0, 4: 0}, codes
    assert sum(by_pid.values()) == len(questions), by_pid
    assert any(pid not in old_pids for pid in by_pid), "no replacement served a stream"

    # Every exchange stored once, both messages complete.
    conv_ids = [runner.results[q].first["conversation_id"] for q in questions]
    assert len(set(conv_ids)) == len(questions)
    assert sorted(all_conversation_ids(s)) == sorted(conv_ids)
    for q, cid in zip(questions, conv_ids):
        msgs = s.conversation(cid)["messages"]
        assert [(m["role"], m["status"]) for m in msgs] == [("user", "complete"),
                                                             ("assistant", "complete")], (q, msgs)
        assert msgs[0]["content"] == q
        assert msgs[1]["content"] == fake_tokens_answer(ROLL_TOKENS)
    s.assert_alive()


# --------------------------------------------------------------------------- 2


BACKUP_EXCHANGES = 60
BACKUP_TOKENS = 8


def _check_backup(stack_factory, backup: Path, committed: dict[str, str], runner, label: str):
    r = mdb("mdb_stat", str(backup))
    assert r.returncode == 0, (label, r.stdout, r.stderr)
    b = stack_factory(workers=1, env={"RAGSTREAM_DATA_DIR": str(backup)})
    in_backup = set(all_conversation_ids(b))
    missing = sorted(set(committed) - in_backup)
    assert not missing, f"{label}: {len(missing)} committed conversations missing: {missing[:5]}"
    for cid, q in committed.items():
        msgs = b.conversation(cid)["messages"]
        assert [(m["role"], m["status"]) for m in msgs] == [("user", "complete"),
                                                             ("assistant", "complete")], (label, msgs)
        assert msgs[0]["content"] == q
        assert msgs[1]["content"] == runner.results[q].text == fake_tokens_answer(BACKUP_TOKENS)
    print(f"{label}: {len(committed)} committed before the copy began, all present; "
          f"{len(in_backup)} conversations in the copy")
    b.stop()


def test_backup_during_load_holds_every_committed_conversation(stack_factory, fake_upstream,
                                                               tmp_path):
    """mdb_copy (compacting and not) of the live store while 60 exchanges stream: each copy
    opens cleanly and holds every exchange whose done event had arrived before it began."""
    s = stack_factory(workers=2)
    fake_upstream.script(default={"tokens": BACKUP_TOKENS, "gap_ms": 30})
    runner = StreamRunner(s, timeout=60)
    questions = [f"Backup {i} {uniq()}" for i in range(BACKUP_EXCHANGES)]

    def load():
        for q in questions:
            runner.start(q)
            time.sleep(5.0 / BACKUP_EXCHANGES)
    loader = threading.Thread(target=load, daemon=True)
    loader.start()

    copies = {}
    time.sleep(1.5)
    for label, flags in (("compacting copy (mdb_copy -c)", ["-c"]), ("plain copy (mdb_copy)", [])):
        dst = tmp_path / ("backup-c" if flags else "backup")
        dst.mkdir()
        committed = runner.done_convs_now()
        t = time.monotonic()
        r = mdb("mdb_copy", *flags, str(s.data_dir), str(dst))
        copies[label] = (dst, committed)
        started_total = len(runner.threads)
        print(f"{label}: {len(committed)} done / {started_total} started when it began, "
              f"took {time.monotonic() - t:.3f}s")
        assert r.returncode == 0, (label, r.stdout, r.stderr)
        time.sleep(1.0)
    loader.join(20)
    runner.join(60)
    for q in questions:
        r = runner.results[q]
        assert isinstance(r, harness.StreamResult) and r.done is not None \
            and r.done["status"] == "complete", (q, r)
    assert all(0 < len(c) < BACKUP_EXCHANGES for _, c in copies.values()), \
        [len(c) for _, c in copies.values()]

    r = mdb("mdb_stat", "-a", str(s.data_dir))
    assert r.returncode == 0, (r.stdout, r.stderr)
    print("mdb_stat -a on the live store:", " ".join(r.stdout.split()[:12]), "...")
    for label, (dst, committed) in copies.items():
        _check_backup(stack_factory, dst, committed, runner, label)
    s.assert_alive()


# --------------------------------------------------------------------------- 3


def test_drain_ends_overlong_stream_with_saved_error(stack_factory, fake_upstream):
    """RAGSTREAM_GRACE_S=1: a 10 s stream is ended ~1 s after SIGTERM with a shutting_down
    done event; the worker exits 0 in time; the partial answer is stored with status error
    and exactly the tokens the client received."""
    s = stack_factory(workers=1, env={"RAGSTREAM_GRACE_S": "1"})
    runner = StreamRunner(s, timeout=40)
    q = f"Overlong {uniq()} [[fake: tokens=100, gap_ms=100]]"
    t_start = time.monotonic()
    runner.start(q)
    wait_until(lambda: q in runner.first_at, 10, what="the first event")
    time.sleep(max(0.0, 1.0 - (time.monotonic() - t_start)))
    p = s.workers[0]
    t_term = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        code = p.wait(1 + 5)
    except subprocess.TimeoutExpired:
        code = None
    t_exit = time.monotonic()
    runner.join(20)
    r = runner.results[q]
    assert isinstance(r, harness.StreamResult), r
    print(f"\nstream ended {r.t_end - t_term:.2f}s after SIGTERM; worker exited "
          f"{t_exit - t_term:.2f}s after SIGTERM with {code}; {len(r.token_events)} tokens "
          f"received")
    assert code == 0, f"exit code {code} (None: still running 6 s after SIGTERM)"
    assert t_exit - t_term <= 6.0
    assert r.status == 200
    assert len(r.done_events) == 1, r
    done = r.done
    assert done["status"] == "error" and done["error"]["code"] == "shutting_down", done
    assert 0.9 <= r.t_end - t_term <= 6.0
    assert 0 < len(r.token_events) < 100
    assert r.text == fake_tokens_answer(len(r.token_events))

    again = stack_factory(workers=1, env={"RAGSTREAM_DATA_DIR": str(s.data_dir)})
    msgs = again.conversation(r.first["conversation_id"])["messages"]
    assert [(m["role"], m["status"]) for m in msgs] == [("user", "complete"),
                                                         ("assistant", "error")], msgs
    assert msgs[1]["id"] == r.first["message_id"] == done["message_id"]
    assert msgs[1]["content"] == r.text != ""
    assert msgs[1].get("error", {}).get("code") == "shutting_down", msgs[1]


# --------------------------------------------------------------------------- 4


def test_requests_during_drain_go_elsewhere(stack_factory, fake_upstream):
    """While one of two workers drains a long stream, 20 quick requests (health and
    non-streaming chat) are all served at once by the other worker."""
    s = stack_factory(workers=2, env={"RAGSTREAM_GRACE_S": "10"})
    runner = StreamRunner(s, timeout=40)
    longs = [f"Long during drain {i} {uniq()} [[fake: tokens=30, gap_ms=100]]" for i in range(4)]
    for q in longs:
        runner.start(q)
    wait_until(lambda: all(q in runner.first_at for q in longs), 10, what="the long streams")
    counts = [unix_connections(p.pid, sock_path(s, i)) for i, p in enumerate(s.workers)]
    victim = max(range(2), key=lambda i: counts[i])
    assert counts[victim] >= 1, counts
    p = s.workers[victim]
    p.send_signal(signal.SIGTERM)
    wait_until(lambda: not sock_path(s, victim).exists(), 3, interval=0.01,
               what="the draining worker to remove its socket")
    outcomes = []
    for i in range(20):
        t = time.monotonic()
        try:
            if i % 2 == 0:
                r = s.get("/api/health", timeout=10)
            else:
                r = s.post_json("/api/chat/message", {"message": f"quick {i} {uniq()}"},
                                timeout=10)
            outcomes.append((r.status, round(time.monotonic() - t, 3)))
        except OSError as e:
            outcomes.append((repr(e), round(time.monotonic() - t, 3)))
    runner.join(30)
    code = p.wait(15)
    print(f"\nrunning requests per worker at SIGTERM: {counts}, drained worker {victim + 1}; "
          f"quick requests (status, s): {outcomes}; drained worker exit code {code}")
    assert all(st == 200 and secs < 1.0 for st, secs in outcomes), outcomes
    assert code == 0
    for q in longs:
        r = runner.results[q]
        assert isinstance(r, harness.StreamResult) and len(r.done_events) == 1 \
            and r.done["status"] == "complete", (q, r)


# --------------------------------------------------------------------------- 5


KILL_STREAMS = 30
KILL_TOKENS = 30


def test_kill9_loses_no_committed_message(stack_factory, fake_upstream):
    """SIGKILL one of two workers 1 s into 30 three-second streams, then restart it: the
    store stays consistent (mdb_stat), every user message of a started stream is stored
    exactly once, every answer whose done event arrived is stored complete and equal to
    what was streamed. Streams of the killed worker end without a done event."""
    s = stack_factory(workers=2)
    fake_upstream.script(default={"tokens": KILL_TOKENS, "gap_ms": 100})
    runner = StreamRunner(s, timeout=40)
    questions = [f"Kill nine {i} {uniq()}" for i in range(KILL_STREAMS)]
    victim = s.workers[0]
    try:
        for q in questions:
            runner.start(q)
        time.sleep(1.0)
        in_flight = unix_connections(victim.pid, sock_path(s, 0))
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        np = spawn_worker(s, 0, "after-kill")
        s.workers[0] = np  # the stack's teardown stops it
        wait_worker_ready(s, 0, np)
        runner.join(40)
    finally:
        stop_extra([victim])

    r = mdb("mdb_stat", "-a", str(s.data_dir))
    assert r.returncode == 0, (r.stdout, r.stderr)

    started = [q for q in questions if q in runner.conv_of]
    with_done = [q for q in started if isinstance(runner.results[q], harness.StreamResult)
                 and runner.results[q].done is not None]
    without_done = [q for q in started if q not in with_done]
    no_first = [q for q in questions if q not in runner.conv_of]
    print(f"\nkilled worker had {in_flight} requests running; streams: {len(questions)}, "
          f"first event {len(started)}, done {len(with_done)}, cut without done "
          f"{len(without_done)}, no first event {len(no_first)} "
          f"({[repr(runner.results[q])[:120] for q in no_first]})")

    endings = collections.Counter(
        ("exception: " + type(runner.results[q]).__name__)
        if not isinstance(runner.results[q], harness.StreamResult)
        else ("body ended cleanly" if runner.results[q].complete else "connection cut")
        for q in without_done)
    print(f"how the killed worker's streams ended for the client: {dict(endings)}")

    # Every user message stored exactly once, in exactly one conversation.
    everything = collections.Counter()
    conversations = {}
    for cid in all_conversation_ids(s):
        conversations[cid] = s.conversation(cid)
        for m in conversations[cid]["messages"]:
            if m["role"] == "user":
                everything[m["content"]] += 1
    for q in started:
        assert everything[q] == 1, (q, everything[q])
    assert all(n == 1 for n in everything.values()), everything.most_common(3)

    for q in with_done:
        res = runner.results[q]
        assert res.status == 200 and len(res.done_events) == 1, res
        assert res.done["status"] == "complete", res.done
        msgs = conversations[runner.conv_of[q]]["messages"]
        assert [(m["role"], m["status"]) for m in msgs] == [("user", "complete"),
                                                             ("assistant", "complete")], msgs
        assert msgs[1]["content"] == res.text == fake_tokens_answer(KILL_TOKENS)

    # The killed worker's streams: nginx ends them without a done event; their answers are
    # still `streaming` here, within RAGSTREAM_ORPHAN_TIMEOUT_S (15 s by default) of the
    # kill; test_cancel_orphans.py checks that they are then marked `interrupted`.
    assert without_done, "the killed worker was serving no stream"
    for q in without_done:
        res = runner.results[q]
        if isinstance(res, harness.StreamResult):
            assert res.done_events == [], res
            streamed = res.text
        else:
            streamed = None  # the connection was reset: the client saw an exception
        msgs = conversations[runner.conv_of[q]]["messages"]
        assert [(m["role"], m["status"]) for m in msgs] == [("user", "complete"),
                                                             ("assistant", "streaming")], msgs
        if streamed is not None:
            assert streamed.startswith(msgs[1]["content"]), (msgs[1]["content"], streamed)
    # The restarted worker serves.
    after = s.stream({"message": f"after the kill {uniq()} [[fake: tokens=3, gap_ms=5]]"})
    assert after.done and after.done["status"] == "complete", after
    s.assert_alive()


# --------------------------------------------------------------------------- 6


def test_request_queued_in_backlog_at_sigterm_is_served(stack_factory, fake_upstream):
    """A request the worker's pool could not take yet waits in its listen backlog (DESIGN:
    "a stream beyond the pool waits in the listen backlog"). nginx has already handed it to
    this worker, so it cannot go elsewhere (a POST that reached a worker is never retried).
    When that worker gets SIGTERM, the request must still be answered within the grace
    period, not dropped: the drain is meant to lose no request."""
    s = stack_factory(workers=1, env={"RAGSTREAM_THREADS": "2", "RAGSTREAM_GRACE_S": "10"})
    p = s.workers[0]
    runner = StreamRunner(s, timeout=30)
    busy = [f"Pool filler {i} {uniq()} [[fake: tokens=15, gap_ms=100]]" for i in range(2)]
    for q in busy:
        runner.start(q)
    wait_until(lambda: all(q in runner.first_at for q in busy), 10, what="both pool threads")
    queued = f"Queued in the backlog {uniq()} [[fake: tokens=3, gap_ms=10]]"
    runner.start(queued)

    def in_backlog():
        """A connection queued on the path and not accepted yet shows in /proc/net/unix in
        state 02 (SS_CONNECTING) with inode 0; the worker still holds only its 2."""
        with open("/proc/net/unix") as f:
            queued_n = sum(1 for line in f if line.split()[7:8] == [str(sock_path(s, 0))]
                           and line.split()[5] == "02")
        return queued_n >= 1 and unix_connections(p.pid, sock_path(s, 0)) == 2
    wait_until(in_backlog, 5, what="the third request to wait in the worker's backlog")
    t_term = time.monotonic()
    p.send_signal(signal.SIGTERM)
    runner.join(30)
    code = p.wait(15)
    r = runner.results[queued]
    waited = (r.t_end - t_term) if isinstance(r, harness.StreamResult) else None
    print(f"\nqueued request after SIGTERM: {r!r}"[:400] + f"; ended {waited}s after SIGTERM; "
          f"worker exit code {code}")
    for q in busy:
        b = runner.results[q]
        assert isinstance(b, harness.StreamResult) and b.done["status"] == "complete", b
    assert code == 0
    nginx_errors = (s.prefix / "logs" / "error.log").read_text(errors="replace")[-600:]
    assert isinstance(r, harness.StreamResult) and r.status == 200, \
        f"the request queued at SIGTERM was dropped: {r!r}; nginx error.log: {nginx_errors}"
    assert len(r.done_events) == 1 and r.done["status"] == "complete", r


# --------------------------------------------------------------------------- 7


class TcpStack(harness.Stack):
    """Like Stack, but the workers listen on 127.0.0.1 TCP ports (--listen HOST:PORT, the
    "another host's pool over TCP" line of nginx/ragstream.site.conf)."""

    def _start(self, n: int) -> None:
        self.tcp_ports = []
        placeholders = []
        for i in range(1, n + 1):
            port = harness.free_port()
            log = self.log_dir / f"worker-{i}.log"
            harness.PRODUCT_LOG_FILES.append(log)
            f = open(log, "ab")
            self._files.append(f)
            p = start_process([str(harness.WORKER_BIN), "--listen", f"127.0.0.1:{port}"],
                              env=self.env, stdout=f, stderr=f)
            self.workers.append(p)
            self.worker_logs.append(log)
            self.tcp_ports.append(port)
            placeholders.append(self.sock_dir / f"tcp-{i}.placeholder")
        for log, p in zip(self.worker_logs, self.workers):
            wait_until(lambda: logged_started(log, p.pid) or p.poll() is not None, 10,
                       what="a TCP worker to start")
            if p.poll() is not None:
                raise RuntimeError(f"worker exited with {p.returncode}: {self.logs_text()}")
        self.port = harness.free_port()
        subprocess.run([str(harness.RENDER_SCRIPT), str(self.prefix), str(self.port),
                        *map(str, placeholders)], check=True, stdout=subprocess.DEVNULL)
        conf = self.prefix / "conf" / "nginx.conf"
        text = conf.read_text()
        for ph, port in zip(placeholders, self.tcp_ports):
            assert f"unix:{ph}" in text
            text = text.replace(f"unix:{ph}", f"127.0.0.1:{port}")
        conf.write_text(text)
        self.nginx_out = self.log_dir / "nginx.out"
        f = open(self.nginx_out, "ab")
        self._files.append(f)
        self.nginx = start_process(["nginx", "-p", f"{self.prefix}/", "-c", "conf/nginx.conf",
                                    "-e", "logs/error.log"], stdout=f, stderr=f)
        for name in ("error.log", "access.log"):
            harness.PRODUCT_LOG_FILES.append(self.prefix / "logs" / name)
        harness.PRODUCT_LOG_FILES.append(self.nginx_out)

        def ready():
            if self.nginx.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.nginx_out.read_text()}")
            try:
                return self.get("/api/health", timeout=2).status == 200
            except OSError:
                return False
        wait_until(ready, 15, interval=0.05, what="GET /api/health 200")


def tcp_connections(pid: int, port: int) -> int:
    """Established TCP connections process `pid` accepted on local port `port`."""
    established = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local_port = int(parts[1].split(":")[1], 16)
            if local_port == port and parts[3] == "01":  # TCP_ESTABLISHED
                established.add(parts[9])
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in established:
            n += 1
    return n


def test_requests_during_drain_go_elsewhere_tcp_workers(session_dir, _fake_process,
                                                       fake_upstream):
    """Test 4 with workers listening on TCP: a draining worker has no socket file to remove,
    so it must stop its port from taking connections (close the listening socket), or nginx
    connects, hands the request over, and waits until that worker exits."""
    s = TcpStack(Path(tempfile.mkdtemp(prefix="tcp-drain-", dir=session_dir)),
                 _fake_process.base_url, workers=2, env={"RAGSTREAM_GRACE_S": "10"})
    try:
        runner = StreamRunner(s, timeout=40)
        longs = [f"Long TCP {i} {uniq()} [[fake: tokens=30, gap_ms=100]]" for i in range(4)]
        for q in longs:
            runner.start(q)
        wait_until(lambda: all(q in runner.first_at for q in longs), 10, what="long streams")
        counts = [tcp_connections(p.pid, port) for p, port in zip(s.workers, s.tcp_ports)]
        victim = max(range(2), key=lambda i: counts[i])
        assert counts[victim] >= 1, counts
        p = s.workers[victim]
        t_term = time.monotonic()
        p.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # Concurrently, so that several of them meet the draining worker's port.
        outcomes: list = [None] * 20

        def quick(i):
            t = time.monotonic()
            try:
                if i % 2 == 0:
                    r = s.get("/api/health", timeout=15)
                    what = "GET"
                else:
                    r = s.post_json("/api/chat/message", {"message": f"quick {i} {uniq()}"},
                                    timeout=15)
                    what = "POST"
                outcomes[i] = (what, r.status, round(time.monotonic() - t, 3))
            except OSError as e:
                outcomes[i] = ("?", repr(e), round(time.monotonic() - t, 3))
        threads = [threading.Thread(target=quick, args=(i,), daemon=True) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        runner.join(30)
        code = p.wait(15)
        print(f"\nTCP workers: running per worker at SIGTERM {counts}, drained worker "
              f"{victim + 1}; quick requests (status, s): {outcomes}; exit code {code}; "
              f"{time.monotonic() - t_term:.1f}s since SIGTERM")
        assert code == 0
        slow = [o for o in outcomes if o[1] != 200 or o[2] >= 1.0]
        assert not slow, (f"{len(slow)} of 20 requests met the draining worker's still-open TCP "
                          f"listening socket (held until it exited; POSTs then 502): {outcomes}")
    finally:
        s.stop()


def test_the_map_grows_online_under_two_workers(stack_factory, fake_upstream):
    """RAGSTREAM_MAP_SIZE_MB=4 with a 4 MB step: ingesting several times that through two
    workers grows the map online, each worker adopting the other's growth, while an answer
    streams; every document is stored and the answer completes (before: 507 store_full for
    every later document, and MDB_MAP_RESIZED on the other workers)."""
    s = stack_factory(workers=2, env={"RAGSTREAM_MAP_SIZE_MB": "4", "RAGSTREAM_MAP_GROW_MB": "4"})
    before = s.get("/api/health").json["store"]["map_size_bytes"]
    result = {}

    def answer():
        result["r"] = s.stream({"message": f"grow {harness.uniq()} [[fake: tokens=80, gap_ms=40]]"},
                               timeout=60)
    t = threading.Thread(target=answer)
    t.start()
    statuses = []
    for i in range(40):
        words = " ".join(f"w{i}x{j}" for j in range(6000))
        r = s.post_json("/api/documents", {"title": f"Filler {i}", "text": words})
        statuses.append(r.status)
    t.join(60)
    assert statuses == [201] * 40, statuses
    done = result["r"].done
    assert done and done["status"] == "complete", result["r"]
    after = s.get("/api/health").json["store"]
    assert after["map_size_bytes"] > before, (before, after)
    logs = s.logs_text()
    assert "grew the LMDB map" in logs
    m = s.get("/metrics").body.decode()
    growths = [int(line.split()[-1]) for line in m.splitlines()
               if line.startswith("ragstream_lmdb_map_growths_total ")]
    assert growths and growths[0] >= 1, [x for x in m.splitlines() if "map" in x]
    # Every document is searchable from either worker.
    for _ in range(4):
        r = s.post_json("/api/search", {"query": "w39x5999", "mode": "lexical"})
        assert r.status == 200 and r.json["results"], r
