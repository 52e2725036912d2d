#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan + UBSan), replays each regression corpus,
# then fuzzes each harness for SECONDS (default 20; 0 = replay only). New crashing inputs are
# written under build-fuzz/crashes/. Usage: tests/fuzz/run.sh [SECONDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds="${1:-20}"
out="$root/build-fuzz"
mkdir -p "$out/crashes"
# -fno-sanitize=pointer-overflow: RapidJSON 1.1.0's internal Stack computes offsets from a
# null pointer on every parse (stack.h:117, benign in practice); every other UBSan check stays.
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-sanitize=pointer-overflow
  -Wno-ambiguous-reversed-operator
  -I"$root" -DRAGSTREAM_VERSION=\"fuzz\" -DRAPIDJSON_HAS_STDSTRING=1)
common=("$root"/lib/core/{json,utf8,ids,random,http,config,log}.cc)
build() {  # name sources...
  local name="$1"; shift
  if [ ! -x "$out/$name" ] || [ -n "$(find "$root/lib" "$root/handlers" "$root/tests/fuzz" -newer "$out/$name" -name '*.[ch]*' | head -1)" ]; then
    clang++ "${flags[@]}" "$@" "${common[@]}" -o "$out/$name"
  fi
}
build fuzz_request_json "$root/tests/fuzz/fuzz_request_json.cc" "$root/handlers/chat_request.cc" \
  "$root/handlers/request_body.cc" \
  "$root/lib/rag/retrieval_mode.cc"
build fuzz_sse "$root/tests/fuzz/fuzz_sse.cc" "$root"/lib/llm/{sse_parser,openai_stream}.cc
build fuzz_router "$root/tests/fuzz/fuzz_router.cc" "$root"/handlers/{router,app}.cc
build fuzz_text "$root/tests/fuzz/fuzz_text.cc" \
  "$root"/lib/rag/{text,chunker,hash_embedder,analyzer,stopwords,language}.cc \
  "$root"/lib/core/{sha256,hex}.cc -lutf8proc -lstemmer -lhunspell -lcld2 -lcrypto
for h in request_json sse router text; do
  corpus="$root/tests/fuzz/corpus/$h"
  echo "== fuzz_$h: replay $(ls "$corpus" | wc -l) corpus inputs"
  # On a failure, show the sanitizer's report, not just libFuzzer's last line.
  "$out/fuzz_$h" -runs=0 "$corpus" >"$out/fuzz_$h.log" 2>&1 || { tail -40 "$out/fuzz_$h.log"; exit 1; }
  tail -1 "$out/fuzz_$h.log"
  if [ "$seconds" -gt 0 ]; then
    work="$out/work_$h"; mkdir -p "$work"
    echo "== fuzz_$h: fuzz for ${seconds}s"
    "$out/fuzz_$h" -max_total_time="$seconds" -max_len=4096 -timeout=5 \
      -artifact_prefix="$out/crashes/${h}-" "$work" "$corpus" >"$out/fuzz_$h.log" 2>&1 ||
      { tail -40 "$out/fuzz_$h.log"; exit 1; }
    tail -1 "$out/fuzz_$h.log"
  fi
done
