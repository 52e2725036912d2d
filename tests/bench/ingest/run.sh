#!/usr/bin/env bash
# Part 7 of scripts/bench.sh: ingestion against SQLite FTS5. ragstream (nginx + 2 workers, a
# fresh durable store each run, hash embedder) ingests Debian's changelogs and docs from
# /usr/share/doc (24 MB; 3 MB quick) through POST /api/documents one document a request, and
# through POST /api/documents/batch (NDJSON, 64 documents a request) when the build has it,
# from 2 clients; SQLite FTS5 (Python's sqlite3, WAL, synchronous=FULL) indexes the same
# documents in transactions of 64, and in one. It reports MB/s (medians of 3 runs; 1 quick),
# the store's growth and mdb_stat per database against the text's size, and, if time allows,
# the time to first token of chat answers while a batch ingest runs. Then (issue 12) the corpus
# copied to 200 MB (10 MB quick) is batch-ingested while streaming answers from
# tests/fake_openai are asked every 0.5 s: TTFT and the partial-save interval, p50 and p99,
# against the same questions idle; the target is p99 < 2x idle. See ingest.py.
#
# Usage: tests/bench/ingest/run.sh OUT      writes OUT/ingest.md and OUT/ingest.json
# Environment: BENCH_QUICK=1 (3 MB, 1 run), BENCH_DEADLINE_S (seconds it may take; 600),
# INGEST_CORPUS_MB (24; 3 quick), INGEST_RUNS (3; 1 quick), INGEST_BIG_MB (200; 10 quick; 0 skips
# the chat-during-a-large-ingest measurement).
set -euo pipefail
out="${1:?usage: run.sh OUT}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
started=$SECONDS
quick="${BENCH_QUICK:-0}"
deadline="${BENCH_DEADLINE_S:-600}"
mb="${INGEST_CORPUS_MB:-24}"
runs="${INGEST_RUNS:-3}"
big="${INGEST_BIG_MB:-200}"
if [ "$quick" = 1 ]; then
  mb="${INGEST_CORPUS_MB:-3}"
  runs="${INGEST_RUNS:-1}"
  big="${INGEST_BIG_MB:-10}"
fi

# What this part alone needs: mdb_stat (lmdb-utils) and python3; nginx comes with install_deps.sh.
"$root/scripts/install_deps.sh" >&2
missing=()
command -v mdb_stat >/dev/null || missing+=(lmdb-utils)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
if [ -f "$root/build/CMakeCache.txt" ]; then cmake -S "$root" -B "$root/build" >/dev/null; fi
"$root/scripts/build.sh" ragstream-worker >&2
export RAGSTREAM_BIN="$root/build/ragstream-worker"

# The driver gets what is left of the deadline, less 15 s for stopping and writing.
left=$((deadline - (SECONDS - started) - 15))
quick_flag=()
[ "$quick" = 1 ] && quick_flag=(--quick)
python3 "$here/ingest.py" --out "$out" --mb "$mb" --reps "$runs" --deadline "$left" --big-mb "$big" "${quick_flag[@]}" >/dev/null
echo "== ingest: done in $((SECONDS - started)) s" >&2
