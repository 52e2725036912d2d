// DetectLanguage (CLD2) and LanguageDisplayName.
#include "lib/rag/language.h"

#include <boost/test/unit_test.hpp>

#include <string>

namespace ragstream::rag {
namespace {

BOOST_AUTO_TEST_SUITE(language_test)

BOOST_AUTO_TEST_CASE(english_sentence) {
  DetectedLanguage d = DetectLanguage(
      "How do I configure the storage engine so that it survives a power failure?", "fr");
  BOOST_TEST(d.detected);
  BOOST_TEST(d.code == "en");
}

BOOST_AUTO_TEST_CASE(hebrew_sentence_is_he_not_iw) {
  // "What is the capital of Israel and how many people live there?"
  DetectedLanguage d = DetectLanguage(
      "\xD7\x9E\xD7\x94 \xD7\x94\xD7\x91\xD7\x99\xD7\xA8\xD7\x94 \xD7\xA9\xD7\x9C "
      "\xD7\x99\xD7\xA9\xD7\xA8\xD7\x90\xD7\x9C \xD7\x95\xD7\x9B\xD7\x9E\xD7\x94 "
      "\xD7\x90\xD7\xA0\xD7\xA9\xD7\x99\xD7\x9D \xD7\x92\xD7\xA8\xD7\x99\xD7\x9D "
      "\xD7\x91\xD7\x94\xD7\x9D\x3F",
      "en");
  BOOST_TEST(d.detected);
  BOOST_TEST(d.code == "he");
  BOOST_TEST(d.code != "iw");
}

BOOST_AUTO_TEST_CASE(french_sentence) {
  DetectedLanguage d = DetectLanguage(
      "Bonjour, pouvez-vous m'expliquer comment fonctionne la base de donn\xC3\xA9"
      "es et pourquoi elle est si rapide ?",
      "en");
  BOOST_TEST(d.detected);
  BOOST_TEST(d.code == "fr");
}

BOOST_AUTO_TEST_CASE(arabic_sentence) {
  // "How can I improve the performance of the database in my application?"
  DetectedLanguage d = DetectLanguage(
      "\xD9\x83\xD9\x8A\xD9\x81 \xD9\x8A\xD9\x85\xD9\x83\xD9\x86\xD9\x86\xD9\x8A "
      "\xD8\xAA\xD8\xAD\xD8\xB3\xD9\x8A\xD9\x86 \xD8\xA3\xD8\xAF\xD8\xA7\xD8\xA1 "
      "\xD9\x82\xD8\xA7\xD8\xB9\xD8\xAF\xD8\xA9 \xD8\xA7\xD9\x84\xD8\xA8\xD9\x8A"
      "\xD8\xA7\xD9\x86\xD8\xA7\xD8\xAA \xD9\x81\xD9\x8A \xD8\xAA\xD8\xB7\xD8\xA8"
      "\xD9\x8A\xD9\x82\xD9\x8A\xD8\x9F",
      "en");
  BOOST_TEST(d.detected);
  BOOST_TEST(d.code == "ar");
}

BOOST_AUTO_TEST_CASE(russian_sentence) {
  // "Tell me please how this system works and why it is so fast?"
  DetectedLanguage d = DetectLanguage(
      "\xD0\xA0\xD0\xB0\xD1\x81\xD1\x81\xD0\xBA\xD0\xB0\xD0\xB6\xD0\xB8\xD1\x82\xD0\xB5 "
      "\xD0\xBF\xD0\xBE\xD0\xB6\xD0\xB0\xD0\xBB\xD1\x83\xD0\xB9\xD1\x81\xD1\x82\xD0\xB0, "
      "\xD0\xBA\xD0\xB0\xD0\xBA \xD1\x80\xD0\xB0\xD0\xB1\xD0\xBE\xD1\x82\xD0\xB0\xD0\xB5"
      "\xD1\x82 \xD1\x8D\xD1\x82\xD0\xB0 \xD1\x81\xD0\xB8\xD1\x81\xD1\x82\xD0\xB5\xD0\xBC"
      "\xD0\xB0 \xD0\xB8 \xD0\xBF\xD0\xBE\xD1\x87\xD0\xB5\xD0\xBC\xD1\x83 \xD0\xBE\xD0\xBD"
      "\xD0\xB0 \xD1\x82\xD0\xB0\xD0\xBA \xD0\xB1\xD1\x8B\xD1\x81\xD1\x82\xD1\x80\xD0\xB0?",
      "en");
  BOOST_TEST(d.detected);
  BOOST_TEST(d.code == "ru");
}

BOOST_AUTO_TEST_CASE(two_words_fall_back) {
  DetectedLanguage d = DetectLanguage("ok thanks", "he");
  BOOST_TEST(!d.detected);
  BOOST_TEST(d.code == "he");
  DetectedLanguage hi = DetectLanguage("hi there", "de");
  BOOST_TEST(!hi.detected);
  BOOST_TEST(hi.code == "de");
}

BOOST_AUTO_TEST_CASE(empty_fallback_is_english) {
  DetectedLanguage d = DetectLanguage("ok thanks", "");
  BOOST_TEST(!d.detected);
  BOOST_TEST(d.code == "en");
  DetectedLanguage empty = DetectLanguage("", "");
  BOOST_TEST(!empty.detected);
  BOOST_TEST(empty.code == "en");
  DetectedLanguage digits = DetectLanguage("12345 67890 !!!", "");
  BOOST_TEST(digits.code == "en");
}

BOOST_AUTO_TEST_CASE(display_names) {
  BOOST_TEST(LanguageDisplayName("he") == "Hebrew");
  BOOST_TEST(LanguageDisplayName("en") == "English");
  BOOST_TEST(LanguageDisplayName("fr") == "French");
  BOOST_TEST(LanguageDisplayName("ru") == "Russian");
  BOOST_TEST(LanguageDisplayName("ar") == "Arabic");
  BOOST_TEST(LanguageDisplayName("xx-unknown") == "xx-unknown");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
