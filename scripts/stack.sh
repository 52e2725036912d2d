# Sourced by run.sh and the integration tests: starts and stops nginx plus N workers from a
# private run directory. Functions:
#   stack_start RUN_DIR PORT WORKERS   (env: RAGSTREAM_* / OPENAI_* pass through to workers)
#   stack_stop
#   stack_wait_ready PORT
# Sets STACK_PIDS (workers) and STACK_NGINX_PID.
STACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_BIN="${RAGSTREAM_BIN:-$STACK_ROOT/build/ragstream-worker}"
STACK_PIDS=()
STACK_NGINX_PID=""

stack_start() {
  local run_dir="$1" port="$2" workers="$3"
  mkdir -p "$run_dir/sock" "$run_dir/logs"
  export RAGSTREAM_DATA_DIR="${RAGSTREAM_DATA_DIR:-$run_dir/data}"
  # A local stack on loopback: without a key file, serve this machine's clients (the worker
  # checks the FastCGI peer, nginx, by SO_PEERCRED). Set it to 0 to require keys.
  export RAGSTREAM_TRUST_LOOPBACK="${RAGSTREAM_TRUST_LOOPBACK:-1}"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  local sockets=() i
  for ((i = 1; i <= workers; i++)); do
    local sock="$run_dir/sock/worker-$i.sock"
    sockets+=("$sock")
    "$STACK_BIN" --listen "unix:$sock" 2>>"$run_dir/logs/worker-$i.log" &
    STACK_PIDS+=($!)
  done
  for sock in "${sockets[@]}"; do
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    [ -S "$sock" ] || { echo "worker did not open $sock; see $run_dir/logs" >&2; return 1; }
  done
  "$STACK_ROOT/scripts/render_nginx_conf.sh" "$run_dir/nginx" "$port" "${sockets[@]}"
  nginx -p "$run_dir/nginx/" -c conf/nginx.conf -e logs/error.log &
  STACK_NGINX_PID=$!
  stack_wait_ready "$port"
}

stack_wait_ready() {
  local port="$1"
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/api/health" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "ragstream did not become ready on port $port" >&2
  return 1
}

stack_stop() {
  [ -n "$STACK_NGINX_PID" ] && kill -TERM "$STACK_NGINX_PID" 2>/dev/null
  local pid
  for pid in "${STACK_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${STACK_PIDS[@]}" $STACK_NGINX_PID; do wait "$pid" 2>/dev/null; done
  STACK_PIDS=()
  STACK_NGINX_PID=""
}
