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
  - a tenant move: the tenant (the load's, with MOVE_MB of documents added) moved to a second
    shard's primary by `ragstream cluster move` while clients keep asking: MB/s, the write
    pause, and what the clients saw.

Usage: cluster_bench.py --out DIR [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
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
CLI = ROOT / "build" / "ragstream"


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


def load(stack, clients: int, seconds: float, sample=None, until=None) -> dict:
    done, failed = [0], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(k):
        i = 0
        while time.monotonic() < stop_at and not (until and until()):
            r = stack.stream({"message": f"Client {k} asks about herons, {i}."})
            ok = r.status == 200 and r.done is not None
            with lock:
                if ok:
                    done[0] += 1
                else:
                    failed[0] += 1
            if not ok:
                time.sleep(0.05)  # as a client backs off
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


def add_documents(stack, megabytes: float) -> int:
    """Synthetic documents of ~8 kB through the batch endpoint, 64 a request; their bytes."""
    words = ("heron reed marsh otter river willow kingfisher minnow dragonfly lily "
             "bank current ford alder pike eel newt frog moss stone").split()
    total, n = 0, 0
    while total < megabytes * 1e6:
        lines = []
        for _ in range(64):
            text = f"Note {n}. " + " ".join(words[(n * 7 + i * 13) % len(words)] + str((n + i) % 997)
                                            for i in range(1300))
            lines.append(json.dumps({"title": f"Note {n}", "text": text}))
            total += len(text)
            n += 1
        r = stack.request("POST", "/api/documents/batch", body="\n".join(lines).encode(),
                          headers={"Content-Type": "application/x-ndjson"}, timeout=300)
        assert r.status == 200, r
    return total


def move_tenant(source, target_env: dict, work: Path, nats_url: str, clients: int, seconds: float,
                megabytes: float) -> dict:
    """Adds `megabytes` of documents on `source` (the shard's primary), then moves the tenant
    to a new shard while `clients` keep asking on the source."""
    added = add_documents(source, megabytes)
    before = len(source.get("/api/documents").json["documents"])
    target = harness.Stack(work / "target", "", workers=2, env=target_env)
    try:
        cluster_file = work / "cluster.conf"
        cluster_file.write_text(f"shard {SHARD} 127.0.0.1:1 -\nshard {SHARD}2 127.0.0.1:2 -\n"
                                f"default {SHARD}\n")
        result = {}

        def run_move():
            t0 = time.monotonic()
            p = subprocess.run([str(CLI), "cluster", "move", "default", "--to", f"{SHARD}2",
                                "--cluster", str(cluster_file), "--data-dir", str(source.data_dir),
                                "--nats", nats_url, "--timeout", "300"],
                               capture_output=True, text=True, timeout=600,
                               env={**os.environ, "RAGSTREAM_LOG_REPLICAS": "3"})
            result.update(rc=p.returncode, out=p.stdout, err=p.stderr[-2000:],
                          wall_s=round(time.monotonic() - t0, 2))

        mover = threading.Thread(target=run_move)
        mover.start()
        # The clients ask until the move ends (after that the source no longer serves the tenant).
        seen = load(source, clients, seconds, until=lambda: not mover.is_alive())
        mover.join()
        del seen["samples"]
        assert result["rc"] == 0, result
        m = re.search(r"moved tenant \S+ to shard \S+: (\d+) bytes in ([\d.]+) s \(([\d.]+) MB/s\), "
                      r"writes paused ([\d.]+) s", result["out"])
        assert m, result["out"]
        listed = target.get("/api/documents")
        return {"text_mb": round(added / 1e6, 1), "bytes": int(m.group(1)), "seconds": float(m.group(2)),
                "mb_per_s": float(m.group(3)), "pause_s": float(m.group(4)), "wall_s": result["wall_s"],
                "documents_before": before,
                "documents_on_target": len(listed.json["documents"]) if listed.status == 200 else None,
                "clients": seen}
    finally:
        target.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    n_seq, clients, seconds = (20, 4, 4) if a.quick else (200, 8, 20)
    move_mb = 1 if a.quick else 10
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
        # A tenant move: the new primary's tenant to a second shard, under the same load.
        res["cluster"]["move"] = move_tenant(
            standby, {**env_common, "RAGSTREAM_SHARD": f"{SHARD}2", "RAGSTREAM_NATS_URL": nats.url,
                      "RAGSTREAM_LOG_REPLICAS": "3", "RAGSTREAM_CLUSTER_ROLE": "primary",
                      "RAGSTREAM_NODE": "host-c"},
            work, nats.url, clients // 2, 600, move_mb)
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
        f"A tenant move: {c['move']['text_mb']} MB of documents were added to the tenant on the new "
        f"primary, then `ragstream cluster move` took it to a second shard (its own primary, the same "
        f"NATS servers) while {c['move']['clients']['exchanges'] + c['move']['clients']['failed']} "
        f"exchanges were asked of the tenant meanwhile by {clients // 2} clients: "
        f"{c['move']['bytes']:,} bytes of records in {c['move']['seconds']} s, "
        f"**{c['move']['mb_per_s']} MB/s** (snapshot, copy through the target's log, the catch-up "
        f"and the deletion at the source), writes paused {c['move']['pause_s']} s; "
        f"{c['move']['clients']['failed']} of those exchanges failed (refused while the writes "
        f"paused, or cut by the deletion at the source: the clients asked the source until the "
        f"move ended, as they would before a front nginx re-routes them); "
        f"{c['move']['documents_on_target']} of the tenant's {c['move']['documents_before']} documents on "
        "the target afterwards.",
        "",
        f"This part took {res['elapsed_s']} s.",
        "",
    ]
    (out / "cluster.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
