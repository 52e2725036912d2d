#include "lib/rag/language.h"

#include <cld2/internal/lang_script.h>
#include <cld2/public/compact_lang_det.h>

#include <cctype>
#include <iterator>

#include "lib/core/utf8.h"

namespace ragstream::rag {
namespace {

// Fewer letter bytes than this and CLD2's answer is a guess.
constexpr int kMinTextBytes = 12;

std::string NormaliseCode(std::string code) {
  if (code == "iw") return "he";
  if (code == "in") return "id";
  if (code == "ji") return "yi";
  return code;
}

// Scripts written by essentially one language: even a one-word question in them says which
// language it is, where CLD2 needs more text to be "reliable".
struct ScriptRange {
  char32_t first, last;
  const char* language;
};
constexpr ScriptRange kSingleLanguageScripts[] = {
    {0x0590, 0x05FF, "he"}, {0xFB1D, 0xFB4F, "he"}, {0x0370, 0x03FF, "el"},
    {0x0E00, 0x0E7F, "th"}, {0xAC00, 0xD7AF, "ko"}, {0x1100, 0x11FF, "ko"},
    {0x3040, 0x30FF, "ja"}, {0x0530, 0x058F, "hy"}, {0x10A0, 0x10FF, "ka"},
};

// The language of the script most letters are in, if it is a single-language script and
// holds at least 60% of the letters; "" otherwise.
std::string LanguageByScript(std::string_view text) {
  size_t letters = 0;
  size_t counts[std::size(kSingleLanguageScripts)] = {};
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    char32_t cp;
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len == 1) {
      cp = c;
    } else {
      cp = c & (0xFF >> (len + 1));
      for (int k = 1; k < len && i + k < text.size(); ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
      }
    }
    i += len;
    bool ascii_letter = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    if (!ascii_letter && cp < 0x370) continue;  // digits, punctuation, Latin marks
    ++letters;
    for (size_t s = 0; s < std::size(kSingleLanguageScripts); ++s) {
      if (cp >= kSingleLanguageScripts[s].first && cp <= kSingleLanguageScripts[s].last) {
        ++counts[s];
      }
    }
  }
  for (size_t s = 0; s < std::size(kSingleLanguageScripts); ++s) {
    if (letters > 0 && counts[s] * 10 >= letters * 6) return kSingleLanguageScripts[s].language;
  }
  return {};
}

}  // namespace

DetectedLanguage DetectLanguage(std::string_view text, std::string_view fallback) {
  // CLD2 reads past the end of its buffer when a character there is malformed or cut short
  // (a byte-sliced title, say); it only ever sees valid UTF-8.
  std::string sanitized;
  if (!IsValidUtf8(text)) {
    sanitized = SanitizeUtf8(text);
    text = sanitized;
  }
  DetectedLanguage out;
  CLD2::Language language3[3];
  int percent3[3];
  int text_bytes = 0;
  bool reliable = false;
  CLD2::Language lang = CLD2::DetectLanguageSummary(text.data(), static_cast<int>(text.size()),
                                                    /*is_plain_text=*/true, language3, percent3,
                                                    &text_bytes, &reliable);
  if (lang != CLD2::UNKNOWN_LANGUAGE && lang != CLD2::TG_UNKNOWN_LANGUAGE && reliable &&
      text_bytes >= kMinTextBytes) {
    out.code = NormaliseCode(CLD2::LanguageCode(lang));
    out.detected = true;
    return out;
  }
  if (std::string by_script = LanguageByScript(text); !by_script.empty()) {
    out.code = by_script;
    out.detected = true;
    return out;
  }
  out.code = fallback.empty() ? "en" : std::string(fallback);
  return out;
}

std::string LanguageDisplayName(std::string_view code) {
  // CLD2 knows the names; ask it by code (it expects its own legacy codes).
  std::string cld_code(code == "he" ? "iw" : code);
  CLD2::Language lang = CLD2::GetLanguageFromName(cld_code.c_str());
  if (lang == CLD2::UNKNOWN_LANGUAGE) return std::string(code);
  std::string name = CLD2::LanguageName(lang);
  for (size_t i = 0; i < name.size(); ++i) {
    name[i] = i == 0 || name[i - 1] == ' ' || name[i - 1] == '_'
                  ? static_cast<char>(std::toupper(static_cast<unsigned char>(name[i])))
                  : static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    if (name[i] == '_') name[i] = ' ';
  }
  return name;
}

}  // namespace ragstream::rag
