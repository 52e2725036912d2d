# Sourced by tests/bench/relay/run.sh (part 1) and ramp.sh (part 2): builds the benchmark
# programs, starts the stamping upstream and nginx stacks (scripts/stack.sh, so nginx is
# rendered from nginx/nginx.local.conf.in exactly as for ragstream), and reads CPU and memory
# from /proc. Loopback only.
RELAY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
RELAY_BIN="$RELAY_ROOT/build/tests/bench/relay"
source "$RELAY_ROOT/scripts/stack.sh"

# Debian's python3 (the summaries), nginx and the build tools; builds the worker and the
# benchmark programs (the bench sub-directories exist only once CMake has seen them).
relay_prepare() {
  "$RELAY_ROOT/scripts/install_deps.sh" >&2
  command -v python3 >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >&2
  }
  local build="$RELAY_ROOT/build"
  if [ -f "$build/CMakeCache.txt" ] && [ ! -d "$build/tests/bench/relay" ]; then
    cmake -S "$RELAY_ROOT" -B "$build" >/dev/null
  fi
  "$RELAY_ROOT/scripts/build.sh" ragstream-worker relay_floor relay_upstream relay_client >&2
}

# relay_upstream_start RUN_DIR: sets UP_PID and UP_PORT.
relay_upstream_start() {
  local run="$1"
  "$RELAY_BIN/relay_upstream" --port 0 --port-file "$run/upstream.port" >"$run/upstream.log" 2>&1 &
  UP_PID=$!
  for _ in $(seq 100); do [ -s "$run/upstream.port" ] && break; sleep 0.05; done
  UP_PORT=$(cat "$run/upstream.port")
}

# A free loopback port for nginx (not in the ephemeral range the client uses).
relay_free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 10000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# relay_stack_start NAME BIN RUN_DIR WORKERS: nginx + WORKERS processes of BIN (ragstream-worker
# or relay_floor). Sets <NAME>_PORT, <NAME>_PIDS (workers), <NAME>_NGINX (master pid).
relay_stack_start() {
  local name="$1" bin="$2" run="$3" workers="$4" port
  port=$(relay_free_port)
  STACK_PIDS=()
  STACK_NGINX_PID=""
  STACK_BIN="$bin" stack_start "$run" "$port" "$workers" >&2
  eval "${name}_PORT=$port"
  eval "${name}_PIDS=(${STACK_PIDS[*]})"
  eval "${name}_NGINX=$STACK_NGINX_PID"
}

# relay_stack_stop NAME
relay_stack_stop() {
  local name="$1"
  eval "STACK_PIDS=(\${${name}_PIDS[@]+\"\${${name}_PIDS[@]}\"})"
  eval "STACK_NGINX_PID=\${${name}_NGINX:-}"
  stack_stop || true
  eval "${name}_PIDS=()"
}

# nginx worker processes (children of the master).
relay_nginx_workers() {
  local master="$1"
  ps -o pid= --ppid "$master" 2>/dev/null | tr -d ' ' | tr '\n' ' '
}

# CPU seconds (user + system) of the given pids, summed, from /proc/PID/stat.
relay_cpu_s() {
  local hz total=0 pid
  hz=$(getconf CLK_TCK)
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    # Fields after the command name (which may hold spaces): utime is the 12th, stime 13th.
    total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  awk -v t="$total" -v hz="$hz" 'BEGIN { printf "%.3f", t / hz }'
}

# relay_mem_kib PID FIELD: a /proc/PID/status field in KiB (VmRSS, RssAnon, RssFile, VmHWM).
relay_mem_kib() {
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

relay_machine_json() {
  python3 - <<'EOF'
import json, os, platform, subprocess
cpu = "unknown"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
with open("/proc/meminfo") as f:
    mem_kib = int(f.readline().split()[1])
print(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kib / 1048576, 1),
                  "kernel": platform.release(),
                  "loadavg_at_start": os.getloadavg()[0]}))
EOF
}
