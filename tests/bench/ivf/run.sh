#!/usr/bin/env bash
# Part 8 of the benchmarks (issue 13): the approximate vector index (lib/store/ivf_index.h)
# against the exact scan it approximates and against FAISS from Debian on the same vectors.
# Writes OUT/ivf.json and OUT/ivf.md (the section "## 8. Approximate vector search").
#
# Usage: tests/bench/ivf/run.sh OUT
# From scripts/bench.sh: BENCH_QUICK=1 runs small stores (a smoke test, not numbers);
# BENCH_DEADLINE_S (the seconds this script may take) leaves out the 1M-chunk store when it
# would not fit (and says so).
#
# Stores (each a worker's own layout, built by ttft_store through DocumentStore, hash
# embedder, 384 dimensions):
#   real       Debian's documentation under /usr/share/doc (~60 MB, ~98k chunks of 700
#              characters; text nobody here wrote), with two sets of 200 questions drawn from it
#              by real_corpus.py: seed 1 is checked against the exact scan first (the index
#              learns its default probe from them, as a worker does from a sample of its
#              questions), seed 2 is held out
#   synthetic  the time-to-first-token corpus (tests/bench/ttft/corpus.h): words drawn
#              independently from one Zipf vocabulary, no topics at all -- the worst case for
#              any partitioning index; 100k chunks of 700 characters, and 1M of 200;
#              questions of seed 11 teach the default probe, seed 12 are held out
# For each: the build's time, then recall@10 against the exact scan and latency at each
# probe share (ivf_probe). FAISS (IndexIVFFlat, IndexIVFScalarQuantizer 8-bit, IndexHNSWFlat)
# on the real store's vectors, same nlist and nprobe (faiss_ann), when libfaiss-dev can be
# installed (the benchmark links it; the product never does).
set -euo pipefail

root="$(cd "$(dirname "$0")/../../.." && pwd)"
here="$root/tests/bench/ivf"
out="${1:?usage: run.sh OUT}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
build="${RAGSTREAM_BUILD_DIR:-$root/build}"
quick="${BENCH_QUICK:-0}"
deadline="${BENCH_DEADLINE_S:-1800}"
log() { echo "== ivf: $*" >&2; }
left() { echo $((deadline - SECONDS - 20)); }

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
missing=()
for pkg in libfaiss-dev libopenblas0-openmp; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 ||
    log "could not install ${missing[*]}: FAISS is left out"
fi
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^faiss_DIR:PATH=/' "$build/CMakeCache.txt"; then
  cmake -S "$root" -B "$build" >/dev/null
fi
log "building"
RAGSTREAM_BUILD_DIR="$build" "$root/scripts/build.sh" ttft_store ivf_probe >&2
faiss=""
if RAGSTREAM_BUILD_DIR="$build" "$root/scripts/build.sh" faiss_ann >&2 2>/dev/null; then
  faiss="$build/tests/bench/ivf/faiss_ann"
fi
bin="$build/tests/bench/ttft"

tmp="$(mktemp -d /tmp/ragstream-ivf-bench.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
shares="default,0.05,0.1,0.2,0.3,0.4,0.5,0.6,0.8"
real_mb=60 synth=100000 big=1000000 questions=200
if [ "$quick" = 1 ]; then
  real_mb=4 synth=20000 big=0 questions=40
fi

mdb_size() {  # DIR DB -> bytes of the named database (pages x 4096), 0 if absent
  mdb_stat -s "$2" "$1" 2>/dev/null | awk '/Branch pages|Leaf pages|Overflow pages/ {p += $3}
    END {print (p ? p : 0) * 4096}'
}

log "the real corpus"
python3 "$here/real_corpus.py" "$tmp/real.jsonl" "$tmp/tune.txt" --mb "$real_mb" \
  --questions-n "$questions" --seed 1 >"$out/real_corpus.json"
python3 "$here/real_corpus.py" "$tmp/real2.jsonl" "$tmp/heldout.txt" --mb "$real_mb" \
  --questions-n "$questions" --seed 2 >/dev/null
rm -f "$tmp/real2.jsonl"
mkdir -p "$tmp/real"
"$bin/ttft_store" --dir "$tmp/real" --chunks 100000000 --threads 2 --batch 64 \
  --jsonl "$tmp/real.jsonl" >"$out/real.store.json" 2>/dev/null
log "real: building the index; tuning questions"
"$bin/ivf_probe" --dir "$tmp/real" --questions "$tmp/tune.txt" --n "$questions" \
  --shares "$shares" --threads 2 --observe >"$out/real.tune.json"
log "real: held-out questions"
"$bin/ivf_probe" --dir "$tmp/real" --questions "$tmp/heldout.txt" --n "$questions" \
  --shares "$shares" --no-build >"$out/real.heldout.json"
echo "{\"ivf_bytes\": $(mdb_size "$tmp/real" ivf), \"vector_bytes\": $(( $(mdb_size "$tmp/real" vectors.0) + $(mdb_size "$tmp/real" vectors.1) + $(mdb_size "$tmp/real" vectors.2) + $(mdb_size "$tmp/real" vectors.3) ))}" >"$out/real.sizes.json"
if [ -n "$faiss" ]; then
  log "FAISS on the same vectors"
  "$bin/ivf_probe" --dir "$tmp/real" --questions "$tmp/heldout.txt" --n "$questions" \
    --no-build --dump "$tmp/real" >/dev/null
  nlist=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["build"]["nlist"])' "$out/real.tune.json")
  # The measured shares as nprobes, and the default's (tuned) nprobe.
  nprobes=$(python3 -c 'import json,math,sys; n=int(sys.argv[1]); d=[r["nprobe"] for r in json.load(open(sys.argv[3]))["approximate"] if r.get("default")]; print(",".join(str(p) for p in sorted(set(d + [max(1, math.ceil(float(s) * n)) for s in sys.argv[2].split(",") if s != "default"]))))' "$nlist" "$shares" "$out/real.heldout.json")
  OMP_WAIT_POLICY=PASSIVE "$faiss" --base "$tmp/real.base.fvecs" --queries "$tmp/real.queries.fvecs" \
    --k 10 --nlist "$nlist" --nprobe "$nprobes" --threads 2 --hnsw-m 0 >"$out/faiss.real.json" || log "faiss_ann failed"
fi
rm -rf "$tmp/real" "$tmp"/real.*

log "synthetic: $synth chunks"
mkdir -p "$tmp/synth"
"$bin/ttft_store" --dir "$tmp/synth" --chunks "$synth" --threads 2 --batch 256 \
  >"$out/synth.store.json" 2>/dev/null
# The default probe learns from one set of questions (as the worker learns from a sample of
# its own) and is judged on another.
"$bin/ivf_probe" --dir "$tmp/synth" --n "$questions" --seed 11 --shares default --threads 2 \
  --observe >"$out/synth.tune.json"
"$bin/ivf_probe" --dir "$tmp/synth" --n "$questions" --seed 12 --shares "$shares" --no-build \
  >"$out/synth.json"
rm -rf "$tmp/synth"

if [ "$big" -gt 0 ]; then
  # ~30 s for the store, ~60-90 s for the index, ~30 s of questions at this machine's pace.
  if [ "$(left)" -gt 200 ]; then
    log "synthetic: $big chunks of 200 characters"
    mkdir -p "$tmp/big"
    "$bin/ttft_store" --dir "$tmp/big" --chunks "$big" --chunk-chars 200 --threads 2 \
      --batch 256 >"$out/big.store.json" 2>/dev/null
    "$bin/ivf_probe" --dir "$tmp/big" --n 100 --seed 11 --shares default --threads 2 \
      --observe >"$out/big.tune.json"
    "$bin/ivf_probe" --dir "$tmp/big" --n 100 --seed 12 --shares "default,0.1,0.2,0.4,0.6" \
      --no-build >"$out/big.json"
    echo "{\"ivf_bytes\": $(mdb_size "$tmp/big" ivf)}" >"$out/big.sizes.json"
    rm -rf "$tmp/big"
  else
    echo "{\"reason\": \"$(left) s were left of the part's budget; the 1M store needs about 200 s\"}" >"$out/big.skipped.json"
  fi
fi

python3 "$here/report.py" "$out" --elapsed "$SECONDS" --quick "$quick" \
  --command "tests/bench/ivf/run.sh $out"
log "done in $SECONDS s"
