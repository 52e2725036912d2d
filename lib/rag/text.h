// Text normalisation and the lexical tokenizer shared by BM25 and the hash embedder.
//
// Both sides of a lexical match (an indexed chunk and a question) must go through the same
// functions, so anything that changes what Tokenize() returns for some input changes every
// stored BM25 posting and every hash-embedded vector: bump the hash embedder's name and
// re-index when it does.
//
// Unicode data (categories, normalisation, case folding) comes from utf8proc; the only
// ranges written down here are script blocks, which utf8proc does not expose.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ragstream::rag {

// Words longer than this many bytes are cut (at a character boundary) by Tokenize().
inline constexpr size_t kMaxTokenBytes = 64;

// NFKC, full case folding (so "Straße" and "STRASSE" both become "strasse") and removal of
// default-ignorable code points (soft hyphen, zero-width space and joiners, variation
// selectors), in one utf8proc_map pass.
//
// Never fails: invalid UTF-8 is first repaired with SanitizeUtf8 (each bad byte becomes
// U+FFFD), and if utf8proc still refuses the text (only on allocation failure) the repaired
// text is returned unnormalised. The result is valid UTF-8. Thread-safe.
std::string NormalizeText(std::string_view utf8);

// The lexical terms of `utf8`, in order of appearance, after NormalizeText():
//
//  - A word is a maximal run of letters, marks and decimal digits (utf8proc categories L*,
//    M*, Nd). Everything else separates words, including connector punctuation, so
//    "x86_64" gives ["x86", "64"] and "mdb_copy" gives ["mdb", "copy"]; apostrophes and
//    hyphens split too ("don't" gives ["don", "t"]). Digits stay: "3.14" gives ["3", "14"].
//  - Non-spacing marks (category Mn) of the Hebrew and Arabic blocks (niqqud, cantillation,
//    harakat) and the Arabic tatweel are dropped, so pointed and unpointed (or stretched)
//    spellings give the same word. Marks of other scripts are kept, since in Devanagari or
//    Thai they are vowels, not optional pointing.
//  - U+0307 COMBINING DOT ABOVE right after "i" or "j" is dropped: case folding turns
//    Turkish "İ" into "i" + U+0307, and this keeps "İstanbul" equal to "istanbul".
//  - Han ideographs, Hiragana, Katakana and Hangul (syllables and jamo) are written without
//    spaces between words, so a run of them gives overlapping character bigrams
//    ("自然语言" gives ["自然", "然语", "语言"]); a lone such character is a term by
//    itself. A run may mix scripts: "LMDB是数据库" gives ["lmdb", "是数", "数据", "据库"].
//  - Words are cut to kMaxTokenBytes bytes at a character boundary.
//  - No stemming and no stop words (BM25's IDF discounts common words).
//
// Never fails; invalid UTF-8 is repaired as by NormalizeText() and U+FFFD splits words.
// Empty or punctuation-only input gives no terms. Thread-safe.
std::vector<std::string> Tokenize(std::string_view utf8);

}  // namespace ragstream::rag
