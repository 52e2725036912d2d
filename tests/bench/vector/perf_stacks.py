#!/usr/bin/env python3
"""Reads `perf script` output on stdin; of the samples whose stack contains FRAME, prints
the share of each leaf function (where the time is spent inside that scan)."""
import collections
import re
import sys


def main() -> None:
    frame = sys.argv[1]
    leaves: collections.Counter = collections.Counter()
    total = 0
    stack: list = []

    def flush() -> None:
        nonlocal total
        if stack and any(frame in line for line in stack):
            total += 1
            m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\(", stack[0])
            leaf = m.group(1) if m else stack[0].strip()
            leaves[re.sub(r"\+0x[0-9a-f]+$", "", leaf)] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            stack = []
        elif line[0] in "\t ":
            stack.append(line)
    flush()
    print(f"{total} samples with `{frame}` on the stack; leaf functions:\n")
    print("| share | function |\n|---:|---|")
    for leaf, n in leaves.most_common(8):
        print(f"| {100.0 * n / max(total, 1):.1f}% | `{leaf[:100]}` |")


if __name__ == "__main__":
    main()
