#!/usr/bin/env python3
"""Crash loop: streaming load while workers are SIGKILLed and restarted, then a store check.

Starts the fake OpenAI upstream and N ragstream workers behind nginx (loopback only, in a
temporary directory), keeps --streams concurrent streaming exchanges running (each a new
conversation, ~20 tokens 30-60 ms apart) for --seconds, while the main thread SIGKILLs a
random worker every 200-600 ms and restarts it on the same socket with the same env.

Afterwards every worker is stopped, mdb_stat -a must pass, one fresh worker is started on
the data dir (RAGSTREAM_ORPHAN_TIMEOUT_S=2) and, after its orphan sweep, the API must show:
  - every user message whose request got its first event stored exactly once (and no user
    text stored twice anywhere);
  - every assistant message in a terminal status (complete, error, cancelled, interrupted);
  - every request whose done event said `complete` stored complete, equal to what streamed.

With --batch, --batch-clients threads also ingest through POST /api/documents/batch all
the while (NDJSON, 5-40 documents a request, some of ~40 KB, each with a unique token) and
remember which documents a 200 answer confirmed. Afterwards every confirmed document must be
listed with its text intact and be found by its token; and every listed document must be
whole (chunks > 0, its text as sent, found by its token within itself): a batch cut by a kill
leaves each of its documents fully present or absent.

Standard library only; reuses tests/integration/harness.py. Builds nothing: expects
build/ragstream-worker (exit 2 when it, nginx or mdb_stat is missing). Exit 0 on PASS, 1 on
FAIL. Every process it starts is stopped by its pid on exit, also on Ctrl-C.

    /usr/bin/python3 tests/crash/crash_loop.py --seconds 120 --streams 200 --workers 4
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness  # noqa: E402
from harness import (FakeUpstream, Stack, socket_accepts, start_process, stop_process,  # noqa: E402
                     stream_request)

TERMINAL = {"complete", "error", "cancelled", "interrupted"}
TOKENS = 20
EXPECTED = harness.fake_tokens_answer(TOKENS)  # "tok0 tok1 ... tok19 "


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="SIGKILL random ragstream workers under streaming load, then check the store.")
    ap.add_argument("--seconds", type=float, default=120, help="load duration (default 120)")
    ap.add_argument("--streams", type=int, default=200, help="concurrent streams (default 200)")
    ap.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    ap.add_argument("--kill-min-ms", type=int, default=200, help="shortest pause between kills")
    ap.add_argument("--kill-max-ms", type=int, default=600, help="longest pause between kills")
    ap.add_argument("--orphan-timeout", type=int, default=2,
                    help="RAGSTREAM_ORPHAN_TIMEOUT_S for every worker (default 2)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    ap.add_argument("--grow", action="store_true",
                    help="start with an 8 MB map growing by 8 MB and ingest documents all the "
                         "while, so the map grows online under the kills; checks that every "
                         "stored document survives and the map grew at least twice")
    ap.add_argument("--batch", action="store_true",
                    help="also ingest NDJSON batches (POST /api/documents/batch) under the kills; "
                         "checks confirmed documents survive whole and no document is half-written")
    ap.add_argument("--batch-clients", type=int, default=3,
                    help="concurrent batch clients with --batch (default 3)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    a = ap.parse_args(argv)
    if a.seconds <= 0 or a.streams < 1 or a.workers < 1 or a.kill_min_ms < 0 \
            or a.kill_max_ms < a.kill_min_ms:
        ap.error("bad arguments")
    return a


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- the load


class Load:
    """--streams client threads; each runs one stream after another until the deadline."""

    def __init__(self, port: int, streams: int, deadline: float, rng_seed: int):
        self.port = port
        self.deadline = deadline
        self.lock = threading.Lock()
        self.records: list[dict] = []
        self.threads = [threading.Thread(target=self._run, args=(rng_seed + i,), daemon=True,
                                         name=f"client-{i}") for i in range(streams)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self, timeout: float) -> int:
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        return sum(t.is_alive() for t in self.threads)

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < self.deadline:
            self.one(rng)

    def one(self, rng: random.Random) -> None:
        text = f"crash {harness.uniq()} [[fake: tokens={TOKENS}, gap_ms={rng.randint(30, 60)}]]"
        rec = {"text": text, "first": False, "conv_id": None, "msg_id": None, "tokens": [],
               "done": None, "status": None, "error": None}
        with self.lock:
            self.records.append(rec)

        def on_item(res, item):
            if item.kind != "event" or not isinstance(item.json, dict):
                return False
            j = item.json
            if not rec["first"]:
                rec["first"] = True
                rec["conv_id"] = j.get("conversation_id")
                rec["msg_id"] = j.get("message_id")
            elif j.get("done") is True:
                rec["done"] = j
            elif isinstance(j.get("token"), str):
                rec["tokens"].append(j["token"])
            return False

        try:
            res = stream_request(self.port, {"message": text}, timeout=30, stop=on_item)
            rec["status"] = res.status
            if res.status != 200:
                rec["error"] = f"HTTP {res.status}"
        except Exception as e:  # noqa: BLE001 - a cut connection is an expected outcome
            rec["error"] = type(e).__name__


# --------------------------------------------------------------------------- workers


def sock_path(stack: Stack, i: int) -> Path:
    return stack.worker_socket(i)


def restart_worker(stack: Stack, i: int) -> subprocess.Popen:
    """Starts a replacement for slot i on the same socket, with the stack's env (main thread)."""
    f = open(stack.log_dir / f"worker-{i + 1}.restarts.log", "ab")
    stack._files.append(f)  # closed by Stack.stop()
    p = start_process([str(harness.WORKER_BIN), "--listen", f"unix:{sock_path(stack, i)}"],
                      env=stack.env, stdout=f, stderr=f)
    stack.workers[i] = p  # Stack.stop() stops it
    return p


def wait_ready(stack: Stack, i: int, p: subprocess.Popen, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.poll() is not None:
            return False
        if socket_accepts(sock_path(stack, i)):
            return True
        time.sleep(0.02)
    return False


def kill_loop(stack: Stack, deadline: float, rng: random.Random, a, counts, problems) -> None:
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(a.kill_min_ms, a.kill_max_ms) / 1000.0)
        if time.monotonic() >= deadline:
            break
        i = rng.randrange(len(stack.workers))
        victim = stack.workers[i]
        if victim.poll() is not None:
            problems.append(f"worker slot {i + 1} (pid {victim.pid}) had exited by itself "
                            f"with {victim.returncode}")
        else:
            victim.send_signal(signal.SIGKILL)
            counts["kills"] += 1
        stop_process(victim, signal.SIGKILL, timeout=5)  # reaps it, forgets it
        p = restart_worker(stack, i)
        counts["restarts"] += 1
        if not wait_ready(stack, i, p):
            problems.append(f"replacement worker slot {i + 1} (pid {p.pid}) not ready "
                            f"(exit {p.poll()})")


# --------------------------------------------------------------------------- checks


def all_conversation_ids(stack: Stack) -> list[str]:
    ids, cursor = [], None
    while True:
        path = "/api/conversations?limit=100" + (f"&cursor={cursor}" if cursor else "")
        r = stack.get(path, timeout=60)
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r!r}")
        ids += [c["id"] for c in r.json["conversations"]]
        cursor = r.json.get("next_cursor")
        if not cursor:
            return ids


def fetch_conversations(stack: Stack, ids) -> dict:
    def get(cid):
        r = stack.get(f"/api/conversations/{cid}", timeout=60)
        return cid, (r.json if r.status == 200 else None)
    with ThreadPoolExecutor(8) as ex:
        return dict(ex.map(get, ids))


def mdb_stat(data_dir: Path) -> tuple[bool, str]:
    r = subprocess.run(["mdb_stat", "-a", str(data_dir)], capture_output=True, text=True,
                       timeout=120)
    return r.returncode == 0, (r.stdout + r.stderr)[-1500:]


class Ingest(threading.Thread):
    """POSTs unique ~40 KB documents back to back until the deadline; remembers every id
    that came back 201 (committed, so it must survive every kill)."""

    def __init__(self, port: int, deadline: float):
        super().__init__(daemon=True)
        self.port, self.deadline = port, deadline
        self.stored: list[str] = []
        self.failures = collections.Counter()

    def run(self):
        i = 0
        while time.monotonic() < self.deadline:
            i += 1
            text = " ".join(f"grow{i}w{j}" for j in range(4500))
            body = json.dumps({"title": f"Load {i}", "text": text}).encode()
            try:
                r = harness.http_request(self.port, "POST", "/api/documents", body,
                                         {"Content-Type": "application/json"}, timeout=30)
            except OSError as e:
                self.failures[type(e).__name__] += 1
                continue
            if r.status == 201:
                self.stored.append(r.json["id"])
            else:
                self.failures[r.status] += 1


class BatchIngest(threading.Thread):
    """POSTs NDJSON batches of 5-40 unique documents (one in six ~40 KB) until the deadline.
    Every document sent is remembered by its title; those a 200 answer listed with an id are
    confirmed (committed: they must survive every kill)."""

    def __init__(self, port: int, deadline: float, seed: int, name: str):
        super().__init__(daemon=True, name=name)
        self.port, self.deadline, self.rng, self.tag = port, deadline, random.Random(seed), name
        self.sent: dict[str, dict] = {}  # title -> {"text", "token", "id"}
        self.requests = collections.Counter()

    def make_doc(self, n: int) -> dict:
        token = f"bq{harness.uniq()}"
        title = f"Batch {self.tag} {n} {token}"
        if self.rng.random() < 1 / 6:
            body = " ".join(f"bulk{self.rng.randrange(10**6)} word{j}" for j in range(2500))
        else:
            body = " ".join(f"line{self.rng.randrange(1000)}" for _ in range(self.rng.randint(5, 80)))
        text = f"{token} opens this document. {body}\n\nAnd {token} closes it."
        return {"title": title, "text": text, "token": token, "id": None}

    def run(self):
        n = 0
        while time.monotonic() < self.deadline:
            docs = []
            for _ in range(self.rng.randint(5, 40)):
                n += 1
                docs.append(self.make_doc(n))
            for d in docs:
                self.sent[d["title"]] = d
            body = "".join(json.dumps({"title": d["title"], "text": d["text"]}) + "\n"
                           for d in docs).encode()
            try:
                r = harness.http_request(self.port, "POST", "/api/documents/batch", body,
                                         {"Content-Type": "application/x-ndjson"}, timeout=60)
            except OSError as e:
                self.requests[type(e).__name__] += 1
                continue
            self.requests[r.status] += 1
            if r.status != 200:
                continue
            for item in r.json.get("documents", []):
                if item.get("id") and not item.get("error"):
                    docs[item["index"]]["id"] = item["id"]


def check_batches(stack: Stack, batches: list, results: list) -> dict:
    """Confirmed batch documents are listed, intact and findable; every listed document is
    whole (chunks > 0, text as sent for batch documents, found by its token within itself)."""
    r = stack.get("/api/documents", timeout=120)
    if r.status != 200:
        raise RuntimeError(f"GET /api/documents: {r!r}")
    listed = r.json["documents"]
    sent = {t: d for b in batches for t, d in b.sent.items()}
    confirmed = {t: d for t, d in sent.items() if d["id"]}
    by_id = {d["id"]: d for d in listed}
    missing = [d["id"] for d in confirmed.values() if d["id"] not in by_id]
    results.append((f"every batch document a 200 confirmed is listed ({len(confirmed)} of "
                    f"{len(sent)} sent)", not missing and confirmed, str(missing[:5])))
    titles = collections.Counter(d["title"] for d in listed)
    twice = [t for t, n in titles.items() if n > 1]
    results.append(("no document is stored twice", not twice, str(twice[:3])))

    def token_of(d):
        if d["title"] in sent:
            return sent[d["title"]]["token"]
        if d["title"].startswith("Load "):  # the --grow ingester's: "grow{i}w0 grow{i}w1 ..."
            return f"grow{d['title'].split()[1]}w0"
        return None

    def check_one(d):
        """A list of problems of one listed document."""
        out = []
        if not d.get("chunks"):
            out.append(f"{d['id']} has no chunks")
        s = sent.get(d["title"])
        if s is not None:
            if s["id"] and s["id"] != d["id"]:
                out.append(f"{d['id']} listed under another id than confirmed {s['id']}")
            g = stack.get(f"/api/documents/{d['id']}", timeout=60)
            if g.status != 200 or g.json.get("text") != s["text"]:
                out.append(f"{d['id']} text differs or unreadable ({g.status})")
        token = token_of(d)
        if token is None:
            out.append(f"{d['id']} has an unknown title {d['title']!r}")
            return out
        q = stack.request("POST", "/api/search", body={"query": token, "mode": "lexical",
                                                       "document_ids": [d["id"]]}, timeout=60)
        if q.status != 200 or [x["document_id"] for x in q.json["results"]][:1] != [d["id"]]:
            out.append(f"{d['id']} not found by its token within itself ({q.status})")
        if s is not None and s["id"]:
            q = stack.request("POST", "/api/search", body={"query": token, "mode": "lexical"},
                              timeout=60)
            if q.status != 200 or [x["document_id"] for x in q.json["results"]][:1] != [d["id"]]:
                out.append(f"{d['id']} not found first by its token ({q.status})")
        return out

    with ThreadPoolExecutor(8) as ex:
        problems = [p for ps in ex.map(check_one, listed) for p in ps]
    unconfirmed_listed = sum(1 for d in listed if d["title"] in sent
                             and not sent[d["title"]]["id"])
    results.append((f"every listed document is whole: chunks > 0, text as sent, found by its "
                    f"token ({len(listed)} listed, {unconfirmed_listed} of them never confirmed)",
                    not problems, "; ".join(problems[:5])))
    return {"sent": len(sent), "confirmed": len(confirmed), "listed": len(listed),
            "unconfirmed_listed": unconfirmed_listed,
            "requests": dict(sum((b.requests for b in batches), collections.Counter()))}


def check_growth(stack: Stack, ingest: "Ingest", map_mb: int, grow_mb: int, results: list):
    missing = [d for d in ingest.stored if stack.get(f"/api/documents/{d}").status != 200]
    results.append((f"every document stored with 201 survives ({len(ingest.stored)}; "
                    f"failures {dict(ingest.failures)})", not missing and ingest.stored,
                    str(missing[:5])))
    size = stack.get("/api/health").json["store"]["map_size_bytes"]
    results.append((f"the map grew online at least twice ({map_mb} MB -> {size >> 20} MB)",
                    size >= (map_mb + 2 * grow_mb) << 20, ""))
    # Final states stay final: the same statuses a few seconds later.
    first = {cid: [m["status"] for m in stack.conversation(cid)["messages"]]
             for cid in all_conversation_ids(stack)[:200]}
    time.sleep(3)
    changed = [cid for cid, st in first.items()
               if [m["status"] for m in stack.conversation(cid)["messages"]] != st]
    results.append(("no final state changes afterwards", not changed, str(changed[:5])))


def check(stack: Stack, records: list[dict], results: list) -> dict:
    def verdict(name, ok, detail=""):
        results.append((name, ok, detail))

    ids = all_conversation_ids(stack)
    convs = fetch_conversations(stack, ids)
    missing_convs = [cid for cid, c in convs.items() if c is None]
    verdict("every listed conversation can be fetched", not missing_convs, str(missing_convs[:5]))

    user_count = collections.Counter()
    assistants = []
    for c in convs.values():
        if c is None:
            continue
        for m in c["messages"]:
            if m["role"] == "user":
                user_count[m["content"]] += 1
            elif m["role"] == "assistant":
                assistants.append(m)

    # 1. every user message whose request got its first event is stored exactly once, in
    #    the conversation the first event named.
    bad = []
    for r in records:
        if not r["first"]:
            continue
        c = convs.get(r["conv_id"])
        in_conv = sum(1 for m in (c or {}).get("messages", [])
                      if m["role"] == "user" and m["content"] == r["text"])
        if in_conv != 1 or user_count[r["text"]] != 1:
            bad.append((r["conv_id"], in_conv, user_count[r["text"]]))
    verdict("user message of every request with a first event stored exactly once",
            not bad, f"{len(bad)} bad, e.g. {bad[:3]}")
    dup = [(t, n) for t, n in user_count.items() if n > 1]
    verdict("no user message stored twice anywhere", not dup, f"{len(dup)}: {dup[:3]}")

    # 2. every assistant message is in a terminal status.
    st = collections.Counter(m.get("status") for m in assistants)
    nonterminal = [m for m in assistants if m.get("status") not in TERMINAL]
    verdict("every assistant message in a terminal status", not nonterminal,
            f"{len(nonterminal)}, e.g. {[(m.get('id'), m.get('status')) for m in nonterminal[:3]]}")
    garbage = [m.get("id") for m in assistants if not EXPECTED.startswith(m.get("content") or "")]
    verdict("every stored answer is a prefix of the upstream's answer", not garbage,
            f"{len(garbage)}, e.g. {garbage[:3]}")

    # 3. every done-complete request is stored complete and equal to what streamed.
    lost = []
    for r in records:
        d = r["done"]
        if not d or d.get("status") != "complete":
            continue
        streamed = "".join(r["tokens"])
        c = convs.get(r["conv_id"]) or {}
        ms = [m for m in c.get("messages", []) if m["role"] == "assistant"]
        m = next((m for m in ms if m.get("id") == r["msg_id"]), None)
        if (m is None or m.get("status") != "complete" or m.get("content") != streamed
                or streamed != EXPECTED):
            lost.append((r["conv_id"], r["msg_id"], m and m.get("status"),
                         m and m.get("content"), streamed))
    verdict("every done=complete answer stored complete and equal to the stream", not lost,
            f"{len(lost)}, e.g. {lost[:2]}")
    return {"conversations": len(ids), "assistant_status": dict(st),
            "user_messages": sum(user_count.values())}


# --------------------------------------------------------------------------- main


def _sigterm(signum, frame):
    raise KeyboardInterrupt  # same cleanup as Ctrl-C


def main(argv=None) -> int:
    a = parse_args(argv)
    if not harness.WORKER_BIN.exists():
        print(f"{harness.WORKER_BIN} is missing: build it first (scripts/build.sh)", file=sys.stderr)
        return 2
    for tool in ("nginx", "mdb_stat"):
        if shutil.which(tool) is None:
            print(f"{tool} is not on PATH (apt-get install nginx lmdb-utils)", file=sys.stderr)
            return 2
    seed = a.seed if a.seed is not None else int(time.time())
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="ragstream-crash-"))
    # A private copy of the binary, so a rebuild during the run cannot swap it.
    (tmp / "bin").mkdir()
    shutil.copy2(harness.WORKER_BIN, tmp / "bin" / "ragstream-worker")
    harness.WORKER_BIN = tmp / "bin" / "ragstream-worker"
    map_mb, grow_mb = (8, 8) if a.grow else (2048, 1024)
    env = {"RAGSTREAM_ORPHAN_TIMEOUT_S": str(a.orphan_timeout),
           "RAGSTREAM_MAP_SIZE_MB": str(map_mb), "RAGSTREAM_MAP_GROW_MB": str(grow_mb),
           "RAGSTREAM_THREADS": "128", "RAGSTREAM_LOG_LEVEL": "warn",
           "RAGSTREAM_PING_INTERVAL_MS": "5000"}
    counts = collections.Counter()
    problems: list[str] = []
    results: list = []
    fake = stack = final = load = None
    old_term = signal.signal(signal.SIGTERM, _sigterm)
    try:
        log(f"seed {seed}; temp dir {tmp}")
        fake = FakeUpstream(tmp / "fake")
        stack = Stack(tmp / "stack", fake.base_url, workers=a.workers, env=env)
        data_dir = tmp / "stack" / "data"
        log(f"{a.workers} workers behind nginx on 127.0.0.1:{stack.port}; "
            f"{a.streams} streams for {a.seconds:g} s, a SIGKILL every "
            f"{a.kill_min_ms}-{a.kill_max_ms} ms")
        t0 = time.monotonic()
        deadline = t0 + a.seconds
        load = Load(stack.port, a.streams, deadline, seed * 1000)
        load.start()
        ingest = Ingest(stack.port, deadline) if a.grow else None
        if ingest:
            ingest.start()
        batches = [BatchIngest(stack.port, deadline, seed * 7919 + i, f"b{i}")
                   for i in range(a.batch_clients)] if a.batch else []
        for b in batches:
            b.start()
        kill_loop(stack, deadline, rng, a, counts, problems)
        if ingest:
            ingest.join(60)
        for b in batches:
            b.join(90)
            if b.is_alive():
                problems.append(f"batch client {b.name} still running 90 s after the deadline")
        log(f"load time over; {counts['kills']} kills; waiting for the last streams")
        stuck = load.join(60)
        if stuck:
            problems.append(f"{stuck} client threads still running 60 s after the deadline")
        codes = stack.stop()
        bad_exit = {k: v for k, v in codes.items() if v != 0}
        log(f"stack stopped (exit codes not 0: {bad_exit or 'none'})")
        ok, out = mdb_stat(data_dir)
        results.append(("mdb_stat -a after the kills exits 0", ok, "" if ok else out))

        # One fresh worker on the data dir; its sweep marks the orphans interrupted.
        final = Stack(tmp / "final", fake.base_url, workers=1,
                      env={**env, "RAGSTREAM_DATA_DIR": str(data_dir)})
        time.sleep(4)
        t_sweep = time.monotonic()
        with load.lock:
            records = list(load.records)
        stats = check(final, records, results)
        if ingest:
            check_growth(final, ingest, map_mb, grow_mb, results)
        batch_stats = check_batches(final, batches, results) if batches else None
        ok, out = mdb_stat(data_dir)
        results.append(("mdb_stat -a after the checks exits 0", ok, "" if ok else out))
        results.append(("the kill loop saw no unexpected worker exits or failed restarts",
                        not problems, "; ".join(problems[:5])))

        # ---- report
        n = len(records)
        first = sum(r["first"] for r in records)
        done = [r for r in records if r["done"]]
        by_done = collections.Counter(r["done"].get("status") for r in done)
        no_done = collections.Counter(
            (r["error"] or "body ended without done") for r in records
            if r["first"] and not r["done"])
        no_first = collections.Counter(
            (r["error"] or f"HTTP {r['status']}") for r in records if not r["first"])
        print()
        print(f"seed                         {seed}")
        print(f"duration                     {a.seconds:g} s, {a.streams} streams, "
              f"{a.workers} workers")
        print(f"requests                     {n}")
        print(f"  with first event           {first}")
        print(f"  with done event            {len(done)}  by status: {dict(by_done)}")
        print(f"  first event, no done       {sum(no_done.values())}  {dict(no_done)}")
        print(f"  no first event             {n - first}  {dict(no_first)}")
        print(f"kills                        {counts['kills']}")
        print(f"restarts                     {counts['restarts']}")
        print(f"conversations stored         {stats['conversations']}")
        print(f"stored answers by status     {stats['assistant_status']}")
        if batch_stats:
            print(f"batch documents              sent {batch_stats['sent']}, confirmed "
                  f"{batch_stats['confirmed']}, listed {batch_stats['listed']} "
                  f"({batch_stats['unconfirmed_listed']} never confirmed)")
            print(f"batch requests               {batch_stats['requests']}")
        print(f"checks done in               {time.monotonic() - t_sweep:.1f} s")
        print()
        for name, ok, detail in results:
            print(f"{'PASS' if ok else 'FAIL'}  {name}" + ("" if ok or not detail else f": {detail}"))
        failed = not all(ok for _, ok, _ in results)
        print("FAIL" if failed else "PASS")
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("interrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, old_term)
        for s in (final, stack):
            if s is not None:
                try:
                    s.stop()
                except Exception as e:  # noqa: BLE001
                    print(f"stopping a stack: {e}", file=sys.stderr)
        if fake is not None:
            fake.stop()
        harness.stop_all_started()
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
