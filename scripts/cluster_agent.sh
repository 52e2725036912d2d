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
# Each look asks `ragstream cluster leaders --routes`: a shard whose lease holder is the node of
# its STANDBY column gets its two columns swapped, a tenant moved by `ragstream cluster move`
# is routed to its new shard (over its line in the file), the result is rendered, and only a
# change is written (atomically) and reloaded (a failed reload is tried again at each look).
# When NATS cannot be reached the routing is left as it is; shards whose lease cannot be read
# are routed as the file says.
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

pending_reload=0
# One look: 0 when the routing is current (or was made so), 1 when it could not be.
look() {
  local rc=0
  "$cli" cluster leaders --routes --cluster "$cluster" --nats "$nats" >"$work/leaders" 2>"$work/err" || rc=$?
  if [ "$rc" != 0 ] && [ ! -s "$work/leaders" ]; then
    [ "$unreachable" = 1 ] || log "cannot read the leases, routing left as it is: $(tr '\n' ' ' <"$work/err")"
    unreachable=1
    return 1
  fi
  if [ "$rc" != 0 ]; then
    # Some shards answered: route those by their leases, the rest as the cluster file says.
    [ "$unreachable" = 1 ] || log "some leases cannot be read, those shards routed as the file says: $(tr '\n' ' ' <"$work/err")"
    unreachable=1
  elif [ "$unreachable" = 1 ]; then
    log "the leases can be read again"
    unreachable=0
  fi
  # The cluster file with each shard's lease holder in the PRIMARY column, and each moved
  # tenant routed where `ragstream cluster move` put it.
  awk 'FNR == NR { if ($1 == "route") route[$2] = $3; else leader[$1] = $2; next }
       { line = $0; sub(/#.*/, "") }
       $1 == "node" { workers[$2] = $3 }
       $1 == "tenant" && ($2 in route) { line = "tenant " $2 " " route[$2]; listed[$2] = 1 }
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
         for (t in route) if (!(t in listed)) printf "tenant %s %s\n", t, route[t]
       }' "$work/leaders" "$cluster" >"$work/cluster.conf" || return 1
  "$root/scripts/render_cluster_nginx.sh" "$work/cluster.conf" "$work/include" || return 1
  # The include names its source file; name the operator's, so that the text only changes with
  # the routing.
  awk -v tmp="$work/cluster.conf" -v src="$cluster (leases and moves applied by cluster_agent.sh)" \
    'NR == 1 { i = index($0, tmp); if (i) $0 = substr($0, 1, i - 1) src substr($0, i + length(tmp)) } { print }' \
    "$work/include" >"$work/include.named" || return 1
  if [ -f "$out" ] && cmp -s "$work/include.named" "$out" && [ "$pending_reload" = 0 ]; then return 0; fi
  if ! [ -f "$out" ] || ! cmp -s "$work/include.named" "$out"; then
    cp "$work/include.named" "$out.agent.tmp" && mv "$out.agent.tmp" "$out" || {
      log "cannot write $out"
      return 1
    }
    log "routing rendered to $out: $(awk '$1 != "route" { printf "%s%s leads %s", (n++ ? ", " : ""), $1, $2 } $1 == "route" { printf "%s%s on %s", (n++ ? ", " : ""), $2, $3 }' "$work/leaders")"
  fi
  if sh -c "$reload" >"$work/reload.out" 2>&1; then
    log "reloaded: $reload"
    pending_reload=0
  else
    # Tried again at the next look, until it works.
    log "reload failed ($reload): $(tr '\n' ' ' <"$work/reload.out")"
    pending_reload=1
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
