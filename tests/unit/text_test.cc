// NormalizeText and Tokenize: folding, NFKC, ignorables, scripts, CJK bigrams, bad input.
#include "lib/rag/text.h"

#include <utf8proc.h>

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <random>

#include <string>
#include <vector>

#include "lib/core/utf8.h"

namespace ragstream::rag {
namespace {

using Terms = std::vector<std::string>;

BOOST_AUTO_TEST_SUITE(text_test)

BOOST_AUTO_TEST_CASE(case_folding_is_full) {
  BOOST_TEST(NormalizeText("Straße") == "strasse");
  BOOST_TEST(NormalizeText("STRASSE") == "strasse");
  BOOST_TEST(NormalizeText("ẞ") == "ss");  // capital sharp s
  BOOST_TEST(NormalizeText("ÉCOLE") == "école");
  BOOST_TEST(NormalizeText("École") == NormalizeText("ÉCOLE"));
  BOOST_TEST(NormalizeText("ΛΟΓΟΣ") == NormalizeText("λογος"));  // final sigma folds to σ
  BOOST_TEST(NormalizeText("ПРИВЕТ") == "привет");
}

BOOST_AUTO_TEST_CASE(nfkc_compatibility_forms) {
  BOOST_TEST(NormalizeText("ＡＢＣ") == "abc");          // full-width Latin
  BOOST_TEST(NormalizeText("ﬁle") == "file");            // ligature
  BOOST_TEST(NormalizeText("ｶﾀｶﾅ") == "カタカナ");       // half-width Katakana
  BOOST_TEST(NormalizeText("x²") == "x2");               // superscript
  BOOST_TEST(NormalizeText("e\xCC\x81") == "\xC3\xA9");  // e + U+0301 composes to é
}

BOOST_AUTO_TEST_CASE(default_ignorables_are_removed) {
  const std::string soft_hyphen = "\xC2\xAD";
  BOOST_TEST(NormalizeText("data" + soft_hyphen + "base") == "database");
  BOOST_TEST(NormalizeText("zero\xE2\x80\x8Bwidth") == "zerowidth");  // U+200B
  BOOST_TEST(Tokenize("data" + soft_hyphen + "base") == Terms{"database"});
}

BOOST_AUTO_TEST_CASE(empty_and_punctuation_only) {
  BOOST_TEST(NormalizeText("") == "");
  BOOST_TEST(Tokenize("").empty());
  BOOST_TEST(Tokenize("  \n\t ").empty());
  BOOST_TEST(Tokenize("... !? -- () «» 。、").empty());
}

BOOST_AUTO_TEST_CASE(punctuation_splits_words) {
  BOOST_TEST(Tokenize("Hello, World! How are you?") ==
             (Terms{"hello", "world", "how", "are", "you"}));
  BOOST_TEST(Tokenize("a,b;c.d-e/f(g)h\"i\"") ==
             (Terms{"a", "b", "c", "d", "e", "f", "g", "h", "i"}));
  BOOST_TEST(Tokenize("don't") == (Terms{"don", "t"}));
  BOOST_TEST(Tokenize("foo...bar!!!") == (Terms{"foo", "bar"}));
}

BOOST_AUTO_TEST_CASE(digits_are_kept_and_underscore_splits) {
  // Documented: connector punctuation splits, so identifiers match their parts.
  BOOST_TEST(Tokenize("x86_64") == (Terms{"x86", "64"}));
  BOOST_TEST(Tokenize("mdb_copy") == (Terms{"mdb", "copy"}));
  BOOST_TEST(Tokenize("version 3.14 in 2024") == (Terms{"version", "3", "14", "in", "2024"}));
  BOOST_TEST(Tokenize("١٢٣") == (Terms{"١٢٣"}));  // Arabic-Indic digits are Nd
}

BOOST_AUTO_TEST_CASE(hebrew_niqqud_is_dropped) {
  BOOST_TEST(Tokenize("שָׁלוֹם") == Tokenize("שלום"));
  BOOST_TEST(Tokenize("שָׁלוֹם") == Terms{"שלום"});
  BOOST_TEST(Tokenize("בְּרֵאשִׁית בָּרָא אֱלֹהִים") == (Terms{"בראשית", "ברא", "אלהים"}));
  // Cantillation marks (U+0591..U+05AF) are Mn too.
  BOOST_TEST(Tokenize("בְּרֵאשִׁ֖ית") == Terms{"בראשית"});
  // Maqaf (a dash) and sof pasuq separate words.
  BOOST_TEST(Tokenize("בית־הספר׃") == (Terms{"בית", "הספר"}));
  // A presentation form (שׁ, U+FB2A) decomposes, and its dot is dropped.
  const std::string shin_with_dot = "\xEF\xAC\xAA";  // U+FB2A
  BOOST_TEST(Tokenize(shin_with_dot + "לום") == Terms{"שלום"});
}

BOOST_AUTO_TEST_CASE(arabic_harakat_and_tatweel_are_dropped) {
  BOOST_TEST(Tokenize("اللُّغَةُ العَرَبِيَّةُ") == (Terms{"اللغة", "العربية"}));
  BOOST_TEST(Tokenize("اللُّغَةُ العَرَبِيَّةُ") == Tokenize("اللغة العربية"));
  BOOST_TEST(Tokenize("كتـــاب") == Terms{"كتاب"});
  BOOST_TEST(Tokenize("ما هذا؟") == (Terms{"ما", "هذا"}));
}

BOOST_AUTO_TEST_CASE(cyrillic_and_greek_words) {
  BOOST_TEST(Tokenize("Привет, МИР! Как дела?") == (Terms{"привет", "мир", "как", "дела"}));
  BOOST_TEST(Tokenize("Ёлка") == Terms{"ёлка"});
  BOOST_TEST(Tokenize("ΣΟΦΙΑ και λόγος") == (Terms{"σοφια", "και", "λόγοσ"}));  // ς folds to σ
}

BOOST_AUTO_TEST_CASE(other_scripts_keep_their_marks) {
  // Devanagari vowel signs and virama are marks that spell the word: kept.
  const std::string hindi = "हिन्दी";
  BOOST_TEST(Tokenize(hindi) == Terms{NormalizeText(hindi)});
  BOOST_TEST(Tokenize("naïve café") == (Terms{"naïve", "café"}));
}

BOOST_AUTO_TEST_CASE(turkish_dotted_capital_i) {
  // Case folding gives "i" + U+0307; the dot is dropped so the word matches its lowercase.
  BOOST_TEST(NormalizeText("İ") == "i\xCC\x87");
  BOOST_TEST(Tokenize("İstanbul") == Terms{"istanbul"});
}

BOOST_AUTO_TEST_CASE(cjk_runs_give_bigrams) {
  BOOST_TEST(Tokenize("自然语言处理") == (Terms{"自然", "然语", "语言", "言处", "处理"}));
  BOOST_TEST(Tokenize("是") == Terms{"是"});
  BOOST_TEST(Tokenize("我 爱 你") == (Terms{"我", "爱", "你"}));
  BOOST_TEST(Tokenize("数据库。索引") == (Terms{"数据", "据库", "索引"}));
  BOOST_TEST(Tokenize("カタカナ") == (Terms{"カタ", "タカ", "カナ"}));
  BOOST_TEST(Tokenize("ｶﾀｶﾅ") == Tokenize("カタカナ"));
  BOOST_TEST(Tokenize("ひらがな") == (Terms{"ひら", "らが", "がな"}));
  BOOST_TEST(Tokenize("한국어 문장") == (Terms{"한국", "국어", "문장"}));
}

BOOST_AUTO_TEST_CASE(mixed_latin_and_cjk) {
  BOOST_TEST(Tokenize("LMDB是数据库") == (Terms{"lmdb", "是数", "数据", "据库"}));
  BOOST_TEST(Tokenize("2024年的GPU") == (Terms{"2024", "年的", "gpu"}));
  BOOST_TEST(Tokenize("用C++写") == (Terms{"用", "c", "写"}));
}

BOOST_AUTO_TEST_CASE(long_words_are_truncated_at_a_character) {
  std::vector<std::string> t = Tokenize(std::string(100, 'a'));
  BOOST_TEST_REQUIRE(t.size() == 1u);
  BOOST_TEST(t[0] == std::string(kMaxTokenBytes, 'a'));

  std::string hebrew;
  for (int i = 0; i < 33; ++i) hebrew += "ש";  // 66 bytes
  std::string odd = "a" + hebrew;              // 67 bytes, a cut at 64 would split a letter
  t = Tokenize(odd);
  BOOST_TEST_REQUIRE(t.size() == 1u);
  BOOST_TEST(t[0].size() == 63u);
  BOOST_TEST(IsValidUtf8(t[0]));
}

BOOST_AUTO_TEST_CASE(invalid_utf8_does_not_crash) {
  const std::string bad = "abc\xFF\xFE def\xC3 \xE4\xB8 g\x80h \xED\xA0\x80x";
  std::string normal = NormalizeText(bad);
  BOOST_TEST(IsValidUtf8(normal));
  // Each bad byte becomes U+FFFD, which separates words.
  BOOST_TEST(Tokenize(bad) == (Terms{"abc", "def", "g", "h", "x"}));
  BOOST_TEST(Tokenize(std::string("a\0b", 3)) == (Terms{"a", "b"}));
  BOOST_TEST(Tokenize("\xC3").empty());
}

// NormalizeText passes ASCII through itself and maps only the runs around other characters:
// it must give exactly what mapping the whole text with utf8proc gives, whatever the mix --
// combining marks after ASCII letters, ligatures, jamo, ignorables, NUL, invalid bytes.
BOOST_AUTO_TEST_CASE(normalize_text_equals_mapping_the_whole_text) {
  auto whole = [](std::string_view in) -> std::string {
    const std::string clean = SanitizeUtf8(in);
    if (clean.empty()) return {};
    utf8proc_uint8_t* mapped = nullptr;
    const auto options = static_cast<utf8proc_option_t>(
        UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(clean.data()),
                     static_cast<utf8proc_ssize_t>(clean.size()), &mapped, options);
    if (n < 0 || mapped == nullptr) return clean;
    std::string out(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
    std::free(mapped);
    return out;
  };
  const std::vector<std::string> pool = {"e",
                                         "E",
                                         "a",
                                         "I",
                                         "i",
                                         " ",
                                         "\xcc\x81",
                                         "\xcc\x87",
                                         "\xc4\xb0",
                                         "\xce\xa3",
                                         "\xc3\x9f",
                                         "\xef\xac\x81",
                                         "\xe1\x84\x80",
                                         "\xe1\x85\xa1",
                                         "\xe1\x86\xa8",
                                         "\xe2\x80\x8d",
                                         "\xc2\xad",
                                         std::string(1, '\0'),
                                         "\r",
                                         "\xd9\x80",
                                         "\xd7\xa9",
                                         "\xd7\x81",
                                         "\xef\xbc\xa1",
                                         "\xe2\x84\xab",
                                         "Z",
                                         "\xcc\xa3",
                                         "\xe3\x82\xab",
                                         "\xe3\x82\x99",
                                         "\xff",
                                         "\xc3"};
  std::mt19937 rng(7);
  int differ = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string s;
    for (int k = static_cast<int>(rng() % 12); k > 0; --k) s += pool[rng() % pool.size()];
    if (NormalizeText(s) != whole(s)) ++differ;
  }
  BOOST_TEST(differ == 0);
  BOOST_TEST(NormalizeText("Cafe\xcc\x81 NOW") == "caf\xc3\xa9 now");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
