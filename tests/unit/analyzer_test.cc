// The lexical analyzer: Snowball stems per language, hunspell Hebrew prefixes and stems,
// stop words, surface and title terms, mixed scripts and hostile sizes.
#include "lib/rag/analyzer.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "lib/core/utf8.h"
#include "lib/rag/text.h"

namespace ragstream::rag {
namespace {

bool HasStem(const AnalyzedWord& w, const std::string& stem) {
  return std::find(w.stems.begin(), w.stems.end(), stem) != w.stems.end();
}

const AnalyzedWord& Word(const std::vector<AnalyzedWord>& words, const std::string& surface) {
  auto it = std::find_if(words.begin(), words.end(),
                         [&](const AnalyzedWord& w) { return w.surface == surface; });
  BOOST_REQUIRE_MESSAGE(it != words.end(), surface);
  return *it;
}

double Weight(const std::vector<store::WeightedTerm>& terms, const std::string& term) {
  for (const auto& t : terms) {
    if (t.term == term) return t.weight;
  }
  return 0;
}

BOOST_AUTO_TEST_SUITE(analyzer_test)

BOOST_AUTO_TEST_CASE(english_words_share_their_snowball_stem) {
  auto words = AnalyzeWords("The leases were extended; extending a lease needs notice.", "en");
  BOOST_TEST(Word(words, "leases").stems == std::vector<std::string>{"leas"});
  BOOST_TEST(Word(words, "lease").stems == std::vector<std::string>{"leas"});
  BOOST_TEST(Word(words, "extended").stems == Word(words, "extending").stems);
  BOOST_TEST(Word(words, "the").stopword);
  BOOST_TEST(Word(words, "were").stopword);
  BOOST_TEST(!Word(words, "notice").stopword);
  // Detected when no language is given.
  auto detected = AnalyzeWords("How long do I cook the eggs in the shakshuka?");
  BOOST_TEST(HasStem(Word(detected, "eggs"), "egg"));
}

BOOST_AUTO_TEST_CASE(hebrew_prefix_letters_are_stripped_by_hunspell) {
  // The examples of `hunspell -d he_IL -s`.
  auto words = AnalyzeWords("לשנה ומהשנה לאורחים בדירה הדירה", "he");
  BOOST_TEST(HasStem(Word(words, "לשנה"), "שנה"));
  BOOST_TEST(HasStem(Word(words, "ומהשנה"), "שנה"));
  BOOST_TEST(HasStem(Word(words, "לאורחים"), "אורחים"));
  BOOST_TEST(HasStem(Word(words, "בדירה"), "דירה"));
  BOOST_TEST(HasStem(Word(words, "הדירה"), "דירה"));
  // An ambiguous word keeps both readings; a question weighs each 1/n.
  auto ambiguous = AnalyzeWords("המלח", "he");
  BOOST_TEST(HasStem(ambiguous[0], "מלח"));
  auto query = AnalyzeQuery("מה עומק ים המלח?");
  const size_t readings = ambiguous[0].stems.size();
  BOOST_TEST(Weight(query, "מלח") == 1.0 / static_cast<double>(readings),
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(Weight(query, "עומק") == 1.0);
  BOOST_TEST(Weight(query, "מה") == 0.0);  // a stop word
  // A word the dictionary does not know (a name) stays as it is.
  auto name = AnalyzeWords("ragstream", "he");
  BOOST_TEST(name[0].stems == std::vector<std::string>{"ragstream"});
  // Stop words with a prefix attached (כשהוא: when he) are stop words too.
  BOOST_TEST(AnalyzeWords("כשהוא", "he")[0].stopword);
}

BOOST_AUTO_TEST_CASE(arabic_and_russian_use_their_snowball_stemmers) {
  auto ru = AnalyzeWords("Сколько островов в Ладожском озере? Острова озера.", "ru");
  BOOST_TEST(Word(ru, "островов").stems == Word(ru, "острова").stems);
  BOOST_TEST(Word(ru, "озере").stems == Word(ru, "озера").stems);
  BOOST_TEST(Word(ru, "сколько").stopword);
  BOOST_TEST(Word(ru, "в").stopword);
  auto ar = AnalyzeWords("المكتبة ومكتبة في", "ar");
  BOOST_TEST(Word(ar, "المكتبة").stems == Word(ar, "ومكتبة").stems);
  BOOST_TEST(Word(ar, "في").stopword);
}

BOOST_AUTO_TEST_CASE(mixed_script_text_analyses_each_word_by_its_script) {
  // A Hebrew question naming an English product, and an English text with a Russian word:
  // each word goes to the stemmer of its own script.
  auto he = AnalyzeWords("איך מגבים את LMDB בעזרת mdb_copy ובקבצים?", "he");
  BOOST_TEST(Word(he, "lmdb").stems == std::vector<std::string>{"lmdb"});
  BOOST_TEST(Word(he, "copy").stems == std::vector<std::string>{"copi"});  // English stem
  BOOST_TEST(HasStem(Word(he, "ובקבצים"), "קבצים"));
  auto en = AnalyzeWords("The lake is called Байкал in Russian, and its islands are many.", "en");
  BOOST_TEST(Word(en, "islands").stems == std::vector<std::string>{"island"});
  BOOST_TEST(Word(en, "байкал").stems.size() == 1u);  // Russian stemmer, not English
  // Digits stay as they are.
  BOOST_TEST(AnalyzeWords("430 2024", "en")[0].stems == std::vector<std::string>{"430"});
}

BOOST_AUTO_TEST_CASE(chunk_terms_hold_stems_surface_forms_and_title_terms) {
  const ChunkTerms c = AnalyzeChunk("The leases were extended.", "Apartment lease");
  // "the" and "were" are stop words: not terms, not counted in the length.
  BOOST_TEST(c.length == 2u);
  auto has = [&](const std::string& t) {
    return std::find(c.terms.begin(), c.terms.end(), t) != c.terms.end();
  };
  BOOST_TEST(has("leas"));
  BOOST_TEST(has("=leases"));  // differs from its stem: kept for exact matches
  BOOST_TEST(has("extend"));
  BOOST_TEST(has("=extended"));
  BOOST_TEST(!has("the"));
  BOOST_TEST(has("^apart"));  // the title's stems, once each
  BOOST_TEST(has("^leas"));
  BOOST_TEST(std::count(c.terms.begin(), c.terms.end(), "^leas") == 1);
  // A question: the stem (1), the title form (title_weight), the exact form; the exact form
  // of a word that is its own stem is optional (a document in another language may have
  // stemmed it).
  const auto q = AnalyzeQuery("leases");
  const QueryAnalysisOptions o;
  BOOST_TEST(Weight(q, "leas") == 1.0);
  BOOST_TEST(Weight(q, "^leas") == o.title_weight);
  BOOST_TEST(Weight(q, "=leases") == o.surface_weight);
  for (const auto& t : AnalyzeQuery("island")) {
    if (t.term == "=island") BOOST_TEST((t.optional && t.weight == o.surface_weight));
  }
  BOOST_TEST(Weight(AnalyzeQuery("island"), "=island") == o.surface_weight);
}

BOOST_AUTO_TEST_CASE(a_question_of_stop_words_gives_no_terms) {
  BOOST_TEST(AnalyzeQuery("What is the?").empty());
  BOOST_TEST(AnalyzeQuery("מה זה?").empty());
  BOOST_TEST(AnalyzeQuery("что это?").empty());
  BOOST_TEST(AnalyzeQuery("ما هو؟").empty());
  BOOST_TEST(AnalyzeQuery("").empty());
  BOOST_TEST(AnalyzeQuery("?!…").empty());
  BOOST_TEST(AnalyzeChunk("the of and", "").terms.empty());
}

BOOST_AUTO_TEST_CASE(a_16000_character_question_is_analysed_whole_and_bounded) {
  std::string q;
  const std::string pieces[] = {
      "extending ", "ומהשנה ", "озера ", "والمكتبة ", std::string(300, 'x') + " ", "自然语言 "};
  for (size_t i = 0; Utf8Length(q) < 16000; ++i) q += pieces[i % std::size(pieces)];
  const auto start = std::chrono::steady_clock::now();
  const auto terms = AnalyzeQuery(q);
  const auto took = std::chrono::steady_clock::now() - start;
  // Repeated words are merged (their weights summed), so the terms are few.
  BOOST_TEST(terms.size() < 40u);
  BOOST_TEST(Weight(terms, "extend") > 10.0);
  for (const auto& t : terms) {
    BOOST_TEST(IsValidUtf8(t.term));
    BOOST_TEST(t.term.size() <= kMaxTokenBytes + 1);  // a '^' or '=' and a Tokenize term
    BOOST_TEST(t.weight > 0.0);
  }
  // Not a timing assertion: a guard against a quadratic blow-up (seconds, not milliseconds).
  BOOST_TEST(std::chrono::duration<double>(took).count() < 10.0);
}

BOOST_AUTO_TEST_CASE(two_words_are_also_read_as_one) {
  auto stems_of = [](std::string_view q) {
    std::vector<std::string> out;
    for (const auto& p : JoinedPairs(q)) out.insert(out.end(), p.stems.begin(), p.stems.end());
    return out;
  };
  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  const auto backup = stems_of("How do I back up the LMDB store?");
  BOOST_TEST(has(backup, "backup"));
  BOOST_TEST(!has(backup, "theLMDB"));
  BOOST_TEST(has(stems_of("set up nginx"), "setup"));
  BOOST_TEST(stems_of("מה עומק ים המלח").empty());  // Hebrew does not write compounds so
  BOOST_TEST(stems_of("the of").empty());           // two stop words: no pair
  // In a question they are optional terms at joined_weight.
  const auto q = AnalyzeQuery("back up");
  bool found = false;
  for (const auto& t : q) {
    if (t.term == "backup") {
      found = true;
      BOOST_TEST(t.optional);
      BOOST_TEST(t.weight == QueryAnalysisOptions().joined_weight);
    } else {
      // Besides the pair, only the exact-form lookups of words that are their own stems.
      BOOST_TEST((!t.optional || t.term == "=back"), t.term);
    }
  }
  BOOST_TEST(found);
}

// A one-word question's language is CLD2's guess: whichever of the question's and the
// document's stemmers changed a code-like word, the question still shares a term with the
// document (both directions were seen in the crash loop: bqf8f188ccaa, tag205x9fa7e1d0ed).
BOOST_AUTO_TEST_CASE(a_code_word_is_found_whatever_language_the_question_is_guessed_in) {
  for (const std::string token : {"bqf8f188ccaa", "tag205x9fa7e1d0ed"}) {
    const std::string text =
        "Bulk document 205 " + token + ". filler0 word0 filler1 word1 filler2 word2 filler3 word3";
    auto chunks = AnalyzeDocumentChunks("Bulk 205", DocumentLanguage(text), {text});
    BOOST_REQUIRE_EQUAL(chunks.size(), 1u);
    bool shared = false;
    for (const auto& t : AnalyzeQuery(token)) {
      shared = shared || std::find(chunks[0].terms.begin(), chunks[0].terms.end(), t.term) !=
                             chunks[0].terms.end();
    }
    BOOST_TEST(shared, token);
  }
}

BOOST_AUTO_TEST_CASE(warm_up_names_what_is_loaded) {
  const std::string s = WarmUpAnalyzer();
  BOOST_TEST(s.find("snowball") != std::string::npos);
  BOOST_TEST(s.find("he_IL") != std::string::npos, s);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
