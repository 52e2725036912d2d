// Splits a document into overlapping passages for retrieval.
//
// Sizes are counted in code points, not bytes, so a Hebrew or Chinese passage holds about as
// much text as an English one (a byte budget would give CJK a third of the characters). A
// code point is not a grapheme, but a hard cut backs off so that it does not separate a
// letter from its combining marks where it can.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ragstream::rag {

// Checked once per call: max_chars is at least 1; target_chars is clamped to [1, max_chars];
// overlap_chars is clamped to at most target_chars / 2, so every chunk brings mostly new text.
struct ChunkerOptions {
  size_t target_chars = 700;   // a chunk ends at the best boundary near this length
  size_t overlap_chars = 100;  // about this much of a chunk's end starts the next chunk
  size_t max_chars = 1000;     // no chunk is longer, whatever the text looks like
};

// [start, end) of the chunk in the document, in code points and in bytes; `text` is
// document.substr(start_byte, end_byte - start_byte).
struct Chunk {
  std::string text;
  size_t start_char = 0;
  size_t end_char = 0;
  size_t start_byte = 0;
  size_t end_byte = 0;
};

// Splits `document` (UTF-8) into chunks of about options.target_chars code points, in
// document order. Where to end a chunk, in order of preference, among the positions at least
// target_chars / 2 into it (the one nearest target_chars wins within a kind):
//   1. a paragraph boundary: a whitespace run holding a blank line (two line breaks; CRLF
//      counts once, U+2029 and form feed count twice);
//   2. a sentence end: . ! ? … ׃ (sof pasuq) ؟ ۔, optionally followed by closing quotes or
//      brackets, then whitespace or the end; the CJK 。！？ end a sentence with or without
//      a following space, since CJK text puts none there;
//   3. any whitespace;
//   4. a hard cut at max_chars, at a code point boundary (never inside a UTF-8 sequence),
//      moved back a little where that avoids splitting a grapheme cluster.
// Consecutive chunks overlap by about options.overlap_chars: the next chunk starts at the
// sentence start nearest that distance before the previous chunk's end, else the nearest
// word start, else exactly there.
//
// Guarantees: no chunk is longer than max_chars; a chunk never starts or ends with
// whitespace (Unicode White_Space: categories Zs/Zl/Zp, tab, line breaks, U+0085); every
// non-whitespace code point is in at least one chunk; each chunk ends after the previous one
// ends. Empty or whitespace-only input gives no chunks; a document of at most max_chars
// (after trimming) gives exactly one.
//
// Runs in time linear in the document size (each code point is looked at a few times).
// Invalid UTF-8 does not crash it: each invalid byte counts as one character, and offsets
// still satisfy the substr identity (but then start_char/end_char count those bytes, not
// what Utf8Length() would count). Thread-safe.
std::vector<Chunk> ChunkText(std::string_view document, const ChunkerOptions& options = {});

}  // namespace ragstream::rag
