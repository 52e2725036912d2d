#!/usr/bin/env python3
"""Part 6 of the benchmarks: ragstream and a LangChain.js peer, side by side, in one run.

Starts one fake upstream (tests/fake_openai), then for each repetition: a fresh ragstream
(nginx + workers, RAGSTREAM_EMBEDDER=openai against the fake) and fresh peers
(tests/bench/peers/server.mjs, LangChain.js, against the same fake), ingests data/sample
into each with scripts/ingest.sh (timed), and for each stream count runs the load client
(load.py) against the fake directly (the reference), then against each server. Around every
server run it reads /proc: CPU ticks of the server's processes (and nginx's), their RSS
before and mid-stream, the fake's CPU and the machine's busy time. Writes OUT/peers.json
and OUT/peers.md. Loopback only; stops everything it started.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# ------------------------------------------------------------------ /proc
def children_of(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        if ppid == pid:
            kids.append(int(d))
    return kids


def tree(pids):
    """The pids and all their descendants."""
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo.extend(children_of(p))
    return out


def cpu_s(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def cpu_by_name(pids):
    """CPU seconds per process name (comm), e.g. {"ragstream-worke": 4.1, "nginx": 0.9}."""
    out = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE_KIB
        except OSError:
            pass
    return total


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v), idle


# ------------------------------------------------------------------ helpers
def http_json(url, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_file(path, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path) as f:
                return f.read().strip()
        time.sleep(0.05)
    raise RuntimeError(f"{path} did not appear in {seconds} s")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop(proc, seconds=10):
    """Stops a process started in its own session, with everything it started (its group)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # what is left of the group, if anything
    except ProcessLookupError:
        pass
    proc.wait()


class Server:
    """One server under test: its processes, its port, how to start and stop it."""

    def __init__(self, key, label, port):
        self.key, self.label, self.port = key, label, port
        self.proc = None
        self.roots = []

    def pids(self):
        return tree(self.roots)


def start_ragstream(args, run_dir, fake_port, log):
    port = free_port()
    env = dict(os.environ,
               OPENAI_BASE_URL=f"http://127.0.0.1:{fake_port}/v1", OPENAI_API_KEY="sk-benchmark",
               RAGSTREAM_CHAT_MODEL="fake-model", RAGSTREAM_EMBEDDER="openai",
               RAGSTREAM_EMBED_DIMENSIONS=str(args.embed_dimensions),
               RAGSTREAM_THREADS=str(args.ragstream_threads),
               # One load client is one tenant (loopback, no keys); the peer has no such limit.
               RAGSTREAM_MAX_STREAMS_PER_TENANT="0",
               RAGSTREAM_LOG_LEVEL="warn", RAGSTREAM_GRACE_S="2", RAGSTREAM_DATA_DIR=os.path.join(run_dir, "data"))
    s = Server("ragstream", f"ragstream ({args.ragstream_workers} workers + nginx)", port)
    s.proc = subprocess.Popen([os.path.join(HERE, "ragstream_stack.sh"), run_dir, str(port),
                               str(args.ragstream_workers)], env=env, stdout=log, stderr=log,
                              start_new_session=True)
    s.roots = [s.proc.pid]
    s.ready = lambda: wait_file(os.path.join(run_dir, "pids"), 60)
    return s


def start_peer(args, procs, run_dir, fake_port, log):
    port_file = os.path.join(run_dir, f"peer{procs}.port")
    env = dict(os.environ, PEER_PROCS=str(procs), PORT="0", PORT_FILE=port_file,
               OPENAI_BASE_URL=f"http://127.0.0.1:{fake_port}/v1", OPENAI_API_KEY="sk-benchmark",
               CHAT_MODEL="fake-model", EMBED_DIMENSIONS=str(args.embed_dimensions))
    proc = subprocess.Popen(["node", os.path.join(HERE, "server.mjs")], env=env, stdout=log,
                            stderr=log, start_new_session=True)
    label = f"LangChain.js ({procs} process{'es' if procs > 1 else ''}{', node:cluster' if procs > 1 else ''})"
    s = Server(f"langchain_{procs}p", label, None)
    s.proc, s.roots = proc, [proc.pid]

    def ready():
        s.port = int(wait_file(port_file, 60))
    s.ready = ready
    return s


def ingest(server):
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(ROOT, "scripts", "ingest.sh"), os.path.join(ROOT, "data", "sample")],
                       env=dict(os.environ, RAGSTREAM_URL=f"http://127.0.0.1:{server.port}"),
                       capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    last = (r.stdout.strip().splitlines() or [""])[-1]
    if r.returncode != 0:
        raise RuntimeError(f"ingest into {server.key} failed: {last} {r.stderr[-500:]}")
    import re
    chunks = sum(int(m) for m in re.findall(r"\((\d+) chunks\)", r.stdout))
    return elapsed, last, chunks


def run_load(args, port, n, direct, fake_port, server=None, fake_pid=None):
    cmd = [sys.executable, os.path.join(HERE, "load.py"), "--port", str(port), "--streams", str(n),
           "--tokens", str(args.tokens), "--gap-ms", str(args.gap_ms), "--ramp-ms", str(args.ramp_ms),
           "--questions", os.path.join(ROOT, "data", "eval", "questions.jsonl")]
    if direct:
        cmd.append("--direct")
    http_json(f"http://127.0.0.1:{fake_port}/_fake/reset", {})
    pids = server.pids() if server else []
    rss0 = rss_kib(pids)
    cpu0, fake0, m0 = cpu_s(pids), cpu_s([fake_pid]), machine_ticks()
    names0 = cpu_by_name(pids)
    t0 = time.monotonic()
    client = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    # Mid-stream: every stream has started (ramp) and none has finished (answers take
    # tokens x gap), so all N are open here if the server keeps up. RSS is also sampled
    # every 0.2 s for its peak.
    answer_s = args.tokens * args.gap_ms / 1000.0
    ramp_s = args.ramp_ms / 1000.0
    mid_at = t0 + (ramp_s + answer_s) / 2 if answer_s > ramp_s else t0 + ramp_s
    rss1 = open_upstream = None
    rss_peak = rss0
    open_peak = 0
    while client.poll() is None and time.monotonic() - t0 < args.timeout:
        now = time.monotonic()
        time.sleep(min(0.2, mid_at - now) if rss1 is None and mid_at > now + 0.01 else 0.2)
        rss = rss_kib(pids)
        rss_peak = max(rss_peak, rss)
        try:
            open_now = http_json(f"http://127.0.0.1:{fake_port}/_fake/stats")["active_streams"]
        except Exception:  # noqa: BLE001 - a sample, not a result
            open_now = None
        if open_now is not None:
            open_peak = max(open_peak, open_now)
        if rss1 is None and time.monotonic() >= mid_at:
            rss1, open_upstream = rss, open_now
    try:
        out, _ = client.communicate(timeout=max(5.0, args.timeout - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        client.kill()
        client.communicate()
        out = json.dumps({"streams": n, "complete": 0, "incomplete": n, "timeout": n, "http_error": 0,
                          "tokens_measured": 0, "delay_ms_p50": None, "delay_ms_p99": None,
                          "ttft_ms_p50": None, "ttft_ms_p99": None, "elapsed_s": None,
                          "client_cpu_s": 0, "client_cpu_share": None, "killed": True})
    elapsed = time.monotonic() - t0
    cpu1, fake1, m1 = cpu_s(pids), cpu_s([fake_pid]), machine_ticks()
    names1 = cpu_by_name(pids)
    res = json.loads(out.strip().splitlines()[-1])
    busy = 1 - (m1[1] - m0[1]) / max(1, m1[0] - m0[0])
    busy_cpu_s = busy * (m1[0] - m0[0]) / TICK
    res.update({
        "upstream_open_mid": open_upstream,
        "upstream_open_max": open_peak,  # sampled every 0.2 s
        "fake_cpu_s": round(fake1 - fake0, 3),
        "machine_busy": round(busy, 3),
        # Everything else that ran meanwhile: this script and other users of the machine.
        "other_cpu_s": round(busy_cpu_s - (cpu1 - cpu0) - (fake1 - fake0) - res["client_cpu_s"], 2),
        "wall_s": round(elapsed, 2),
    })
    if server:
        tokens = res["tokens_measured"]
        res.update({
            "server_pids": len(pids),
            "server_cpu_s": round(cpu1 - cpu0, 3),
            "server_cpu_s_by_process": {k: round(v - names0.get(k, 0), 3) for k, v in names1.items()
                                        if v - names0.get(k, 0) > 0},
            "nginx_cpu_s": round(names1.get("nginx", 0) - names0.get("nginx", 0), 3),
            "cpu_s_per_1k_tokens": round((cpu1 - cpu0) / tokens * 1000, 4) if tokens else None,
            "rss_kib_before": rss0, "rss_kib_mid": rss1, "rss_kib_peak": rss_peak,
            "kib_per_stream": round((rss1 - rss0) / n, 1) if rss1 is not None else None,
            "kib_per_stream_peak": round((rss_peak - rss0) / n, 1),
        })
    return res


# ------------------------------------------------------------------ report
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def ratio(peer, base):
    if peer is None or base is None or base <= 0 or peer < 0:
        return "–"
    return f"{peer / base:.2f}×"


def summarize(runs, servers, counts):
    summary = {}
    for n in counts:
        s = {"direct": {}}
        direct = [r for r in runs if r["n"] == n and r["server"] == "direct"]
        for k in ("delay_ms_p50", "delay_ms_p99", "ttft_ms_p50", "ttft_ms_p99", "elapsed_s",
                  "client_cpu_share", "fake_cpu_s", "machine_busy", "other_cpu_s", "upstream_open_max"):
            s["direct"][k] = med([r["result"][k] for r in direct])
        for key in servers:
            rs = [r["result"] for r in runs if r["n"] == n and r["server"] == key]
            s[key] = {k: med([r.get(k) for r in rs]) for k in (
                "delay_ms_p50", "delay_ms_p99", "delay_ms_max", "complete", "incomplete", "http_error",
                "upstream_open_mid", "upstream_open_max", "cpu_s_per_1k_tokens", "server_cpu_s",
                "nginx_cpu_s", "kib_per_stream", "kib_per_stream_peak", "rss_kib_before", "rss_kib_mid",
                "rss_kib_peak", "ttft_ms_p50", "ttft_ms_p99", "elapsed_s", "client_cpu_share", "other_cpu_s",
                "fake_cpu_s", "machine_busy", "tokens_measured")}
            by_rep = {r["rep"]: r["result"] for r in direct}
            mine = [r for r in runs if r["n"] == n and r["server"] == key]
            s[key]["runs"] = len(mine)
            for q in ("p50", "p99"):
                f = f"delay_ms_{q}"
                s[key][f"added_{q}_ms"] = med([
                    r["result"][f] - by_rep[r["rep"]][f] for r in mine
                    if r["result"][f] is not None and by_rep.get(r["rep"], {}).get(f) is not None])
        summary[str(n)] = s
    return summary


def markdown(args, labels, summary, ingest_s, counts, command, env_note, chunk_counts):
    keys = list(labels)
    base = keys[0]
    head = "| | " + " | ".join(labels[k] + (" | ratio" if k != base else "") for k in keys) + " |"
    sep = "|---|" + "|".join("---:" + ("|---:" if k != base else "") for k in keys) + "|"

    def row(name, getter, digits=1):
        cells = []
        for k in keys:
            v = getter(k)
            cells.append(fmt(v, digits))
            if k != base:
                cells.append(ratio(v, getter(base)))
        return f"| {name} | " + " | ".join(cells) + " |"

    L = ["## 6. A peer, side by side", ""]
    L.append(
        "The same workload on ragstream and on a RAG chat server built from LangChain.js "
        "(`tests/bench/peers/server.mjs`, written only for this benchmark), measured in the same run "
        "against the same fake upstream (`tests/fake_openai`, for both chat and embeddings): "
        f"ingest `data/sample` (32 documents) with `scripts/ingest.sh`, then {' and '.join(f'{n:,}' for n in counts)} "
        f"concurrent streaming questions (questions from `data/eval/questions.jsonl`; each answer "
        f"{args.tokens} tokens, {args.gap_ms} ms apart, stamped with their send time by the fake; starts "
        f"spread over {args.ramp_ms / 1000:g} s), driven by one load client (`tests/bench/peers/load.py`, "
        "Python asyncio) through the same API shape (`POST /api/chat/message/stream`, ragstream's SSE "
        f"events). Every figure is the median of repeated runs, {args.reps_asked} asked for (each row's median "
        "taken on its own)"
        + ("; fewer fit in the time limit, each table says how many"
           if min(summary[str(n)][base]["runs"] for n in counts) < args.reps_asked else "")
        + ". For each repetition and stream "
        "count every server is started fresh and ingests the corpus, then the load client reads the fake "
        "directly (the reference) and then each server in turn (the order rotates), so one server runs "
        "at a time and the others sit idle. Ratios are peer ÷ ragstream (below 1: the peer uses less or "
        "is faster).")
    L.append("")
    L.append("```sh\n" + command + "\n```")
    L.append("")
    L.append("Setup (both use the same retrieval settings): " + env_note)
    L.append("")
    L.append("- **relay delay**: a token's arrival at the client minus its send time stamped by the fake, "
             "all tokens of all streams of a run (p50 / p99); *added* is that minus the same percentile "
             "read from the fake directly in the same repetition.")
    L.append("- **streams held**: streams that ended with all their tokens and a `done: true` event; "
             "*open at once* is the fake's count of upstream streams open mid-run (after the last start, "
             "before the first end) and at its peak.")
    L.append("- **CPU per 1,000 tokens**: user + system CPU seconds of the server's processes over the whole "
             "run (ragstream: its workers plus nginx's master and workers; the peer: every node process), "
             "from `/proc/PID/stat`, ÷ tokens relayed × 1,000. It includes each question's retrieval, "
             "embedding call and prompt, not only the relay.")
    L.append("- **memory per stream**: (RSS of those processes mid-run − RSS just before the run, idle after "
             "ingest) ÷ streams, and the same with the run's peak RSS (sampled every 0.2 s); the absolute "
             "RSS is shown too, since memory held before the run (ragstream's pre-started thread pool, "
             "the in-memory index) is not in the delta.")
    L.append("- **time to first token**: from the client's connect to the first token's arrival, per stream. "
             "A server that falls behind queues questions before it calls the model: that shows here and in "
             "the streams open upstream mid-run, not in the relay delay, which only covers tokens already "
             "streaming.")
    L.append("- **contention**: the load client, the fake and the server share the 2 cores; the load client's "
             "CPU is shown per run (it limits when it nears 100% of one core), and *machine busy* counts "
             "everything on the machine, other users of the shared machine included.")
    L.append("")
    L.append("**Ingest** (`scripts/ingest.sh data/sample`: 32 documents, one POST each, each embedded by "
             f"the fake; wall seconds, median of {args.reps * len(counts)} ingests):")
    L.append("")
    L.append(head)
    L.append(sep)
    L.append(row("ingest (s)", lambda k: ingest_s.get(k), 2))
    L.append(row("chunks stored", lambda k: chunk_counts.get(k), 0))
    for n in counts:
        s = summary[str(n)]
        d = s["direct"]
        L.append("")
        L.append(f"**{n:,} concurrent streams**, median of {s[base]['runs']} runs (the fake read directly, same repetitions: relay "
                 f"p50 {fmt(d['delay_ms_p50'], 2)} ms, p99 {fmt(d['delay_ms_p99'], 2)} ms; first token p50 "
                 f"{fmt(d['ttft_ms_p50'], 0)} ms; {fmt(d['upstream_open_max'], 0)} streams open at peak; run "
                 f"{fmt(d['elapsed_s'], 1)} s; load client {fmt(d['client_cpu_share'] * 100, 0)}% of one core; "
                 f"other users of the machine {fmt(d['other_cpu_s'], 1)} CPU-s meanwhile):")
        L.append("")
        L.append(head)
        L.append(sep)
        mib = lambda v: v / 1024 if v else None  # noqa: E731
        L.append(row("relay delay p50 (ms)", lambda k: s[k]["delay_ms_p50"], 2))
        L.append(row("relay delay p99 (ms)", lambda k: s[k]["delay_ms_p99"], 2))
        L.append(row("added over direct, p50 (ms)", lambda k: s[k]["added_p50_ms"], 2))
        L.append(row("added over direct, p99 (ms)", lambda k: s[k]["added_p99_ms"], 2))
        L.append(row("time to first token p50 (ms)", lambda k: s[k]["ttft_ms_p50"], 0))
        L.append(row("time to first token p99 (ms)", lambda k: s[k]["ttft_ms_p99"], 0))
        L.append(row("run wall time (s)", lambda k: s[k]["elapsed_s"], 1))
        L.append(row(f"streams held: complete, of {n:,}", lambda k: s[k]["complete"], 0))
        L.append(row("streams refused (HTTP error)", lambda k: s[k]["http_error"], 0))
        L.append(row("streams held: upstream open mid-run", lambda k: s[k]["upstream_open_mid"], 0))
        L.append(row("streams held: upstream open at peak", lambda k: s[k]["upstream_open_max"], 0))
        L.append(row("CPU-s per 1,000 tokens", lambda k: s[k]["cpu_s_per_1k_tokens"], 3))
        L.append(row("server CPU-s per run", lambda k: s[k]["server_cpu_s"], 2))
        L.append(row("… of which nginx", lambda k: s[k]["nginx_cpu_s"] if k == base else None, 2))
        L.append(row("memory per stream, mid-run (KiB)", lambda k: s[k]["kib_per_stream"], 1))
        L.append(row("memory per stream, at peak RSS (KiB)", lambda k: s[k]["kib_per_stream_peak"], 1))
        L.append(row("RSS before (MiB)", lambda k: mib(s[k]["rss_kib_before"]), 1))
        L.append(row("RSS mid-run (MiB)", lambda k: mib(s[k]["rss_kib_mid"]), 1))
        L.append(row("RSS peak (MiB)", lambda k: mib(s[k]["rss_kib_peak"]), 1))
        L.append(row("load client CPU (% of one core)", lambda k: s[k]["client_cpu_share"] * 100, 0))
        L.append(row("fake upstream CPU-s", lambda k: s[k]["fake_cpu_s"], 2))
        L.append(row("machine busy (% of 2 cores)", lambda k: s[k]["machine_busy"] * 100, 0))
        L.append(row("other CPU-s meanwhile (other users)", lambda k: s[k]["other_cpu_s"], 2))
        for k in keys:
            peak = s[k]["upstream_open_max"]
            if peak is not None and peak < 0.9 * n:
                L.append("")
                L.append(f"{labels[k]} never had more than {fmt(peak, 0)} of the {n:,} streams open upstream at "
                         "once (median of the runs' peaks): it queued the rest before calling the model (see "
                         "time to first token and run wall time), so its relay delay was measured at that lower "
                         f"concurrency, not at {n:,}.")
    L.append("")
    L.append("What differs, beyond the code itself:")
    L.append("")
    L.append("- ragstream does more per question: it saves the user message, then the answer while it "
             "streams (at least every 500 ms) and at the end, in LMDB, durably; it detects the question's "
             "language (CLD2); nginx sits in front (its CPU and memory are counted). The peer keeps "
             "conversations in an in-memory chat history, persists nothing and detects no language.")
    L.append("- Retrieval has the same settings but not the same engines: ragstream's BM25 uses postings in "
             "LMDB and a tokenizer for Hebrew, Arabic, Cyrillic and CJK; LangChain's BM25Retriever re-scores "
             "every chunk per query with a lower-case whitespace split. The chunkers differ in detail "
             "(chunk counts above). The fake's embeddings are seeded random vectors, so retrieval quality is "
             "not compared here, only its cost.")
    L.append("- node:cluster gives each process its own copy of the in-memory index (the RSS counts both) and "
             "its own chat histories (a follow-up question on another process would lose its history; "
             "not exercised here, every question is new). ragstream's workers share one LMDB store.")
    L.append("- ragstream's threads are started before the run (their baseline is in *RSS before*, not in "
             "the per-stream delta); the peer's V8 heap grows during the run and is not returned, so the "
             "peak RSS is the fairer per-stream figure for it.")
    L.append("- Node is v20 (the version installed); `@langchain/openai` is pinned to 1.5.8, the newest "
             "release that supports Node 20.")
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--streams", default="100,1000")
    ap.add_argument("--tokens", type=int, default=30)
    ap.add_argument("--gap-ms", type=int, default=100)
    ap.add_argument("--ramp-ms", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=120, help="the longest one load run may take")
    ap.add_argument("--ragstream-workers", type=int, default=2)
    ap.add_argument("--ragstream-threads", type=int, default=600, help="per worker")
    ap.add_argument("--peer-procs", default="2",
                    help="node processes of each peer variant, e.g. 2,1 for both (a longer run)")
    ap.add_argument("--embed-dimensions", type=int, default=384)
    ap.add_argument("--deadline-s", type=float, default=0,
                    help="stop adding repetitions that would not end within this many seconds (0: no limit)")
    args = ap.parse_args()
    counts = [int(x) for x in args.streams.split(",") if x]
    peer_procs = [int(x) for x in args.peer_procs.split(",") if x]
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="ragstream-peers.")
    log = open(os.path.join(args.out, "peers.log"), "w")
    started = time.monotonic()
    load_start = open("/proc/loadavg").read().split()[:3]

    fake = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "fake_openai", "fake_openai.py"),
                             "--port", "0", "--port-file", os.path.join(work, "fake.port"),
                             "--max-records", "1000"], stdout=log, stderr=log, start_new_session=True)
    running = []
    runs, ingests, labels, chunk_counts = [], {}, {}, {}
    interrupted = None

    class Stopped(Exception):
        pass

    def on_term(signum, frame):
        raise Stopped(signal.Signals(signum).name)
    signal.signal(signal.SIGTERM, on_term)
    try:
        fake_port = int(wait_file(os.path.join(work, "fake.port")))
        block_s = {}  # stream count -> seconds its last block took
        reps_done = 0
        for rep in range(args.reps):
            if rep > 0 and args.deadline_s:
                left = args.deadline_s - (time.monotonic() - started) - 15  # 15 s to stop and write
                if sum(block_s.values()) * 1.15 > left:
                    print(f"rep {rep + 1}: skipped, {left:.0f} s left of the time limit", file=sys.stderr)
                    break
            for n in counts:
                if n in block_s and args.deadline_s:
                    left = args.deadline_s - (time.monotonic() - started) - 15
                    if block_s[n] * 1.15 > left:
                        print(f"rep {rep + 1}: {n} streams skipped, {left:.0f} s left", file=sys.stderr)
                        continue
                block_started = time.monotonic()
                # Fresh servers for every stream count: the RSS before a run is then the
                # idle, just-ingested server (a V8 heap or malloc arenas grown by an earlier
                # run would otherwise hide the memory the streams take).
                block = os.path.join(work, f"rep{rep}-{n}")
                os.makedirs(block)
                servers = [start_ragstream(args, os.path.join(block, "ragstream"), fake_port, log)]
                running.append(servers[0])
                for p in peer_procs:
                    servers.append(start_peer(args, p, block, fake_port, log))
                    running.append(servers[-1])
                for s in servers:
                    s.ready()
                for s in servers:
                    labels[s.key] = s.label
                shift = (rep + counts.index(n)) % len(servers)
                order = servers[shift:] + servers[:shift]
                for s in order:
                    secs, line, n_chunks = ingest(s)
                    ingests.setdefault(s.key, []).append(round(secs, 3))
                    chunk_counts[s.key] = n_chunks
                    print(f"rep {rep + 1}: ingest {s.key}: {secs:.2f} s ({line})", file=sys.stderr)
                time.sleep(0.5)
                r = run_load(args, fake_port, n, True, fake_port, fake_pid=fake.pid)
                runs.append({"rep": rep, "n": n, "server": "direct", "result": r})
                print(f"rep {rep + 1}: {n} direct: p50 {r['delay_ms_p50']} p99 {r['delay_ms_p99']} "
                      f"ttft p50 {r['ttft_ms_p50']} complete {r['complete']}", file=sys.stderr)
                for s in order:
                    time.sleep(0.5)
                    r = run_load(args, s.port, n, False, fake_port, server=s, fake_pid=fake.pid)
                    runs.append({"rep": rep, "n": n, "server": s.key, "result": r})
                    print(f"rep {rep + 1}: {n} {s.key}: p50 {r['delay_ms_p50']} p99 {r['delay_ms_p99']} "
                          f"ttft p50 {r['ttft_ms_p50']} complete {r['complete']} "
                          f"cpu/1k {r['cpu_s_per_1k_tokens']} KiB/stream {r['kib_per_stream']} "
                          f"(peak {r['kib_per_stream_peak']}) open {r['upstream_open_mid']} "
                          f"wall {r['elapsed_s']}", file=sys.stderr)
                for s in servers:
                    stop(s.proc)
                    running.remove(s)
                block_s[n] = time.monotonic() - block_started
            reps_done += 1
    except Stopped as e:
        # Stopped from outside (a time limit): report what was measured so far.
        interrupted = e.args[0]
        print(f"stopped by {interrupted}: writing what was measured", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for s in running:
            stop(s.proc)
        stop(fake)
        log.close()
        shutil.rmtree(work, ignore_errors=True)  # the stores and sockets; logs are in OUT

    load_end = open("/proc/loadavg").read().split()[:3]
    keys = list(labels)
    summary = summarize(runs, keys, counts)
    ingest_med = {k: med(v) for k, v in ingests.items()}
    command = "tests/bench/peers/run.sh OUT   # = python3 tests/bench/peers/bench.py OUT " + " ".join(sys.argv[2:])
    env_note = (
        f"ragstream: {args.ragstream_workers} worker processes × {args.ragstream_threads} threads "
        "behind nginx (2 nginx workers), `RAGSTREAM_MAX_STREAMS_PER_TENANT=0` (the load client is one "
        "tenant; the default of 256 would refuse the rest, and the peer has no such limit), "
        "`RAGSTREAM_EMBEDDER=openai` with "
        f"`RAGSTREAM_EMBED_DIMENSIONS={args.embed_dimensions}`, chat model `fake-model`, defaults otherwise "
        "(700-character chunks with 100 overlap, hybrid top_k 5: RRF k 60, vector 0.5, BM25 1.0, 10 candidates "
        "per list, at most 2 chunks per document; LMDB store; the answer persisted while streaming). "
        "Peer: Node " + subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        + ", LangChain.js (`@langchain/core` 1.4.0, `@langchain/openai` 1.5.8, `@langchain/classic` 1.0.43, "
        "`@langchain/community` 1.1.29, `@langchain/textsplitters` 1.0.2; pinned in package-lock.json): "
        "RecursiveCharacterTextSplitter (700 / 100, paragraph, line, sentence, word separators), "
        f"OpenAIEmbeddings ({args.embed_dimensions} dimensions) and ChatOpenAI (streaming) against the fake, "
        "MemoryVectorStore + BM25Retriever fused by EnsembleRetriever (weights 0.5 / 1.0, c 60, 10 "
        "candidates each), then the same cap of 2 chunks per document and top_k 5, the same system prompt "
        "with numbered fenced passages, an in-memory chat history per conversation; served by `node:http`. "
        + ", ".join(f"{p} process{'es (node:cluster; each holds a replica of the in-memory index)' if p > 1 else ' (one event loop)'}"
                    for p in peer_procs) + ". Machine: "
        f"{os.cpu_count()} cores shared with the load client and the fake upstream (and other users: load "
        f"average {load_start[0]} at the start, {load_end[0]} at the end); the numbers are indicative.")
    reps_done = len({r["rep"] for r in runs if r["server"] != "direct"})
    args.reps_asked, args.reps = args.reps, reps_done
    if not runs:
        print("nothing was measured", file=sys.stderr)
        sys.exit(1)
    counts = [n for n in counts if any(r["n"] == n for r in runs if r["server"] != "direct")]
    md = markdown(args, labels, summary, ingest_med, counts, command, env_note, chunk_counts)
    result = {
        "part": 6,
        "title": "A peer, side by side",
        "repetitions": args.reps,
        "repetitions_asked": args.reps_asked,
        "interrupted_by": interrupted,
        "settings": {"streams": counts, "tokens_per_stream": args.tokens, "gap_ms": args.gap_ms,
                     "ramp_ms": args.ramp_ms, "ragstream_workers": args.ragstream_workers,
                     "ragstream_threads_per_worker": args.ragstream_threads,
                     "peer_procs": peer_procs, "embed_dimensions": args.embed_dimensions},
        "servers": labels,
        "ingest_s": {"median": ingest_med, "runs": ingests},
        "chunks": chunk_counts,
        "summary": summary,
        "runs": runs,
        "targets": [],
        "loadavg_start": load_start, "loadavg_end": load_end,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    with open(os.path.join(args.out, "peers.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, "peers.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"elapsed {result['elapsed_s']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
