#!/usr/bin/env bash
# Parts 3 and 5 of scripts/bench.sh: the time to first token that ragstream adds, and
# ingestion throughput.
#
# Part 3: stores of 10k and 100k chunks (100k also with int8 vectors; and 1M, see below) of
# synthetic hash-embedded text in the tenant "default" are built by ttft_store; a real worker
# serves each behind nginx
# (scripts/stack.sh) with tests/fake_openai as its model (first token at once, stamped with
# its send time); ttft_client.py asks TTFT_QUESTIONS questions one after another, TTFT_ROUNDS
# times, and joins each answer's request log line (first_token_us and its phases) with the
# fake's own time to first token. ttft_probe then times retrieval's steps on the same store.
# Part 5: ingest_bench through the Ingester (one durable transaction per document) on 1, 2 and
# 4 threads, its steps timed one by one, and the HTTP path (POST /api/documents, 2 workers)
# from 1 and 2 clients.
#
# Usage: tests/bench/ttft/run.sh OUT      writes OUT/ttft.json and OUT/ttft.md
# Environment: BENCH_QUICK=1 (small sizes), BENCH_DEADLINE_S (the seconds it may take; the
# 1M store is only built when they allow it), TTFT_SIZES ("10000 100000 100000:int8 1000000";
# :int8 is RAGSTREAM_VECTOR_FORMAT=int8), TTFT_QUESTIONS (50), TTFT_ROUNDS (3), INGEST_REPS
# (3), INGEST_MB (1),
# TTFT_CACHE=DIR: keep the stores there and reuse them on later runs (keyed by the commit of
# the code that decides what they hold), which is how the 1M store fits in a bounded run; it
# defaults to /var/tmp/ragstream-ttft when that directory exists (made by hand, or by a first
# run with TTFT_CACHE set: `TTFT_CACHE=/var/tmp/ragstream-ttft BENCH_DEADLINE_S=900 run.sh OUT`
# builds all of them, ~12 GB, in about 8 minutes on 2 cores); TTFT_CACHE=none: no cache.
set -euo pipefail
out="${1:?usage: run.sh OUT}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
started=$SECONDS
quick="${BENCH_QUICK:-0}"
deadline="${BENCH_DEADLINE_S:-360}"
sizes="${TTFT_SIZES:-10000 100000 100000:int8 1000000}"
if [ -z "${TTFT_CACHE:-}" ] && [ -d /var/tmp/ragstream-ttft ]; then TTFT_CACHE=/var/tmp/ragstream-ttft; fi
[ "${TTFT_CACHE:-}" = none ] && TTFT_CACHE=""
questions="${TTFT_QUESTIONS:-50}"
rounds="${TTFT_ROUNDS:-3}"
ingest_reps="${INGEST_REPS:-3}"
ingest_mb="${INGEST_MB:-1}"
if [ "$quick" = 1 ]; then
  sizes="${TTFT_SIZES:-2000 10000}"
  questions="${TTFT_QUESTIONS:-10}"
  rounds="${TTFT_ROUNDS:-1}"
  ingest_reps="${INGEST_REPS:-1}"
  ingest_mb="${INGEST_MB:-0.3}"
fi
log() { echo "== ttft: $* ($((SECONDS - started)) s)" >&2; }
left() { echo $((deadline - (SECONDS - started))); }

# What this part alone needs: the build tools, nginx and curl come with install_deps.sh.
"$root/scripts/install_deps.sh" >&2
command -v python3 >/dev/null || {
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends python3 >&2
}
if [ -f "$root/build/CMakeCache.txt" ]; then cmake -S "$root" -B "$root/build" >/dev/null; fi
"$root/scripts/build.sh" ragstream-worker ttft_store ttft_probe ivf_probe ingest_bench >&2
bin="$root/build/tests/bench/ttft"
export RAGSTREAM_BIN="$root/build/ragstream-worker"
log "built"

run="$(mktemp -d /tmp/ragstream-ttft.XXXXXX)"
FAKE_PID=""
cleanup() {
  stack_stop 2>/dev/null || true
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
source "$root/scripts/stack.sh"

port_base=$((20000 + RANDOM % 20000))
python3 "$root/tests/fake_openai/fake_openai.py" --port 0 --port-file "$run/fake.port" \
  --max-records 5000 >"$run/fake.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 100); do [ -f "$run/fake.port" ] && break; sleep 0.1; done
fake_url="http://127.0.0.1:$(cat "$run/fake.port")"
export OPENAI_BASE_URL="$fake_url/v1" RAGSTREAM_CHAT_MODEL=fake-model
export RAGSTREAM_MAX_STREAMS_PER_TENANT=0 RAGSTREAM_MAP_SIZE_MB=65536 RAGSTREAM_LOG_LEVEL=info
"$bin/ttft_store" --questions 200 >"$run/questions.txt"

raw="$out/ttft.runs.jsonl"       # one line per question
builds="$out/ttft.builds.jsonl"  # one line per store build
probes="$out/ttft.probes.jsonl"  # one line per probe
ingest="$out/ingest.runs.jsonl"  # one line per ingestion run
skipped="$out/ttft.skipped.jsonl"
: >"$raw"
: >"$builds"
: >"$probes"
: >"$ingest"
: >"$skipped"

# ---- part 5: ingestion (first: short and bounded) ------------------------------------------
log "ingestion through the Ingester: $ingest_reps x $ingest_mb MB on 1, 2 and 4 threads"
for rep in $(seq "$ingest_reps"); do
  for threads in 1 2 4; do
    "$bin/ingest_bench" --dir "$run/ingest" --mb "$ingest_mb" --threads "$threads" |
      python3 -c 'import json,sys; d=json.load(sys.stdin); d.update(path="ingester", rep=int(sys.argv[1])); print(json.dumps(d))' "$rep" >>"$ingest"
  done
done
for flag in "" --nosync; do
  "$bin/ingest_bench" --dir "$run/ingest" --mb "$ingest_mb" --phases $flag |
    python3 -c 'import json,sys; d=json.load(sys.stdin); d.update(path="phases"); print(json.dumps(d))' >>"$ingest"
done
http_needs=120  # seconds left for the HTTP runs and part 3 after them
[ "$quick" = 1 ] && http_needs=50
if [ "$(left)" -gt "$http_needs" ]; then
  log "ingestion over HTTP: 2 workers, 1 and 2 clients"
  ndocs=$(python3 -c "print(max(20, int($ingest_mb * 1e6 / 4400)))")
  for rep in $(seq "$ingest_reps"); do
    for conc in 1 2; do
      # A fresh store each time, as for ingest_bench (a bigger index costs more per document).
      export RAGSTREAM_DATA_DIR="$run/http-data"
      rm -rf "$run/http-data" "$run/http"
      stack_start "$run/http" "$port_base" 2 >&2
      "$bin/ttft_store" --documents "$ndocs" $((rep * 1000000 + conc * 100000)) >"$run/docs.jsonl"
      python3 "$here/ingest_client.py" --url "http://127.0.0.1:$port_base" \
        --docs "$run/docs.jsonl" --concurrency "$conc" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); d.update(path="http", threads=d["concurrency"], rep=int(sys.argv[1])); print(json.dumps(d))' "$rep" >>"$ingest"
      stack_stop
    done
  done
  rm -rf "$run/http-data"
else
  echo '{"what": "ingestion over HTTP", "reason": "the time budget"}' >>"$skipped"
fi

# ---- part 3: time to first token -----------------------------------------------------------
# A size is SIZE or SIZE:int8 (the store made, and served, with RAGSTREAM_VECTOR_FORMAT=int8).
# Its store: 700-character chunks (the product's default), built in one growing store per
# vector format; 1M chunks use 200-character chunks (a separate store), so that it stays ~7 GB
# rather than ~20 GB and builds in minutes (the vector scan, which dominates, is the same per
# chunk). A kept store (TTFT_CACHE) is reused while the code that decides what it holds is
# unchanged: the text, the chunker, tokenizer and embedder, and the store's records.
cache_key=$(cd "$root" && git log -1 --format=%h -- tests/bench/ttft/corpus.h lib/rag/chunker.* \
  lib/rag/text.* lib/rag/hash_embedder.* lib/store/document_store.* lib/store/lexical_index.* \
  lib/store/vector_index.* lib/store/tenant_key.h lib/store/lmdb.* 2>/dev/null || echo nogit)
last_rate=""  # chunks per second of the last build
port=$((port_base + 1))
for entry in $sizes; do
  size="${entry%%:*}"
  format=float
  [ "$entry" != "$size" ] && format="${entry#*:}"
  chars=700
  [ "$size" -ge 1000000 ] && chars=200
  suffix="c$chars"
  [ "$format" = float ] || suffix="c$chars-$format"
  if [ -n "${TTFT_CACHE:-}" ]; then  # one store per size, kept
    store="$TTFT_CACHE/$cache_key-store-$size-$suffix"
  else  # one growing store per kind (sizes ascending)
    store="$run/store-$suffix"
  fi
  label="$size"
  [ "$format" = float ] || label="$size $format"
  have=0
  [ -f "$store/chunks.count" ] && have=$(cat "$store/chunks.count")
  if [ "$have" -lt "$size" ]; then
    # Budget: the build at the last measured rate (or 2,000 chunks/s), plus 40 s for the
    # questions and what follows.
    rate="${last_rate:-2000}"
    need=$(( (size - have) / rate + 40 ))
    if [ "$need" -gt "$(left)" ]; then
      log "skipping $label chunks: building it needs ~$need s, $(left) s left"
      echo "{\"what\": \"$label chunks\", \"reason\": \"building the store needs ~$need s at $rate chunks/s; $(left) s were left (TTFT_CACHE=DIR builds it once and keeps it)\"}" >>"$skipped"
      continue
    fi
    log "building $label chunks ($chars-character chunks) in $store"
    if [ -n "${TTFT_CACHE:-}" ]; then  # stores of the same kind made by older code
      for old in "$TTFT_CACHE"/*-store-"$size-$suffix"; do
        [ -d "$old" ] && [ "$old" != "$store" ] && rm -rf "$old"
      done
    fi
    mkdir -p "$store"
    # The approximate index the worker builds for a tenant of RAGSTREAM_IVF_MIN_CHUNKS (20,000)
    # chunks or more, built here at once so the questions do not race its background build.
    ivf=()
    [ "$size" -ge 20000 ] && ivf=(--ivf)
    "$bin/ttft_store" --dir "$store" --chunks "$size" --chunk-chars "$chars" --threads 2 \
      --batch 256 --vector-format "$format" "${ivf[@]}" >"$run/build.json"
    if [ "$size" -ge 20000 ]; then
      # A serving index has learnt its probe from a sample of its questions, checked against
      # the exact scan in the background: 100 other questions (seed 11) teach it here.
      "$bin/ivf_probe" --dir "$store" --no-build --observe --n 100 --seed 11 --shares default \
        --vector-format "$format" >"$run/learn.json"
      python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); l=json.load(open(sys.argv[2])); b["learnt_share"]=l.get("learnt", {}).get("share"); json.dump(b, open(sys.argv[1], "w"))' "$run/build.json" "$run/learn.json"
    fi
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.update(size=int(sys.argv[2]), format=sys.argv[3]); print(json.dumps(d))' "$run/build.json" "$size" "$format" >>"$builds"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chunks"])' "$run/build.json" >"$store/chunks.count"
    last_rate=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(max(100, int(d["added_chunks"] / max(d["seconds"], 0.1))))' "$run/build.json")
  fi
  log "asking $rounds x $questions questions at $label chunks"
  rm -f "$run/w/logs/worker-1.log"
  export RAGSTREAM_DATA_DIR="$store" RAGSTREAM_VECTOR_FORMAT="$format"
  stack_start "$run/w" "$port" 1 >&2
  for round in $(seq "$rounds"); do
    python3 "$here/ttft_client.py" --url "http://127.0.0.1:$port" --fake "$fake_url" \
      --log "$run/w/logs/worker-1.log" --questions "$run/questions.txt" --out "$run/round.jsonl" \
      --n "$questions" --label "$label"
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l); d.update(size=int(sys.argv[2]), format=sys.argv[3], round=int(sys.argv[4]), chunk_chars=int(sys.argv[5])); print(json.dumps(d))' \
      "$run/round.jsonl" "$size" "$format" "$round" "$chars" >>"$raw"
    rm -f "$run/round.jsonl"
  done
  stack_stop
  unset RAGSTREAM_VECTOR_FORMAT
  port=$((port + 1))
  "$bin/ttft_probe" --dir "$store" --n "$questions" --vector-format "$format" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); d.update(size=int(sys.argv[1]), format=sys.argv[2]); print(json.dumps(d))' "$size" "$format" >>"$probes"
done

log "writing the report"
python3 "$here/summarize.py" --out "$out" --elapsed $((SECONDS - started)) \
  --command "tests/bench/ttft/run.sh $out" --quick "$quick" \
  --questions "$questions" --rounds "$rounds" --ingest-reps "$ingest_reps" --ingest-mb "$ingest_mb"
log "done"
