#!/usr/bin/env bash
# Part 1 of scripts/bench.sh: relay delay per token.
#
# The upstream (relay_upstream) stamps each token with its send time; the client
# (relay_client) records each token's arrival. At 1, 100 and 1,000 concurrent streams, in the
# same run and interleaved run by run, three paths are measured:
#   direct     the client reads the upstream itself (the reference: loopback + client cost)
#   floor      nginx + relay_floor, the minimal libfcgi relay (the floor of the architecture)
#   ragstream  nginx + ragstream-worker (offline store, the upstream as its LLM)
# Both stacks are started by scripts/stack.sh (nginx rendered from nginx/nginx.local.conf.in,
# fastcgi_buffering off) with the same pool: 2 processes x RELAY_THREADS threads.
#
# Usage: tests/bench/relay/run.sh OUT [--quick]
#   writes OUT/relay.json (every run, medians, targets) and OUT/relay.md (part 1's section).
# Environment: RELAY_REPS (3), RELAY_COUNTS ("1 100 1000"), RELAY_THREADS (600).
set -euo pipefail
out="${1:?usage: run.sh OUT [--quick]}"
quick=0
if [ "${2:-}" = "--quick" ] || [ "${BENCH_QUICK:-0}" = 1 ]; then quick=1; fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
started=$SECONDS
source "$(dirname "$0")/lib.sh"
relay_prepare

reps="${RELAY_REPS:-3}"
counts="${RELAY_COUNTS:-1 100 1000}"
threads="${RELAY_THREADS:-600}"
if [ "$quick" = 1 ]; then
  reps=1
  counts="1 100"
fi

run="$(mktemp -d /tmp/ragstream-relay.XXXXXX)"
UP_PID=""
cleanup() {
  relay_stack_stop FLOOR 2>/dev/null || true
  relay_stack_stop RAG 2>/dev/null || true
  [ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null
  [ -n "${RELAY_KEEP:-}" ] || rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

relay_upstream_start "$run"
export OPENAI_BASE_URL="http://127.0.0.1:$UP_PORT/v1" RAGSTREAM_CHAT_MODEL=fake-model
export RAGSTREAM_THREADS="$threads" RAGSTREAM_LOG_LEVEL=warn
# One tenant makes all the load: lift the per-tenant stream limit (default 256, all workers).
export RAGSTREAM_MAX_STREAMS_PER_TENANT=0
export RAGSTREAM_DATA_DIR="$run/data"
mkdir -p "$run/floor" "$run/rag"
relay_stack_start FLOOR "$RELAY_BIN/relay_floor" "$run/floor" 2
relay_stack_start RAG "$RELAY_ROOT/build/ragstream-worker" "$run/rag" 2
ragstream_version=$("$RELAY_ROOT/build/ragstream-worker" --version 2>/dev/null | head -1 || true)

raw="$out/relay.runs.jsonl"
: >"$raw"
# Shape of a run per stream count: a lone stream gets a fast model (more samples); many
# streams get 10 tokens/s each, their starts spread over the ramp.
shape() {
  case "$1" in
    1) echo "200 10 0" ;;                        # tokens gap_ms ramp_ms
    *) echo "30 100 $(($1 >= 1000 ? 2000 : 1000))" ;;
  esac
}

one_run() {
  local mode="$1" n="$2" rep="$3" tokens="$4" gap="$5" ramp="$6" port pids args=()
  case "$mode" in
    direct) port=$UP_PORT; pids="$UP_PID"; args=(--direct) ;;
    floor) port=$FLOOR_PORT; pids="${FLOOR_PIDS[*]} $(relay_nginx_workers "$FLOOR_NGINX")" ;;
    ragstream) port=$RAG_PORT; pids="${RAG_PIDS[*]} $(relay_nginx_workers "$RAG_NGINX")" ;;
  esac
  local cpu0 cpu1 line
  # shellcheck disable=SC2086
  cpu0=$(relay_cpu_s $pids)
  line=$("$RELAY_BIN/relay_client" --port "$port" --streams "$n" --tokens "$tokens" \
    --gap-ms "$gap" --ramp-ms "$ramp" --timeout 60 "${args[@]}")
  # shellcheck disable=SC2086
  cpu1=$(relay_cpu_s $pids)
  echo "$line" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
r.update(case=sys.argv[1], rep=int(sys.argv[2]), server_cpu_s=round(float(sys.argv[4]) - float(sys.argv[3]), 3))
print(json.dumps(r))' "$mode" "$rep" "$cpu0" "$cpu1" >>"$raw"
  echo "  $mode n=$n rep=$rep: $(echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("p50 %.3f ms, p99 %.3f ms, complete %d/%d" % (r["delay_ms_p50"], r["delay_ms_p99"], r["complete"], r["streams"]))')" >&2
}

for n in $counts; do
  read -r tokens gap ramp <<<"$(shape "$n")"
  for rep in $(seq "$reps"); do
    for mode in direct floor ragstream; do
      one_run "$mode" "$n" "$rep" "$tokens" "$gap" "$ramp"
      sleep 0.3
    done
  done
done

elapsed=$((SECONDS - started))
machine=$(relay_machine_json)
python3 - "$raw" "$out" "$reps" "$elapsed" "$machine" "$threads" "$quick" "$ragstream_version" <<'EOF'
import json, statistics, sys
raw, out, reps, elapsed, machine, threads, quick, version = sys.argv[1:]
runs = [json.loads(l) for l in open(raw) if l.strip()]
counts = sorted({r["streams"] for r in runs})
med = lambda xs: statistics.median(xs) if xs else None
cases = {}
for n in counts:
    for mode in ("direct", "floor", "ragstream"):
        rs = [r for r in runs if r["streams"] == n and r["case"] == mode]
        if not rs:
            continue
        tokens = sum(r["tokens_measured"] for r in rs)
        cases[f"{mode}/{n}"] = {
            "case": mode, "streams": n, "runs": len(rs),
            "tokens_per_stream": rs[0]["tokens_per_stream"], "gap_ms": rs[0]["gap_ms"],
            "p50_ms": med([r["delay_ms_p50"] for r in rs]),
            "p99_ms": med([r["delay_ms_p99"] for r in rs]),
            "p999_ms": med([r["delay_ms_p999"] for r in rs]),
            "max_ms": med([r["delay_ms_max"] for r in rs]),
            "failed_streams": sum(r["streams"] - r["complete"] for r in rs),
            "server_cpu_s_per_1000_tokens": (round(1000 * sum(r["server_cpu_s"] for r in rs) / tokens, 4)
                                             if tokens else None),
            "client_cpu_s": med([r["client_cpu_s"] for r in rs]),
        }

def c(mode, n):
    return cases.get(f"{mode}/{n}")

targets = []
focus = 100 if c("ragstream", 100) else None
if focus:
    d, f, g = c("direct", 100), c("floor", 100), c("ragstream", 100)
    diff = g["p50_ms"] - d["p50_ms"]
    targets.append({
        "name": "Relay delay p50 at 100 streams, nginx + ragstream vs the direct read",
        "target": "within 0.3 ms of direct", "measured": f"+{diff:.3f} ms ({g['p50_ms']:.3f} vs {d['p50_ms']:.3f} ms)",
        "met": diff <= 0.3 and g["failed_streams"] == 0})
    targets.append({
        "name": "Relay delay p99 at 100 streams, nginx + ragstream",
        "target": "< 5 ms", "measured": f"{g['p99_ms']:.3f} ms",
        "met": g["p99_ms"] < 5 and g["failed_streams"] == 0})
result = {
    "part": 1, "title": "Relay delay per token", "status": "ok",
    "quick": quick == "1", "elapsed_s": int(elapsed), "machine": json.loads(machine),
    "command": "tests/bench/relay/run.sh OUT" + (" --quick" if quick == "1" else ""),
    "repetitions": int(reps), "pool": {"processes": 2, "threads_per_process": int(threads)},
    "ragstream_version": version,
    "targets": targets, "cases": cases, "runs": runs,
}
json.dump(result, open(f"{out}/relay.json", "w"), indent=1)

def fmt(x, nd=3):
    return "–" if x is None else f"{x:.{nd}f}"

lines = []
w = lines.append
w("## 1. Relay delay per token")
w("")
w("The upstream stamps each token with its send time (`|<seconds>|` as the token's content, the "
  "`stamp_content` behaviour of `tests/fake_openai`); the client records each token's arrival, so "
  "arrival − stamp is the delay a token spends between the upstream's `write` and the client's "
  "`read`. Three paths, in the same run, interleaved run by run so that the shared CPU's noise falls "
  "on all three alike:")
w("")
w("- **direct**: the client reads the upstream itself — the reference (loopback TCP + the client's own cost);")
w("- **floor**: nginx + `relay_floor` (`tests/bench/relay/fcgi_floor.cc`), a minimal libfcgi relay "
  "that parses the upstream's SSE and writes one event per token with a flush, nothing else: the floor of "
  "this architecture (nginx → FastCGI over a unix socket → one thread per stream);")
w("- **ragstream**: nginx + `ragstream-worker` (offline store, the upstream as its LLM): the whole "
  "send-message pipeline (conversation and user message saved, retrieval, prompt, libcurl stream, "
  "partial saves batched every 250 ms, the final save before the done event).")
w("")
w(f"Both stacks come from `scripts/stack.sh` (nginx rendered from `nginx/nginx.local.conf.in`, "
  f"`fastcgi_buffering off`) with the same pool: 2 processes × {threads} threads. The upstream is "
  "`relay_upstream` and the client `relay_client` (C++, epoll; see `tests/bench/relay/`), "
  "because on 2 shared cores the Python fake and client would cost more CPU than the relay being measured. "
  "A lone stream is 200 tokens 10 ms apart; 100 and 1,000 streams are 30 tokens each at 10 tokens/s, "
  "their starts spread over 1 s / 2 s.")
w("")
w(f"Command: `tests/bench/relay/run.sh OUT{' --quick' if quick == '1' else ''}` "
  f"({elapsed} s). Every figure is the median of {reps} run(s) per case; "
  "p50/p99 are over every token of a run. *Added* is ragstream minus the path it is compared with.")
w("")
w("| streams | path | p50 ms | p99 ms | p99.9 ms | max ms | failed streams | nginx+workers CPU s / 1000 tokens |")
w("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for n in counts:
    for mode in ("direct", "floor", "ragstream"):
        x = c(mode, n)
        if not x:
            continue
        cpu = "–" if mode == "direct" else fmt(x["server_cpu_s_per_1000_tokens"], 3)
        w(f"| {n} | {mode} | {fmt(x['p50_ms'])} | {fmt(x['p99_ms'])} | {fmt(x['p999_ms'])} | "
          f"{fmt(x['max_ms'], 1)} | {x['failed_streams']} | {cpu} |")
w("")
w("| streams | ragstream − direct, p50 | ragstream − direct, p99 | ragstream − floor, p50 | ragstream − floor, p99 | ragstream / floor, p50 |")
w("| ---: | ---: | ---: | ---: | ---: | ---: |")
for n in counts:
    d, f, g = c("direct", n), c("floor", n), c("ragstream", n)
    if not (d and f and g):
        continue
    ratio = g["p50_ms"] / f["p50_ms"] if f["p50_ms"] else float("nan")
    w(f"| {n} | {g['p50_ms'] - d['p50_ms']:+.3f} ms | {g['p99_ms'] - d['p99_ms']:+.3f} ms | "
      f"{g['p50_ms'] - f['p50_ms']:+.3f} ms | {g['p99_ms'] - f['p99_ms']:+.3f} ms | {ratio:.2f}× |")
w("")
w("Targets (100 streams):")
w("")
for t in targets:
    verdict = "**met**" if t["met"] else "**missed**"
    w(f"- {t['name']}: target {t['target']}, measured {t['measured']} — {verdict}.")
if not targets:
    w("- not measured in this run (no 100-stream case).")
open(f"{out}/relay.md", "w").write("\n".join(lines) + "\n")
EOF
echo "part 1 (relay delay) done in $((SECONDS - started)) s: $out/relay.md" >&2
