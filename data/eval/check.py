#!/usr/bin/env python3
"""Checks the sample corpus and the labelled retrieval set (standard library only).

    python3 data/eval/check.py            # checks; exit status 1 on any error
    python3 data/eval/check.py --bm25     # also prints a plain BM25 baseline per flag
    python3 data/eval/check.py --notes    # also lists paraphrase word-overlap notes

Errors (exit 1): a line that does not parse or lacks a field, a duplicate id, a `relevant`
file that does not exist, a count below the minimum, a corpus file outside the rules (name,
encoding, title line, length, niqqud in Hebrew), a file missing from data/README.md, or an
evidence passage (evidence.jsonl) that is not in the relevant document or not exclusive to it.
Notes (--notes): paraphrased questions that share a word found in no other document with
their relevant document. Often a harmless topic word ("bike"); worth a look when it is the
answer's own term.
"""
import json
import math
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent
SAMPLE = DATA / "sample"
EVAL = DATA / "eval"
LANGS = {"en", "he", "ar", "ru"}
MIN_TOTAL, MIN_EN, MIN_HE = 60, 40, 20
WORDS = (150, 600)
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*\.(?:md|txt)$")
QID = re.compile(r"^q\d{3}$")
# Hebrew points and cantillation marks (the maqaf U+05BE is punctuation and allowed).
NIQQUD = re.compile("[\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7]")

errors, warnings, notes = [], [], []


def norm(text):
    return " ".join(unicodedata.normalize("NFC", text).split())


def tokens(text):
    return re.findall(r"\w+", text.lower())


def load_corpus():
    docs = {}
    for path in sorted(SAMPLE.iterdir()):
        name = path.name
        if not SLUG.match(name):
            errors.append(f"sample/{name}: not a lowercase ASCII slug ending in .md or .txt")
            continue
        if name.lower().startswith("readme"):
            errors.append(f"sample/{name}: a README here would be ingested; use data/README.md")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            errors.append(f"sample/{name}: not UTF-8 ({e})")
            continue
        if text.startswith("\ufeff"):
            errors.append(f"sample/{name}: starts with a byte-order mark")
        first = text.split("\n", 1)[0]
        if name.endswith(".md") and not re.match(r"^# \S", first):
            errors.append(f"sample/{name}: first line is not a '# Title' heading")
        n = len(text.split())
        if not WORDS[0] <= n <= WORDS[1]:
            errors.append(f"sample/{name}: {n} words, outside {WORDS[0]}-{WORDS[1]}")
        if name.startswith("he-") and NIQQUD.search(text):
            errors.append(f"sample/{name}: contains niqqud or cantillation marks")
        docs[name] = text
    return docs


def check_readme(docs):
    readme = DATA / "README.md"
    if not readme.exists():
        errors.append("data/README.md is missing")
        return
    text = readme.read_text(encoding="utf-8")
    for name in docs:
        if name not in text:
            errors.append(f"data/README.md does not list {name}")


def load_questions(docs):
    qs, seen = [], set()
    path = EVAL / "questions.jsonl"
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"questions.jsonl:{no}"
        if not line.strip():
            errors.append(f"{where}: empty line")
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"{where}: does not parse ({e})")
            continue
        keys = {"id", "question", "language", "relevant", "paraphrase"}
        if not isinstance(q, dict) or set(q) != keys:
            errors.append(f"{where}: fields must be exactly {sorted(keys)}")
            continue
        if not isinstance(q["id"], str) or not QID.match(q["id"]):
            errors.append(f"{where}: bad id {q['id']!r}")
        elif q["id"] in seen:
            errors.append(f"{where}: duplicate id {q['id']}")
        seen.add(q["id"])
        if not isinstance(q["question"], str) or not q["question"].strip():
            errors.append(f"{where}: empty question")
        if q["language"] not in LANGS:
            errors.append(f"{where}: language {q['language']!r} not in {sorted(LANGS)}")
        rel = q["relevant"]
        if not isinstance(rel, list) or len(rel) != 1 or not all(isinstance(r, str) for r in rel):
            errors.append(f"{where}: relevant must list exactly one file name")
        else:
            for r in rel:
                if r not in docs:
                    errors.append(f"{where}: relevant file {r!r} is not in data/sample/")
        if not isinstance(q["paraphrase"], bool):
            errors.append(f"{where}: paraphrase must be true or false")
        qs.append(q)
    return qs


def check_evidence(qs, docs):
    path = EVAL / "evidence.jsonl"
    ev = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        ev[item["id"]] = item["evidence"]
    normed = {name: norm(text) for name, text in docs.items()}
    for q in qs:
        rel = q["relevant"][0]
        if rel not in normed:
            continue
        passages = ev.get(q["id"])
        if not passages:
            errors.append(f"{q['id']}: no evidence passage in evidence.jsonl")
            continue
        exclusive = False
        for p in passages:
            p = norm(p)
            if p not in normed[rel]:
                errors.append(f"{q['id']}: evidence not found in {rel}: {p!r}")
                continue
            if not any(p in t for n, t in normed.items() if n != rel):
                exclusive = True
        if not exclusive:
            errors.append(f"{q['id']}: no evidence passage is exclusive to {rel}")
    for qid in set(ev) - {q["id"] for q in qs}:
        errors.append(f"evidence.jsonl: {qid} has no question")


def doc_freq(docs):
    df = Counter()
    for text in docs.values():
        df.update(set(tokens(text)))
    return df


def check_paraphrases(qs, docs):
    df = doc_freq(docs)
    rel_tokens = {name: set(tokens(text)) for name, text in docs.items()}
    for q in qs:
        if not q["paraphrase"] or q["relevant"][0] not in docs:
            continue
        shared = [t for t in set(tokens(q["question"]))
                  if len(t) >= 4 and df[t] == 1 and t in rel_tokens[q["relevant"][0]]]
        if shared:
            notes.append(f"{q['id']} (paraphrase): shares one-document word(s) {sorted(shared)} "
                            f"with {q['relevant'][0]}")


def bm25_baseline(qs, docs, k1=1.2, b=0.75):
    names = list(docs)
    toks = {n: tokens(docs[n]) for n in names}
    tf = {n: Counter(toks[n]) for n in names}
    avg = sum(len(t) for t in toks.values()) / len(names)
    df = doc_freq(docs)
    N = len(names)

    def score(q, n):
        s = 0.0
        for t in set(tokens(q)):
            if t not in tf[n]:
                continue
            idf = math.log(1 + (N - df[t] + 0.5) / (df[t] + 0.5))
            f = tf[n][t]
            s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(toks[n]) / avg))
        return s

    rows = Counter()
    for q in qs:
        ranked = sorted(names, key=lambda n: -score(q["question"], n))
        rank = ranked.index(q["relevant"][0]) + 1
        key = (q["language"], q["paraphrase"])
        rows[key + ("n",)] += 1
        rows[key + ("hit1",)] += rank == 1
        rows[key + ("hit5",)] += rank <= 5
    print("\nBM25 baseline (whole documents, no stemming): recall@1 / recall@5")
    for lang in sorted({q["language"] for q in qs}):
        for para in (False, True):
            n = rows[(lang, para, "n")]
            if n:
                print(f"  {lang} paraphrase={str(para).lower():5}  n={n:3}  "
                      f"@1 {rows[(lang, para, 'hit1')] / n:.2f}  @5 {rows[(lang, para, 'hit5')] / n:.2f}")


def main():
    docs = load_corpus()
    check_readme(docs)
    qs = load_questions(docs)
    check_evidence(qs, docs)
    check_paraphrases(qs, docs)

    by_lang = Counter(q["language"] for q in qs)
    by_flag = Counter((q["language"], q["paraphrase"]) for q in qs)
    docs_used = Counter(q["relevant"][0] for q in qs)
    if len(qs) < MIN_TOTAL:
        errors.append(f"{len(qs)} questions, fewer than {MIN_TOTAL}")
    if by_lang["en"] < MIN_EN:
        errors.append(f"{by_lang['en']} English questions, fewer than {MIN_EN}")
    if by_lang["he"] < MIN_HE:
        errors.append(f"{by_lang['he']} Hebrew questions, fewer than {MIN_HE}")
    for name in docs:
        if name not in docs_used:
            warnings.append(f"no question targets {name}")

    print(f"corpus: {len(docs)} documents, {sum(len(t.split()) for t in docs.values())} words")
    print(f"questions: {len(qs)} ({sum(q['paraphrase'] for q in qs)} paraphrased)")
    for lang in sorted(by_lang):
        print(f"  {lang}: {by_lang[lang]:3}  paraphrase true {by_flag[(lang, True)]:3}, "
              f"false {by_flag[(lang, False)]:3}")
    print(f"documents targeted: {len(docs_used)} of {len(docs)}")
    if "--bm25" in sys.argv:
        bm25_baseline(qs, docs)
    print(f"notes: {len(notes)} paraphrased question(s) share a one-document word with their "
          f"document" + ("" if "--notes" in sys.argv else " (--notes lists them)"))
    if "--notes" in sys.argv:
        for n in notes:
            print("  note:", n)
    for w in warnings:
        print("warning:", w)
    for e in errors:
        print("ERROR:", e)
    print("OK" if not errors else f"FAILED: {len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
