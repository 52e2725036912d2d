#!/usr/bin/env bash
# Configures and builds into build/ (RelWithDebInfo, -Werror).
# Usage: build.sh [TARGET...]   (default: everything; RAGSTREAM_BUILD_DIR overrides build/)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${RAGSTREAM_BUILD_DIR:-$root/build}"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build" -j "$(nproc)" "${targets[@]}"
