#include "lib/rag/analyzer.h"

#include <hunspell/hunspell.h>
#include <libstemmer.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "lib/core/sha256.h"
#include "lib/core/utf8.h"
#include "lib/rag/language.h"
#include "lib/rag/stopwords.h"
#include "lib/rag/text.h"

namespace ragstream::rag {
namespace {

enum class Script { kDigits, kLatin, kCyrillic, kHebrew, kArabic, kGreek, kOther };

// A Tokenize term is one script's letters (or digits); its first letter decides. A term that
// starts with a digit ("x86" does not, "64" does) is kept as it is.
Script ScriptOf(std::string_view term) {
  utf8proc_int32_t cp = -1;
  utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(term.data()),
                   static_cast<utf8proc_ssize_t>(term.size()), &cp);
  if (cp >= '0' && cp <= '9') return Script::kDigits;
  if (cp < 0x250 || (cp >= 0x1E00 && cp <= 0x1EFF)) return Script::kLatin;
  if (cp >= 0x370 && cp <= 0x3FF) return Script::kGreek;
  if (cp >= 0x400 && cp <= 0x52F) return Script::kCyrillic;
  if ((cp >= 0x590 && cp <= 0x5FF) || (cp >= 0xFB1D && cp <= 0xFB4F)) return Script::kHebrew;
  if ((cp >= 0x600 && cp <= 0x6FF) || (cp >= 0x750 && cp <= 0x77F) ||
      (cp >= 0x8A0 && cp <= 0x8FF) || (cp >= 0xFB50 && cp <= 0xFDFF) ||
      (cp >= 0xFE70 && cp <= 0xFEFF)) {
    return Script::kArabic;
  }
  return Script::kOther;
}

// Snowball languages by ISO 639-1 code and the script they are written in.
struct SnowballLanguage {
  const char* code;
  Script script;
};
constexpr SnowballLanguage kSnowball[] = {
    {"en", Script::kLatin},  {"fr", Script::kLatin},    {"de", Script::kLatin},
    {"es", Script::kLatin},  {"it", Script::kLatin},    {"pt", Script::kLatin},
    {"nl", Script::kLatin},  {"sv", Script::kLatin},    {"no", Script::kLatin},
    {"da", Script::kLatin},  {"fi", Script::kLatin},    {"hu", Script::kLatin},
    {"ro", Script::kLatin},  {"tr", Script::kLatin},    {"id", Script::kLatin},
    {"ga", Script::kLatin},  {"lt", Script::kLatin},    {"ca", Script::kLatin},
    {"eu", Script::kLatin},  {"ru", Script::kCyrillic}, {"sr", Script::kCyrillic},
    {"ar", Script::kArabic}, {"el", Script::kGreek},    {"hy", Script::kOther},
    {"hi", Script::kOther},  {"ne", Script::kOther},    {"ta", Script::kOther},
    {"yi", Script::kHebrew},
};

// The Snowball stemmer for a word of `script` in a text of `language`: the language's own
// if Snowball has it for that script, else the script's usual one; "" for none.
std::string_view StemmerFor(Script script, std::string_view language) {
  for (const auto& l : kSnowball) {
    if (l.script == script && language == l.code) return l.code;
  }
  switch (script) {
    case Script::kLatin:
      return "en";
    case Script::kCyrillic:
      return "ru";
    case Script::kArabic:
      return "ar";
    case Script::kGreek:
      return "el";
    default:
      return "";
  }
}

// Snowball stemmers are not thread-safe: each thread keeps its own, made on first use.
std::string SnowballStem(std::string_view code, const std::string& word) {
  struct Deleter {
    void operator()(sb_stemmer* s) const { sb_stemmer_delete(s); }
  };
  thread_local std::map<std::string, std::unique_ptr<sb_stemmer, Deleter>, std::less<>> stemmers;
  auto it = stemmers.find(code);
  if (it == stemmers.end()) {
    it = stemmers
             .emplace(std::string(code), std::unique_ptr<sb_stemmer, Deleter>(
                                             sb_stemmer_new(std::string(code).c_str(), "UTF_8")))
             .first;
  }
  if (!it->second) return word;
  const sb_symbol* out =
      sb_stemmer_stem(it->second.get(), reinterpret_cast<const sb_symbol*>(word.data()),
                      static_cast<int>(word.size()));
  if (out == nullptr) return word;  // out of memory
  return std::string(reinterpret_cast<const char*>(out),
                     static_cast<size_t>(sb_stemmer_length(it->second.get())));
}

// hunspell with the he_IL dictionary (Debian's hunspell-he), loaded once per process.
// Hunspell objects are not thread-safe, so calls are serialised; results are cached, since
// a corpus repeats its words (the cache is bounded: cleared when full).
class HebrewStemmer {
 public:
  static HebrewStemmer& Get() {
    static HebrewStemmer instance;
    return instance;
  }

  const std::string& description() const { return description_; }

  std::vector<std::string> Stems(const std::string& word) {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(word); it != cache_.end()) return it->second;
    std::vector<std::string> stems;
    if (handle_ != nullptr) {
      char** list = nullptr;
      const int n = Hunspell_stem(handle_, &list, word.c_str());
      for (int i = 0; i < n; ++i) {
        std::string s(list[i]);
        if (!s.empty() && std::find(stems.begin(), stems.end(), s) == stems.end()) {
          stems.push_back(std::move(s));
        }
      }
      if (n > 0) Hunspell_free_list(handle_, &list, n);
    }
    if (stems.empty()) stems.push_back(word);  // not in the dictionary: a name, a loanword
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_.emplace(word, stems);
    return stems;
  }

 private:
  static constexpr size_t kMaxCached = 200000;

  HebrewStemmer() {
    const char* dir_env = std::getenv("RAGSTREAM_HUNSPELL_DIR");
    const std::string dir = dir_env != nullptr && *dir_env ? dir_env : "/usr/share/hunspell";
    const std::string aff = dir + "/he_IL.aff", dic = dir + "/he_IL.dic";
    std::error_code ec;
    if (!std::filesystem::exists(aff, ec) || !std::filesystem::exists(dic, ec)) {
      description_ = "no Hebrew stems (" + dic + " missing: install hunspell-he)";
      return;
    }
    handle_ = Hunspell_create(aff.c_str(), dic.c_str());
    description_ =
        handle_ != nullptr ? "hunspell " + dic : "no Hebrew stems (" + dic + " unreadable)";
  }
  ~HebrewStemmer() {
    if (handle_ != nullptr) Hunspell_destroy(handle_);
  }

  Hunhandle* handle_ = nullptr;
  std::string description_;
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::string>> cache_;
};

AnalyzedWord AnalyzeWord(std::string surface, std::string_view language) {
  AnalyzedWord w;
  const Script script = ScriptOf(surface);
  if (script == Script::kHebrew && language != "yi") {
    w.stopword = IsStopword("he", surface);
    w.stems = HebrewStemmer::Get().Stems(surface);
    if (!w.stopword) {
      w.stopword = std::all_of(w.stems.begin(), w.stems.end(),
                               [](const std::string& s) { return IsStopword("he", s); });
    }
  } else {
    const std::string_view stemmer = script == Script::kDigits ? "" : StemmerFor(script, language);
    // A stop word of the stemmer's language (a Latin word in a Hebrew question is tested
    // as English).
    w.stopword = !stemmer.empty() && IsStopword(stemmer, surface);
    w.stems.push_back(stemmer.empty() ? surface : SnowballStem(stemmer, surface));
  }
  w.surface = std::move(surface);
  return w;
}

bool SurfaceIsAStem(const AnalyzedWord& w) {
  return std::find(w.stems.begin(), w.stems.end(), w.surface) != w.stems.end();
}

std::string DetectedOrEnglish(std::string_view text) {
  return DetectLanguage(text, "en").code;
}

}  // namespace

std::vector<AnalyzedWord> AnalyzeWords(std::string_view text, std::string_view language) {
  const std::string lang = language.empty() ? DetectedOrEnglish(text) : std::string(language);
  std::vector<AnalyzedWord> words;
  for (std::string& t : Tokenize(text)) words.push_back(AnalyzeWord(std::move(t), lang));
  return words;
}

std::vector<std::string> TitleTerms(std::string_view title) {
  std::vector<std::string> terms;
  for (const AnalyzedWord& w : AnalyzeWords(title)) {
    if (w.stopword) continue;
    for (const std::string& s : w.stems) {
      std::string t = "^" + s;
      if (std::find(terms.begin(), terms.end(), t) == terms.end()) terms.push_back(std::move(t));
    }
  }
  return terms;
}

std::string DocumentLanguage(std::string_view text) {
  constexpr size_t kSample = 2048;
  return DetectedOrEnglish(Utf8Truncate(text, kSample));
}

ChunkTerms AnalyzeChunk(std::string_view text, const std::vector<std::string>& title_terms,
                        std::string_view language) {
  ChunkTerms out;
  std::vector<AnalyzedWord> words = AnalyzeWords(text, language);
  out.terms.reserve(words.size() * 3 / 2 + title_terms.size());
  for (AnalyzedWord& w : words) {
    if (w.stopword) continue;
    ++out.length;
    if (!SurfaceIsAStem(w)) out.terms.push_back("=" + w.surface);
    for (std::string& s : w.stems) out.terms.push_back(std::move(s));
  }
  // The title's stems: a title word says what the whole document is about.
  out.terms.insert(out.terms.end(), title_terms.begin(), title_terms.end());
  return out;
}

ChunkTerms AnalyzeChunk(std::string_view text, std::string_view title) {
  return AnalyzeChunk(text, TitleTerms(title));
}

std::vector<store::AnalyzedChunk> AnalyzeDocumentChunks(
    std::string_view title, std::string_view language, const std::vector<std::string_view>& texts) {
  const std::vector<std::string> title_terms = TitleTerms(title);
  std::vector<store::AnalyzedChunk> out;
  out.reserve(texts.size());
  for (std::string_view text : texts) {
    ChunkTerms analysed = AnalyzeChunk(text, title_terms, language);
    out.push_back({std::move(analysed.terms), analysed.length});
  }
  return out;
}

namespace {

std::vector<JoinedPair> JoinedPairsOf(const std::vector<AnalyzedWord>& words,
                                      std::string_view lang) {
  std::vector<JoinedPair> out;
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    const AnalyzedWord &a = words[i], &b = words[i + 1];
    if (a.stopword && b.stopword) continue;
    // Only in alphabets that write compounds as one word (Latin, Cyrillic).
    const Script script = ScriptOf(a.surface);
    if (ScriptOf(b.surface) != script ||
        (script != Script::kLatin && script != Script::kCyrillic)) {
      continue;
    }
    AnalyzedWord joined = AnalyzeWord(a.surface + b.surface, lang);
    if (joined.stopword) continue;
    out.push_back({std::move(joined.stems), i});
  }
  return out;
}

}  // namespace

std::vector<JoinedPair> JoinedPairs(std::string_view question) {
  const std::string lang = DetectedOrEnglish(question);
  return JoinedPairsOf(AnalyzeWords(question, lang), lang);
}

std::vector<JoinedPair> JoinedPairs(const std::vector<AnalyzedWord>& words,
                                    std::string_view language) {
  return JoinedPairsOf(words, language);
}

std::vector<store::WeightedTerm> AnalyzeQuery(std::string_view question,
                                              const QueryAnalysisOptions& options) {
  std::vector<store::WeightedTerm> terms;
  auto add = [&terms](std::string term, double weight, bool optional = false) {
    if (weight <= 0) return;
    for (auto& t : terms) {
      if (t.term == term) {
        t.weight += weight;
        t.optional = t.optional && optional;
        return;
      }
    }
    terms.push_back({std::move(term), weight, optional});
  };
  const std::string lang = DetectedOrEnglish(question);
  const std::vector<AnalyzedWord> words = AnalyzeWords(question, lang);
  for (const JoinedPair& pair : JoinedPairsOf(words, lang)) {
    for (const std::string& s : pair.stems) add(s, options.joined_weight, /*optional=*/true);
  }
  for (const AnalyzedWord& w : words) {
    if (w.stopword) continue;
    const double share = 1.0 / static_cast<double>(w.stems.size());
    for (const std::string& s : w.stems) {
      add(s, share);
      add("^" + s, share * options.title_weight);
    }
    // A short question's language is a guess (a code like "bqf8f188ccaa" is stemmed by
    // whichever language CLD2 picks), and a document in another language may have stemmed
    // the word differently. Whichever of the two stemmers changed the word, the document
    // indexed its exact form or kept it as its stem: both are looked up. The one this
    // question's stemmer does not give is optional: it counts in the question's mass only
    // when the tenant has it.
    if (!SurfaceIsAStem(w)) {
      add("=" + w.surface, options.surface_weight);
      add(w.surface, share, /*optional=*/true);
    } else {
      add("=" + w.surface, options.surface_weight, /*optional=*/true);
    }
  }
  return terms;
}

const std::string& AnalyzerVersion() {
  static const std::string version = [] {
    // Words whose stems the libraries decide: inflections, Hebrew prefixes, Arabic particles,
    // Russian cases, and a few other Snowball languages.
    static constexpr std::pair<const char*, const char*> kProbe[] = {
        {"en", "running leases connections happily generalization studies backups"},
        {"he", "ומהשנה לאורחים בדירה המלח וכשהלכנו לבתים הספרים"},
        {"ar", "والكتاب بالمدرسة المعلمون يكتبون فسيقولون"},
        {"ru", "озере железными дорогами книгами перестала"},
        {"de", "Häuser laufenden Verbindungen"},
        {"fr", "maisons continuellement nationales"},
        {"es", "corriendo canciones nacionales"},
    };
    std::string stems;
    for (const auto& [language, text] : kProbe) {
      for (const AnalyzedWord& w : AnalyzeWords(text, language)) {
        stems += w.surface;
        for (const std::string& s : w.stems) stems += " " + s;
        stems += "\n";
      }
    }
    return std::string(kAnalyzerVersion) + "/" + Sha256Hex(stems).substr(0, 12);
  }();
  return version;
}

std::string WarmUpAnalyzer() {
  HebrewStemmer& hebrew = HebrewStemmer::Get();
  return "snowball (" + std::to_string(std::size(kSnowball)) + " languages), " +
         hebrew.description();
}

}  // namespace ragstream::rag
