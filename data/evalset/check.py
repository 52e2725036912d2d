#!/usr/bin/env python3
"""Checks the held-out retrieval set (standard library only); exit status 1 on any error.

    python3 data/evalset/check.py

Errors: a line that does not parse or lacks a field, a duplicate id, a `relevant` file that
is not in corpus/, an unanswerable question with a relevant file or evidence, an evidence
passage that is not in its relevant document, fewer than 60 documents or 300 questions, a
language or a split without questions. Warnings: an evidence passage that also occurs in
another document of corpus/ or ../sample/ (the label may then be ambiguous).
"""
import json
import sys
import unicodedata
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
SAMPLE = HERE.parent / "sample"
LANGS = {"en", "he", "ar", "ru"}
KINDS = {"literal", "paraphrase", "wordform", "neardup", "keyword", "unanswerable"}
FIELDS = {"id": str, "question": str, "language": str, "relevant": list, "kind": str, "split": str}


def nfc(s):
    return unicodedata.normalize("NFC", s)


def main():
    errors, warnings = [], []
    docs = {p.name: nfc(p.read_text(encoding="utf-8")) for p in sorted(CORPUS.glob("*.md"))}
    others = {p.name: nfc(p.read_text(encoding="utf-8")) for p in sorted(SAMPLE.glob("*.md"))}
    for name, text in docs.items():
        if not text.startswith("# "):
            errors.append(f"corpus/{name}: the first line is not a '# Title' heading")
    evidence = {}
    for n, line in enumerate((HERE / "evidence.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        o = json.loads(line)
        evidence[o["id"]] = o["evidence"]
    questions, ids = [], set()
    for n, line in enumerate((HERE / "questions.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        try:
            q = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"questions.jsonl:{n}: {e}")
            continue
        if any(not isinstance(q.get(f), t) for f, t in FIELDS.items()):
            errors.append(f"questions.jsonl:{n}: needs {sorted(FIELDS)}")
            continue
        qid = q["id"]
        if qid in ids:
            errors.append(f"{qid}: duplicate id")
        ids.add(qid)
        if q["language"] not in LANGS or q["kind"] not in KINDS or q["split"] not in ("tune", "heldout"):
            errors.append(f"{qid}: language, kind or split out of range")
        ev = evidence.get(qid)
        if ev is None:
            errors.append(f"{qid}: no evidence line")
            continue
        if q["kind"] == "unanswerable":
            if q["relevant"] or ev:
                errors.append(f"{qid}: unanswerable but has relevant files or evidence")
        else:
            if len(q["relevant"]) != 1 or q["relevant"][0] not in docs:
                errors.append(f"{qid}: relevant must name one file of corpus/")
                continue
            if not ev:
                errors.append(f"{qid}: no evidence")
            target = q["relevant"][0]
            for passage in ev:
                p = nfc(passage)
                if p not in docs[target]:
                    errors.append(f"{qid}: evidence not in {target}: {passage!r}")
                for name, text in {**docs, **others}.items():
                    if name != target and p in text:
                        warnings.append(f"{qid}: evidence also in {name}: {passage!r}")
        questions.append(q)
    if len(docs) < 60:
        errors.append(f"{len(docs)} documents; at least 60 are needed")
    if len(questions) < 300:
        errors.append(f"{len(questions)} questions; at least 300 are needed")
    for lang in LANGS:
        for split in ("tune", "heldout"):
            if not any(q["language"] == lang and q["split"] == split for q in questions):
                errors.append(f"no {lang} questions in the {split} split")
    for w in warnings:
        print("warning:", w)
    for e in errors:
        print("error:", e)
    counts = Counter((q["language"], q["split"]) for q in questions)
    print(f"{len(docs)} documents, {len(questions)} questions:",
          ", ".join(f"{l}/{s} {c}" for (l, s), c in sorted(counts.items())))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
