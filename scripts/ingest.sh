#!/usr/bin/env bash
# Ingests .txt and .md files through the API, with progress and a summary; skips and reports
# what it cannot read. Directories are searched recursively. Files go in batches to
# POST /api/documents/batch (NDJSON; a batch closes at 64 files or 8 MiB, a larger file goes
# alone); a server without that route, or a batch it finds too large, gets one
# POST /api/documents per file. A file that is not UTF-8 goes alone too (the server says why).
#
# Usage: scripts/ingest.sh FILE|DIR...
#   RAGSTREAM_URL (default http://127.0.0.1:${RAGSTREAM_PORT:-8080}); RAGSTREAM_API_KEY if the
#   server has API keys (sent as Authorization: Bearer, never printed)
# Needs curl and jq.
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
batch_files=64 batch_bytes=$((8 << 20))
ndjson="$(mktemp)" || exit 1
trap 'rm -f "$ndjson"' EXIT

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
use_batch=1
# The pending batch: file numbers and paths.
pending_n=() pending_f=() pending_bytes=0

stored() {  # N FILE CHUNKS
  created=$((created + 1)); bytes=$((bytes + $(stat -c %s "$2")))
  printf '[%d/%d] stored    %s (%s chunks)\n' "$1" "$total" "$2" "$3"
}
unchanged() {  # N FILE
  duplicate=$((duplicate + 1))
  printf '[%d/%d] unchanged %s (already stored)\n' "$1" "$total" "$2"
}
failure() {  # N FILE HTTP-STATUS MESSAGE
  failed=$((failed + 1))
  printf '[%d/%d] FAILED    %s: HTTP %s %s\n' "$1" "$total" "$2" "$3" "$4" >&2
}

# curl with the key on stdin as a header file, not on its command line (`ps` shows that).
# Prints the body, a newline and the HTTP status.
post() {  # PATH CONTENT-TYPE BODY-FILE
  auth_header | curl -sS -w '\n%{http_code}' -H "Content-Type: $2" -H @- \
    --data-binary @"$3" "$url$1" 2>&1
}

post_one() {  # N FILE: one file through POST /api/documents
  local type response code body
  case "$2" in
    *.md|*.markdown) type="text/markdown" ;;
    *) type="text/plain" ;;
  esac
  response=$(post /api/documents "$type" "$2")
  code="${response##*$'\n'}"
  body="${response%$'\n'*}"
  case "$code" in
    201) stored "$1" "$2" "$(jq -r .chunks <<<"$body" 2>/dev/null)" ;;
    200) unchanged "$1" "$2" ;;
    *) failure "$1" "$2" "$code" \
         "$(jq -r '.error.message // empty' <<<"$body" 2>/dev/null || echo "$body")" ;;
  esac
}

flush() {  # sends the pending batch and prints a line per file, in order
  local n=${#pending_f[@]} k f response code body
  [ "$n" -gt 0 ] || return 0
  if [ "$use_batch" = 1 ]; then
    : >"$ndjson"
    for f in "${pending_f[@]}"; do
      jq -c -n --rawfile text "$f" '{text: $text}' >>"$ndjson"
    done
    response=$(post /api/documents/batch application/x-ndjson "$ndjson")
    code="${response##*$'\n'}"
    body="${response%$'\n'*}"
    case "$code" in
      404|405) use_batch=0 ;;  # an older server: one POST per file from now on
      413) ;;                  # over this server's batch limit: these files one by one
      200)
        local results=()
        # One line per document, fields split by US (\x1f: not whitespace to `read`, so an
        # empty field stays a field).
        mapfile -t results < <(jq -r '.documents[] | [(.error.code // ""), (.status // 0),
            (.error.message // "" | gsub("[\n\r\u001f]"; " ")), (.duplicate // false),
            (.chunks // 0)] | map(tostring) | join("\u001f")' <<<"$body" 2>/dev/null)
        if [ "${#results[@]}" -eq "$n" ]; then
          for ((k = 0; k < n; k++)); do
            local ecode status message dup chunks
            IFS=$'\x1f' read -r ecode status message dup chunks <<<"${results[k]}"
            if [ -n "$ecode" ]; then
              failure "${pending_n[k]}" "${pending_f[k]}" "$status" "$message"
            elif [ "$dup" = true ]; then
              unchanged "${pending_n[k]}" "${pending_f[k]}"
            else
              stored "${pending_n[k]}" "${pending_f[k]}" "$chunks"
            fi
          done
        else
          for ((k = 0; k < n; k++)); do
            failure "${pending_n[k]}" "${pending_f[k]}" "$code" "the answer has no result for every file"
          done
        fi
        pending_n=() pending_f=() pending_bytes=0
        return 0 ;;
      *)
        local message
        message="$(jq -r '.error.message // empty' <<<"$body" 2>/dev/null || echo "$body")"
        for ((k = 0; k < n; k++)); do
          failure "${pending_n[k]}" "${pending_f[k]}" "$code" "$message"
        done
        pending_n=() pending_f=() pending_bytes=0
        return 0 ;;
    esac
  fi
  for ((k = 0; k < n; k++)); do post_one "${pending_n[k]}" "${pending_f[k]}"; done
  pending_n=() pending_f=() pending_bytes=0
}

for f in "${files[@]}"; do
  i=$((i + 1))
  case "$f" in
    *.md|*.markdown|*.txt) ;;
    *) echo "skip: $f is not .txt or .md" >&2; failed=$((failed + 1)); continue ;;
  esac
  if [ ! -r "$f" ]; then
    echo "skip: $f is not readable" >&2; failed=$((failed + 1)); continue
  fi
  # jq would replace invalid UTF-8 without a word; alone, the file gets the server's answer.
  if ! iconv -f UTF-8 -t UTF-8 "$f" >/dev/null 2>&1; then
    flush; post_one "$i" "$f"; continue
  fi
  size=$(stat -c %s "$f")
  if [ "${#pending_f[@]}" -gt 0 ] && { [ "${#pending_f[@]}" -ge "$batch_files" ] ||
      [ $((pending_bytes + size)) -gt "$batch_bytes" ]; }; then
    flush
  fi
  pending_n+=("$i") pending_f+=("$f") pending_bytes=$((pending_bytes + size))
done
flush
echo "ingested $created new ($bytes bytes), $duplicate already stored, $failed failed, of $total files"
[ "$failed" -eq 0 ]
