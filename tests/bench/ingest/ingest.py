#!/usr/bin/env python3
"""Part 7 of scripts/bench.sh: ingestion against SQLite FTS5 (run by run.sh, stdlib only).

What it measures, on one corpus and in one run:
  corpus   real text nobody here wrote: Debian's changelogs, NEWS, READMEs and copyright files
           under /usr/share/doc (.gz decompressed), valid UTF-8 only, each cut to 200 kB at a
           line boundary, identical texts once, in sorted path order, up to --mb MB.
  single   POST /api/documents, one JSON {"title","text"} per request, 2 client threads, into
           nginx + 2 workers on a fresh, durable store (hash embedder, no MDB_NOSYNC).
  batch    POST /api/documents/batch (NDJSON, <= 64 documents / < 8 MiB a body), 2 client
           threads; probed first, recorded as not available on 404/405.
  fts5     Python's sqlite3: a fresh file, fts5(title, body), WAL, synchronous=FULL, one
           writer (SQLite has one), transactions of 64 documents; and one transaction for all.
  store    map_used_bytes (/api/health) before and after, and mdb_stat of the data directory
           after, per database and grouped: lexical, vectors, text and chunks, documents, other.
  chat     (if time allows) time to first token of the offline answerer, one question every
           0.5 s while a batch ingest runs, against the same questions on the idle, full store.
  large    (issue 12) the corpus copied to --big-mb MB (200), each copy's texts starting with a line
           "copy N of <path>", batch-ingested by 2 clients while the workers answer a streaming
           question every 0.5 s from tests/fake_openai (40 tokens, 50 ms apart); per answer the
           time to first token and, from polling its stored state every 20 ms, the intervals
           between its partial saves; then as many questions idle (at most 200). p50/p99, the ratio (target:
           p99 < 2x idle), the ingest's MB/s, the workers' slow-write warnings, each send's phases.
Wall time runs from the first request (or insert) to the last response (or commit); MB/s is
text bytes (UTF-8, titles not counted) / that time, 1 MB = 10^6 bytes. Each mode is repeated
--reps times on a fresh store (interleaved), and medians are reported.

  ingest.py --out DIR [--mb 24] [--reps 3] [--big-mb 200] [--deadline SECONDS] [--quick] [--no-chat]
writes DIR/ingest.md (section "## 7.") and DIR/ingest.json (scripts/bench.sh's common shape).
"""
import argparse
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
STACK = os.path.join(ROOT, "tests", "bench", "peers", "ragstream_stack.sh")
DOC_ROOT = "/usr/share/doc"
DOC_NAMES = re.compile(r"^(changelog(\.debian)?|news(\.debian)?|readme.*|copyright|.*\.(txt|md|rst))$",
                       re.I)
DOC_MAX = 200_000
BATCH_DOCS = 64
BATCH_BYTES = 8 * 1024 * 1024 - 64 * 1024  # nginx's client_max_body_size 8m, with room to spare
WORKERS = 2
CLIENTS = 2
IDLE_QUESTIONS = 40  # at most, asked on the idle store after a run with chat
# At most, asked on the idle store after the 200 MB ingest: enough for a p99, and a slow ingest
# (more questions during it) does not make the baseline outlast the part's time limit.
BIG_IDLE_QUESTIONS = 200
GROUPS = [  # (group, name pattern); the first match wins, unknown names go to "other"
    ("lexical index", re.compile(r"^(lex_.*|index_meta)$")),
    ("vectors", re.compile(r"^(vec8?|vectors8?|vblocks8?)\..*$|^vec_.*$")),
    ("text and chunks", re.compile(r"^(doc_text|chunks?)(_.*)?$")),
    ("documents", re.compile(r"^(documents|doc_.*)$")),
]
GROUP_NAMES = [g for g, _ in GROUPS] + ["other"]
LOAD_AT_START = open("/proc/loadavg").read().split()[0]


def log(msg):
    print(f"== ingest: {msg}", file=sys.stderr, flush=True)


# ---- the corpus ----------------------------------------------------------------------------
def corpus(budget_bytes):
    paths = []
    for d, _, files in os.walk(DOC_ROOT):
        for f in files:
            p = os.path.join(d, f)
            base = f[:-3] if f.endswith(".gz") else f
            if DOC_NAMES.match(base) and not os.path.islink(p) and os.path.isfile(p):
                paths.append(p)
    paths.sort()
    docs, seen = [], set()
    info = {"candidates": len(paths), "read": 0, "not_utf8": 0, "empty_or_binary": 0, "cut": 0,
            "duplicates": 0, "budget_mb": budget_bytes / 1e6, "exhausted": True}
    total = 0
    for p in paths:
        try:
            with open(p, "rb") as f:
                raw = f.read()
            if p.endswith(".gz"):
                raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile):
            info["not_utf8"] += 1
            continue
        info["read"] += 1
        if len(raw) > DOC_MAX:
            raw = raw[:raw.rfind(b"\n", 0, DOC_MAX) + 1]  # a line boundary: still valid UTF-8
            info["cut"] += 1
        try:
            text = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            info["not_utf8"] += 1
            continue
        if not text.strip() or "\0" in text:
            info["empty_or_binary"] += 1
            continue
        if raw in seen:
            info["duplicates"] += 1
            continue
        if total + len(raw) > budget_bytes:
            info["exhausted"] = False
            break
        seen.add(raw)
        total += len(raw)
        docs.append((os.path.relpath(p, DOC_ROOT), text, len(raw)))
    info.update(documents=len(docs), text_bytes=total, text_mb=round(total / 1e6, 3))
    return docs, info


# ---- the ragstream stack -------------------------------------------------------------------
def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Stack:
    """nginx + WORKERS workers (tests/bench/peers/ragstream_stack.sh) on a fresh data dir."""

    def __init__(self, run_dir, extra_env=None):
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)
        self.run_dir, self.data = run_dir, os.path.join(run_dir, "data")
        self.port = free_port()
        env = dict(os.environ, RAGSTREAM_DATA_DIR=self.data, RAGSTREAM_LOG_LEVEL="warn",
                   RAGSTREAM_MAX_DOCUMENTS_PER_TENANT="0", RAGSTREAM_MAX_STREAMS_PER_TENANT="0",
                   RAGSTREAM_GRACE_S="2")
        for k in ("OPENAI_BASE_URL", "RAGSTREAM_CHAT_MODEL", "RAGSTREAM_EMBEDDER"):
            env.pop(k, None)  # the hash embedder and the offline answerer (unless extra_env)
        env.update(extra_env or {})
        self.log = open(os.path.join(run_dir, "stack.log"), "w")
        self.proc = subprocess.Popen([STACK, run_dir, str(self.port), str(WORKERS)], env=env,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        pids = os.path.join(run_dir, "pids")
        for _ in range(600):
            if os.path.exists(pids):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the stack did not start; see {run_dir}/stack.log and {run_dir}/logs")

    def request(self, method, path, body=None, ctype="application/json"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body, {"Content-Type": ctype} if body is not None else {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def map_used(self):
        status, body = self.request("GET", "/api/health")
        return json.loads(body)["store"]["map_used_bytes"] if status == 200 else None

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def batch_available(stack):
    status, _ = stack.request("POST", "/api/documents/batch", b"", "application/x-ndjson")
    return status not in (404, 405), status


# ---- the clients ---------------------------------------------------------------------------
def single_bodies(docs):
    return [json.dumps({"title": t, "text": x}, ensure_ascii=False).encode() for t, x, _ in docs]


def ndjson_bodies(docs):
    """NDJSON bodies of at most BATCH_DOCS lines and BATCH_BYTES bytes: [(body, lines)]."""
    out, lines, size = [], [], 0
    for t, x, _ in docs:
        line = json.dumps({"title": t, "text": x}, ensure_ascii=False).encode() + b"\n"
        if lines and (len(lines) == BATCH_DOCS or size + len(line) > BATCH_BYTES):
            out.append((b"".join(lines), len(lines)))
            lines, size = [], 0
        lines.append(line)
        size += len(line)
    if lines:
        out.append((b"".join(lines), len(lines)))
    return out


def post_all(port, path, ctype, bodies, check):
    """Sends bodies from CLIENTS threads, one request at a time each; returns seconds and the
    summed counts check() returns for each response (it raises on a bad one)."""
    lock, nxt, counts, errors = threading.Lock(), [0], {}, []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            while not errors:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= len(bodies):
                    return
                body, n = bodies[i]
                conn.request("POST", path, body, {"Content-Type": ctype})
                r = conn.getresponse()
                got = check(r.status, r.read(), n)
                with lock:
                    for k, v in got.items():
                        counts[k] = counts.get(k, 0) + v
        except Exception as e:  # noqa: BLE001 -- reported as the run's error
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise RuntimeError(errors[0])
    return seconds, counts


def check_single(status, body, n):
    if status == 201:
        return {"created": 1}
    if status == 200 and json.loads(body).get("duplicate"):
        return {"duplicates": 1}
    raise RuntimeError(f"POST /api/documents: HTTP {status}: {body[:200]!r}")


def check_batch(status, body, n):
    if status != 200:
        raise RuntimeError(f"POST /api/documents/batch: HTTP {status}: {body[:200]!r}")
    d = json.loads(body)
    got = {k: int(d.get(k, 0)) for k in ("created", "duplicates", "failed")}
    if got["failed"] or got["created"] + got["duplicates"] != n:
        raise RuntimeError(f"POST /api/documents/batch: {n} documents sent, answered {got}")
    return got


def run_api(mode, docs, text_bytes, run_dir, chat=None):
    """One ingestion run on a fresh store; with chat, questions are asked while it runs."""
    if mode == "single":
        bodies = [(b, 1) for b in single_bodies(docs)]
        path, ctype, check = "/api/documents", "application/json", check_single
    else:
        bodies = ndjson_bodies(docs)
        path, ctype, check = "/api/documents/batch", "application/x-ndjson", check_batch
    stack = Stack(run_dir)
    try:
        before = stack.map_used()
        asker = StreamProbe(stack.port, chat, poll_saves=False) if chat else None
        seconds, counts = post_all(stack.port, path, ctype, bodies, check)
        if asker:
            asker.finish()
        after = stack.map_used()
        r = {"mode": mode, "documents": len(docs), "requests": len(bodies), "seconds": round(seconds, 3),
             "mb_per_s": round(text_bytes / 1e6 / seconds, 3), "docs_per_s": round(len(docs) / seconds, 1),
             "map_used_before": before, "map_used_after": after,
             "growth_ratio": round((after - before) / text_bytes, 3), **counts}
        if asker:  # the same questions on the full store with nothing else running
            r["chat_loaded"] = asker.results
            idle = StreamProbe(stack.port, chat, count=min(len(asker.results), IDLE_QUESTIONS),
                               poll_saves=False)
            idle.finish(wait_all=True)
            r["chat_idle"] = idle.results
    finally:
        stack.stop()
    r["mdb"] = mdb_stat(stack.data)
    return r


# ---- chat while ingesting (optional): StreamProbe below, without polling ---------------------
# ---- chat answers during a 200 MB ingest (issue 12) ----------------------------------------
# "During a 200 MB ingest, chat answers keep working: the time to first token and the
# partial-save interval stay under 2x their idle values." The corpus above, copied with a
# first line "copy N of <path>" until it holds --big-mb MB (ragstream stores identical texts
# once, so no two copies may be equal), is ingested through the batch endpoint by CLIENTS
# threads into a fresh durable store whose workers answer from tests/fake_openai (a streaming
# model: 40 tokens 50 ms apart). A question is sent every 0.5 s while it runs; each answer's
# stored state (GET /api/conversations/{id}: a streaming answer's content is what its worker
# saved last) is polled every 20 ms while it streams, and the times its stored length changes
# give the partial-save intervals. Then the same number of questions (at most 200) on the full store with
# nothing else running (the idle baseline).
FAKE_SCRIPT = os.path.join(ROOT, "tests", "fake_openai", "fake_openai.py")
BIG_TOKENS, BIG_GAP_MS = 40, 50
BIG_DIRECTIVE = f"[[fake: tokens={BIG_TOKENS}, gap_ms={BIG_GAP_MS}]]"
SAVE_POLL_S = 0.02
SLOW_WRITE = "a document write held the write lock long"


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def copies(base, budget_bytes):
    """base repeated, copy N's texts prefixed with "copy N of <path>\\n", up to budget_bytes."""
    docs, total, n = [], 0, 0
    while total < budget_bytes and base:
        n += 1
        for path, text, _ in base:
            t = f"copy {n} of {path}\n" + text
            size = len(t.encode())
            if total + size > budget_bytes:
                return docs, total, n
            docs.append((f"{path} (copy {n})", t, size))
            total += size
    return docs, total, n


class FakeModel:
    """tests/fake_openai on an ephemeral port (as tests/integration/harness.py's FakeUpstream)."""

    def __init__(self, workdir):
        os.makedirs(workdir, exist_ok=True)
        self.port_file = os.path.join(workdir, "fake.port")
        self.log = open(os.path.join(workdir, "fake.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, FAKE_SCRIPT, "--port", "0", "--port-file", self.port_file],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(150):
            if os.path.exists(self.port_file) and open(self.port_file).read().strip():
                self.port = int(open(self.port_file).read().strip())
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the fake model did not start; see {workdir}/fake.log")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class StreamProbe:
    """A streaming question every 0.5 s, each on its own thread, until finish() (or count
    asked). Per answer: TTFT (request sent -> first token event) and, with poll_saves, from
    polling its stored state every 20 ms while it streams, the intervals between changes of
    its saved length."""

    def __init__(self, port, questions, count=None, poll_saves=True):
        self.poll_saves = poll_saves
        self.port, self.questions, self.results = port, questions, []
        self.stopped, self.threads, self.count = threading.Event(), [], count
        self.loop = threading.Thread(target=self._loop, daemon=True)
        self.loop.start()

    def _loop(self):
        i, t_next = 0, time.perf_counter()
        while not self.stopped.is_set() and (self.count is None or i < self.count):
            t = threading.Thread(target=self._ask, args=(self.questions[i % len(self.questions)],), daemon=True)
            t.start()
            self.threads.append(t)
            i += 1
            t_next += 0.5
            self.stopped.wait(max(0.0, t_next - time.perf_counter()))

    def _poll(self, conv_id, msg_id, done, r):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        last_len, changes, polls = 0, [], []
        try:
            while not done.is_set():
                t0 = time.perf_counter()
                conn.request("GET", f"/api/conversations/{conv_id}")
                resp = conn.getresponse()
                body = resp.read()
                t1 = time.perf_counter()
                polls.append((t1 - t0) * 1000)
                if resp.status != 200:
                    r["poll_errors"] += 1
                else:
                    m = next((m for m in json.loads(body).get("messages", []) if m.get("id") == msg_id), None)
                    if m is None or m.get("status") != "streaming":
                        break  # finished: its final save is not a partial save
                    n = len(m.get("content") or "")
                    if n != last_len:
                        changes.append((t0 + t1) / 2)  # the save landed between send and answer
                        last_len = n
                done.wait(max(0.0, t0 + SAVE_POLL_S - time.perf_counter()))
        except Exception as e:  # noqa: BLE001
            r["poll_errors"] += 1
            r["error"] = r["error"] or f"poll: {type(e).__name__}: {e}"
        finally:
            conn.close()
        r["saves_seen"] = len(changes)
        r["save_gaps_ms"] = [round((b - a) * 1000, 1) for a, b in zip(changes, changes[1:])]
        r["poll_ms"] = polls

    def _ask(self, q):
        r = {"ttft_ms": None, "total_ms": None, "error": None, "status": None, "tokens": 0,
             "saves_seen": 0, "save_gaps_ms": [], "poll_ms": [], "poll_errors": 0}
        done, poller = threading.Event(), None
        t0 = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            conn.request("POST", "/api/chat/message/stream", json.dumps({"message": q}),
                         {"Content-Type": "application/json", "Accept": "text/event-stream"})
            resp = conn.getresponse()
            if resp.status != 200:
                r["error"] = f"HTTP {resp.status}: {resp.read()[:200]!r}"
            else:
                for line in resp:
                    if not line.startswith(b"data:"):
                        continue
                    ev = json.loads(line[5:])
                    if (self.poll_saves and poller is None and ev.get("conversation_id")
                            and ev.get("message_id")):
                        r["message_id"] = ev["message_id"]
                        poller = threading.Thread(target=self._poll, daemon=True,
                                                  args=(ev["conversation_id"], ev["message_id"], done, r))
                        poller.start()
                    if ev.get("token"):
                        r["tokens"] += 1
                        if r["ttft_ms"] is None:
                            r["ttft_ms"] = round((time.perf_counter() - t0) * 1000, 1)
                    if ev.get("done"):
                        r["status"] = ev.get("status")
                        if ev.get("status") not in (None, "complete"):
                            r["error"] = f"status {ev.get('status')}: {ev.get('error')}"
                        break
            conn.close()
        except Exception as e:  # noqa: BLE001
            r["error"] = f"{type(e).__name__}: {e}"
        r["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        done.set()
        if poller:
            poller.join()
        self.results.append(r)

    def finish(self, wait_all=False):
        if wait_all:
            self.loop.join()
        self.stopped.set()
        self.loop.join()
        for t in self.threads:
            t.join()


def probe_summary(rs):
    ok = [r for r in rs if not r["error"] and r["ttft_ms"] is not None]
    ttft = [r["ttft_ms"] for r in ok]
    gaps = [g for r in ok for g in r["save_gaps_ms"]]
    polls = [p for r in rs for p in r["poll_ms"]]
    return {"questions": len(rs), "errors": len(rs) - len(ok),
            "error_examples": sorted({r["error"] for r in rs if r["error"]})[:3],
            "ttft_p50_ms": pct(ttft, 50), "ttft_p99_ms": pct(ttft, 99), "ttft_max_ms": max(ttft, default=None),
            "save_intervals": len(gaps), "save_p50_ms": pct(gaps, 50), "save_p99_ms": pct(gaps, 99),
            "save_max_ms": max(gaps, default=None), "save_over_500ms": sum(1 for g in gaps if g > 500),
            "answers_without_two_saves": sum(1 for r in ok if r["saves_seen"] < 2),
            "answer_p50_ms": pct([r["total_ms"] for r in ok], 50),
            "polls": len(polls), "poll_p50_ms": round(pct(polls, 50), 1) if polls else None,
            "poll_p99_ms": round(pct(polls, 99), 1) if polls else None}


PHASES = ("handler_us", "store_us", "language_us", "retrieval_us", "prompt_us", "upstream_ttft_us", "first_token_us")


def send_phases(log_dir):
    """message id -> the worker's phases of that send, from its request log lines (info)."""
    out = {}
    for name in sorted(os.listdir(log_dir)) if os.path.isdir(log_dir) else []:
        with open(os.path.join(log_dir, name), errors="replace") as f:
            for line in f:
                if '"first_token_us"' not in line or '"msg_' not in line:
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("message_id") and ev.get("msg") == "request":
                    out[ev["message_id"]] = {k: ev.get(k) for k in PHASES}
    return out


def phase_summary(rs, phases):
    """p50 and p99 (ms) of each phase over the answers the logs have."""
    got = [phases[r["message_id"]] for r in rs if r.get("message_id") in phases]
    out = {"answers": len(got)}
    for k in PHASES:
        v = [p[k] / 1000 for p in got if isinstance(p.get(k), (int, float)) and p[k] >= 0]
        out[k] = {"p50_ms": round(pct(v, 50), 1) if v else None, "p99_ms": round(pct(v, 99), 1) if v else None}
    return out


def worker_warnings(log_dir):
    """The workers' warn lines: the slow document writes (count, ms, the slowest's breakdown)
    and how many of every other message."""
    slow, other = [], {}
    for name in sorted(os.listdir(log_dir)) if os.path.isdir(log_dir) else []:
        with open(os.path.join(log_dir, name), errors="replace") as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("level") not in ("warn", "error"):
                    continue
                if ev.get("msg") == SLOW_WRITE:
                    slow.append({k: int(ev[k]) for k in ("ms", "records_ms", "postings_ms", "commit_ms", "chunks")
                                 if str(ev.get(k, "")).isdigit()})
                elif not str(ev.get("msg")).startswith("no RAGSTREAM_API_KEYS_FILE"):  # the stack's own setup
                    key = f"{ev.get('level')}: {ev.get('msg')}"
                    other[key] = other.get(key, 0) + 1
    ms = sorted(s.get("ms", 0) for s in slow)
    return {"slow_writes": len(slow), "slow_write_max_ms": ms[-1] if ms else None,
            "slow_write_p50_ms": pct(ms, 50) if ms else None,
            "slowest": max(slow, key=lambda s: s.get("ms", 0)) if slow else None, "other_warnings": other}


def big_need(big_mb, runs):
    """Seconds the large ingest may take: the ingest (slower with the questions) at the batch
    runs' median rate, the idle baseline as long, building the corpus, starting, stopping."""
    rate = statistics.median([r["mb_per_s"] for r in runs if r["mode"] == "batch" and "error" not in r] or [1.0])
    return big_mb / (rate * 0.7) * 2 + big_mb * 0.05 + 30


def run_big(base, big_mb, run_dir):
    """The 200 MB batch ingest with chat answers streaming from the fake model, then the idle
    baseline on the full store."""
    t_build = time.monotonic()
    docs, tb, ncopies = copies(base, int(big_mb * 1e6))
    bodies = ndjson_bodies(docs)
    ndocs = len(docs)
    del docs
    log(f"big corpus: {ndocs} documents, {tb / 1e6:.1f} MB in {ncopies} copies, {len(bodies)} requests "
        f"(built in {time.monotonic() - t_build:.0f} s)")
    questions = [f"What changed in {p.split('/')[0]}? {BIG_DIRECTIVE}" for p, _, _ in base[:: max(1, len(base) // 50)]]
    fake = FakeModel(os.path.join(run_dir + "-fake"))
    r = {"mode": "batch", "target_mb": big_mb, "documents": ndocs, "text_bytes": tb, "copies": ncopies,
         "requests": len(bodies), "model": f"{BIG_TOKENS} tokens {BIG_GAP_MS} ms apart",
         "question_every_s": 0.5, "poll_every_ms": SAVE_POLL_S * 1000}
    try:
        stack = Stack(run_dir, {"OPENAI_BASE_URL": f"http://127.0.0.1:{fake.port}/v1",
                                "RAGSTREAM_CHAT_MODEL": "fake-model", "RAGSTREAM_EMBEDDER": "hash",
                                "OPENAI_API_KEY": "unused",
                                "RAGSTREAM_LOG_LEVEL": "info"})  # a line per request: the sends' phases
        try:
            warm = StreamProbe(stack.port, questions, count=2)  # not counted: first-request costs
            warm.finish(wait_all=True)
            r["load_at_start"] = loadavg()
            before = stack.map_used()
            during = StreamProbe(stack.port, questions)
            seconds, counts = post_all(stack.port, "/api/documents/batch", "application/x-ndjson", bodies, check_batch)
            during.finish()
            r["load_after_ingest"] = loadavg()
            r.update(seconds=round(seconds, 3), mb_per_s=round(tb / 1e6 / seconds, 3),
                     docs_per_s=round(ndocs / seconds, 1), map_used_before=before, map_used_after=stack.map_used(),
                     **counts)
            log(f"big ingest: {r['mb_per_s']} MB/s, {len(during.results)} questions; now the idle baseline")
            idle = StreamProbe(stack.port, questions, count=min(len(during.results), BIG_IDLE_QUESTIONS))
            idle.finish(wait_all=True)
            r["load_at_end"] = loadavg()
            r["during"], r["idle"] = probe_summary(during.results), probe_summary(idle.results)
            r["answers_during"] = [{k: v for k, v in x.items() if k != "poll_ms"} for x in during.results]
            r["answers_idle"] = [{k: v for k, v in x.items() if k != "poll_ms"} for x in idle.results]
        finally:
            stack.stop()
    finally:
        fake.stop()
    r["worker_log"] = worker_warnings(os.path.join(run_dir, "logs"))
    if "answers_during" in r:
        phases = send_phases(os.path.join(run_dir, "logs"))
        r["phases_during"] = phase_summary(r["answers_during"], phases)
        r["phases_idle"] = phase_summary(r["answers_idle"], phases)
    r["growth_ratio"] = round((r["map_used_after"] - r["map_used_before"]) / tb, 3) if r.get("map_used_after") else None
    shutil.rmtree(run_dir, ignore_errors=True)  # hundreds of MB
    return r


# ---- the store -----------------------------------------------------------------------------
def mdb_stat(data_dir):
    """Per database: entries and bytes (branch + leaf + overflow pages x page size)."""
    try:
        out = subprocess.run(["mdb_stat", "-efa", data_dir], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return {"error": str(e)}
    page = int(re.search(r"Page size: (\d+)", out).group(1))
    used = int(re.search(r"Number of pages used: (\d+)", out).group(1))
    free = int(re.search(r"Free pages: (\d+)", out).group(1))
    dbs = []
    for name, body in re.findall(r"Status of (.+?)\n((?:  .*\n?)*)", out):
        num = lambda k: int(re.search(k + r": (\d+)", body).group(1))  # noqa: E731
        pages = num("Branch pages") + num("Leaf pages") + num("Overflow pages")
        dbs.append({"name": name.strip(), "entries": num("Entries"), "pages": pages, "bytes": pages * page})
    file_bytes = os.path.getsize(os.path.join(data_dir, "data.mdb"))
    return {"page_size": page, "pages_used": used, "free_pages": free, "file_bytes": file_bytes, "dbs": dbs}


def group_of(name):
    if name == "Main DB":
        return "other"
    for g, pattern in GROUPS:
        if pattern.match(name):
            return g
    return "other"


def grouped(mdb):
    g = {n: 0 for n in GROUP_NAMES}
    for d in mdb.get("dbs", []):
        g[group_of(d["name"])] += d["bytes"]
    return g


# ---- the reference: SQLite FTS5 -----------------------------------------------------------
def run_fts5(docs, text_bytes, path, per_tx):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body)")
    t0 = time.perf_counter()
    for i in range(0, len(docs), per_tx):
        db.execute("BEGIN")
        db.executemany("INSERT INTO docs(title, body) VALUES (?, ?)", [(t, x) for t, x, _ in docs[i:i + per_tx]])
        db.execute("COMMIT")
    seconds = time.perf_counter() - t0
    size = lambda s: os.path.getsize(path + s) if os.path.exists(path + s) else 0  # noqa: E731
    db_bytes, wal_bytes = size(""), size("-wal")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpointed = size("")
    db.close()
    return {"mode": "fts5_tx64" if per_tx == BATCH_DOCS else "fts5_one_tx", "per_tx": per_tx,
            "documents": len(docs), "seconds": round(seconds, 3), "mb_per_s": round(text_bytes / 1e6 / seconds, 3),
            "docs_per_s": round(len(docs) / seconds, 1), "db_bytes": db_bytes, "wal_bytes": wal_bytes,
            "size_ratio": round((db_bytes + wal_bytes) / text_bytes, 3),
            "checkpointed_ratio": round(checkpointed / text_bytes, 3)}


# ---- the report ----------------------------------------------------------------------------
def median(rs, key):
    v = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(v) if v else None


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))] if v else None


LABELS = {"single": "ragstream, POST /api/documents, one document a request, 2 clients",
          "batch": "ragstream, POST /api/documents/batch, <= 64 documents a request, 2 clients",
          "fts5_tx64": "SQLite FTS5, transactions of 64 documents, 1 writer",
          "fts5_one_tx": "SQLite FTS5, one transaction for everything, 1 writer (its best case)"}


def big_targets(big):
    """Issue 12: TTFT and partial-save interval p99 during the large ingest < 2x idle."""
    out = []
    if not big or "during" not in big:
        return out
    d, i, mb = big["during"], big["idle"], big["target_mb"]
    for key, what in (("ttft", "chat time to first token"), ("save", "partial-save interval")):
        dv, iv = d.get(f"{key}_p99_ms"), i.get(f"{key}_p99_ms")
        if dv is None or not iv:
            out.append({"name": f"{what} p99 during a {mb:g} MB ingest / idle", "target": "< 2x",
                        "measured": "not measured", "met": False, "note": "no answers measured"})
            continue
        ratio = dv / iv
        t = {"name": f"{what} p99 during a {mb:g} MB ingest / idle", "target": "< 2x",
             "measured": f"{ratio:.2f}x ({dv:.0f} vs {iv:.0f} ms)", "met": ratio < 2 and not d["errors"],
             "ratio": round(ratio, 3)}
        if ratio >= 2:
            t["note"] = f"missed by a factor of {ratio / 2:.1f}"
        if d["errors"]:
            t["note"] = (t.get("note", "") + "; " if "note" in t else "") + f"{d['errors']} answers failed during the ingest"
        out.append(t)
    return out


def big_section(big, w):
    mb = big["target_mb"]
    w(f"### Chat answers during a {mb:g} MB ingest (issue 12)\n")
    if "during" not in big:
        w(f"Not measured: `{big.get('error')}`.\n")
        return
    d, i, lw = big["during"], big["idle"], big["worker_log"]
    w(f"The corpus above, copied {big['copies']} times (copy N's texts start with a line `copy N of <path>`, so "
      f"no two are equal): **{big['documents']} documents, {big['text_bytes'] / 1e6:.1f} MB**, ingested through "
      f"`POST /api/documents/batch` (<= 64 documents / 8 MiB a request, {big['requests']} requests) by "
      f"{CLIENTS} clients into nginx + {WORKERS} workers on a fresh durable store (hash embedder), whose answers "
      f"come from `tests/fake_openai` ({big['model']}; the workers save a streaming answer every "
      f"250 ms, RAGSTREAM_PERSIST_INTERVAL_MS 500 / 2). A streaming question (`POST /api/chat/message/stream`, "
      f"hybrid retrieval) every {big['question_every_s']} s while the ingest ran; each answer's stored state "
      f"(`GET /api/conversations/{{id}}`: a streaming answer's content is what its worker saved last) polled "
      f"every {big['poll_every_ms']:.0f} ms while it streamed: a partial-save interval is the time between two "
      f"changes of its stored length (each change timed at the middle of the poll that saw it; the final save, "
      f"which ends the answer, not counted). Idle: the same number of questions (at most 200), at the same pace, on the full "
      f"store with nothing else running (after 2 unmeasured warm-up questions on the empty store before the "
      f"ingest). TTFT: request sent to the first token event, as the client sees it. Nearest-rank percentiles.\n")
    w(f"Ingest: **{big['mb_per_s']:.2f} MB/s** ({big['seconds']:.0f} s, {big['docs_per_s']:.0f} documents/s, "
      f"{big.get('created', 0)} stored as new, {big.get('duplicates', 0)} duplicates) with the questions running; "
      f"store growth {big['growth_ratio']}x the text. Load average {big['load_at_start']} at the ingest's start, "
      f"{big['load_after_ingest']} at its end, {big['load_at_end']} after the idle baseline.\n")
    w("| | answers | failed | TTFT p50 ms | TTFT p99 ms | TTFT max ms | save intervals | save p50 ms "
      "| save p99 ms | save max ms | intervals > 500 ms | poll p50 / p99 ms |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    f = lambda v: "–" if v is None else f"{v:.0f}"  # noqa: E731
    for name, x in ((f"during the {mb:g} MB ingest", d), ("idle (after, full store)", i)):
        w(f"| {name} | {x['questions']} | {x['errors']} | {f(x['ttft_p50_ms'])} | {f(x['ttft_p99_ms'])} | "
          f"{f(x['ttft_max_ms'])} | {x['save_intervals']} | {f(x['save_p50_ms'])} | {f(x['save_p99_ms'])} | "
          f"{f(x['save_max_ms'])} | {x['save_over_500ms']} | {x['poll_p50_ms']} / {x['poll_p99_ms']} |")
    r = lambda k: (f"{d[k] / i[k]:.2f}x" if d.get(k) and i.get(k) else "–")  # noqa: E731
    w(f"| **during / idle** | | | {r('ttft_p50_ms')} | **{r('ttft_p99_ms')}** | {r('ttft_max_ms')} | | "
      f"{r('save_p50_ms')} | **{r('save_p99_ms')}** | {r('save_max_ms')} | | |")
    w("")
    w("Reading the save intervals: a stream hands its answer to the worker's partial writer at the first "
      "token 250 ms or more after its last hand-over, and the writer commits every 250 ms; the two cadences "
      "beat, so a commit now and then finds nothing new and an idle interval is about 250 or about 500 ms. "
      "The idle p99 falls on one or the other depending on how often that happened in the run, so the "
      "p99 ratio can swing by up to 2x between runs of one build; intervals over "
      "500 ms (an answer on disk older than RAGSTREAM_PERSIST_INTERVAL_MS promises) do not have that "
      "ambiguity.\n")
    for name, x in (("during", d), ("idle", i)):
        if x["errors"]:
            w(f"Failed answers {name}: {x['errors']}, e.g. `{'`; `'.join(x['error_examples'])}`.\n")
    pd, pi = big.get("phases_during"), big.get("phases_idle")
    if pd and pi and pd["answers"] and pi["answers"]:
        names = {"handler_us": "request arrived -> send started", "store_us": "store (the exchange's write)",
                 "language_us": "language", "retrieval_us": "retrieval (beside the write; what the send waited for it)", "prompt_us": "prompt",
                 "upstream_ttft_us": "model called -> its first delta", "first_token_us": "arrival -> first token written"}
        w(f"Where the time to first token went, from the workers' request log lines ({pd['answers']} and "
          f"{pi['answers']} answers; ms):\n")
        w("| phase | during p50 | during p99 | idle p50 | idle p99 |")
        w("| --- | --- | --- | --- | --- |")
        for k in PHASES:
            w(f"| {names[k]} | {pd[k]['p50_ms']} | {pd[k]['p99_ms']} | {pi[k]['p50_ms']} | {pi[k]['p99_ms']} |")
        w("")
    if lw["slow_writes"]:
        sl = lw["slowest"]
        w(f"The workers logged \"{SLOW_WRITE}\" (> 100 ms) **{lw['slow_writes']} times**, median "
          f"{lw['slow_write_p50_ms']} ms, **max {lw['slow_write_max_ms']} ms** (the slowest: records "
          f"{sl.get('records_ms')} ms, postings {sl.get('postings_ms')} ms, commit {sl.get('commit_ms')} ms, "
          f"{sl.get('chunks')} chunks).")
    else:
        w(f"The workers never logged \"{SLOW_WRITE}\" (> 100 ms).")
    if lw["other_warnings"]:
        w("Other warnings in the workers' logs: " + "; ".join(f"{k[:90]} ({n})" for k, n in sorted(lw["other_warnings"].items())) + ".")
    w("")


def report(a, info, runs, batch_probe, chat_run, notes, elapsed, big_run=None):
    by = {m: [r for r in runs if r["mode"] == m and "error" not in r] for m in LABELS}
    failed = [r for r in runs if "error" in r]
    med = {m: median(rs, "mb_per_s") for m, rs in by.items()}
    api = "batch" if med["batch"] else "single"
    ref = med["fts5_tx64"]
    tb = info["text_bytes"]
    targets = []
    if med[api] and ref:
        ratio = med[api] / ref
        targets.append({"name": f"ingestion through the API ({api}) / SQLite FTS5 (transactions of 64)",
                        "target": ">= 0.3x", "measured": f"{ratio:.2f}x ({med[api]:.2f} vs {ref:.2f} MB/s)",
                        "met": ratio >= 0.3, "ratio": round(ratio, 3)})
    store_run = by[api][-1] if by[api] else None
    lex_ratio = None
    if by[api]:
        growth = median(by[api], "growth_ratio")
        targets.append({"name": f"store growth (map_used_bytes) / text ({api})", "target": "<= 3x",
                        "measured": f"{growth:.2f}x", "met": growth <= 3, "ratio": growth})
        if "dbs" in store_run["mdb"]:
            lex_ratio = grouped(store_run["mdb"])["lexical index"] / tb
            targets.append({"name": "lexical index (lex_* and index_meta, mdb_stat) / text", "target": "<= 0.6x",
                            "measured": f"{lex_ratio:.2f}x", "met": lex_ratio <= 0.6, "ratio": round(lex_ratio, 3)})
    for t in targets:
        notes_t = []
        if not t["met"]:
            notes_t.append("missed by a factor of " + (f"{0.3 / t['ratio']:.1f}" if t["target"].startswith(">=")
                                                      else f"{t['ratio'] / float(t['target'][3:-1]):.1f}"))
        if api == "single" and t["name"].startswith("ingestion"):
            notes_t.append("single POSTs compared: the batch endpoint is not available")
        if notes_t:
            t["note"] = "; ".join(notes_t)
    targets += big_targets(big_run)
    L = []
    w = L.append
    w("## 7. Ingestion against SQLite FTS5\n")
    if a.quick:
        w("**Quick run (BENCH_QUICK=1): a smoke test of the script, not a measurement.**\n")
    w(f"Real text nobody here wrote: Debian's changelogs, NEWS, READMEs and copyright files under "
      f"`/usr/share/doc` (`.gz` decompressed), valid UTF-8 only, each cut to 200 kB at a line boundary, "
      f"identical texts once, in sorted path order, up to {a.mb:g} MB: **{info['documents']} documents, "
      f"{tb / 1e6:.2f} MB** of text ({info['candidates']} candidate files; {info['not_utf8']} not UTF-8, "
      f"{info['duplicates']} duplicates, {info['cut']} cut"
      + ("; the whole corpus was smaller than the budget" if info["exhausted"] else "") + ").")
    w("ragstream: nginx + 2 workers, a fresh durable store each run (LMDB's default sync, hash "
      "embedder), 2 client threads. SQLite FTS5 (Python's sqlite3, SQLite " + sqlite3.sqlite_version +
      "): a fresh file, `fts5(title, body)`, WAL, `synchronous=FULL`, one writer (SQLite allows one). "
      "Wall time from the first request to the last response; MB/s = text bytes / time (titles not counted). "
      f"Medians of {a.reps} run(s) per mode, interleaved.\n")
    w(f"Command: `{'BENCH_QUICK=1 ' if a.quick else ''}tests/bench/ingest/run.sh {a.out}` (part of "
      f"`scripts/bench.sh`; `ingest.py --mb {a.mb:g} --reps {a.reps}`).\n")
    w("| mode | runs | MB/s | documents/s | seconds | ratio to FTS5 (tx of 64) | size / text |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for m, label in LABELS.items():
        rs = by[m]
        if m == "batch" and not batch_probe[0]:
            w(f"| {label} | – | not available | – | – | – | – |")
            continue
        if not rs:
            w(f"| {label} | 0 | failed | – | – | – | – |")
            continue
        size = median(rs, "growth_ratio") if m in ("single", "batch") else median(rs, "size_ratio")
        w(f"| {label} | {len(rs)} | {med[m]:.2f} | {median(rs, 'docs_per_s'):.0f} | {median(rs, 'seconds'):.2f} | "
          f"{med[m] / ref:.2f}x | {size:.2f}x |" if ref else f"| {label} | {len(rs)} | {med[m]:.2f} | – | – | – | – |")
    w("")
    w("Size / text: ragstream's growth of `map_used_bytes` (/api/health, before and after); FTS5's database "
      "file plus its WAL right after the last commit"
      + (f" ({median(by['fts5_tx64'], 'checkpointed_ratio'):.2f}x for the file alone after "
         "`wal_checkpoint(TRUNCATE)`, transactions of 64)" if by["fts5_tx64"] else "") + ".")
    for m in ("single", "batch"):
        if by[m]:
            w(f"\n`{m}`: {median(by[m], 'created'):.0f} documents stored as new, "
              f"{median(by[m], 'duplicates') or 0:.0f} answered as duplicates (medians).")
    if not batch_probe[0]:
        w(f"\nThe batch endpoint `POST /api/documents/batch` is not in this build (the probe got HTTP "
          f"{batch_probe[1]}): its row is not available, and the targets use single POSTs.")
    for r in failed:
        w(f"\nA {r['mode']} run failed: `{r['error']}`.")
    if store_run and "dbs" in store_run["mdb"]:
        m = store_run["mdb"]
        w(f"\nThe store after the last `{api}` run, by `mdb_stat -efa` (bytes = branch + leaf + overflow pages "
          f"x {m['page_size']}-byte pages); text = {tb / 1e6:.2f} MB. Grouped by name: `lex_*` and `index_meta` "
          f"(the lexical index's totals), `vectors.*`, `vblocks.*` and their int8 twins (`vec.*` before dense ids), `doc_text` / `chunk_spans`, `documents` / `doc_*`; "
          f"any other name (and LMDB's main DB) under other:\n")
        w("| group | database | entries | MB | / text |")
        w("| --- | --- | --- | --- | --- |")
        g = grouped(m)
        for gname in GROUP_NAMES:
            for d in sorted((d for d in m["dbs"] if group_of(d["name"]) == gname), key=lambda d: d["name"]):
                w(f"| {gname} | `{d['name']}` | {d['entries']} | {d['bytes'] / 1e6:.2f} | {d['bytes'] / tb:.3f} |")
            w(f"| **{gname}** | all | | **{g[gname] / 1e6:.2f}** | **{g[gname] / tb:.3f}** |")
        total = sum(g.values())
        w(f"| **total in databases** | | | **{total / 1e6:.2f}** | **{total / tb:.3f}** |")
        w(f"\nFree pages {m['free_pages']} ({m['free_pages'] * m['page_size'] / 1e6:.2f} MB); pages used "
          f"{m['pages_used']} ({m['pages_used'] * m['page_size'] / 1e6:.2f} MB, the `map_used_bytes` the "
          f"growth is counted from); data.mdb file {m['file_bytes'] / 1e6:.1f} MB (the map as mapped, not used).")
    w("\n| target | measured | verdict |")
    w("| --- | --- | --- |")
    for t in targets:
        verdict = "met" if t["met"] else "**missed**"
        w(f"| {t['name']}: {t['target']} | {t['measured']} | {verdict}{': ' + t['note'] if 'note' in t else ''} |")
    w("")
    if chat_run and "chat_loaded" in chat_run:
        def row(name, rs):
            ok = [r["ttft_ms"] for r in rs if r["ttft_ms"] is not None and not r["error"]]
            errs = sum(1 for r in rs if r["error"] or r["ttft_ms"] is None)
            return (f"| {name} | {len(rs)} | {errs} | {pct(ok, 50) or 0:.0f} | {pct(ok, 99) or 0:.0f} | "
                    f"{pct([r['total_ms'] for r in rs], 50):.0f} |")
        w(f"Chat while ingesting: one extra `{chat_run['mode']}` run on a fresh store "
          f"({chat_run['mb_per_s']:.2f} MB/s with the questions, not in the medians above), with a "
          "question to `POST /api/chat/message/stream` (the offline answerer, hybrid retrieval) every 0.5 s "
          f"while it ran; then the same questions (at most {IDLE_QUESTIONS}), at the same pace, on the full "
          "store with nothing else running. Time to first token as the client sees it (nearest-rank percentiles; "
          "with this few questions p99 is about the slowest).\n")
        w("| when | questions | errors | TTFT p50 ms | TTFT p99 ms | answer p50 ms |")
        w("| --- | --- | --- | --- | --- | --- |")
        w(row("during ingestion", chat_run["chat_loaded"]))
        w(row("idle (after)", chat_run["chat_idle"]))
        w("")
    if big_run:
        big_section(big_run, w)
    for n in notes:
        w(f"- {n}")
    w(f"\nThis part took {elapsed:.0f} s; load average {LOAD_AT_START} at its start, "
      f"{open('/proc/loadavg').read().split()[0]} at its end (2 cores: above 2, other work shared them).")
    md = "\n".join(L).rstrip() + "\n"
    with open(os.path.join(a.out, "ingest.md"), "w") as f:
        f.write(md)
    data = {"part": 7, "title": "Ingestion against SQLite FTS5", "elapsed_s": round(elapsed),
            "quick": bool(a.quick), "targets": targets, "corpus": info,
            "batch_endpoint": {"available": batch_probe[0], "probe_status": batch_probe[1]},
            "medians_mb_per_s": med, "store_groups_bytes": grouped(store_run["mdb"]) if store_run else None,
            "runs": runs, "chat_run": chat_run, "big_ingest_chat": big_run, "notes": notes}
    with open(os.path.join(a.out, "ingest.json"), "w") as f:
        json.dump(data, f, indent=1)
    return md


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--mb", type=float, default=24)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--deadline", type=float, default=600, help="seconds this may take")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-chat", action="store_true")
    ap.add_argument("--big-mb", type=float, default=None,
                    help="chat answers during a batch ingest of this many MB (the corpus copied); "
                         "0 skips it [200; 10 with --quick]")
    a = ap.parse_args()
    if a.big_mb is None:
        a.big_mb = 10 if a.quick else 200
    started = time.monotonic()
    left = lambda: a.deadline - (time.monotonic() - started)  # noqa: E731
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="ragstream-ingest.")
    runs, notes, chat_run, batch_probe, info, big_run = [], [], None, (False, None), None, None
    try:
        docs, info = corpus(int(a.mb * 1e6))
        tb = info["text_bytes"]
        log(f"corpus: {info['documents']} documents, {tb / 1e6:.2f} MB ({time.monotonic() - started:.0f} s)")
        stack = Stack(os.path.join(work, "probe"))
        try:
            batch_probe = batch_available(stack)
        finally:
            stack.stop()
        log(f"batch endpoint: {'available' if batch_probe[0] else 'not available'} (HTTP {batch_probe[1]})")
        modes = ["fts5_tx64", "fts5_one_tx", "single"] + (["batch"] if batch_probe[0] else [])
        took = {}
        for rep in range(1, a.reps + 1):
            need = sum(took.values()) * 1.2 + 30
            if batch_probe[0] and a.big_mb > 0 and took:  # the large ingest (issue 12) comes first
                need += big_need(a.big_mb, runs)
            if rep > 1 and need > left():
                notes.append(f"only {rep - 1} of {a.reps} runs per mode: the time limit ({a.deadline:.0f} s) "
                             f"would not allow another (~{need:.0f} s needed, {left():.0f} s left)")
                break
            for m in modes:
                t0 = time.monotonic()
                try:
                    if m.startswith("fts5"):
                        r = run_fts5(docs, tb, os.path.join(work, "fts5.db"), BATCH_DOCS if m == "fts5_tx64" else len(docs))
                    else:
                        r = run_api(m, docs, tb, os.path.join(work, m))
                except Exception as e:  # noqa: BLE001 -- one failed run does not end the part
                    r = {"mode": m, "error": f"{type(e).__name__}: {e}"}
                r["rep"] = rep
                runs.append(r)
                took[m] = time.monotonic() - t0
                log(f"run {rep} {m}: {r.get('mb_per_s', r.get('error'))} MB/s ({took[m]:.1f} s; {left():.0f} s left)")
        if a.big_mb <= 0:
            notes.append("chat answers during a large ingest: not measured (--big-mb 0)")
        elif not batch_probe[0]:
            notes.append("chat answers during a large ingest: not measured, the batch endpoint is not available")
        else:
            rate = median([r for r in runs if r["mode"] == "batch" and "error" not in r], "mb_per_s") or 1.0
            need = big_need(a.big_mb, runs)
            if need > left():
                notes.append(f"chat answers during a {a.big_mb:g} MB ingest: skipped, not enough time left "
                             f"(~{need:.0f} s needed at {rate:.1f} MB/s, {left():.0f} s left)")
            else:
                t0 = time.monotonic()
                try:
                    big_run = run_big(docs, a.big_mb, os.path.join(work, "big"))
                    log(f"{a.big_mb:g} MB with chat: {big_run['mb_per_s']} MB/s ({time.monotonic() - t0:.0f} s; "
                        f"{left():.0f} s left)")
                except Exception as e:  # noqa: BLE001
                    big_run = {"error": f"{type(e).__name__}: {e}", "target_mb": a.big_mb}
                    log(f"{a.big_mb:g} MB with chat: failed: {big_run['error']}")
        chat_mode = "batch" if batch_probe[0] else "single"
        need = took.get(chat_mode, 60) * 2.5 + 20
        if a.no_chat:
            notes.append("chat while ingesting: not measured (--no-chat)")
        elif need > left():
            notes.append(f"chat while ingesting: skipped, not enough time left (~{need:.0f} s needed, {left():.0f} s left)")
        else:
            questions = [f"What changed in {t.split('/')[0]}?" for t, _, _ in docs[:: max(1, len(docs) // 50)]]
            try:
                chat_run = run_api(chat_mode, docs, tb, os.path.join(work, "chat"), chat=questions)
                log(f"chat during {chat_mode}: {len(chat_run['chat_loaded'])} questions")
            except Exception as e:  # noqa: BLE001
                notes.append(f"chat while ingesting: failed: {type(e).__name__}: {e}")
            if not batch_probe[0]:
                notes.append("chat while ingesting: measured during single POSTs, as the batch endpoint is not available")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if info:
            print(report(a, info, runs, batch_probe, chat_run, notes, time.monotonic() - started, big_run))


if __name__ == "__main__":
    main()
