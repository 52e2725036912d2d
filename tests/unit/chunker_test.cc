// ChunkText: boundaries by preference, offsets, limits, overlap, scripts, coverage, speed.
#include "lib/rag/chunker.h"

#include <utf8proc.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "lib/core/utf8.h"

namespace ragstream::rag {
namespace {

// White_Space as the chunker defines it, decoded independently of it.
bool IsSpaceCp(int32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  if (cp == 0x85) return true;
  auto c = utf8proc_category(cp);
  return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

std::vector<int32_t> CodePoints(std::string_view s) {
  std::vector<int32_t> out;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t i = 0, n = static_cast<utf8proc_ssize_t>(s.size());
  while (i < n) {
    int32_t cp = 0;
    utf8proc_ssize_t len = utf8proc_iterate(p + i, n - i, &cp);
    if (len <= 0) {
      cp = 0xFFFD;
      len = 1;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

bool AllSpace(std::string_view s) {
  for (int32_t cp : CodePoints(s)) {
    if (!IsSpaceCp(cp)) return false;
  }
  return true;
}

// The contract of ChunkText for valid UTF-8 `doc`, checked in one linear pass.
void CheckInvariants(const std::string& doc, const std::vector<Chunk>& chunks,
                     const ChunkerOptions& opt = {}) {
  const size_t max_chars = std::max<size_t>(opt.max_chars, 1);
  size_t counted_byte = 0, counted_char = 0;  // code points before counted_byte
  size_t covered = 0;                         // bytes [0, covered) are in a chunk or blank
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    BOOST_TEST_REQUIRE(c.start_byte < c.end_byte);
    BOOST_TEST_REQUIRE(c.end_byte <= doc.size());
    BOOST_TEST_REQUIRE(doc.compare(c.start_byte, c.end_byte - c.start_byte, c.text) == 0);
    BOOST_TEST_REQUIRE(IsValidUtf8(c.text));
    BOOST_TEST_REQUIRE(c.start_byte >= counted_byte);  // starts ascend
    counted_char +=
        Utf8Length(std::string_view(doc).substr(counted_byte, c.start_byte - counted_byte));
    counted_byte = c.start_byte;
    BOOST_TEST_REQUIRE(c.start_char == counted_char);
    BOOST_TEST_REQUIRE(c.end_char - c.start_char == Utf8Length(c.text));
    BOOST_TEST_REQUIRE(c.end_char - c.start_char <= max_chars);
    std::vector<int32_t> first_last = CodePoints(c.text.substr(0, 4));
    BOOST_TEST_REQUIRE(!IsSpaceCp(first_last.front()));
    size_t tail = c.text.size() - Utf8Truncate(c.text, c.text.size() - 1).size();
    BOOST_TEST_REQUIRE(!IsSpaceCp(CodePoints(c.text.substr(c.text.size() - tail)).back()));
    if (i > 0) {
      BOOST_TEST_REQUIRE(c.start_byte > chunks[i - 1].start_byte);
      BOOST_TEST_REQUIRE(c.end_byte > chunks[i - 1].end_byte);
    }
    // Coverage: what lies between the covered prefix and this chunk must be whitespace.
    if (c.start_byte > covered) {
      BOOST_TEST_REQUIRE(AllSpace(std::string_view(doc).substr(covered, c.start_byte - covered)));
    }
    covered = std::max(covered, c.end_byte);
  }
  BOOST_TEST_REQUIRE(AllSpace(std::string_view(doc).substr(covered)));
}

// Deterministic filler text: sentences of words from a small vocabulary.
class TextMaker {
 public:
  explicit TextMaker(uint32_t seed) : rng_(seed) {}

  size_t Uniform(size_t lo, size_t hi) {
    return std::uniform_int_distribution<size_t>(lo, hi)(rng_);
  }

  // A sentence of roughly `lo`..`hi` code points made of `words`, ending in `end`.
  std::string Sentence(const std::vector<std::string>& words, size_t lo, size_t hi,
                       const std::string& end, const std::string& space = " ") {
    size_t want = Uniform(lo, hi);
    std::string s;
    while (Utf8Length(s) + 8 < want) {
      if (!s.empty()) s += space;
      s += words[Uniform(0, words.size() - 1)];
    }
    return s + end;
  }

 private:
  std::mt19937 rng_;
};

const std::vector<std::string> kEnglish = {"the",   "database", "stores", "pages",   "in",
                                           "a",     "memory",   "map",    "readers", "never",
                                           "block", "writers",  "commit", "quickly", "copy"};
const std::vector<std::string> kHebrew = {"מסד",    "הנתונים", "שומר", "דפים",   "בזיכרון",
                                          "קוראים", "לעולם",   "אינם", "חוסמים", "כותבים"};
const std::vector<std::string> kArabic = {"قاعدة",   "البيانات", "تحفظ", "الصفحات", "في",
                                          "الذاكرة", "القراء",   "لا",   "يحجبون",  "الكتاب"};

BOOST_AUTO_TEST_SUITE(chunker_test)

BOOST_AUTO_TEST_CASE(empty_and_whitespace_give_no_chunks) {
  BOOST_TEST(ChunkText("").empty());
  BOOST_TEST(ChunkText(" ").empty());
  BOOST_TEST(ChunkText("  \n\t \r\n  \n").empty());
  BOOST_TEST(ChunkText("\xE3\x80\x80 \xC2\xA0\xE2\x80\xA9").empty());  // U+3000, NBSP, U+2029
}

BOOST_AUTO_TEST_CASE(short_document_is_one_trimmed_chunk) {
  const std::string doc = "  \n שלום world.  \n";
  std::vector<Chunk> chunks = ChunkText(doc);
  BOOST_TEST_REQUIRE(chunks.size() == 1u);
  BOOST_TEST(chunks[0].text == "שלום world.");
  BOOST_TEST(chunks[0].start_byte == 4u);
  BOOST_TEST(chunks[0].start_char == 4u);
  BOOST_TEST(chunks[0].end_char == 4u + 11u);
  BOOST_TEST(chunks[0].end_byte == 4u + 15u);
  CheckInvariants(doc, chunks);

  // Exactly max_chars (after trimming) is still one chunk.
  const std::string full = "\n" + std::string(1000, 'x') + "\n";
  chunks = ChunkText(full);
  BOOST_TEST_REQUIRE(chunks.size() == 1u);
  BOOST_TEST(chunks[0].end_char - chunks[0].start_char == 1000u);
}

BOOST_AUTO_TEST_CASE(paragraph_boundaries_are_preferred) {
  TextMaker maker(1);
  std::string doc;
  std::vector<size_t> paragraph_ends;  // byte offsets just past each paragraph
  for (int p = 0; p < 30; ++p) {
    if (!doc.empty()) doc += p % 3 == 0 ? "\r\n\r\n" : "\n  \n";
    std::string para;
    while (Utf8Length(para) < maker.Uniform(250, 420)) {
      if (!para.empty()) para += " ";
      para += maker.Sentence(kEnglish, 30, 90, ".");
    }
    doc += para;
    paragraph_ends.push_back(doc.size());
  }
  std::vector<Chunk> chunks = ChunkText(doc);
  CheckInvariants(doc, chunks);
  BOOST_TEST(chunks.size() > 5u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    bool at_paragraph = std::find(paragraph_ends.begin(), paragraph_ends.end(),
                                  chunks[i].end_byte) != paragraph_ends.end();
    BOOST_TEST(at_paragraph, "chunk " << i << " ends mid-paragraph: ..."
                                      << chunks[i].text.substr(chunks[i].text.size() - 20));
  }
}

BOOST_AUTO_TEST_CASE(sentence_ends_are_preferred_over_whitespace) {
  TextMaker maker(2);
  std::string doc;
  for (int s = 0; s < 120; ++s) {
    if (!doc.empty()) doc += " ";
    doc += maker.Sentence(kEnglish, 30, 90, s % 7 == 3 ? "?\"" : s % 5 == 1 ? "!" : ".");
  }
  std::vector<Chunk> chunks = ChunkText(doc);
  CheckInvariants(doc, chunks);
  BOOST_TEST(chunks.size() > 5u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    const std::string& t = chunks[i].text;
    char last = t.back();
    BOOST_TEST((last == '.' || last == '!' || last == '"'), "chunk " << i << " ends: " << t);
    if (last == '"') BOOST_TEST(t[t.size() - 2] == '?');
  }
}

BOOST_AUTO_TEST_CASE(whitespace_when_there_are_no_sentences) {
  TextMaker maker(3);
  std::string doc = maker.Sentence(kEnglish, 6000, 6000, "");
  std::vector<Chunk> chunks = ChunkText(doc);
  CheckInvariants(doc, chunks);
  BOOST_TEST(chunks.size() > 5u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    BOOST_TEST(doc[chunks[i].end_byte] == ' ');
    if (i > 0) BOOST_TEST(doc[chunks[i].start_byte - 1] == ' ');  // starts at a word
    size_t len = chunks[i].end_char - chunks[i].start_char;
    BOOST_TEST((len >= 690 && len <= 710), "length " << len);  // the space nearest 700
  }
}

BOOST_AUTO_TEST_CASE(consecutive_chunks_overlap_from_a_sentence_start) {
  TextMaker maker(4);
  std::string doc;
  for (int s = 0; s < 150; ++s) {
    if (!doc.empty()) doc += " ";
    doc += maker.Sentence(kEnglish, 25, 80, ".");
  }
  std::vector<Chunk> chunks = ChunkText(doc);
  CheckInvariants(doc, chunks);
  BOOST_TEST_REQUIRE(chunks.size() > 5u);
  for (size_t i = 1; i < chunks.size(); ++i) {
    const Chunk& prev = chunks[i - 1];
    const Chunk& cur = chunks[i];
    BOOST_TEST_REQUIRE(cur.start_byte < prev.end_byte);
    size_t overlap = prev.end_char - cur.start_char;
    BOOST_TEST((overlap >= 45 && overlap <= 155), "overlap " << overlap);
    BOOST_TEST(doc.compare(cur.start_byte - 2, 2, ". ") == 0,
               "chunk " << i << " starts mid-sentence: " << cur.text.substr(0, 30));
  }
}

BOOST_AUTO_TEST_CASE(no_chunk_exceeds_max_chars_and_options_are_clamped) {
  const std::string doc = std::string(5000, 'a');
  for (ChunkerOptions opt : {ChunkerOptions{}, ChunkerOptions{50, 10, 60},
                             ChunkerOptions{2000, 500, 100},  // target above max
                             ChunkerOptions{10, 100, 20},     // overlap above target
                             ChunkerOptions{0, 0, 0}}) {      // max 0 means 1
    std::string small = doc.substr(0, 700);
    std::vector<Chunk> chunks = ChunkText(small, opt);
    CheckInvariants(small, chunks, opt);
  }
  ChunkerOptions one{1, 0, 1};
  std::vector<Chunk> chunks = ChunkText("a bc", one);
  BOOST_TEST_REQUIRE(chunks.size() == 3u);
  BOOST_TEST(chunks[0].text == "a");
  BOOST_TEST(chunks[1].text == "b");
  BOOST_TEST(chunks[2].text == "c");
}

BOOST_AUTO_TEST_CASE(hebrew_text_cuts_at_sentences) {
  TextMaker maker(5);
  std::string doc;
  for (int s = 0; s < 100; ++s) {
    if (!doc.empty()) doc += s % 10 == 0 ? "\n" : " ";
    doc += maker.Sentence(kHebrew, 30, 90, s % 2 ? "." : "׃");
  }
  std::vector<Chunk> chunks = ChunkText(doc);
  CheckInvariants(doc, chunks);
  BOOST_TEST(chunks.size() > 3u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    const std::string& t = chunks[i].text;
    bool ends = t.back() == '.' || t.ends_with("׃");
    BOOST_TEST(ends, "chunk " << i << " ends mid-sentence");
  }
}

BOOST_AUTO_TEST_CASE(arabic_text_cuts_at_sentences) {
  TextMaker maker(6);
  std::string doc;
  for (int s = 0; s < 100; ++s) {
    if (!doc.empty()) doc += " ";
    doc += maker.Sentence(kArabic, 30, 90, s % 3 == 0 ? "؟" : s % 3 == 1 ? "." : "۔");
  }
  std::vector<Chunk> chunks = ChunkText(doc);
  CheckInvariants(doc, chunks);
  BOOST_TEST(chunks.size() > 3u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    const std::string& t = chunks[i].text;
    bool ends = t.back() == '.' || t.ends_with("؟") || t.ends_with("۔");
    BOOST_TEST(ends, "chunk " << i << " ends mid-sentence");
  }
}

BOOST_AUTO_TEST_CASE(cjk_without_spaces_or_punctuation_is_cut_hard) {
  const std::vector<std::string> han = {"数", "据", "库", "索", "引", "页", "面", "读"};
  std::string doc;
  for (int i = 0; i < 3500; ++i) doc += han[(i * 7 + i / 3) % han.size()];
  std::vector<Chunk> chunks = ChunkText(doc);
  CheckInvariants(doc, chunks);
  BOOST_TEST_REQUIRE(chunks.size() == 4u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    BOOST_TEST(chunks[i].end_char - chunks[i].start_char == 1000u);  // hard cut at max
    BOOST_TEST(chunks[i].text.size() == 3000u);                      // whole characters
    BOOST_TEST(chunks[i].end_char - chunks[i + 1].start_char == 100u);
  }
}

BOOST_AUTO_TEST_CASE(cjk_sentences_end_at_ideographic_full_stops) {
  TextMaker maker(7);
  const std::vector<std::string> han = {"数据", "库", "索引", "页面", "读者", "写者", "复制"};
  std::string doc;
  for (int s = 0; s < 150; ++s) {
    doc += maker.Sentence(han, 15, 45, s % 4 == 0 ? "！" : s % 4 == 1 ? "？" : "。", "");
    if (s % 9 == 8) doc += "」";
  }
  std::vector<Chunk> chunks = ChunkText(doc);
  CheckInvariants(doc, chunks);
  BOOST_TEST(chunks.size() > 3u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    const std::string& t = chunks[i].text;
    bool ends = t.ends_with("。") || t.ends_with("！") || t.ends_with("？") || t.ends_with("」");
    BOOST_TEST(ends, "chunk " << i << " ends mid-sentence");
    if (i > 0) {
      // Overlaps start at a sentence start too.
      std::string before = doc.substr(0, chunks[i].start_byte);
      bool at_start = before.ends_with("。") || before.ends_with("！") || before.ends_with("？") ||
                      before.ends_with("」");
      BOOST_TEST(at_start, "chunk " << i << " starts mid-sentence");
    }
  }
}

BOOST_AUTO_TEST_CASE(hard_cuts_keep_marks_with_their_letter) {
  // שָׁ is three code points (letter, shin dot, qamats): one grapheme cluster.
  std::string doc;
  for (int i = 0; i < 60; ++i) doc += "שָׁ";
  ChunkerOptions opt{8, 2, 10};
  std::vector<Chunk> chunks = ChunkText(doc, opt);
  CheckInvariants(doc, chunks, opt);
  BOOST_TEST(chunks.size() > 10u);
  for (const Chunk& c : chunks) {
    BOOST_TEST(c.text.substr(0, 2) == "ש");
    BOOST_TEST((c.end_char - c.start_char) % 3 == 0u);
  }
}

BOOST_AUTO_TEST_CASE(long_whitespace_runs_are_skipped) {
  std::string doc = "alpha beta gamma. " + std::string(3000, ' ') + "\n delta epsilon.";
  std::vector<Chunk> chunks = ChunkText(doc, ChunkerOptions{50, 10, 100});
  CheckInvariants(doc, chunks, ChunkerOptions{50, 10, 100});
  BOOST_TEST_REQUIRE(chunks.size() == 2u);
  BOOST_TEST(chunks[0].text == "alpha beta gamma.");
  BOOST_TEST(chunks[1].text == "delta epsilon.");

  // The same after enough text that the first chunk is followed by an overlap.
  TextMaker maker(8);
  doc = maker.Sentence(kEnglish, 300, 300, ".") + std::string(5000, ' ') +
        maker.Sentence(kEnglish, 300, 300, ".");
  ChunkerOptions opt{100, 30, 150};
  chunks = ChunkText(doc, opt);
  CheckInvariants(doc, chunks, opt);
}

BOOST_AUTO_TEST_CASE(random_documents_keep_the_contract) {
  // Small alphabets and small limits reach the corner cases: runs of spaces and breaks,
  // terminators in a row, marks, CJK, limits of a few characters.
  const std::vector<std::string> alphabet = {
      "a", "b",  " ", " ",  "\n", "\n\n", ".", "!", "。",           "数", "ש",
      "ָ",  "\"", ")", "\t", "…",  "׃",    "؟", "ك", "\xE3\x80\x80", "é",  "😀"};
  std::mt19937 rng(42);
  for (int round = 0; round < 400; ++round) {
    std::string doc;
    size_t len = std::uniform_int_distribution<size_t>(0, 400)(rng);
    for (size_t i = 0; i < len; ++i) {
      doc += alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    }
    ChunkerOptions opt;
    opt.max_chars = std::uniform_int_distribution<size_t>(1, 60)(rng);
    opt.target_chars = std::uniform_int_distribution<size_t>(0, 70)(rng);
    opt.overlap_chars = std::uniform_int_distribution<size_t>(0, 40)(rng);
    CheckInvariants(doc, ChunkText(doc, opt), opt);
  }
}

BOOST_AUTO_TEST_CASE(invalid_utf8_does_not_crash) {
  std::string doc;
  for (int i = 0; i < 300; ++i) doc += "ab\xFF cd\xC3 \xE4\xB8 . \x80\x80\x80 ";
  doc += "\xF0\x9F";
  std::vector<Chunk> chunks = ChunkText(doc, ChunkerOptions{50, 10, 80});
  BOOST_TEST(!chunks.empty());
  for (const Chunk& c : chunks) {
    BOOST_TEST(doc.compare(c.start_byte, c.end_byte - c.start_byte, c.text) == 0);
    BOOST_TEST(c.end_char - c.start_char <= 80u);
  }
  BOOST_TEST(chunks.back().end_byte == doc.size());
}

BOOST_AUTO_TEST_CASE(five_megabytes_in_linear_time) {
  TextMaker maker(9);
  std::string doc;
  doc.reserve(5u << 20);
  int s = 0;
  while (doc.size() < (5u << 20)) {
    doc += maker.Sentence(s % 3 ? kEnglish : kHebrew, 30, 120, ".");
    doc += ++s % 6 == 0 ? "\n\n" : " ";
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Chunk> chunks = ChunkText(doc);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "chunker_test: " << doc.size() << " bytes -> " << chunks.size() << " chunks in "
            << seconds << " s" << std::endl;
  BOOST_TEST_MESSAGE("5 MB chunked in " << seconds << " s");
  CheckInvariants(doc, chunks);
  // Not a benchmark: only a guard against quadratic behaviour, which would take minutes.
  BOOST_TEST(seconds < 30.0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
