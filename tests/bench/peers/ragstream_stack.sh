#!/usr/bin/env bash
# Runs nginx + WORKERS ragstream workers (scripts/stack.sh) until SIGTERM, for bench.py.
# Usage: ragstream_stack.sh RUN_DIR PORT WORKERS   (RAGSTREAM_* / OPENAI_* from the environment)
# Writes "WORKER_PID... NGINX_PID" to RUN_DIR/pids once ready.
set -uo pipefail
source "$(cd "$(dirname "$0")/../../.." && pwd)/scripts/stack.sh"
trap 'stack_stop; exit 0' TERM INT
stack_start "$1" "$2" "$3" || { stack_stop; exit 1; }
echo "${STACK_PIDS[*]} $STACK_NGINX_PID" >"$1/pids.tmp" && mv "$1/pids.tmp" "$1/pids"
wait
