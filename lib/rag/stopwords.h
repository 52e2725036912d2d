// Stop words: the function words of a language, which say nothing about what a passage is
// about. The lexical index leaves them out (they are most of the postings and add nearly
// nothing to a BM25 score), and the extractive answerer ignores them when it looks for the
// question's key terms.
//
// Lists are kept for the languages the project evaluates (English, Hebrew, Arabic, Russian).
// No Debian package ships stop-word lists as data (libstemmer has none), so they are written
// here; in other languages every word is kept and BM25's IDF discounts the common ones.
#pragma once

#include <string_view>

namespace ragstream::rag {

// Whether `word` (already normalised by NormalizeText: NFKC, case-folded) is a stop word of
// `language` (ISO 639-1). Unknown languages have none. Thread-safe.
bool IsStopword(std::string_view language, std::string_view word);

}  // namespace ragstream::rag
