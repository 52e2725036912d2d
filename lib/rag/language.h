// Language detection of a question with CLD2.
#pragma once

#include <string>
#include <string_view>

namespace ragstream::rag {

struct DetectedLanguage {
  std::string code;       // ISO 639-1 where one exists ("en", "he", ...)
  bool detected = false;  // false: `code` is the fallback
};

// Detects the language of `text` (valid UTF-8). When CLD2 finds the text too short or its
// guess unreliable, a script written by one language decides (Hebrew letters: "he"; also
// Greek, Thai, Korean, Japanese kana, Armenian, Georgian); otherwise it falls back to
// `fallback` (the conversation's last language) and then to "en". CLD2's legacy "iw" is
// reported as "he".
DetectedLanguage DetectLanguage(std::string_view text, std::string_view fallback);

// English name of a language code for the prompt ("he" -> "Hebrew"); the code itself when
// unknown.
std::string LanguageDisplayName(std::string_view code);

}  // namespace ragstream::rag
