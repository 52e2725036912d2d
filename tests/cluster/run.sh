#!/usr/bin/env bash
# The cluster test of issue 15: hosts as network namespaces on one machine, joined by a bridge
# (traffic stays inside them): a front nginx, three nats-servers (one JetStream cluster), and two
# shards, each a primary and a standby with their own workers and LMDB stores. Streams from
# three tenants run all the while; one primary host is killed whole (SIGKILL), another is cut
# off by taking its link down. Prints each check and exits 1 if any fails. Needs root (ip netns).
#
# Usage: tests/cluster/run.sh [--short]   (--short: the shorter run scripts/test.sh does)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
case "${1:-}" in
  -h | --help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
  "" | --short) ;;
  *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac
"$root/scripts/install_deps.sh" --test >&2
[ -x "$root/build/ragstream-worker" ] || "$root/scripts/build.sh" ragstream-worker >&2
# Debian's python3 (python3-lmdb).
exec /usr/bin/python3 "$root/tests/cluster/cluster_test.py" "$@"
