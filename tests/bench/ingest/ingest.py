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
Wall time runs from the first request (or insert) to the last response (or commit); MB/s is
text bytes (UTF-8, titles not counted) / that time, 1 MB = 10^6 bytes. Each mode is repeated
--reps times on a fresh store (interleaved), and medians are reported.

  ingest.py --out DIR [--mb 24] [--reps 3] [--deadline SECONDS] [--quick]
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
GROUPS = [  # (group, name pattern); the first match wins, unknown names go to "other"
    ("lexical index", re.compile(r"^(lex_.*|index_meta)$")),
    ("vectors", re.compile(r"^vec8?\..*$|^vec_.*$")),
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

    def __init__(self, run_dir):
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)
        self.run_dir, self.data = run_dir, os.path.join(run_dir, "data")
        self.port = free_port()
        env = dict(os.environ, RAGSTREAM_DATA_DIR=self.data, RAGSTREAM_LOG_LEVEL="warn",
                   RAGSTREAM_MAX_DOCUMENTS_PER_TENANT="0", RAGSTREAM_MAX_STREAMS_PER_TENANT="0",
                   RAGSTREAM_GRACE_S="2")
        for k in ("OPENAI_BASE_URL", "RAGSTREAM_CHAT_MODEL", "RAGSTREAM_EMBEDDER"):
            env.pop(k, None)  # the hash embedder and the offline answerer
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
        asker = Asker(stack.port, chat) if chat else None
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
            idle = Asker(stack.port, chat, count=min(len(asker.results), IDLE_QUESTIONS))
            idle.finish(wait_all=True)
            r["chat_idle"] = idle.results
    finally:
        stack.stop()
    r["mdb"] = mdb_stat(stack.data)
    return r


# ---- chat while ingesting (optional) -------------------------------------------------------
class Asker:
    """Asks a question every 0.5 s, each on its own thread, until finish() (or count asked)."""

    def __init__(self, port, questions, count=None):
        self.port, self.questions, self.results = port, questions, []
        self.stopped, self.threads = threading.Event(), []
        self.count = count
        self.loop = threading.Thread(target=self._loop, daemon=True)
        self.loop.start()

    def _loop(self):
        i = 0
        while not self.stopped.is_set() and (self.count is None or i < self.count):
            t = threading.Thread(target=self._ask, args=(self.questions[i % len(self.questions)],), daemon=True)
            t.start()
            self.threads.append(t)
            i += 1
            self.stopped.wait(0.5)

    def _ask(self, q):
        r = {"ttft_ms": None, "total_ms": None, "error": None}
        t0 = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("POST", "/api/chat/message/stream", json.dumps({"message": q}),
                         {"Content-Type": "application/json", "Accept": "text/event-stream"})
            resp = conn.getresponse()
            if resp.status != 200:
                r["error"] = f"HTTP {resp.status}"
            else:
                for line in resp:
                    if not line.startswith(b"data:"):
                        continue
                    ev = json.loads(line[5:])
                    if ev.get("token") and r["ttft_ms"] is None:
                        r["ttft_ms"] = round((time.perf_counter() - t0) * 1000, 1)
                    if ev.get("done"):
                        if ev.get("status") not in (None, "complete"):
                            r["error"] = f"status {ev.get('status')}"
                        break
            conn.close()
        except Exception as e:  # noqa: BLE001
            r["error"] = f"{type(e).__name__}: {e}"
        r["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        self.results.append(r)

    def finish(self, wait_all=False):
        if wait_all:
            self.loop.join()
        self.stopped.set()
        self.loop.join()
        for t in self.threads:
            t.join()


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


def report(a, info, runs, batch_probe, chat_run, notes, elapsed):
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
          f"(the lexical index's totals), `vec.*` / `vec8.*`, `doc_text` / `chunks`, `documents` / `doc_*`; "
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
            "runs": runs, "chat_run": chat_run, "notes": notes}
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
    a = ap.parse_args()
    started = time.monotonic()
    left = lambda: a.deadline - (time.monotonic() - started)  # noqa: E731
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="ragstream-ingest.")
    runs, notes, chat_run, batch_probe, info = [], [], None, (False, None), None
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
            print(report(a, info, runs, batch_probe, chat_run, notes, time.monotonic() - started))


if __name__ == "__main__":
    main()
