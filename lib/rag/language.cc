#include "lib/rag/language.h"

#include <cld2/internal/lang_script.h>
#include <cld2/public/compact_lang_det.h>

#include <cctype>

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

}  // namespace

DetectedLanguage DetectLanguage(std::string_view text, std::string_view fallback) {
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
