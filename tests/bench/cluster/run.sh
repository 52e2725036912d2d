#!/usr/bin/env bash
# Part 9 of scripts/bench.sh (issue 15): cluster mode against a single host in the same run --
# the time to first token the shard's log adds, exchanges per second per shard, and the
# standby's replication lag under load. Three nats-servers on loopback (JetStream, the log in
# 3 replicas), a primary and a standby of one shard, and a single host; see cluster_bench.py.
#
# Usage: tests/bench/cluster/run.sh OUT      writes OUT/cluster.md and OUT/cluster.json
# Environment: BENCH_QUICK=1 (a short run: checks that it works, not for numbers).
set -euo pipefail
out="${1:?usage: run.sh OUT}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
started=$SECONDS
"$root/scripts/install_deps.sh" --test >&2
"$root/scripts/build.sh" ragstream-worker ragstream >&2
export RAGSTREAM_BIN="$root/build/ragstream-worker"
quick=()
[ "${BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
# Debian's python3, which has python3-lmdb (the applied sequences are read from the stores).
/usr/bin/python3 "$here/cluster_bench.py" --out "$out" "${quick[@]}" >/dev/null
echo "== cluster: done in $((SECONDS - started)) s" >&2
