#!/usr/bin/env bash
# Measures how many concurrent streams one worker holds and the relay delay per token
# through nginx + one ragstream worker, next to the fake upstream read directly.
# Loopback only; stops by itself. Usage: tests/bench/stream_bench.sh [STREAMS...]
# A quick look with the Python fake and client; the benchmarks of record are parts 1 and 2 of
# scripts/bench.sh (tests/bench/relay/run.sh and ramp.sh: C++ upstream and client, references
# measured in the same run, medians of repeated runs).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
counts=("${@:-1 100 1000}")
[ $# -gt 0 ] || counts=(1 100 1000)
run_dir="$(mktemp -d /tmp/ragstream-bench.XXXXXX)"
fake_port_file="$run_dir/fake.port"
python3 "$root/tests/fake_openai/fake_openai.py" --port 0 --port-file "$fake_port_file" \
  >"$run_dir/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 50); do [ -s "$fake_port_file" ] && break; sleep 0.1; done
fake_port=$(cat "$fake_port_file")
port=$((20000 + RANDOM % 10000))
export OPENAI_BASE_URL="http://127.0.0.1:$fake_port/v1" RAGSTREAM_CHAT_MODEL=fake-model
export RAGSTREAM_THREADS=1100 RAGSTREAM_THREAD_STACK_KB=128 RAGSTREAM_LOG_LEVEL=warn
# One tenant makes all the load: lift the per-tenant stream limit (default 256).
export RAGSTREAM_MAX_STREAMS_PER_TENANT=0
source "$root/scripts/stack.sh"
trap 'stack_stop; kill $fake_pid 2>/dev/null; rm -rf "$run_dir"' EXIT
stack_start "$run_dir" "$port" 1
worker_pid="${STACK_PIDS[0]}"
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo)"
for n in "${counts[@]}"; do
  python3 "$root/tests/bench/stream_load.py" --port "$fake_port" --direct --streams "$n" \
    --tokens 20 --gap-ms 100
  before=$(rss_kib "$worker_pid")
  python3 "$root/tests/bench/stream_load.py" --port "$port" --streams "$n" --tokens 20 \
    --gap-ms 100 &
  client=$!
  sleep 2.5  # all streams started (ramp 2 s), mid-answer
  during=$(rss_kib "$worker_pid")
  wait $client
  echo "{\"streams\": $n, \"worker_rss_kib_before\": $before, \"worker_rss_kib_during\": $during, \"kib_per_stream\": $(( (during - before) / (n > 0 ? n : 1) ))}"
done
