#!/usr/bin/env bash
# Ingests .txt and .md files through the API (POST /api/documents), with progress and a
# summary; skips and reports what it cannot read. Directories are searched recursively.
#
# Usage: scripts/ingest.sh FILE|DIR...
#   RAGSTREAM_URL (default http://127.0.0.1:${RAGSTREAM_PORT:-8080}); RAGSTREAM_API_KEY if the
#   server has API keys (sent as Authorization: Bearer, never printed)
# Exit status: 0 if every file was stored (or was already there), 1 otherwise.
set -uo pipefail
case "${1:-}" in
  ""|-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    [ -n "${1:-}" ]; exit $? ;;
esac
url="${RAGSTREAM_URL:-http://127.0.0.1:${RAGSTREAM_PORT:-8080}}"
auth_header() {
  [ -z "${RAGSTREAM_API_KEY:-}" ] || printf 'Authorization: Bearer %s\n' "$RAGSTREAM_API_KEY"
}

files=()
for arg in "$@"; do
  if [ -d "$arg" ]; then
    while IFS= read -r -d '' f; do files+=("$f"); done \
      < <(find "$arg" -type f \( -name '*.md' -o -name '*.txt' -o -name '*.markdown' \) -print0 | sort -z)
  elif [ -e "$arg" ]; then
    files+=("$arg")
  else
    echo "skip: $arg does not exist" >&2
  fi
done

total=${#files[@]} created=0 duplicate=0 failed=0 bytes=0 i=0
for f in "${files[@]}"; do
  i=$((i + 1))
  case "$f" in
    *.md|*.markdown) type="text/markdown" ;;
    *.txt) type="text/plain" ;;
    *) echo "skip: $f is not .txt or .md" >&2; failed=$((failed + 1)); continue ;;
  esac
  if [ ! -r "$f" ]; then
    echo "skip: $f is not readable" >&2; failed=$((failed + 1)); continue
  fi
  # The key reaches curl on stdin as a header file, not on its command line (`ps` shows it).
  response=$(auth_header | curl -sS -w '\n%{http_code}' -H "Content-Type: $type" -H @- \
    --data-binary @"$f" "$url/api/documents" 2>&1)
  code="${response##*$'\n'}"
  body="${response%$'\n'*}"
  case "$code" in
    201) created=$((created + 1)); bytes=$((bytes + $(stat -c %s "$f")))
         printf '[%d/%d] stored    %s (%s chunks)\n' "$i" "$total" "$f" "$(jq -r .chunks <<<"$body" 2>/dev/null)" ;;
    200) duplicate=$((duplicate + 1))
         printf '[%d/%d] unchanged %s (already stored)\n' "$i" "$total" "$f" ;;
    *) failed=$((failed + 1))
       printf '[%d/%d] FAILED    %s: HTTP %s %s\n' "$i" "$total" "$f" "$code" \
         "$(jq -r '.error.message // empty' <<<"$body" 2>/dev/null || echo "$body")" >&2 ;;
  esac
done
echo "ingested $created new ($bytes bytes), $duplicate already stored, $failed failed, of $total files"
[ "$failed" -eq 0 ]
