#!/usr/bin/env bash
# Keeps nginx's cluster routing in step with the shards' leases: each shard's upstream lists
# the host that holds the shard's lease (its primary) first and the other as `backup`. After a
# failover, the host that took the lease comes first without anyone editing the cluster file,
# so a POST never goes to the old primary when it returns as a standby (it would answer 503,
# and nginx does not retry a POST elsewhere).
#
# Usage: cluster_agent.sh --cluster FILE --out INCLUDE [options]
#   --cluster FILE   the cluster file (scripts/render_cluster_nginx.sh); its `node NODE ADDRS`
#                    lines say which workers each RAGSTREAM_NODE is
#   --out INCLUDE    the include nginx reads (as render_cluster_nginx.sh CLUSTER_FILE OUT)
#   --nats URL       the NATS servers (default: $RAGSTREAM_NATS_URL, else nats://127.0.0.1:4222)
#   --reload CMD     run after the include changed (default: nginx -s reload)
#   --interval S     seconds between looks at the leases (default: 1)
#   --once           look once, render if needed, and exit
#   --ragstream BIN  the CLI (default: build/ragstream of this checkout, else ragstream)
#
# Each look asks `ragstream cluster leaders`; a shard whose lease holder is the node of its
# STANDBY column gets its two columns swapped, the result is rendered, and only a change is
# written (atomically) and reloaded. When NATS cannot be reached the routing is left as it is.
# See docs/operations.md, "Several hosts".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }
cluster="" out="" nats="${RAGSTREAM_NATS_URL:-nats://127.0.0.1:4222}" reload="nginx -s reload"
interval=1 once=0 cli=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) cluster="${2:?--cluster FILE}"; shift ;;
    --out) out="${2:?--out INCLUDE}"; shift ;;
    --nats) nats="${2:?--nats URL}"; shift ;;
    --reload) reload="${2:?--reload CMD}"; shift ;;
    --interval) interval="${2:?--interval S}"; shift ;;
    --once) once=1 ;;
    --ragstream) cli="${2:?--ragstream BIN}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "cluster_agent.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$cluster" ] && [ -n "$out" ] || { usage >&2; exit 2; }
[ -r "$cluster" ] || { echo "cluster_agent.sh: cannot read $cluster" >&2; exit 2; }
if [ -z "$cli" ]; then
  cli=ragstream
  [ -x "$root/build/ragstream" ] && cli="$root/build/ragstream"
fi
log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) cluster_agent: $*" >&2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
trap 'exit 143' TERM INT
unreachable=0

# One look: 0 when the routing is current (or was made so), 1 when the leases could not be read.
look() {
  if ! "$cli" cluster leaders --cluster "$cluster" --nats "$nats" >"$work/leaders" 2>"$work/err"; then
    [ "$unreachable" = 1 ] || log "cannot read the leases, routing left as it is: $(tr '\n' ' ' <"$work/err")"
    unreachable=1
    return 1
  fi
  [ "$unreachable" = 0 ] || log "the leases can be read again"
  unreachable=0
  # The cluster file with each shard's lease holder in the PRIMARY column.
  awk 'FNR == NR { leader[$1] = $2; next }
       { line = $0; sub(/#.*/, "") }
       $1 == "node" { workers[$2] = $3 }
       { kept[++n] = line; kind[n] = $1; name[n] = $2; p[n] = $3; s[n] = $4 }
       END {
         for (i = 1; i <= n; i++) {
           held = leader[name[i]]
           if (kind[i] == "shard" && held != "" && held != "-" && (held in workers) &&
               workers[held] == s[i]) {
             printf "shard %s %s %s\n", name[i], s[i], p[i]
           } else {
             print kept[i]
           }
         }
       }' "$work/leaders" "$cluster" >"$work/cluster.conf"
  "$root/scripts/render_cluster_nginx.sh" "$work/cluster.conf" "$work/include" || return 1
  # The include names its source file; name the operator's, so the text only changes with
  # the routing.
  sed -i "1s|$work/cluster.conf|$cluster (leases applied by cluster_agent.sh)|" "$work/include"
  if [ -f "$out" ] && cmp -s "$work/include" "$out"; then return 0; fi
  cp "$work/include" "$out.agent.tmp"
  mv "$out.agent.tmp" "$out"
  log "routing rendered to $out: $(awk '{ printf "%s%s leads %s", (NR > 1 ? ", " : ""), $1, $2 }' "$work/leaders")"
  if sh -c "$reload" >"$work/reload.out" 2>&1; then
    log "reloaded: $reload"
  else
    log "reload failed ($reload): $(tr '\n' ' ' <"$work/reload.out")"
  fi
  return 0
}

if [ "$once" = 1 ]; then
  look
  exit $?
fi
log "watching the leases of $cluster every $interval s"
while true; do
  look || true
  sleep "$interval"
done
