// UTF-8 validation, hold-back of incomplete characters, sanitising and truncation.
#include "lib/core/utf8.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace ragstream {
namespace {

const std::string kTwo = "\xD7\xA9";           // ש U+05E9
const std::string kThree = "\xE4\xB8\x96";     // 世 U+4E16
const std::string kFour = "\xF0\x9F\x98\x80";  // 😀 U+1F600
const std::string kMixed =
    "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xF0\x9F\x98\x80 "
    "\xE4\xB8\x96\xE7\x95\x8C";  // "שלום 😀 世界"
const std::string kReplacement = "\xEF\xBF\xBD";

BOOST_AUTO_TEST_SUITE(utf8_test)

BOOST_AUTO_TEST_CASE(valid_text_is_valid) {
  BOOST_TEST(IsValidUtf8(""));
  BOOST_TEST(IsValidUtf8("plain ASCII, with punctuation!\n"));
  BOOST_TEST(IsValidUtf8(std::string("\0nul", 4)));
  BOOST_TEST(IsValidUtf8("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D"));  // Hebrew
  BOOST_TEST(IsValidUtf8("\xE4\xB8\x96\xE7\x95\x8C"));          // CJK
  BOOST_TEST(IsValidUtf8(kFour));                               // emoji
  BOOST_TEST(IsValidUtf8(kMixed));
  BOOST_TEST(IsValidUtf8("\xC2\x80"));          // U+0080, the smallest 2-byte
  BOOST_TEST(IsValidUtf8("\xE0\xA0\x80"));      // U+0800, the smallest 3-byte
  BOOST_TEST(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  BOOST_TEST(IsValidUtf8("\xEE\x80\x80"));      // U+E000, just above them
  BOOST_TEST(IsValidUtf8("\xEF\xBF\xBD"));      // U+FFFD
  BOOST_TEST(IsValidUtf8("\xF0\x90\x80\x80"));  // U+10000, the smallest 4-byte
  BOOST_TEST(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the largest
}

BOOST_AUTO_TEST_CASE(invalid_sequences_are_rejected) {
  const std::vector<std::string> bad = {
      "\xC0\x80",          // overlong NUL
      "\xC1\xBF",          // overlong 2-byte
      "\xE0\x80\x80",      // overlong 3-byte
      "\xE0\x9F\xBF",      // overlong 3-byte (U+07FF)
      "\xF0\x80\x80\x80",  // overlong 4-byte
      "\xF0\x8F\xBF\xBF",  // overlong 4-byte (U+FFFF)
      "\xED\xA0\x80",      // surrogate U+D800
      "\xED\xBF\xBF",      // surrogate U+DFFF
      "\xF4\x90\x80\x80",  // U+110000
      "\xF5\x80\x80\x80",  // lead byte beyond F4
      "\xFF",              // never valid
      "\x80",              // lone continuation
      "a\xBFz",            // lone continuation between ASCII
      "\xD7",              // truncated 2-byte
      "\xE4\xB8",          // truncated 3-byte
      "\xF0\x9F\x98",      // truncated 4-byte
      "\xF0\x9F",          // truncated 4-byte
      "\xE4"
      "a"
      "\x96",  // ASCII inside a sequence
      "\xF0\x9F\x98"
      "a",             // ASCII as the 4th byte
      "\xD7\xA9\xD7",  // valid then truncated
  };
  for (const auto& s : bad) {
    BOOST_TEST_CONTEXT("bytes of size " << s.size() << " starting " << int(uint8_t(s[0]))) {
      BOOST_TEST(!IsValidUtf8(s));
      BOOST_TEST(!IsValidUtf8("ok " + s + " ok"));
    }
  }
}

BOOST_AUTO_TEST_CASE(complete_prefix_length_for_each_split_of_a_character) {
  for (const std::string& ch : {kTwo, kThree, kFour}) {
    for (size_t k = 1; k < ch.size(); ++k) {
      std::string s = "ab" + ch.substr(0, k);
      BOOST_TEST_CONTEXT(ch.size() << "-byte char, " << k << " bytes present") {
        BOOST_TEST(CompleteUtf8PrefixLength(s) == 2u);
        BOOST_TEST(CompleteUtf8PrefixLength(ch.substr(0, k)) == 0u);
        // After a complete multi-byte character too.
        BOOST_TEST(CompleteUtf8PrefixLength(kFour + ch.substr(0, k)) == kFour.size());
      }
    }
    BOOST_TEST(CompleteUtf8PrefixLength("ab" + ch) == 2 + ch.size());
    BOOST_TEST(CompleteUtf8PrefixLength(ch) == ch.size());
  }
  BOOST_TEST(CompleteUtf8PrefixLength("") == 0u);
  BOOST_TEST(CompleteUtf8PrefixLength("abc") == 3u);
}

BOOST_AUTO_TEST_CASE(complete_prefix_length_does_not_hold_back_invalid_bytes) {
  BOOST_TEST(CompleteUtf8PrefixLength("ab\xFF") == 3u);      // invalid lead
  BOOST_TEST(CompleteUtf8PrefixLength("ab\x80") == 3u);      // lone continuation
  BOOST_TEST(CompleteUtf8PrefixLength("ab\xE0\x80") == 4u);  // overlong start: already invalid
  BOOST_TEST(CompleteUtf8PrefixLength("ab\xED\xA0") == 4u);  // surrogate start
  BOOST_TEST(CompleteUtf8PrefixLength("ab\xF4\x90") == 4u);  // > U+10FFFF start
}

BOOST_AUTO_TEST_CASE(hold_back_every_two_chunk_split_emits_whole_characters) {
  for (size_t cut = 0; cut <= kMixed.size(); ++cut) {
    Utf8HoldBack hb;
    std::string a = hb.Push(kMixed.substr(0, cut));
    std::string b = hb.Push(kMixed.substr(cut));
    std::string tail = hb.Flush();
    BOOST_TEST_CONTEXT("split at " << cut) {
      BOOST_TEST(IsValidUtf8(a));
      BOOST_TEST(IsValidUtf8(b));
      BOOST_TEST(tail.empty());
      BOOST_TEST(a + b == kMixed);
      BOOST_TEST(a.size() <= cut);
      BOOST_TEST(a.size() + 3 >= cut);  // at most an incomplete character is held back
    }
  }
}

BOOST_AUTO_TEST_CASE(hold_back_one_byte_at_a_time) {
  Utf8HoldBack hb;
  std::string out;
  for (char c : kMixed) {
    std::string piece = hb.Push(std::string(1, c));
    BOOST_TEST(IsValidUtf8(piece));
    out += piece;
  }
  BOOST_TEST(hb.empty());
  BOOST_TEST(out == kMixed);
}

BOOST_AUTO_TEST_CASE(flush_returns_the_incomplete_tail) {
  Utf8HoldBack hb;
  BOOST_TEST(hb.Push("ok\xF0\x9F") == "ok");
  BOOST_TEST(!hb.empty());
  BOOST_TEST(hb.Push("\x98") == "");
  BOOST_TEST(hb.Flush() == "\xF0\x9F\x98");
  BOOST_TEST(hb.empty());
  BOOST_TEST(hb.Flush() == "");
  BOOST_TEST(hb.Push("x") == "x");
}

BOOST_AUTO_TEST_CASE(sanitize_replaces_invalid_bytes_and_keeps_valid_ones) {
  BOOST_TEST(SanitizeUtf8(kMixed) == kMixed);
  BOOST_TEST(SanitizeUtf8("a\xFF"
                          "b") == "a" + kReplacement + "b");
  BOOST_TEST(SanitizeUtf8("\x80" + kTwo) == kReplacement + kTwo);
  BOOST_TEST(SanitizeUtf8(kTwo + "\xF0\x9F\x98") ==
             kTwo + kReplacement + kReplacement + kReplacement);
  BOOST_TEST(SanitizeUtf8("\xED\xA0\x80"
                          "x") == kReplacement + kReplacement + kReplacement + "x");
  BOOST_TEST(SanitizeUtf8("\xC0\x80") == kReplacement + kReplacement);
  // Every result is valid, whatever went in.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  BOOST_TEST(IsValidUtf8(SanitizeUtf8(all)));
  BOOST_TEST(IsValidUtf8(SanitizeUtf8(all + kFour.substr(0, 2))));
}

BOOST_AUTO_TEST_CASE(truncate_never_cuts_a_character) {
  for (size_t max = 0; max <= kMixed.size() + 2; ++max) {
    std::string_view t = Utf8Truncate(kMixed, max);
    BOOST_TEST_CONTEXT("max " << max) {
      BOOST_TEST(t.size() <= max);
      BOOST_TEST(IsValidUtf8(t));
      BOOST_TEST(kMixed.compare(0, t.size(), t) == 0);
      BOOST_TEST(t.size() + 3 >= std::min(max, kMixed.size()));
    }
  }
  BOOST_TEST(Utf8Truncate("abc", 2) == "ab");
  BOOST_TEST(Utf8Truncate(kTwo + kTwo, 3) == kTwo);
  BOOST_TEST(Utf8Truncate(kFour, 3) == "");
}

BOOST_AUTO_TEST_CASE(length_counts_code_points) {
  BOOST_TEST(Utf8Length("") == 0u);
  BOOST_TEST(Utf8Length("abc") == 3u);
  BOOST_TEST(Utf8Length(kMixed) == 9u);  // 4 + space + emoji + space + 2
}

BOOST_AUTO_TEST_CASE(prefix_by_characters_never_cuts_one) {
  BOOST_TEST(Utf8PrefixChars("hello", 3) == "hel");
  BOOST_TEST(Utf8PrefixChars("hello", 10) == "hello");
  BOOST_TEST(Utf8PrefixChars("שלום עולם", 4) == "שלום");  // 4 characters, 8 bytes
  BOOST_TEST(Utf8PrefixChars("a😀b", 2) == "a😀");
  BOOST_TEST(Utf8PrefixChars("", 5).empty());
  BOOST_TEST(Utf8PrefixChars("abc", 0).empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream
