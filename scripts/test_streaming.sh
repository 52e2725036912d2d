#!/usr/bin/env bash
# Sends one message to the streaming endpoint with curl -N and prints the answer's tokens as
# they arrive, then the message id, conversation id, number of sources and total characters.
# Exits non-zero if the stream ends without its `done: true` event or with an error.
#
# Usage: scripts/test_streaming.sh ["question"] [conversation_id]
#   RAGSTREAM_URL (default http://127.0.0.1:${RAGSTREAM_PORT:-8080}); RAGSTREAM_API_KEY if the
#   server has API keys (sent as Authorization: Bearer, never printed)
set -euo pipefail
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac
command -v jq >/dev/null || { echo "test_streaming.sh needs jq (apt-get install jq)" >&2; exit 2; }
url="${RAGSTREAM_URL:-http://127.0.0.1:${RAGSTREAM_PORT:-8080}}"
question="${1:-What is ragstream?}"
conversation="${2:-}"
body=$(jq -cn --arg m "$question" --arg c "$conversation" \
  'if $c == "" then {message: $m} else {message: $m, conversation_id: $c} end')

# The key reaches curl on stdin as a header file, not on its command line (which `ps` shows).
auth_header() {
  [ -z "${RAGSTREAM_API_KEY:-}" ] || printf 'Authorization: Bearer %s\n' "$RAGSTREAM_API_KEY"
}
done_json=""
status_line=""
chars=0
# Read the event stream line by line as curl delivers it.
while IFS= read -r line; do
  line="${line%$'\r'}"
  case "$line" in
    HTTP/*) status_line="$line" ;;
    data:*)
      data="${line#data: }"
      if [ "$(jq -r '.done' <<<"$data")" = "true" ]; then
        done_json="$data"
      else
        token=$(jq -j '.token // ""' <<<"$data")
        printf '%s' "$token"
        chars=$((chars + ${#token}))
      fi
      ;;
    '{"error"'*) echo "request failed: $line" >&2; exit 1 ;;
  esac
done < <(curl -sS -N -i --max-time 600 -H 'Content-Type: application/json' -H @- \
  -d "$body" "$url/api/chat/message/stream" < <(auth_header))
echo

if [ -z "$done_json" ]; then
  echo "FAILED: the stream ended without its done event (${status_line:-no response})" >&2
  exit 1
fi
echo "message_id:      $(jq -r '.message_id' <<<"$done_json")"
echo "conversation_id: $(jq -r '.conversation_id' <<<"$done_json")"
echo "sources:         $(jq -r '(.sources // []) | length' <<<"$done_json")"
echo "characters:      $chars"
echo "status:          $(jq -r '.status' <<<"$done_json")"
if [ "$(jq -r 'has("error")' <<<"$done_json")" = "true" ]; then
  echo "FAILED: $(jq -c '.error' <<<"$done_json")" >&2
  exit 1
fi
