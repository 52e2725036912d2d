#!/usr/bin/python3
"""A small multilingual benchmark of the real API (nginx + one worker, offline, no model).

What it measures, through the integration harness (tests/integration/harness.py):
  ingestion  POST /api/documents of every data/evalset/corpus/*.md (64 documents in English,
             Hebrew, Arabic and Russian) --reps times, each copy made unique by a last line
             "copy N" (identical content would be de-duplicated), from one client, one request
             at a time. It reports MB/s of text (UTF-8 bytes) and documents/s per language
             group (the en-, he-, ar- and ru- file prefixes) and overall, from the summed wall
             time of the requests.
  search     then POST /api/search {"query": q, "top_k": 5} for every question of
             data/evalset/questions.jsonl (both splits), --rounds times. It only times and does
             not score. It reports p50 and p99 of the wall time per request, and of the
             response's "took_ms" (whole milliseconds, measured by the worker) when the binary
             returns it.
It prints one JSON object (and writes it to --json OUT if given).

Run it from anywhere, with the system Python (stdlib only):
  /usr/bin/python3 tests/bench/analysis/run.py [--reps 8] [--rounds 3] [--json OUT]
It uses build/ragstream-worker. For another build:
  RAGSTREAM_BIN=/path/to/ragstream-worker /usr/bin/python3 tests/bench/analysis/run.py
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness  # noqa: E402

EVALSET = ROOT / "data" / "evalset"
GROUPS = ("en", "he", "ar", "ru")


def pct(values, p):
    """The p-th percentile (nearest rank) of values, or None if there are none."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))]


def ingest(stack, reps):
    files = sorted((EVALSET / "corpus").glob("*.md"))
    totals = {g: {"docs": 0, "bytes": 0, "seconds": 0.0} for g in GROUPS + ("all",)}
    for rep in range(1, reps + 1):
        for p in files:
            text = p.read_text(encoding="utf-8")
            body = {"title": harness.sample_title(text), "text": f"{text.rstrip()}\n\ncopy {rep}\n"}
            t0 = time.perf_counter()
            r = stack.post_json("/api/documents", body)
            dt = time.perf_counter() - t0
            assert r.status == 201, (p.name, rep, r)  # 200 would be a de-duplicated copy
            for g in (p.name[:2], "all"):
                t = totals[g]
                t["docs"] += 1
                t["bytes"] += len(body["text"].encode())
                t["seconds"] += dt
    return {g: {"docs": t["docs"], "mb": round(t["bytes"] / 1e6, 3),
                "seconds": round(t["seconds"], 3),
                "mb_per_s": round(t["bytes"] / 1e6 / t["seconds"], 3),
                "docs_per_s": round(t["docs"] / t["seconds"], 1)}
            for g, t in totals.items() if t["docs"]}


def search(stack, rounds):
    with open(EVALSET / "questions.jsonl", encoding="utf-8") as f:
        questions = [json.loads(line) for line in f if line.strip()]
    wall, took = [], []
    wall_by_lang = {g: [] for g in GROUPS}
    for _ in range(rounds):
        for q in questions:
            t0 = time.perf_counter()
            r = stack.post_json("/api/search", {"query": q["question"], "top_k": 5})
            ms = (time.perf_counter() - t0) * 1000
            assert r.status == 200, (q["id"], r)
            wall.append(ms)
            wall_by_lang.setdefault(q.get("language", "?"), []).append(ms)
            if isinstance(r.json, dict) and isinstance(r.json.get("took_ms"), (int, float)):
                took.append(r.json["took_ms"])
    return {"requests": len(wall), "questions": len(questions), "rounds": rounds,
            "wall_ms_p50": round(pct(wall, 50), 2), "wall_ms_p99": round(pct(wall, 99), 2),
            "took_ms_p50": pct(took, 50), "took_ms_p99": pct(took, 99),
            "took_ms_present": len(took),
            "wall_ms_p50_by_language": {g: round(pct(v, 50), 2) for g, v in wall_by_lang.items() if v}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=8, help="copies of the corpus to ingest [8]")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the questions [3]")
    ap.add_argument("--json", metavar="OUT", help="also write the result here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragstream-analysis-") as tmp:
        stack = harness.Stack(Path(tmp), "", workers=1, env=dict(harness.OFFLINE_ENV))
        try:
            result = {"binary": str(harness.WORKER_BIN), "reps": args.reps,
                      "ingest": ingest(stack, args.reps), "search": search(stack, args.rounds)}
        finally:
            stack.stop()
            harness.stop_all_started()
    out = json.dumps(result, ensure_ascii=False)
    print(out)
    if args.json:
        Path(args.json).write_text(out + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
