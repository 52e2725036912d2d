// Language analysis for the lexical index: what a chunk's text, a title or a question becomes
// as BM25 terms.
//
// Each word (rag::Tokenize: NFKC, case-folded, Hebrew/Arabic pointing dropped) is analysed by
// its script and the text's detected language:
//  - Latin, Cyrillic, Arabic and Greek words (and other scripts Snowball covers) go through
//    the Snowball stemmer (libstemmer) of the detected language, or of the script's default
//    (English, Russian, Arabic, Greek) when the detected language is not one Snowball has or
//    is written in another script: "leases" and "lease" both become "leas".
//  - Hebrew words go through hunspell with the he_IL dictionary, which strips the prefix
//    letters (ו ה ב ל מ ש כ and their combinations) and gives the dictionary stems:
//    ומהשנה -> שנה, לאורחים -> אורחים. A word hunspell reads two ways (המלח: המלח, מלח)
//    gives both stems; a question weighs each 1/n so an ambiguous word does not count twice.
//  - Stop words of the language (stopwords.h) are dropped; for Hebrew also a word whose
//    stems are all stop words (כשהוא).
//  - Digits and scripts without a stemmer stay as they are.
//
// Index terms are plain stems; a word whose surface form differs from its stem(s) also gives
// the surface form as "=surface", so an exact match scores above another form of the same
// word; title words are indexed as "^stem" in every chunk of the document, so a question
// naming a document's subject finds it. ('=' and '^' never occur inside a Tokenize term.)
//
// Changing what any of this returns for some text changes stored postings: bump
// kAnalyzerVersion, and stores re-index themselves at the next start (DocumentStore). The
// stemmers and the Hebrew dictionary come from Debian packages, which can change stems
// without any change here: AnalyzerVersion() adds a fingerprint of what they return for a
// fixed text, so an upgraded package re-indexes too.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/store/lexical_index.h"

namespace ragstream::rag {

inline constexpr const char* kAnalyzerVersion = "snowball+hunspell-v1";

// kAnalyzerVersion and a fingerprint of the stems this process's libraries give for a fixed
// text in several languages, e.g. "snowball+hunspell-v1/3fa94c0e21b7": what the store records
// as the analyzer of its postings. Computed once. Thread-safe.
const std::string& AnalyzerVersion();

// How a question's terms are weighted against each other (a stem weighs 1).
struct QueryAnalysisOptions {
  double surface_weight = 0.3;  // "=surface": exact form, on top of its stem
  double title_weight = 0.5;    // "^stem": the word is in a document's title
  double joined_weight = 0.5;   // two adjacent words written as one ("back up": backup)
};

// One word of a text after analysis.
struct AnalyzedWord {
  std::string surface;             // the Tokenize term
  std::vector<std::string> stems;  // one or more (hunspell may give several); never empty
  bool stopword = false;
};

// What a chunk contributes to the index.
struct ChunkTerms {
  std::vector<std::string> terms;  // with repetition: stems, "=surface", "^title stems"
  uint32_t length = 0;             // body words that are not stop words (BM25's length)
};

// The analysed words of `text`, in order. `language` is the text's ISO 639-1 code (detected
// by the caller; "" means detect here with CLD2). Thread-safe.
std::vector<AnalyzedWord> AnalyzeWords(std::string_view text, std::string_view language = "");

// The "^stem" terms of a document's title, once each. Thread-safe.
std::vector<std::string> TitleTerms(std::string_view title);

// The language a document's chunks are analysed in: CLD2 on its first 2 KB ("en" when it
// cannot tell). Detecting once per document rather than per chunk halves the analysis time;
// words of another script still go to their own script's analyzer. Thread-safe.
std::string DocumentLanguage(std::string_view text);

// Terms of a chunk of a document whose title gave `title_terms`, in `language` ("" detects
// it from the chunk). Thread-safe.
ChunkTerms AnalyzeChunk(std::string_view text, const std::vector<std::string>& title_terms,
                        std::string_view language = "");
// The same for one chunk on its own (its language detected, the title analysed here).
ChunkTerms AnalyzeChunk(std::string_view text, std::string_view title);
// The terms of a document's chunks, as ingestion makes them (the title analysed once, every
// chunk in the document's language): the store::DocumentAnalyzer the store uses to find a
// document's postings again. Thread-safe.
std::vector<store::AnalyzedChunk> AnalyzeDocumentChunks(std::string_view title,
                                                        std::string_view language,
                                                        const std::vector<std::string_view>& texts);

// Weighted query terms of a question: each non-stop word's stems (1/n each), its surface
// form if different, and the title form of each stem; and, as optional terms, each pair of
// adjacent words written as one (JoinedPairs), each word that its stemmer changed as it is,
// and the exact form of each word it left alone (a document in another language may have
// stemmed the word the other way). A question of stop words only gives no terms.
// Thread-safe.
std::vector<store::WeightedTerm> AnalyzeQuery(std::string_view question,
                                              const QueryAnalysisOptions& options = {});

// The stems of adjacent word pairs of `question` written as one word (Latin and Cyrillic
// words), where at least one of the two is not a stop word: "back up" -> backup, "set up" -> setup,
// "data base" -> databas. Documents often write as one word what a question writes as two.
// Thread-safe.
struct JoinedPair {
  std::vector<std::string> stems;  // of the two words written as one
  size_t first = 0;                // the pair is words [first] and [first + 1] of AnalyzeWords
};
std::vector<JoinedPair> JoinedPairs(std::string_view question);
// The same for words already analysed (AnalyzeWords(question, language)), without analysing
// the question again.
std::vector<JoinedPair> JoinedPairs(const std::vector<AnalyzedWord>& words,
                                    std::string_view language);

// Loads the Hebrew dictionary now rather than at the first Hebrew word (about 0.2 s), and
// says what the analyzer has: "snowball (29 languages), hunspell he_IL" or why not.
std::string WarmUpAnalyzer();

}  // namespace ragstream::rag
