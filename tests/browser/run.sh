#!/usr/bin/env bash
# Browser test of the web chat page: starts its own ragstream stack (offline extractive
# answerer, tokens paced at 40 ms so they visibly stream, an empty store) and drives Debian's
# headless chromium with playwright-core through tests/browser/chat.test.mjs.
#
# Usage: bash tests/browser/run.sh [ARTIFACT_DIR]     (default tests/artifacts/browser)
# Environment: RAGSTREAM_BROWSER_PORT (default: a free loopback port), RAGSTREAM_BIN
# (build/ragstream-worker), CHROMIUM (/usr/bin/chromium).
# Installs what is missing: the chromium package (apt) and playwright-core (npm, pinned in
# tests/browser/package.json; it never downloads a browser). Ends with "N passed, M failed".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
artifacts="${1:-$root/tests/artifacts/browser}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "== installing nodejs and npm (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  echo "== installing playwright-core (npm)"
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  if [ -f "$here/package-lock.json" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
if [ ! -x "${RAGSTREAM_BIN:-$root/build/ragstream-worker}" ]; then
  echo "== building the worker"
  "$root/scripts/build.sh" ragstream-worker
fi

# A free loopback port unless one is given.
port="${RAGSTREAM_BROWSER_PORT:-$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")}"
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/ragstream-browser.XXXXXX")"
# Offline and paced: no upstream model, the extractive answerer writes a word per 40 ms.
# Stop on disconnect is what the Stop check expects.
unset OPENAI_BASE_URL RAGSTREAM_CHAT_MODEL OPENAI_API_KEY RAGSTREAM_EMBEDDER RAGSTREAM_ON_DISCONNECT
export RAGSTREAM_DATA_DIR="$run_dir/data"
export RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS=40
# shellcheck source=../../scripts/stack.sh
source "$root/scripts/stack.sh"
cleanup() {
  stack_stop
  mkdir -p "$artifacts/logs" &&
    cp "$run_dir"/logs/*.log "$run_dir"/nginx/logs/error.log "$artifacts/logs/" 2>/dev/null || true
  rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== browser test (chromium + playwright-core) on http://127.0.0.1:$port"
stack_start "$run_dir" "$port" 2
# The worker logs are copied to ARTIFACT_DIR/logs on exit.
node "$here/chat.test.mjs" "http://127.0.0.1:$port" "$artifacts"
