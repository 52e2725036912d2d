// libFuzzer harness: the tokenizer, the analyzer, the chunker and the hash embedder on
// arbitrary bytes
// (made valid UTF-8 first, as the ingester guarantees). Terms must stay short and valid
// (they become LMDB keys; a CJK character with thousands of marks once overran the
// embedder), chunks must be valid UTF-8 slices of the text within the size limit, and the
// embedding must be unit length or zero.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/utf8.h"
#include "lib/rag/analyzer.h"
#include "lib/rag/chunker.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text =
      ragstream::SanitizeUtf8(std::string_view(reinterpret_cast<const char*>(data), size));
  for (const std::string& term : ragstream::rag::Tokenize(text)) {
    if (term.empty() || term.size() > ragstream::rag::kMaxTokenBytes) __builtin_trap();
    if (!ragstream::IsValidUtf8(term)) __builtin_trap();
  }
  // Analysed terms become LMDB keys too: short, valid, never empty (a "^" or "=" and a
  // stem, or two joined words of a question).
  const auto chunk_terms = ragstream::rag::AnalyzeChunk(text, text.substr(0, 200));
  for (const std::string& term : chunk_terms.terms) {
    if (term.empty() || term.size() > 2 * ragstream::rag::kMaxTokenBytes + 1) __builtin_trap();
    if (!ragstream::IsValidUtf8(term)) __builtin_trap();
  }
  for (const auto& t : ragstream::rag::AnalyzeQuery(text)) {
    if (t.term.empty() || t.term.size() > 2 * ragstream::rag::kMaxTokenBytes + 1) __builtin_trap();
    if (!ragstream::IsValidUtf8(t.term) || !(t.weight > 0)) __builtin_trap();
  }
  ragstream::rag::ChunkerOptions options;
  options.target_chars = 60;
  options.overlap_chars = 10;
  options.max_chars = 90;
  for (const auto& chunk : ragstream::rag::ChunkText(text, options)) {
    if (chunk.end_byte > text.size() || chunk.start_byte > chunk.end_byte) __builtin_trap();
    if (text.compare(chunk.start_byte, chunk.end_byte - chunk.start_byte, chunk.text) != 0) {
      __builtin_trap();
    }
    if (!ragstream::IsValidUtf8(chunk.text)) __builtin_trap();
    if (ragstream::Utf8Length(chunk.text) > options.max_chars) __builtin_trap();
  }
  static const ragstream::rag::HashEmbedder embedder(64);
  std::vector<float> v(64);
  embedder.EmbedOne(text, v.data());
  double norm = 0;
  for (float x : v) norm += double{x} * x;
  if (norm != 0 && std::fabs(norm - 1.0) > 1e-3) __builtin_trap();
  return 0;
}
