#include "lib/rag/text.h"

#include <utf8proc.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "lib/core/utf8.h"

namespace ragstream::rag {
namespace {

constexpr auto kNormalizeOptions = static_cast<utf8proc_option_t>(
    UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);

constexpr int32_t kCombiningDotAbove = 0x0307;
constexpr int32_t kArabicTatweel = 0x0640;

struct FreeDeleter {
  void operator()(utf8proc_uint8_t* p) const { std::free(p); }
};

bool IsWordCategory(utf8proc_category_t c) {
  switch (c) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
      return true;
    default:
      return false;
  }
}

bool IsMark(utf8proc_category_t c) {
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
}

// Optional pointing: a non-spacing mark in the Hebrew (U+0590..U+05FF, U+FB1D..U+FB4F) or
// Arabic (U+0600..U+06FF, U+0750..U+077F, U+0870..U+08FF, U+FB50..U+FDFF, U+FE70..U+FEFF)
// blocks. The category test comes from utf8proc; only the blocks are listed here.
bool IsDroppedMark(int32_t cp, utf8proc_category_t c) {
  if (c != UTF8PROC_CATEGORY_MN) return false;
  return (cp >= 0x0590 && cp <= 0x05FF) || (cp >= 0xFB1D && cp <= 0xFB4F) ||
         (cp >= 0x0600 && cp <= 0x06FF) || (cp >= 0x0750 && cp <= 0x077F) ||
         (cp >= 0x0870 && cp <= 0x08FF) || (cp >= 0xFB50 && cp <= 0xFDFF) ||
         (cp >= 0xFE70 && cp <= 0xFEFF);
}

// Scripts written without spaces between words, tokenized as character bigrams. utf8proc has
// no Script property, so these are the blocks (letters only reach here: the caller has
// already checked the category).
bool IsBigramScript(int32_t cp) {
  return (cp >= 0x1100 && cp <= 0x11FF) ||    // Hangul Jamo
         (cp >= 0x3005 && cp <= 0x3007) ||    // 々 〆 〇
         (cp >= 0x3040 && cp <= 0x30FF) ||    // Hiragana, Katakana
         (cp >= 0x3130 && cp <= 0x318F) ||    // Hangul Compatibility Jamo
         (cp >= 0x31F0 && cp <= 0x31FF) ||    // Katakana Phonetic Extensions
         (cp >= 0x3400 && cp <= 0x4DBF) ||    // CJK Extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||    // CJK Unified Ideographs
         (cp >= 0xA960 && cp <= 0xA97F) ||    // Hangul Jamo Extended-A
         (cp >= 0xAC00 && cp <= 0xD7FF) ||    // Hangul Syllables, Jamo Extended-B
         (cp >= 0xF900 && cp <= 0xFAFF) ||    // CJK Compatibility Ideographs
         (cp >= 0x1B000 && cp <= 0x1B16F) ||  // Kana Supplement and Extended-A
         (cp >= 0x20000 && cp <= 0x3FFFF);    // CJK Extensions B..H, planes 2 and 3
}

// Collects terms while Tokenize() walks the normalised text. A run of word characters is
// split into segments: ordinary words, and bigram-script runs emitted as bigrams.
class TermSink {
 public:
  explicit TermSink(std::vector<std::string>* out) : out_(out) {}

  void AddWordChar(std::string_view bytes, int32_t cp) {
    FlushBigrams();
    word_.append(bytes);
    last_word_cp_ = cp;
  }

  void AddBigramChar(std::string_view bytes) {
    FlushWord();
    // `prev_` and `cur_` are complete characters (with any marks); a bigram is emitted once
    // the character after it arrives, so a mark can still join `cur_` until then.
    if (!prev_.empty()) Emit(prev_ + cur_);
    if (!cur_.empty()) prev_.swap(cur_);
    cur_.assign(bytes);
  }

  // A mark continues whichever segment is open (or starts a word if none is).
  void AddMark(std::string_view bytes, int32_t cp) {
    if (!cur_.empty()) {
      // A character with hundreds of combining marks is an attack, not text: keep a few.
      if (cur_.size() + bytes.size() <= kMaxTokenBytes / 2) cur_.append(bytes);
    } else {
      AddWordChar(bytes, cp);
    }
  }

  int32_t last_word_cp() const { return word_.empty() ? -1 : last_word_cp_; }

  void Flush() {
    FlushWord();
    FlushBigrams();
  }

 private:
  void FlushWord() {
    if (word_.empty()) return;
    out_->emplace_back(Utf8Truncate(word_, kMaxTokenBytes));
    word_.clear();
  }

  void FlushBigrams() {
    if (cur_.empty()) return;
    // A run of one character is a term by itself; a longer run has already emitted all its
    // bigrams but the last.
    Emit(prev_ + cur_);
    prev_.clear();
    cur_.clear();
  }

  // Every term is at most kMaxTokenBytes: the embedder and the LMDB keys rely on it.
  void Emit(const std::string& term) { out_->emplace_back(Utf8Truncate(term, kMaxTokenBytes)); }

  std::vector<std::string>* out_;
  std::string word_;
  int32_t last_word_cp_ = -1;
  std::string prev_;
  std::string cur_;
};

}  // namespace

namespace {

// utf8proc's normalisation (NFKC, case folding, default ignorables dropped) of valid UTF-8.
std::string MapWithUtf8proc(std::string_view valid) {
  utf8proc_uint8_t* mapped = nullptr;
  // No UTF8PROC_NULLTERM: the length is explicit, so an embedded NUL is just a character.
  utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(valid.data()),
                   static_cast<utf8proc_ssize_t>(valid.size()), &mapped, kNormalizeOptions);
  std::unique_ptr<utf8proc_uint8_t, FreeDeleter> owner(mapped);
  if (n < 0 || mapped == nullptr) return std::string(valid);
  return std::string(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
}

bool IsAscii(char c) {
  return (static_cast<unsigned char>(c) & 0x80) == 0;
}

}  // namespace

std::string NormalizeText(std::string_view utf8) {
  if (utf8.empty()) return {};
  const std::string clean = SanitizeUtf8(utf8);
  // ASCII maps to itself with A-Z folded to a-z, so only the runs around other characters
  // go through utf8proc (which is most of the cost on mostly-ASCII text). A run starts one
  // character early: a combining mark composes with the ASCII letter before it (e + U+0301
  // -> é); nothing composes with a following ASCII character.
  std::string out;
  out.reserve(clean.size());
  size_t i = 0;
  while (i < clean.size()) {
    size_t j = i;
    while (j < clean.size() && IsAscii(clean[j])) ++j;
    if (j == clean.size()) {
      for (; i < j; ++i) {
        const char c = clean[i];
        out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
      }
      break;
    }
    // clean[j] starts a non-ASCII character: ASCII up to the one before it, then the run
    // from there to the next ASCII character through utf8proc.
    const size_t run_start = j > i ? j - 1 : j;
    for (; i < run_start; ++i) {
      const char c = clean[i];
      out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
    size_t k = j;
    while (k < clean.size() && !IsAscii(clean[k])) ++k;
    out += MapWithUtf8proc(std::string_view(clean).substr(run_start, k - run_start));
    i = k;
  }
  return out;
}

std::vector<std::string> Tokenize(std::string_view utf8) {
  std::vector<std::string> terms;
  const std::string text = NormalizeText(utf8);
  TermSink sink(&terms);
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const auto size = static_cast<utf8proc_ssize_t>(text.size());
  utf8proc_ssize_t i = 0;
  while (i < size) {
    int32_t cp = 0;
    utf8proc_ssize_t len = utf8proc_iterate(p + i, size - i, &cp);
    if (len <= 0) {  // cannot happen after NormalizeText; skip a byte rather than loop
      sink.Flush();
      ++i;
      continue;
    }
    std::string_view bytes(text.data() + i, static_cast<size_t>(len));
    i += len;
    utf8proc_category_t category = utf8proc_category(cp);
    if (!IsWordCategory(category)) {
      sink.Flush();
      continue;
    }
    if (IsDroppedMark(cp, category) || cp == kArabicTatweel) continue;
    if (cp == kCombiningDotAbove) {
      int32_t prev = sink.last_word_cp();
      if (prev == 'i' || prev == 'j') continue;
    }
    if (IsMark(category)) {
      sink.AddMark(bytes, cp);
    } else if (IsBigramScript(cp)) {
      sink.AddBigramChar(bytes);
    } else {
      sink.AddWordChar(bytes, cp);
    }
  }
  sink.Flush();
  return terms;
}

}  // namespace ragstream::rag
