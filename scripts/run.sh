#!/usr/bin/env bash
# The main job: installs what is missing, builds, and serves ragstream on
# http://127.0.0.1:${RAGSTREAM_PORT:-8080} with nginx in front of RAGSTREAM_WORKERS worker
# processes, in the foreground until Ctrl-C / SIGTERM.
#
# Environment: RAGSTREAM_PORT (8080), RAGSTREAM_WORKERS (2), RAGSTREAM_RUN_DIR (./run),
# RAGSTREAM_DATA_DIR (RUN_DIR/data), OPENAI_BASE_URL, OPENAI_API_KEY, RAGSTREAM_CHAT_MODEL,
# and every worker setting listed by `build/ragstream-worker --help`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh" ragstream-worker ragstream

port="${RAGSTREAM_PORT:-8080}"
workers="${RAGSTREAM_WORKERS:-2}"
run_dir="${RAGSTREAM_RUN_DIR:-$root/run}"
"$root/build/ragstream-worker" --check-config >/dev/null

source "$root/scripts/stack.sh"
trap 'echo; echo "stopping..."; stack_stop; exit 0' INT TERM
stack_start "$run_dir" "$port" "$workers"

# A fresh store gets the sample corpus, so the offline demo has something to answer from.
if [ "$(curl -fsS "http://127.0.0.1:$port/api/documents" | jq '.documents | length')" = "0" ]; then
  echo "empty store: ingesting the sample corpus (data/sample)"
  RAGSTREAM_URL="http://127.0.0.1:$port" "$root/scripts/ingest.sh" "$root/data/sample" | tail -n 1
fi

# The commands below reach this port without further setup.
env_prefix=""
[ "$port" = "8080" ] || env_prefix="RAGSTREAM_PORT=$port "
cat <<MSG
ragstream is serving on http://127.0.0.1:$port  ($workers workers, data in $RAGSTREAM_DATA_DIR,
logs in $run_dir/logs, chat model: ${RAGSTREAM_CHAT_MODEL:-the offline extractive answerer})

Try:
  ${env_prefix}scripts/test_streaming.sh "How do I back up the LMDB store while ragstream is serving?"
  ${env_prefix}scripts/test_streaming.sh "מה עומק ים המלח?"
  curl -N http://127.0.0.1:$port/api/chat/message/stream \\
       -H 'Content-Type: application/json' -d '{"message": "How do I keep a sourdough starter?"}'
  ${env_prefix}build/ragstream ask "What is LMDB?"
  ${env_prefix}scripts/ingest.sh ~/notes        # add your own .md / .txt files

Ctrl-C stops everything.
MSG
# Exit (and stop the rest) as soon as any process of the stack dies.
set +e
wait -n "${STACK_PIDS[@]}" "$STACK_NGINX_PID"
echo "a process of the stack exited; stopping" >&2
stack_stop
exit 1
