#!/usr/bin/env bash
# Part 4 of the benchmarks (issue 7): vector search in the LMDB shards against FAISS
# IndexFlatIP and the memory-bandwidth floor, and the int8 format. Writes OUT/vector.json and
# OUT/vector.md (the section "## 4. Vector search").
#
# Usage: tests/bench/vector/run.sh OUT [vector_bench options...]
#   e.g. run.sh /tmp/bench --sizes 20000x384   (a quick run; the default is the three sizes
#   of the issue: 100000x384, 1000000x384, 100000x1536)
# From scripts/bench.sh: BENCH_QUICK=1 runs small sizes (a smoke test, not numbers);
# BENCH_DEADLINE_S (the seconds this script may take) becomes the benchmark's time budget,
# which leaves out what would not fit (and says so in vector.md) rather than being cut off.
#
# Installs what only this benchmark needs, if missing (root or sudo): libfaiss-dev (Debian's
# FAISS 1.7.3, a static library: the benchmark links it, the product never does) and
# libopenblas0-openmp (an optimised BLAS for FAISS's batched search; without it the batch runs
# on the reference BLAS, which would make FAISS look much slower than it is). Installing
# OpenBLAS makes it the system's default libblas.so.3 through update-alternatives.
# Temporary data (the LMDB stores: VectorIndex's blocks and pieces, the benchmark's copy of the
# previous per-document layout and its block prototype, float and int8; ~6 GB at most) go under
# /tmp and are removed at the end.
#
# VECTOR_BENCH_PERF=1 adds a profile (perf record, ~1.5 minutes more): VectorIndex's scan (its
# 512-id range blocks and the pieces of the range still filling) and the per-document values
# (the benchmark's copy of VectorIndex's previous layout) with the same kernel, 1M x 384 on one
# core, leaf functions appended to vector.md. Needs linux-perf and python3.
set -euo pipefail

root="$(cd "$(dirname "$0")/../../.." && pwd)"
out="${1:?usage: run.sh OUT [vector_bench options]}"
shift
mkdir -p "$out"
out="$(cd "$out" && pwd)"
build="${RAGSTREAM_BUILD_DIR:-$root/build}"

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
missing=()
for pkg in libfaiss-dev libopenblas0-openmp; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}" >&2
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2; then
    echo "== could not install ${missing[*]}: running without what is missing" >&2
  fi
fi

# CMake looks for FAISS when it configures: configure again if the cache says it was not
# found (e.g. it has just been installed).
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^faiss_DIR:PATH=/' "$build/CMakeCache.txt"; then
  cmake -S "$root" -B "$build" >/dev/null
fi
echo "== building vector_bench" >&2
RAGSTREAM_BUILD_DIR="$build" "$root/scripts/build.sh" vector_bench >&2

dir="$(mktemp -d /tmp/ragstream-vector-bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
start=$(date +%s)
extra=()
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  extra+=(--sizes 20000x384,5000x1536 --single-reps 5 --batch-reps 2)
fi
if [ -n "${BENCH_DEADLINE_S:-}" ]; then
  # What is left of the deadline after the install and build, less 15 s to write the report.
  extra+=(--budget-s $((BENCH_DEADLINE_S - SECONDS - 15)))
fi
command_text="tests/bench/vector/run.sh $out${*:+ $*}"
[ -z "${BENCH_DEADLINE_S:-}" ] || command_text="BENCH_DEADLINE_S=$BENCH_DEADLINE_S $command_text"
[ "${BENCH_QUICK:-0}" != 1 ] || command_text="BENCH_QUICK=1 $command_text"
# OMP_WAIT_POLICY=PASSIVE: FAISS's (and OpenBLAS's) idle OpenMP threads sleep instead of
# spinning; on 2 cores spinning threads take the cores from the threads doing the work.
OMP_WAIT_POLICY=PASSIVE "$build/tests/bench/vector/vector_bench" --dir "$dir/stores" \
  --json "$out/vector.json" --md "$out/vector.md" \
  --command "$command_text (runs: vector_bench${extra[*]:+ ${extra[*]}}${*:+ $*})" \
  "${extra[@]}" "$@"

if [ "${VECTOR_BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null && command -v python3 >/dev/null; then
  {
    echo "### Profile (perf record -g, 1M x 384, 1 core)"
    echo
    echo "Samples of the named scan only (the store's build is left out): VectorIndex's scan of"
    echo "its blocks (one value per 512-id range) and pieces, then the per-document values (the"
    echo "benchmark's copy of VectorIndex's previous layout, one value per document) read with the"
    echo "same kernel. Leaf functions, as sampled in this run."
    echo
    for what in vectorindex:ScanShard docs:SearchDocValues; do
      system="${what%%:*}" frame="${what#*:}"
      cmd=("$build/tests/bench/vector/vector_bench" --sizes 1000000x384 --threads 1
        --single-reps 5 --profile "$system" --dir "$dir/stores")
      echo "\`perf record -F 999 -g -- vector_bench --sizes 1000000x384 --threads 1 --single-reps 5 --profile $system\`:"
      echo
      OMP_WAIT_POLICY=PASSIVE perf record -q -F 999 -g -o "$dir/perf.data" -- "${cmd[@]}" 2>/dev/null
      perf script -i "$dir/perf.data" 2>/dev/null | python3 "$root/tests/bench/vector/perf_stacks.py" "$frame"
      echo
    done
  } >>"$out/vector.md"
fi
echo "== vector benchmark: $(($(date +%s) - start)) s; wrote $out/vector.json and $out/vector.md" >&2
