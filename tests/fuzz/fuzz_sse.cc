// libFuzzer harness: the upstream SSE parser and chunk decoder, with the input split in two
// at a point chosen by its first byte (events must survive any split), and the UTF-8
// hold-back over the decoded deltas.
#include <cstddef>
#include <cstdint>
#include <string>

#include "lib/core/utf8.h"
#include "lib/llm/openai_stream.h"
#include "lib/llm/sse_parser.h"

using ragstream::llm::SseEvent;

static std::string Run(std::string_view a, std::string_view b) {
  ragstream::llm::SseParser parser;
  ragstream::Utf8HoldBack hold;
  std::string out;
  auto on_event = [&](const SseEvent& ev) {
    ragstream::llm::ChunkInfo info = ragstream::llm::DecodeChunk(ev.data);
    std::string text = ragstream::SanitizeUtf8(hold.Push(info.content));
    if (!ragstream::IsValidUtf8(text)) __builtin_trap();
    out += ev.data;
    out += '\x01';
    return true;
  };
  parser.Feed(a, on_event);
  parser.Feed(b, on_event);
  return out;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t split = data[0] % (all.size() + 1);
  std::string whole = Run(all, {});
  std::string parts = Run(all.substr(0, split), all.substr(split));
  if (whole != parts) __builtin_trap();  // a split changed what was parsed
  return 0;
}
