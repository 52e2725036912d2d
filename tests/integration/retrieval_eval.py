#!/usr/bin/env python3
"""Scores retrieval on the held-out set data/evalset through a real stack (nginx + workers).

Ingests data/evalset/corpus/*.md and data/sample/*.md, asks every question of the chosen split
through POST /api/search (top_k 5) in each mode, and reports per mode and language:
  first  right document first (answerable questions)
  top3   right document among the first 3 distinct documents (answerable questions)
  none   nothing cited (unanswerable questions: the right outcome)

    python3 tests/integration/retrieval_eval.py [--split heldout|tune|all] [--json FILE]
        [--modes default,hybrid,lexical,vector] [--env NAME=VALUE ...] [--show-misses]

RAGSTREAM_BIN picks another worker binary (e.g. an older build, for a before/after).
test_retrieval_heldout.py uses evaluate() and table() from here."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

EVALSET = harness.ROOT / "data" / "evalset"
MODES = ("default", "hybrid", "lexical", "vector")
TOP_K = 5


def load_questions(split: str) -> list[dict]:
    with open(EVALSET / "questions.jsonl", encoding="utf-8") as f:
        qs = [json.loads(line) for line in f if line.strip()]
    return [q for q in qs if split == "all" or q["split"] == split]


def ingest(stack) -> dict:
    """POSTs the corpus and the sample pages; returns {document id: file name}."""
    files = sorted((EVALSET / "corpus").glob("*.md")) + harness.sample_files()
    names = {}
    for p in files:
        text = p.read_text(encoding="utf-8")
        r = stack.post_json("/api/documents", {"title": harness.sample_title(text), "text": text})
        assert r.status in (200, 201), (p.name, r)
        names[r.json["id"]] = p.name
    return names


def evaluate(stack, names: dict, questions: list[dict], modes=MODES) -> dict:
    """{mode: {question id: {"docs": [file names in rank order], "ok_first", "ok_top3"}}}"""
    out = {}
    for mode in modes:
        per_q = {}
        for q in questions:
            body = {"query": q["question"], "top_k": TOP_K}
            if mode != "default":
                body["mode"] = mode
            r = stack.post_json("/api/search", body)
            assert r.status == 200, (q["id"], mode, r)
            docs = []
            for x in r.json["results"]:
                name = names.get(x["document_id"], x["document_id"])
                if name not in docs:
                    docs.append(name)
            relevant = set(q["relevant"])
            per_q[q["id"]] = {"docs": docs,
                              "first": bool(relevant) and bool(docs) and docs[0] in relevant,
                              "top3": bool(relevant & set(docs[:3])),
                              "none": not docs}
        out[mode] = per_q
    return out


def table(results: dict, questions: list[dict]) -> dict:
    """{mode: {group: {"n", "first", "top3", "n_unanswerable", "none"}}}, fractions 0..1;
    groups: all, each language."""
    out = {}
    for mode, per_q in results.items():
        groups = defaultdict(list)
        for q in questions:
            groups["all"].append(q)
            groups[q["language"]].append(q)
        t = {}
        for g, qs in groups.items():
            ans = [q for q in qs if q["relevant"]]
            una = [q for q in qs if not q["relevant"]]
            frac = lambda xs, key: round(sum(per_q[q["id"]][key] for q in xs) / len(xs), 4) if xs else None  # noqa: E731
            t[g] = {"n": len(ans), "first": frac(ans, "first"), "top3": frac(ans, "top3"),
                    "n_unanswerable": len(una), "none": frac(una, "none")}
        out[mode] = t
    return out


def markdown(tab: dict) -> str:
    lines = ["| mode | group | answerable | right first | right in top 3 | unanswerable | nothing cited |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    for mode, t in tab.items():
        for g in ["all"] + sorted(k for k in t if k != "all"):
            r = t[g]
            lines.append(f"| {mode} | {g} | {r['n']} | {pct(r['first'])} | {pct(r['top3'])} | "
                         f"{r['n_unanswerable']} | {pct(r['none'])} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="heldout", choices=["heldout", "tune", "all"])
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the workers")
    ap.add_argument("--json", help="write the table and per-question results here")
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    env = dict(harness.OFFLINE_ENV)
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    questions = load_questions(args.split)
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="ragstream-eval-") as d:
        stack = harness.Stack(Path(d), "", workers=1, env=env)
        try:
            names = ingest(stack)
            results = evaluate(stack, names, questions, modes)
        finally:
            stack.stop()
            harness.stop_all_started()
    tab = table(results, questions)
    print(markdown(tab))
    if args.show_misses:
        for mode in modes:
            for q in questions:
                r = results[mode][q["id"]]
                bad = (not r["none"]) if not q["relevant"] else not r["first"]
                if bad:
                    print(f"{mode} {q['id']} [{q['kind']}] {q['question']} -> want {q['relevant']} got {r['docs'][:3]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"split": args.split, "table": tab, "results": results},
                                              ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
