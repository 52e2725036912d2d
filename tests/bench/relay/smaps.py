#!/usr/bin/env python3
"""Where a process's anonymous memory is, from /proc/PID/smaps: thread stacks, malloc arenas
(glibc's per-thread-group heaps, 64 MiB reservations), the main heap, other anonymous maps.

  smaps.py STACK_KB PID...   -> one JSON line: KiB of resident anonymous memory per kind,
                                summed over the pids, and the number of thread stacks.

A thread stack is an anonymous read-write mapping of STACK_KB KiB (glibc puts its guard page
in a separate PROT_NONE mapping below it); an arena is a read-write anonymous mapping at
the start of a 64 MiB-aligned reservation. Used by ramp.sh to say what dominates the memory
per stream.
"""
import json
import re
import sys

HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$")
ARENA_ALIGN = 64 << 20


def classify(pid, stack_bytes, totals):
    start = end = 0
    perms = name = ""
    inode = 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = HEADER.match(line)
            if m:
                start, end = int(m.group(1), 16), int(m.group(2), 16)
                perms, inode, name = m.group(3), int(m.group(4)), m.group(5).strip()
                continue
            if not line.startswith("Anonymous:"):
                continue
            kib = int(line.split()[1])
            if kib == 0 and not (perms.startswith("rw") and end - start == stack_bytes):
                continue
            size = end - start
            if name == "[heap]":
                kind = "main_heap"
            elif name == "[stack]":
                kind = "main_stack"
            elif inode != 0 or name.startswith("/"):
                kind = "file_private"  # copy-on-write pages of libraries and files
            elif perms.startswith("rw") and size == stack_bytes:
                kind = "thread_stacks"
                totals["thread_stack_count"] += 1
            elif perms.startswith("rw") and start % ARENA_ALIGN == 0:
                kind = "malloc_arenas"
            else:
                kind = "other_anon"
            totals[kind] = totals.get(kind, 0) + kib


def main():
    stack_bytes = int(sys.argv[1]) * 1024
    totals = {"thread_stacks": 0, "malloc_arenas": 0, "main_heap": 0, "other_anon": 0,
              "file_private": 0, "main_stack": 0, "thread_stack_count": 0}
    for pid in sys.argv[2:]:
        try:
            classify(pid, stack_bytes, totals)
        except OSError:
            pass
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
