#!/usr/bin/env bash
# Part 6 of the benchmarks: ragstream and a LangChain.js peer, side by side (see bench.py).
# Usage: tests/bench/peers/run.sh OUT [bench.py options]   -> OUT/peers.json, OUT/peers.md
# Needs node + npm (installs its pinned packages with npm ci), python3, nginx and a built
# ragstream (scripts/build.sh). Loopback only; stops everything it starts.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
[ $# -ge 1 ] || { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
out="$1"
shift
mkdir -p "$out"
"$root/scripts/build.sh" ragstream-worker >/dev/null  # a no-op when up to date
if [ ! -d "$here/node_modules" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 "$here/bench.py" "$out" "$@"
