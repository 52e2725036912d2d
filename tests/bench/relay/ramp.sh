#!/usr/bin/env bash
# Part 2 of scripts/bench.sh: concurrent streams per host.
#
# Ramps concurrent streams of 10 tokens/s each through nginx + ragstream (2 worker processes,
# RAMP_THREADS threads each: the pool sized for the largest step) until the p99 relay delay
# exceeds 100 ms or a request fails. Each step is repeated; a step is held when the median
# run has every stream complete and p99 <= 100 ms. For each step it reports, from /proc:
#   - CPU seconds (utime + stime) per 1,000 relayed tokens, for nginx (its worker processes)
#     and the ragstream workers separately, over the whole run and over a steady window with
#     every stream open; the upstream's and the client's CPU too (they share the 2 cores);
#   - worker memory per stream: anonymous RSS (RssAnon) of the workers with N streams open,
#     minus that of the same workers idle after start, divided by N; plus the cost of an idle
#     thread (a pool of T threads against a pool of 1, measured at start), since each stream
#     holds a thread.
# Usage: tests/bench/relay/ramp.sh OUT [--quick]   -> OUT/ramp.json, OUT/ramp.md
# Environment: RAMP_STEPS ("250 500 1000 1500 2000 2500 3000 4000 5000 6000"), RAMP_REPS (3),
# RAMP_BUDGET_S (330: no new step starts after this), RAMP_THREADS (per process; default
# half the largest step + 500, at most 4096).
set -euo pipefail
out="${1:?usage: ramp.sh OUT [--quick]}"
quick=0
if [ "${2:-}" = "--quick" ] || [ "${BENCH_QUICK:-0}" = 1 ]; then quick=1; fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
started=$SECONDS
source "$(dirname "$0")/lib.sh"
relay_prepare

steps="${RAMP_STEPS:-250 500 1000 1500 2000 2500 3000 4000 5000 6000}"
reps="${RAMP_REPS:-3}"
budget="${RAMP_BUDGET_S:-330}"
if [ "$quick" = 1 ]; then
  steps="${RAMP_STEPS:-100 300}"
  reps=1
fi
largest=0
for n in $steps; do [ "$n" -gt "$largest" ] && largest=$n; done
threads="${RAMP_THREADS:-$((largest / 2 + 500 > 4096 ? 4096 : largest / 2 + 500))}"
workers=2
cores=$(nproc)

run="$(mktemp -d /tmp/ragstream-ramp.XXXXXX)"
UP_PID=""
probe_pid=""
cleanup() {
  [ -n "$probe_pid" ] && kill "$probe_pid" 2>/dev/null && wait "$probe_pid" 2>/dev/null
  relay_stack_stop RAG 2>/dev/null || true
  [ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null
  [ -n "${RELAY_KEEP:-}" ] || rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

relay_upstream_start "$run"
export OPENAI_BASE_URL="http://127.0.0.1:$UP_PORT/v1" RAGSTREAM_CHAT_MODEL=fake-model
export RAGSTREAM_LOG_LEVEL=warn RAGSTREAM_DATA_DIR="$run/data"
# One tenant makes all the load: lift the per-tenant stream limit (default 256, all workers).
export RAGSTREAM_MAX_STREAMS_PER_TENANT=0
stack_kb=$(RAGSTREAM_THREADS=1 "$RELAY_ROOT/build/ragstream-worker" --check-config 2>&1 |
  sed -n 's/.*RAGSTREAM_THREAD_STACK_KB[^0-9]*\([0-9]*\).*/\1/p' | head -1)
stack_kb="${RAGSTREAM_THREAD_STACK_KB:-${stack_kb:-256}}"
# Static TLS of the worker (every thread's copy sits at the top of its stack, written at start).
tls_bytes=$(readelf -lW "$RELAY_ROOT/build/ragstream-worker" 2>/dev/null |
  awk '$1 == "TLS" {print $6}' | head -1)
tls_bytes=$((${tls_bytes:-0}))

# What an idle thread costs: a worker with 1 thread against one with $threads, both idle.
idle_rss() {  # THREADS -> RssAnon KiB of an idle worker, 1 s after start
  local sock="$run/probe.sock" kib
  RAGSTREAM_THREADS="$1" RAGSTREAM_DATA_DIR="$run/probe-data" \
    "$RELAY_ROOT/build/ragstream-worker" --listen "unix:$sock" 2>>"$run/probe.log" &
  probe_pid=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
  sleep 1
  kib=$(relay_mem_kib "$probe_pid" RssAnon)
  kill "$probe_pid" 2>/dev/null
  wait "$probe_pid" 2>/dev/null || true
  probe_pid=""
  rm -f "$sock"
  echo "$kib"
}
idle1=$(idle_rss 1)
idleT=$(idle_rss "$threads")
echo "idle worker RssAnon: 1 thread $idle1 KiB, $threads threads $idleT KiB" >&2

mkdir -p "$run/rag"
RAGSTREAM_THREADS="$threads" relay_stack_start RAG "$RELAY_ROOT/build/ragstream-worker" "$run/rag" "$workers"
nginx_pids="$(relay_nginx_workers "$RAG_NGINX")"
sleep 1

anon_sum() { local s=0 p; for p in "${RAG_PIDS[@]}"; do s=$((s + $(relay_mem_kib "$p" RssAnon))); done; echo $s; }
rss_sum() { local s=0 p; for p in "${RAG_PIDS[@]}"; do s=$((s + $(relay_mem_kib "$p" VmRSS))); done; echo $s; }
nginx_rss_sum() { local s=0 p; for p in $nginx_pids; do s=$((s + $(relay_mem_kib "$p" VmRSS))); done; echo $s; }
up_tokens() { curl -fsS "http://127.0.0.1:$UP_PORT/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_sent"])'; }
# One sample: time, CPU of workers / nginx / upstream, upstream tokens sent, memory.
sample() {
  # shellcheck disable=SC2086
  echo "{\"t\": $(date +%s.%N), \"workers_cpu_s\": $(relay_cpu_s "${RAG_PIDS[@]}"), \"nginx_cpu_s\": $(relay_cpu_s $nginx_pids), \"upstream_cpu_s\": $(relay_cpu_s "$UP_PID"), \"upstream_tokens\": $(up_tokens), \"workers_rss_anon_kib\": $(anon_sum), \"workers_rss_kib\": $(rss_sum), \"nginx_rss_kib\": $(nginx_rss_sum)}"
}
fresh=$(sample)
smaps() { python3 "$RELAY_ROOT/tests/bench/relay/smaps.py" "$stack_kb" "${RAG_PIDS[@]}"; }
fresh_smaps=$(smaps)
echo "stack idle after start: $fresh $fresh_smaps" >&2

raw="$out/ramp.runs.jsonl"
: >"$raw"
stopped_by=""
max_held=0
for n in $steps; do
  if [ $((SECONDS - started)) -gt "$budget" ]; then
    stopped_by="the time budget (${budget} s) ran out before the ${n}-stream step"
    break
  fi
  ramp_ms=$((n > 1000 ? n : 1000))        # 1,000 new streams per second
  tokens=$((10 * (ramp_ms / 1000 + 6)))   # every stream open for >= 4 s together
  cthreads=$((n >= 1000 ? 2 : 1))
  held_runs=0
  failed_runs=0
  for rep in $(seq "$reps"); do
    ready="$run/ready.$n.$rep"
    before=$(sample)
    "$RELAY_BIN/relay_client" --port "$RAG_PORT" --streams "$n" --tokens "$tokens" --gap-ms 100 \
      --ramp-ms "$ramp_ms" --timeout 60 --threads "$cthreads" --ready-file "$ready" \
      >"$run/client.out" 2>"$run/client.err" &
    client=$!
    # Wait until every stream has a token (all open, mid-answer), then a steady window.
    deadline=$((SECONDS + ramp_ms / 1000 + 10))
    while [ ! -e "$ready" ] && kill -0 "$client" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    sleep 1
    a=$(sample)
    mem=$(smaps)
    sleep 3
    b=$(sample)
    wait "$client" || true
    end=$(sample)
    python3 - "$n" "$rep" "$tokens" "$ramp_ms" "$run/client.out" "$before" "$a" "$b" "$end" "$([ -e "$ready" ] && echo 1 || echo 0)" "$mem" >>"$raw" <<'EOF'
import json, sys
n, rep, tokens, ramp_ms, client_out, before, a, b, end, ready, mem = sys.argv[1:]
try:
    c = json.loads(open(client_out).read().strip().splitlines()[-1])
except Exception as e:  # the client died: count every stream as failed
    c = {"complete": 0, "streams": int(n), "tokens_measured": 0, "delay_ms_p99": None, "error": str(e)}
before, a, b, end = (json.loads(x) for x in (before, a, b, end))
print(json.dumps({"streams": int(n), "rep": int(rep), "tokens_per_stream": int(tokens),
                  "ramp_ms": int(ramp_ms), "all_open_seen": ready == "1",
                  "client": c, "before": before, "window_start": a, "window_end": b, "end": end,
                  "smaps": json.loads(mem)}))
EOF
    verdict=$(tail -1 "$raw" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); c = r["client"]
ok = c.get("complete") == r["streams"] and c.get("delay_ms_p99") is not None and c["delay_ms_p99"] <= 100
print("held" if ok else "failed", "p99=%s ms" % c.get("delay_ms_p99"), "complete=%s/%s" % (c.get("complete"), r["streams"]),
      "first-event p99=%s ms" % c.get("first_event_ms_p99"), "client cpu=%s s" % c.get("client_cpu_s"))')
    echo "  $n streams, run $rep: $verdict" >&2
    case "$verdict" in held*) held_runs=$((held_runs + 1)) ;; *) failed_runs=$((failed_runs + 1)) ;; esac
    # A step whose runs failed in the majority is over (the median run failed).
    if [ $failed_runs -gt $((reps / 2)) ]; then break; fi
  done
  if [ $held_runs -gt $((reps / 2)) ]; then
    max_held=$n
  else
    stopped_by="the ${n}-stream step failed (p99 > 100 ms or failed requests in most runs)"
    break
  fi
done
[ -n "$stopped_by" ] || stopped_by="the ramp's last step was held (the limit is higher)"

# A CPU profile of the largest step held (one more run, not used for the figures): perf's
# flat profile by process and library, and the workers' top functions.
if ! command -v perf >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >&2 2>/dev/null || true
fi
prof_n=$max_held
[ "$prof_n" -gt 0 ] || prof_n=${steps%% *}
if command -v perf >/dev/null && [ $((SECONDS - started)) -lt $((budget + 30)) ]; then
  ramp_ms=$((prof_n > 1000 ? prof_n : 1000))
  tokens=$((10 * (ramp_ms / 1000 + 6)))
  ready="$run/ready.profile"
  "$RELAY_BIN/relay_client" --port "$RAG_PORT" --streams "$prof_n" --tokens "$tokens" --gap-ms 100 \
    --ramp-ms "$ramp_ms" --timeout 60 --threads $((prof_n >= 1000 ? 2 : 1)) --ready-file "$ready" \
    >"$run/client.out" 2>&1 &
  client=$!
  deadline=$((SECONDS + ramp_ms / 1000 + 10))
  while [ ! -e "$ready" ] && kill -0 "$client" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  sleep 1
  all_pids="$(echo "${RAG_PIDS[*]} $nginx_pids" | tr -s ' ' ',' | sed 's/,$//')"
  perf record -e cpu-clock -F 999 -o "$run/perf.data" -p "$all_pids" -- sleep 3 >/dev/null 2>&1 || true
  wait "$client" || true
  perf report -i "$run/perf.data" --stdio --sort comm,dso --percent-limit 1 2>/dev/null |
    grep -v '^#' | grep -v '^$' >"$out/ramp.perf-by-dso.txt" || true
  perf report -i "$run/perf.data" --stdio --comms ragstream-worke --sort dso,sym --percent-limit 0.8 2>/dev/null |
    grep -v '^#' | grep -v '^$' >"$out/ramp.perf-worker.txt" || true
  echo "profile at $prof_n streams: $(wc -l <"$out/ramp.perf-worker.txt") worker symbols above 0.8 %" >&2
fi

elapsed=$((SECONDS - started))
machine=$(relay_machine_json)
# The reference, in the same run: nginx + relay_floor (the minimal libfcgi relay, same pool)
# at the same count, once: its CPU per 1,000 tokens and memory per stream.
floor_json="{}"
if [ "$prof_n" -gt 0 ]; then
  mkdir -p "$run/floor"
  RAGSTREAM_THREADS="$threads" relay_stack_start FLOOR "$RELAY_BIN/relay_floor" "$run/floor" "$workers"
  floor_nginx="$(relay_nginx_workers "$FLOOR_NGINX")"
  sleep 1
  fanon() { local s=0 p; for p in "${FLOOR_PIDS[@]}"; do s=$((s + $(relay_mem_kib "$p" RssAnon))); done; echo $s; }
  # shellcheck disable=SC2086
  fsample() { echo "{\"t\": $(date +%s.%N), \"workers_cpu_s\": $(relay_cpu_s "${FLOOR_PIDS[@]}"), \"nginx_cpu_s\": $(relay_cpu_s $floor_nginx), \"upstream_tokens\": $(up_tokens), \"anon_kib\": $(fanon), \"smaps\": $(python3 "$RELAY_ROOT/tests/bench/relay/smaps.py" "$stack_kb" "${FLOOR_PIDS[@]}")}"; }
  f0=$(fsample)
  ramp_ms=$((prof_n > 1000 ? prof_n : 1000))
  tokens=$((10 * (ramp_ms / 1000 + 6)))
  ready="$run/ready.floor"
  "$RELAY_BIN/relay_client" --port "$FLOOR_PORT" --streams "$prof_n" --tokens "$tokens" --gap-ms 100 \
    --ramp-ms "$ramp_ms" --timeout 60 --threads $((prof_n >= 1000 ? 2 : 1)) --ready-file "$ready" \
    >"$run/floor-client.out" 2>&1 &
  client=$!
  deadline=$((SECONDS + ramp_ms / 1000 + 10))
  while [ ! -e "$ready" ] && kill -0 "$client" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  sleep 1
  f1=$(fsample)
  sleep 3
  f2=$(fsample)
  wait "$client" || true
  relay_stack_stop FLOOR
  floor_json=$(python3 - "$prof_n" "$f0" "$f1" "$f2" "$run/floor-client.out" <<'EOF'
import json, sys
n = int(sys.argv[1])
f0, f1, f2 = (json.loads(x) for x in sys.argv[2:5])
c = json.loads(open(sys.argv[5]).read().strip().splitlines()[-1])
tok = f2["upstream_tokens"] - f1["upstream_tokens"]
print(json.dumps({
    "streams": n, "complete": c["complete"], "p50_ms": c["delay_ms_p50"], "p99_ms": c["delay_ms_p99"],
    "win_workers_cpu_per_1k": 1000 * (f2["workers_cpu_s"] - f1["workers_cpu_s"]) / tok if tok else None,
    "win_nginx_cpu_per_1k": 1000 * (f2["nginx_cpu_s"] - f1["nginx_cpu_s"]) / tok if tok else None,
    "kib_per_stream_anon": (max(f1["anon_kib"], f2["anon_kib"]) - f0["anon_kib"]) / n,
    "idle_thread_stack_kib": f0["smaps"]["thread_stacks"] / max(1, f0["smaps"]["thread_stack_count"]),
    "smaps_per_stream": {k: (f1["smaps"].get(k, 0) - f0["smaps"].get(k, 0)) / n
                         for k in ("thread_stacks", "malloc_arenas", "main_heap", "other_anon")},
}))
EOF
)
  echo "floor at $prof_n streams: $floor_json" >&2
fi

python3 - "$raw" "$out" "$reps" "$elapsed" "$machine" "$threads" "$workers" "$cores" "$fresh" \
  "$idle1" "$idleT" "$max_held" "$stopped_by" "$quick" "$stack_kb" "$fresh_smaps" "$prof_n" "$floor_json" "$tls_bytes" <<'EOF'
import json, os, statistics, sys
(raw, out, reps, elapsed, machine, threads, workers, cores, fresh, idle1, idleT, max_held,
 stopped_by, quick, stack_kb, fresh_smaps, prof_n, floor, tls_bytes) = sys.argv[1:]
tls_kib = int(tls_bytes) / 1024
floor = json.loads(floor)
fresh_smaps = json.loads(fresh_smaps)
threads, workers, cores, reps = int(threads), int(workers), int(cores), int(reps)
fresh = json.loads(fresh)
idle_thread_kib = (int(idleT) - int(idle1)) / max(1, threads - 1)
runs = [json.loads(l) for l in open(raw) if l.strip()]
med = lambda xs: statistics.median(xs) if xs else None

def per_run(r):
    c, bf, a, b, e = r["client"], r["before"], r["window_start"], r["window_end"], r["end"]
    n = r["streams"]
    tok_all = c.get("tokens_measured") or 0
    tok_win = b["upstream_tokens"] - a["upstream_tokens"]
    win_s = b["t"] - a["t"]
    def per1k(key, x0, x1, tok):
        return 1000 * (x1[key] - x0[key]) / tok if tok else None
    win = {k: per1k(k, a, b, tok_win) for k in ("workers_cpu_s", "nginx_cpu_s", "upstream_cpu_s")}
    whole = {k: per1k(k, bf, e, tok_all) for k in ("workers_cpu_s", "nginx_cpu_s", "upstream_cpu_s")}
    cpu_win_total = sum(b[k] - a[k] for k in ("workers_cpu_s", "nginx_cpu_s", "upstream_cpu_s"))
    client_cpu = c.get("client_cpu_s") or 0
    elapsed_c = c.get("elapsed_s") or 1
    anon = max(a["workers_rss_anon_kib"], b["workers_rss_anon_kib"])
    return {
        "streams": n, "rep": r["rep"],
        "held": c.get("complete") == n and c.get("delay_ms_p99") is not None and c["delay_ms_p99"] <= 100,
        "complete": c.get("complete"), "failed": n - (c.get("complete") or 0),
        "p50_ms": c.get("delay_ms_p50"), "p99_ms": c.get("delay_ms_p99"), "max_ms": c.get("delay_ms_max"),
        "first_event_p99_ms": c.get("first_event_ms_p99"),
        "tokens_relayed": tok_all, "window_tokens_per_s": tok_win / win_s if win_s else None,
        "win_workers_cpu_per_1k": win["workers_cpu_s"], "win_nginx_cpu_per_1k": win["nginx_cpu_s"],
        "win_upstream_cpu_per_1k": win["upstream_cpu_s"],
        "all_workers_cpu_per_1k": whole["workers_cpu_s"], "all_nginx_cpu_per_1k": whole["nginx_cpu_s"],
        "client_cpu_per_1k": 1000 * client_cpu / tok_all if tok_all else None,
        # share of the host's cores in the window (client: its average over its whole run)
        "win_server_cores": (b["workers_cpu_s"] - a["workers_cpu_s"] + b["nginx_cpu_s"] - a["nginx_cpu_s"]) / win_s if win_s else None,
        "win_upstream_cores": (b["upstream_cpu_s"] - a["upstream_cpu_s"]) / win_s if win_s else None,
        "client_cores": client_cpu / elapsed_c,
        "kib_per_stream_anon": (anon - fresh["workers_rss_anon_kib"]) / n,
        "kib_per_stream_marginal": (anon - bf["workers_rss_anon_kib"]) / n,
        "kib_per_stream_rss": (max(a["workers_rss_kib"], b["workers_rss_kib"]) - fresh["workers_rss_kib"]) / n,
        "nginx_kib_per_stream": (max(a["nginx_rss_kib"], b["nginx_rss_kib"]) - fresh["nginx_rss_kib"]) / n,
        "workers_rss_anon_kib": anon,
        **{f"smaps_{k}_kib_per_stream": (r["smaps"].get(k, 0) - fresh_smaps.get(k, 0)) / n
           for k in ("thread_stacks", "malloc_arenas", "main_heap", "other_anon")},
    }

rows = [per_run(r) for r in runs]
steps = []
for n in sorted({r["streams"] for r in rows}):
    rs = [r for r in rows if r["streams"] == n]
    keys = [k for k in rs[0] if k not in ("streams", "rep", "held")]
    s = {"streams": n, "runs": len(rs), "held_runs": sum(r["held"] for r in rs)}
    for k in keys:
        vals = [r[k] for r in rs if r[k] is not None]
        s[k] = med(vals)
    s["held"] = s["held_runs"] * 2 > len(rs)
    s["kib_per_stream_with_thread"] = (s["kib_per_stream_anon"] + idle_thread_kib
                                       if s["kib_per_stream_anon"] is not None else None)
    steps.append(s)

max_held = int(max_held)
top = next((s for s in steps if s["streams"] == max_held), None)
# The memory and CPU figures of the largest step held (else the first step).
ref = top or (steps[0] if steps else None)
targets = []
targets.append({"name": "Concurrent streams held on this machine (10 tokens/s each, p99 <= 100 ms, no failure)",
                "target": ">= 2000", "measured": str(max_held) + ("+" if "last step was held" in stopped_by else ""),
                "met": max_held >= 2000})
if ref:
    kib = ref["kib_per_stream_with_thread"]
    targets.append({"name": f"Worker memory per stream (anonymous RSS incl. its thread, at {ref['streams']} streams)",
                    "target": "< 40 KiB", "measured": f"{kib:.1f} KiB", "met": kib < 40})
# If the server alone had both cores: streams = cores / (CPU-s per token * 10 tokens/s).
cap = None
if ref and ref["win_workers_cpu_per_1k"] and ref["win_nginx_cpu_per_1k"]:
    per_token = (ref["win_workers_cpu_per_1k"] + ref["win_nginx_cpu_per_1k"]) / 1000
    cap = cores / (per_token * 10)
result = {
    "part": 2, "title": "Concurrent streams per host", "status": "ok", "quick": quick == "1",
    "elapsed_s": int(elapsed), "machine": json.loads(machine),
    "command": "tests/bench/relay/ramp.sh OUT" + (" --quick" if quick == "1" else ""),
    "repetitions": reps, "pool": {"processes": workers, "threads_per_process": threads, "stack_kb": int(stack_kb)},
    "max_held": max_held, "stopped_by": stopped_by, "idle_thread_kib": idle_thread_kib,
    "idle_worker_rss_anon_kib": {"threads_1": int(idle1), f"threads_{threads}": int(idleT)},
    "cpu_bound_estimate_streams": cap, "floor_reference": floor,
    "targets": targets, "steps": steps, "runs": rows, "raw": runs,
}
json.dump(result, open(f"{out}/ramp.json", "w"), indent=1)

f = lambda x, nd=1: "–" if x is None else f"{x:.{nd}f}"
L = []
w = L.append
w("## 2. Concurrent streams per host")
w("")
w("Streams of 10 tokens/s each are ramped up through nginx + ragstream until the p99 relay delay "
  "(upstream send → client arrival, as in part 1) exceeds 100 ms or a request fails. The pool is "
  f"sized for the host's 2 cores and the largest step: {workers} worker processes × {threads} threads "
  f"(`RAGSTREAM_THREADS={threads}`, `RAGSTREAM_THREAD_STACK_KB={stack_kb}`, the default), one thread per stream. "
  "Upstream `relay_upstream` and client `relay_client` (C++, epoll) run on the same 2 cores; their CPU is "
  "reported beside the server's. Each step starts 1,000 streams per second; every stream lasts until all of "
  "its step's streams have been open together for at least 4 s, and a 3 s steady window is sampled while all are open "
  "(`/proc/PID/stat` utime+stime, `/proc/PID/status` RssAnon/VmRSS; upstream tokens counted by the upstream).")
w("")
w(f"Command: `tests/bench/relay/ramp.sh OUT{' --quick' if quick == '1' else ''}` ({elapsed} s). "
  f"Every figure is the median of {reps} runs per step (a step stops early once most of its runs failed); "
  "a step is held when most of its runs have every stream complete and p99 ≤ 100 ms.")
w("")
w(f"**Maximum held: {max_held} concurrent streams** ({stopped_by}).")
w("")
w("| streams | runs held | p50 ms | p99 ms | max ms | failed | first event p99 ms | tokens/s (window) | workers CPU s/1k tok | nginx CPU s/1k tok | server cores busy | upstream cores | client cores | worker KiB/stream |")
w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for s in steps:
    w(f"| {s['streams']} | {s['held_runs']}/{s['runs']} | {f(s['p50_ms'], 2)} | {f(s['p99_ms'], 2)} | {f(s['max_ms'])} | "
      f"{f(s['failed'], 0)} | {f(s['first_event_p99_ms'])} | {f(s['window_tokens_per_s'], 0)} | "
      f"{f(s['win_workers_cpu_per_1k'], 3)} | {f(s['win_nginx_cpu_per_1k'], 3)} | {f(s['win_server_cores'], 2)} | "
      f"{f(s['win_upstream_cores'], 2)} | {f(s['client_cores'], 2)} | {f(s['kib_per_stream_with_thread'])} |")
w("")
if ref:
    w("CPU per 1,000 relayed tokens is measured in the steady window (every stream open). Over whole runs, "
      "which also pay each request's setup (conversation and user message saved durably, retrieval, the final save) "
      f"spread over its tokens, at {ref['streams']} streams: workers {f(ref['all_workers_cpu_per_1k'], 3)} s, "
      f"nginx {f(ref['all_nginx_cpu_per_1k'], 3)} s per 1,000 tokens. The client spent "
      f"{f(ref['client_cpu_per_1k'], 3)} s and the upstream {f(ref['win_upstream_cpu_per_1k'], 3)} s per 1,000 tokens.")
    w("")
    w(f"Worker memory per stream = (workers' RssAnon with N streams open − RssAnon of the same workers idle after start) / N "
      f"+ the RssAnon of one idle thread ({idle_thread_kib:.1f} KiB: an idle worker with {threads} threads against one with 1 thread, "
      f"{idleT} vs {idle1} KiB), since every stream holds a thread. At {ref['streams']} streams: "
      f"{f(ref['kib_per_stream_anon'])} KiB + {idle_thread_kib:.1f} KiB = **{f(ref['kib_per_stream_with_thread'])} KiB**; "
      f"VmRSS (file pages of the LMDB map included) grew {f(ref['kib_per_stream_rss'])} KiB per stream; nginx's workers "
      f"{f(ref['nginx_kib_per_stream'])} KiB per stream.")
    parts = {k: ref.get(f"smaps_{k}_kib_per_stream") for k in ("thread_stacks", "malloc_arenas", "main_heap", "other_anon")}
    if all(v is not None for v in parts.values()):
        names = {"thread_stacks": "thread stacks", "malloc_arenas": "glibc malloc arenas (the threads' heaps)",
                 "main_heap": "the main heap", "other_anon": "other anonymous maps"}
        biggest = max(parts, key=lambda k: parts[k])
        w("")
        w(f"What that memory is, from `/proc/PID/smaps` of the workers with {ref['streams']} streams open against the same "
          "workers idle after start (`tests/bench/relay/smaps.py`), per stream: " +
          ", ".join(f"{names[k]} {parts[k]:.1f} KiB" for k in parts) +
          f". The largest share is {names[biggest]}.")
    if cap:
        w("")
        w(f"If nginx and the workers had both cores to themselves (no client or upstream on the host), their CPU per token in "
          f"the window would allow about {cap:,.0f} streams of 10 tokens/s (an extrapolation, not a measurement).")
if floor and ref:
    fl = floor
    f_kib = fl["kib_per_stream_anon"] + fl["idle_thread_stack_kib"]
    w("")
    w(f"Reference, same run: nginx + `relay_floor` (the minimal libfcgi relay, same pool of {workers} × {threads} threads) "
      f"at {fl['streams']} streams, one run: p50 {f(fl['p50_ms'], 2)} ms, p99 {f(fl['p99_ms'], 2)} ms, {fl['complete']}/{fl['streams']} complete.")
    w("")
    w("| at the same count | floor | ragstream | ragstream / floor |")
    w("| --- | ---: | ---: | ---: |")
    rs = next((s for s in steps if s["streams"] == fl["streams"]), ref)
    def ratio(a, b):
        return f"{a / b:.2f}×" if a is not None and b else "–"
    w(f"| workers CPU s / 1000 tokens | {f(fl['win_workers_cpu_per_1k'], 3)} | {f(rs['win_workers_cpu_per_1k'], 3)} | "
      f"{ratio(rs['win_workers_cpu_per_1k'], fl['win_workers_cpu_per_1k'])} |")
    w(f"| nginx CPU s / 1000 tokens | {f(fl['win_nginx_cpu_per_1k'], 3)} | {f(rs['win_nginx_cpu_per_1k'], 3)} | "
      f"{ratio(rs['win_nginx_cpu_per_1k'], fl['win_nginx_cpu_per_1k'])} |")
    w(f"| worker KiB / stream (anon, idle thread included) | {f_kib:.1f} | {f(rs['kib_per_stream_with_thread'])} | "
      f"{ratio(rs['kib_per_stream_with_thread'], f_kib)} |")
    w(f"| of which malloc arenas KiB / stream | {fl['smaps_per_stream']['malloc_arenas']:.1f} | "
      f"{f(rs.get('smaps_malloc_arenas_kib_per_stream'))} | {ratio(rs.get('smaps_malloc_arenas_kib_per_stream'), fl['smaps_per_stream']['malloc_arenas'])} |")
    w(f"| of which thread stacks KiB / stream (idle + active) | {fl['idle_thread_stack_kib'] + fl['smaps_per_stream']['thread_stacks']:.1f} | "
      f"{f((rs.get('smaps_thread_stacks_kib_per_stream') or 0) + idle_thread_kib)} | – |")

if floor and ref and ref.get("kib_per_stream_with_thread"):
    fl = floor
    f_kib = fl["kib_per_stream_anon"] + fl["idle_thread_stack_kib"]
    w("")
    w("Why the memory per stream is what it is. The floor pays what the architecture costs: libfcgi allocates two 8 KiB "
      "stream buffers per request in `FCGX_Accept_r` (its malloc-arena share above) and each stream holds a thread whose "
      f"stack pages are touched ({fl['idle_thread_stack_kib']:.1f} KiB idle). ragstream's idle thread costs "
      f"{idle_thread_kib:.1f} KiB, of which {tls_kib:.1f} KiB is the worker's static TLS (`readelf -l`: PT_TLS), written "
      "in every thread's stack mapping when it starts (it was 7.4 KiB, two `thread_local` Mersenne Twisters, until "
      "commit f026f71 replaced them with an 8-byte splitmix state, taking an idle thread from 16.3 to 8.3 KiB). The "
      "rest is heap; at "
      "50 streams it is live rather than fragmented: a valgrind massif profile of one worker at 50 streams (taken by hand: "
      "`valgrind --tool=massif ragstream-worker` behind the same nginx, `relay_client --streams 50`) has, per stream at its "
      "peak, libfcgi's 16 KiB, libcurl's receive buffer (16 KiB then; `CURLOPT_BUFFERSIZE` is 4 KiB since f026f71), the "
      "thread's two curl handles ~10.5 KiB (`curl_easy_init` for the easy handle and inside `curl_multi_init`), "
      "~8 KiB in LMDB (read transactions and cursors), ~7 KiB more in libcurl (connection and transfer state), and ~24 KiB "
      "spread over many small allocations below massif's threshold (the request's strings and vectors among them). "
      "Beyond that, the figure grows along the ramp " +
      f"(from {steps[0]['kib_per_stream_with_thread']:.0f} KiB at {steps[0]['streams']} streams to "
      f"{ref['kib_per_stream_with_thread']:.0f} KiB at {ref['streams']}): what a thread touched stays resident after its stream "
      "ends — its stack down to the deepest call (`ReadRequest` no longer puts a 16 KiB read "
      "buffer there since f026f71) and the malloc arenas' freed chunks — and the accept mutex hands requests to every thread of the pool in "
      f"turn ({workers} × {threads} here), so the workers' memory follows the pool and the largest burst of request set-ups "
      f"rather than the streams open; the floor, with the same pool but shallow stacks and no set-up, stays at {f_kib:.0f} KiB.")

def perf_lines(name, limit):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    return [l.rstrip() for l in open(path) if l.strip()][:limit]
by_dso, worker = perf_lines("ramp.perf-by-dso.txt", 14), perf_lines("ramp.perf-worker.txt", 22)
if by_dso or worker:
    w("")
    w(f"CPU profile at {prof_n} streams (one more run, not used for the figures above): "
      "`perf record -e cpu-clock -F 999 -p <workers,nginx workers> -- sleep 3` in the steady window, then "
      "`perf report --sort comm,dso` (share of the samples by process and library) and, for the workers alone, "
      "`--sort dso,sym` (`OUT/ramp.perf-*.txt` keep them whole):")
    w("")
    w("```")
    L.extend(by_dso)
    w("```")
    w("")
    w("```")
    L.extend(worker)
    w("```")
w("")
w("Targets:")
w("")
for t in targets:
    w(f"- {t['name']}: target {t['target']}, measured {t['measured']} — {'**met**' if t['met'] else '**missed**'}.")
open(f"{out}/ramp.md", "w").write("\n".join(L) + "\n")
EOF
echo "part 2 (concurrent streams) done in $((SECONDS - started)) s: $out/ramp.md" >&2
