"""Retrieval quality on the labelled set data/eval/questions.jsonl over data/sample/*.md:
recall@5 and MRR@5 (document level) of POST /api/search in each mode, by language and
paraphrase flag. Prints the table (run pytest with -s) and writes it to
tests/artifacts/retrieval_quality.json.

The requirement under test: hybrid retrieval is at least as good as vector and as lexical
alone on this set, and finds the relevant document in its top 5 for at least 80% of it."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from harness import ROOT, ingest_sample_corpus, load_eval_questions

MODES = ("hybrid", "vector", "lexical")
K = 5
ARTIFACT = ROOT / "tests" / "artifacts" / "retrieval_quality.json"


def _summary(rows: list[dict]) -> dict:
    n = len(rows)
    return {"n": n,
            "recall@5": round(sum(r["hit"] for r in rows) / n, 4) if n else None,
            "mrr@5": round(sum(r["rr"] for r in rows) / n, 4) if n else None}


@pytest.fixture(scope="module")
def evaluation(offline_stack):
    docs = ingest_sample_corpus(offline_stack)
    assert len(docs) == 32
    assert all(d["duplicate"] is False for d in docs.values())
    file_of = {d["id"]: name for name, d in docs.items()}
    questions = load_eval_questions()
    assert len(questions) >= 100
    per_q: dict[str, dict[str, dict]] = defaultdict(dict)
    for q in questions:
        relevant = {docs[f]["id"] for f in q["relevant"]}
        for mode in MODES:
            r = offline_stack.post_json("/api/search", {"query": q["question"], "top_k": K,
                                                        "mode": mode})
            assert r.status == 200, (q["id"], mode, r)
            assert r.json["mode"] == mode
            results = r.json["results"]
            assert len(results) <= K
            ranked_docs = []  # distinct documents in rank order
            for x in results:
                if x["document_id"] not in ranked_docs:
                    ranked_docs.append(x["document_id"])
            rank = next((i + 1 for i, d in enumerate(ranked_docs) if d in relevant), None)
            per_q[q["id"]][mode] = {"hit": rank is not None, "rr": 1 / rank if rank else 0.0,
                                    "rank": rank,
                                    "top": [file_of.get(d, d) for d in ranked_docs]}

    table = {}
    for mode in MODES:
        rows = lambda pred: [per_q[q["id"]][mode] for q in questions if pred(q)]  # noqa: E731
        t = {"all": _summary(rows(lambda q: True))}
        for lang in sorted({q["language"] for q in questions}):
            t[lang] = _summary(rows(lambda q: q["language"] == lang))
            for para in (False, True):
                key = f"{lang}/{'paraphrase' if para else 'literal'}"
                sub = rows(lambda q: q["language"] == lang and q["paraphrase"] == para)
                if sub:
                    t[key] = _summary(sub)
        for para in (False, True):
            t["paraphrase" if para else "literal"] = _summary(
                rows(lambda q: q["paraphrase"] == para))
        table[mode] = t

    # Questions that hybrid misses although a single mode finds them.
    lost = []
    for q in questions:
        r = per_q[q["id"]]
        if not r["hybrid"]["hit"] and (r["vector"]["hit"] or r["lexical"]["hit"]):
            lost.append({"id": q["id"], "language": q["language"], "paraphrase": q["paraphrase"],
                         "question": q["question"], "relevant": q["relevant"],
                         **{f"{m}_rank": r[m]["rank"] for m in MODES},
                         "hybrid_top": r["hybrid"]["top"]})
    gained = [q["id"] for q in questions
              if per_q[q["id"]]["hybrid"]["hit"]
              and not (per_q[q["id"]]["vector"]["hit"] or per_q[q["id"]]["lexical"]["hit"])]

    report = {"k": K, "questions": len(questions), "documents": len(docs), "table": table,
              "hybrid_lost": lost, "hybrid_only": gained,
              "per_question": {qid: {m: {"rank": v[m]["rank"], "top": v[m]["top"]} for m in MODES}
                               for qid, v in per_q.items()}}
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    _print(report)
    return report


def _print(report: dict) -> None:
    table = report["table"]
    groups = list(table["hybrid"])
    print(f"\nretrieval quality, {report['questions']} questions, {report['documents']} documents, "
          f"document-level recall@{K} / MRR@{K}")
    print(f"{'group':<16}{'n':>5}" + "".join(f"{m + ' R@5':>14}{'MRR':>7}" for m in MODES))
    for g in groups:
        line = f"{g:<16}{table['hybrid'][g]['n']:>5}"
        for m in MODES:
            line += f"{table[m][g]['recall@5']:>14.3f}{table[m][g]['mrr@5']:>7.3f}"
        print(line)
    if report["hybrid_lost"]:
        print("hybrid misses, found by a single mode (rank of the relevant document):")
        for x in report["hybrid_lost"]:
            print(f"  {x['id']} {x['language']} paraphrase={x['paraphrase']} "
                  f"vector={x['vector_rank']} lexical={x['lexical_rank']} "
                  f"relevant={x['relevant'][0]} hybrid top={x['hybrid_top']}")
    print(f"hybrid-only hits: {report['hybrid_only']}")
    print(f"written to {ARTIFACT}")


def _recall(report, mode, group="all"):
    return report["table"][mode][group]["recall@5"]


def _lost_text(report) -> str:
    return "; ".join(f"{x['id']} (vector rank {x['vector_rank']}, lexical rank "
                     f"{x['lexical_rank']})" for x in report["hybrid_lost"])


@pytest.mark.parametrize("single", ["vector", "lexical"])
def test_hybrid_at_least_as_good_as_each_mode_alone(evaluation, single):
    hybrid, other = _recall(evaluation, "hybrid"), _recall(evaluation, single)
    assert hybrid >= other, (
        f"hybrid recall@5 {hybrid:.3f} < {single} recall@5 {other:.3f}; hybrid misses: "
        f"{_lost_text(evaluation)}")


def test_hybrid_recall_at_5_overall(evaluation):
    assert _recall(evaluation, "hybrid") >= 0.8, evaluation["table"]["hybrid"]


def test_every_mode_finds_something_for_every_language(evaluation):
    # A floor that catches a broken mode or language path (e.g. a tokenizer that drops
    # Hebrew), not a quality target.
    for mode in MODES:
        for lang in ("en", "he"):
            assert _recall(evaluation, mode, lang) >= 0.5, (mode, lang, evaluation["table"][mode])
