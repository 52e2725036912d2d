#!/usr/bin/env python3
"""Part 9 of scripts/bench.sh (issue 15): what cluster mode costs, against a single host, in
the same run. A NATS JetStream cluster of three nats-servers on loopback (the shard's log kept
in 3 replicas, the default), a primary and a standby of one shard (nginx + 2 workers each, the
offline answerer), and a single host (the same, no cluster mode).

Measured, per mode:
  - time to first token added: sequential questions, each in a new conversation; the
    workers' request log lines give `first_token_us` (arrival to first token written) and
    `store_us` (the question's durable write: in cluster mode it includes the append to the
    log), p50 / p99;
  - exchanges per second per shard: CLIENTS concurrent clients asking for SECONDS, whole
    streamed answers;
  - replication lag under that load (cluster only): the primary's and the standby's applied
    sequences sampled every 50 ms (records behind), and how long the standby takes to catch
    up once the load stops.
  - recovery: every primary worker SIGKILLed, the time until the standby takes a write.
Not measured, because not built: the tenant move rate.

Usage: cluster_bench.py --out DIR [--quick]
"""
from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness  # noqa: E402

SHARD = "bench"


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def request_lines(stack) -> list[dict]:
    return [r for r in stack.log_records() if r.get("msg") == "request" and r.get("first_token_us", -1) >= 0]


def sequential(stack, n: int) -> dict:
    before = len(request_lines(stack))
    for i in range(n):
        r = stack.stream({"message": f"What does the heron eat, question {i}?"})
        assert r.status == 200 and r.done is not None, r
    time.sleep(0.3)  # the last log lines
    lines = request_lines(stack)[before:]
    ft = [x["first_token_us"] / 1000 for x in lines]
    st = [x["store_us"] / 1000 for x in lines if x.get("store_us", -1) >= 0]
    return {"n": len(lines), "first_token_ms_p50": pct(ft, 50), "first_token_ms_p99": pct(ft, 99),
            "store_ms_p50": pct(st, 50), "store_ms_p99": pct(st, 99)}


def load(stack, clients: int, seconds: float, sample=None) -> dict:
    done, failed = [0], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(k):
        i = 0
        while time.monotonic() < stop_at:
            r = stack.stream({"message": f"Client {k} asks about herons, {i}."})
            with lock:
                if r.status == 200 and r.done is not None:
                    done[0] += 1
                else:
                    failed[0] += 1
            i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    samples = []
    while any(t.is_alive() for t in threads):
        if sample:
            samples.append(sample())
        time.sleep(0.05)
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    return {"exchanges": done[0], "failed": failed[0], "seconds": round(took, 2),
            "per_s": round(done[0] / took, 1), "samples": samples}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    n_seq, clients, seconds = (20, 4, 4) if a.quick else (200, 8, 20)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ragstream-cluster-bench."))
    env_common = {**harness.OFFLINE_ENV, "RAGSTREAM_LOG_LEVEL": "info"}
    res = {"part": 9, "title": "Cluster mode: the replication log", "targets": [],
           "sequential_questions": n_seq, "clients": clients, "load_seconds": seconds}
    nats = None
    stacks = []
    try:
        single = harness.Stack(work / "single", "", workers=2, env=env_common)
        stacks.append(single)
        nats = harness.NatsServers(work / "nats", n=3)
        cl = {"RAGSTREAM_SHARD": SHARD, "RAGSTREAM_NATS_URL": nats.url, "RAGSTREAM_LOG_REPLICAS": "3"}
        # The first start creates the shard's stream and the lease bucket in 3 replicas, which
        # on 2 loaded cores can outlast the harness's 10 s wait for a worker's socket: once more.
        primary_env = {**env_common, **cl, "RAGSTREAM_CLUSTER_ROLE": "primary", "RAGSTREAM_NODE": "host-a"}
        try:
            primary = harness.Stack(work / "primary-first", "", workers=2, env=primary_env)
        except (RuntimeError, AssertionError):
            primary = harness.Stack(work / "primary", "", workers=2, env=primary_env)
        stacks.append(primary)
        standby = harness.Stack(work / "standby", "", workers=2,
                                env={**env_common, **cl, "RAGSTREAM_CLUSTER_ROLE": "standby",
                                     "RAGSTREAM_NODE": "host-b"})
        stacks.append(standby)
        # Warm-up, then interleave the modes so that the machine's noise falls on both.
        for s in (single, primary):
            sequential(s, 5)
        res["single"], res["cluster"] = {}, {}
        half = n_seq // 2
        for s, key in ((single, "single"), (primary, "cluster"), (single, "single"), (primary, "cluster")):
            r = sequential(s, half)
            res[key].setdefault("runs", []).append(r)
        for key in ("single", "cluster"):
            runs = res[key]["runs"]
            for m in ("first_token_ms_p50", "first_token_ms_p99", "store_ms_p50", "store_ms_p99"):
                res[key][m] = round(statistics.median(r[m] for r in runs), 3)
        res["single"]["load"] = load(single, clients, seconds)
        lag = load(primary, clients, seconds,
                   sample=lambda: harness.applied_seq(primary.data_dir) - harness.applied_seq(standby.data_dir))
        t0 = time.monotonic()
        target = harness.applied_seq(primary.data_dir)
        harness.wait_until(lambda: harness.applied_seq(standby.data_dir) >= target, 120, interval=0.02,
                           what="the standby to catch up")
        lag["catch_up_s"] = round(time.monotonic() - t0, 3)
        lag["lag_records_p50"] = pct(lag["samples"], 50)
        lag["lag_records_p99"] = pct(lag["samples"], 99)
        lag["lag_records_max"] = max(lag["samples"]) if lag["samples"] else None
        lag["log_records"] = target
        del lag["samples"]
        res["cluster"]["load"] = lag
        # Recovery: every primary worker SIGKILLed; the time until the standby takes a write
        # (its lease lapses RAGSTREAM_LEASE_MS after the last renewal, 6 s by default).
        for p in primary.workers:
            p.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        for p in primary.workers:
            p.wait(timeout=10)

        def takes_write():
            r = standby.post_json("/api/documents", {"title": "After", "text": f"After the failover {time.time()}."})
            return r.status in (200, 201)
        harness.wait_until(takes_write, 60, interval=0.05, what="the standby to take writes")
        res["cluster"]["recovery_s"] = round(time.monotonic() - killed, 2)
    finally:
        for s in stacks:
            s.stop()
        if nats:
            nats.stop()
    res["elapsed_s"] = round(time.monotonic() - started)
    (out / "cluster.json").write_text(json.dumps(res, indent=1))
    s, c = res["single"], res["cluster"]
    md = [
        "## 9. Cluster mode: the replication log",
        "",
        "What it costs to send every write through the shard's NATS JetStream log (issue 15), "
        "against a single host, in the same run: three nats-servers on loopback in one JetStream "
        "cluster (the log in 3 replicas, the default), a primary and a standby of one shard "
        "(nginx + 2 workers each), and a single host without cluster mode (nginx + 2 workers); "
        "the offline answerer (no model), so the figures are ragstream's own. All on this "
        "machine's 2 cores: the three NATS servers, both hosts' workers and the clients share them.",
        "",
        f"Command: `tests/bench/cluster/run.sh OUT` (part of `scripts/bench.sh`). {n_seq} questions one "
        "after another per mode (in two interleaved halves; the figure is the median of the halves' "
        "p50 / p99), from the workers' request log lines: `first_token_us` (arrival to first token "
        "written) and `store_us` (the question's durable write; in cluster mode it includes the "
        "append to the log and its replication to a quorum). Then "
        f"{clients} concurrent clients for {seconds} s, whole streamed answers.",
        "",
        "| | single host | cluster (primary) | added by the log |",
        "| --- | ---: | ---: | ---: |",
        f"| first token p50 (ms) | {s['first_token_ms_p50']} | {c['first_token_ms_p50']} | "
        f"{round(c['first_token_ms_p50'] - s['first_token_ms_p50'], 3)} |",
        f"| first token p99 (ms) | {s['first_token_ms_p99']} | {c['first_token_ms_p99']} | "
        f"{round(c['first_token_ms_p99'] - s['first_token_ms_p99'], 3)} |",
        f"| question's write p50 (ms) | {s['store_ms_p50']} | {c['store_ms_p50']} | "
        f"{round(c['store_ms_p50'] - s['store_ms_p50'], 3)} |",
        f"| question's write p99 (ms) | {s['store_ms_p99']} | {c['store_ms_p99']} | "
        f"{round(c['store_ms_p99'] - s['store_ms_p99'], 3)} |",
        f"| exchanges per second (one shard, {clients} clients) | {s['load']['per_s']} | {c['load']['per_s']} | "
        f"{round(c['load']['per_s'] / s['load']['per_s'], 2) if s['load']['per_s'] else '–'}x |",
        f"| failed exchanges | {s['load']['failed']} | {c['load']['failed']} | |",
        "",
        "Replication lag under that load (the standby's applied sequence against the primary's, "
        "sampled every 50 ms; a record is one write transaction, so an exchange is a few: the "
        f"question, partial saves, the final save): p50 {c['load']['lag_records_p50']}, p99 "
        f"{c['load']['lag_records_p99']}, max {c['load']['lag_records_max']} records behind; "
        f"{c['load']['log_records']} records in the log at the end; the standby caught up "
        f"{c['load']['catch_up_s']} s after the load stopped.",
        "",
        f"Recovery: with every primary worker SIGKILLed right after the load, the standby took its "
        f"first write {c['recovery_s']} s later (the default lease of 6 s lapses after the primary's "
        "last renewal, at most 1.5 s before the kill; then the standby applies the log's end and "
        "takes the lease; docs/operations.md).",
        "",
        "Not measured, because not built yet: the rate of moving a tenant between shards.",
        "",
        f"This part took {res['elapsed_s']} s.",
        "",
    ]
    (out / "cluster.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
