#!/usr/bin/env bash
# Part 6 of the benchmarks: ragstream and a LangChain.js peer, side by side (see bench.py).
# Usage: tests/bench/peers/run.sh OUT [bench.py options]   -> OUT/peers.json, OUT/peers.md
# Needs node + npm (installs its pinned packages with npm ci), python3, nginx and a built
# ragstream (scripts/build.sh ragstream-worker, run here only if the worker is missing).
# BENCH_QUICK=1: one repetition. BENCH_DEADLINE_S: repetitions that would not fit are left
# out (and the report says so). Loopback only; stops everything it starts.
set -euo pipefail
started=$SECONDS
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
[ $# -ge 1 ] || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
out="$1"
shift
mkdir -p "$out"
[ -x "$root/build/ragstream-worker" ] || "$root/scripts/build.sh" ragstream-worker >&2
if [ ! -d "$here/node_modules" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
opts=()
# Quick: one repetition of short answers, to check that everything works (not for numbers).
[ "${BENCH_QUICK:-0}" = 1 ] && opts+=(--reps 1 --tokens 10 --ramp-ms 500)
[ -n "${BENCH_DEADLINE_S:-}" ] && opts+=(--deadline-s $((BENCH_DEADLINE_S - (SECONDS - started))))
python3 "$here/bench.py" "$out" "${opts[@]}" "$@"
echo "peers: run time $((SECONDS - started)) s" >&2
