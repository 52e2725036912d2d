#!/usr/bin/env bash
# Every test: installs what is missing (apt), builds with -Werror, checks formatting, runs
# the unit tests (ctest), the fake upstream's self-test, and the integration tests that
# start a real nginx, real workers and the fake upstream on loopback, and the short cluster
# test (tests/cluster/run.sh --short: hosts as network namespaces, as root).
#
# Usage: scripts/test.sh [--unit]   (--unit: build and unit tests only)
#   RAGSTREAM_FUZZ_SECONDS: seconds each fuzzer runs (10)
set -euo pipefail
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  ""|--unit) ;;
  *) echo "scripts/test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/install_deps.sh" --test
"$root/scripts/build.sh"

# The benchmarks are not in the default build; compiling them here keeps them from rotting
# when the product's interfaces change (running them is scripts/bench.sh's job).
echo "== benchmark programs build"
"$root/scripts/build.sh" retrieval_bench ttft_store ttft_probe ingest_bench vector_bench \
  relay_floor relay_upstream relay_client

echo "== format (clang-format --dry-run --Werror)"
git ls-files -co --exclude-standard -- '*.cc' '*.h' | xargs clang-format --dry-run --Werror

echo "== unit tests (ctest)"
(cd build && ctest --output-on-failure -j "$(nproc)")
[ "${1:-}" = "--unit" ] && exit 0

echo "== fuzz: replay the regression corpus, then fuzz each harness briefly"
tests/fuzz/run.sh "${RAGSTREAM_FUZZ_SECONDS:-10}"

echo "== fake upstream self-test"
bash tests/fake_openai/selftest.sh

tests/openapi/lint.sh  # docs/openapi.yaml: Redocly lint (npm-installed into tests/openapi)
bash tests/browser/run.sh  # the web chat page in headless chromium (prints its own "== browser test" header)
echo "== crash loop (short): SIGKILL workers under load while the map grows, then check the store"
/usr/bin/python3 tests/crash/crash_loop.py --seconds 15 --streams 40 --workers 3 --grow --batch

echo "== integration tests (pytest: nginx + workers + fake upstream)"
# Debian's pytest is installed for the system interpreter, which may not be the first
# python3 on PATH (pyenv).
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

echo "== cluster test (short): hosts as network namespaces, a primary killed, a link cut"
# It needs root and network namespaces (ip netns); a machine without them says so here.
if [ "$(id -u)" -eq 0 ] && ip netns add rs-probe 2>/dev/null; then
  ip netns del rs-probe
  tests/cluster/run.sh --short
else
  echo "SKIPPED: the cluster test needs root and network namespaces (run tests/cluster/run.sh as root)"
fi
