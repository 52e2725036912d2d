#!/usr/bin/env python3
"""Real text for the approximate vector index's benchmark (tests/bench/ivf/run.sh): Debian's
own documentation under /usr/share/doc (the corpus of scripts/bench.sh part 7, collected the
same way), written as JSON lines {"title", "text"} for `ttft_store --jsonl`, and questions
drawn from it: each a run of 5-9 words from a random line of a random document (seeded), so
its nearest chunks are that document's and its neighbours', as a user quoting a phrase.

Usage: real_corpus.py DOCS.jsonl QUESTIONS.txt [--mb 60] [--questions 200] [--seed 1]
"""
import argparse
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ingest"))
import ingest  # noqa: E402  (the corpus collector of part 7)

WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("docs")
    ap.add_argument("questions")
    ap.add_argument("--mb", type=float, default=60)
    ap.add_argument("--questions-count", "--questions-n", dest="n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    docs, info = ingest.corpus(int(a.mb * 1e6))
    with open(a.docs, "w", encoding="utf-8") as f:
        for name, text, _ in docs:
            f.write(json.dumps({"title": name, "text": text}, ensure_ascii=False) + "\n")
    rng = random.Random(a.seed)
    questions = []
    while len(questions) < a.n:
        _, text, _ = docs[rng.randrange(len(docs))]
        lines = [ln for ln in text.splitlines() if len(WORD.findall(ln)) >= 5]
        if not lines:
            continue
        words = WORD.findall(lines[rng.randrange(len(lines))])
        n = min(len(words), rng.randint(5, 9))
        start = rng.randrange(len(words) - n + 1)
        questions.append(" ".join(words[start:start + n]))
    with open(a.questions, "w", encoding="utf-8") as f:
        f.write("\n".join(questions) + "\n")
    print(json.dumps({"documents": len(docs), "text_mb": info["text_mb"],
                      "exhausted": info["exhausted"], "questions": len(questions)}))


if __name__ == "__main__":
    main()
