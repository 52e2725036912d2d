#include "lib/llm/extractive_answerer.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "lib/core/utf8.h"
#include "lib/rag/analyzer.h"
#include "lib/rag/language.h"
#include "lib/rag/text.h"

namespace ragstream::llm {
namespace {

struct Phrases {
  const char* intro;
  const char* nothing;
  const char* no_documents;
};

Phrases PhrasesFor(const std::string& language) {
  if (language == "he") {
    return {"לפי המסמכים שלך (ציטוט):", "המסמכים שלך אינם עוסקים בשאלה הזאת.",
            "אין עדיין מסמכים לחפש בהם. אפשר להעלות מסמכים דרך "
            "‎/api/documents‎."};
  }
  if (language == "ar") {
    return {"من مستنداتك (اقتباس):", "مستنداتك لا تتناول هذا السؤال.",
            "لا توجد مستندات للبحث فيها بعد. يمكن رفعها عبر "
            "‎/api/documents‎."};
  }
  if (language == "ru") {
    return {"Из ваших документов (цитата):", "В ваших документах нет ответа на этот вопрос.",
            "Документов для поиска пока нет. Загрузите их через /api/documents."};
  }
  return {"From your documents (quoted):", "Your documents do not cover this question.",
          "There are no documents to search yet. Upload some through /api/documents."};
}

bool IsSentenceEnd(std::string_view text, size_t i, size_t& len) {
  static constexpr std::string_view kEnds[] = {".", "!", "?", "…", "。", "！", "？", "׃", "؟"};
  for (std::string_view end : kEnds) {
    if (text.substr(i, end.size()) == end) {
      len = end.size();
      size_t next = i + len;
      // CJK full stops end a sentence even without a following space.
      bool cjk = end == "。" || end == "！" || end == "？";
      return cjk || next >= text.size() || text[next] == ' ' || text[next] == '\n' ||
             text[next] == '\t' || text[next] == '\r';
    }
  }
  return false;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// Words that ask for a quantity, a date or a time: a sentence with a number answers such a
// question better than one without (normalised forms; a few per language).
bool AsksForANumber(const std::vector<rag::AnalyzedWord>& words) {
  static const std::set<std::string_view> kCues = {
      "many",  "much",     "long", "old",        "often",   "far",   "when",    "year",
      "years", "high",     "deep", "depth",      "tall",    "large", "heavy",   "temperature",
      "cost",  "price",    "כמה",  "מתי",        "עומק",    "גובה",  "אורך",    "משקל",
      "מחיר",  "טמפרטורה", "שנה",  "בכמה",       "ממתי",    "עד",    "كم",      "متى",
      "عمق",   "ارتفاع",   "طول",  "سعر",        "сколько", "когда", "глубина", "высота",
      "длина", "цена",     "году", "температура"};
  for (const auto& w : words) {
    if (kCues.count(w.surface)) return true;
  }
  return false;
}

bool HasDigit(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The question's content words (not stop words), each as the set of its stems, and the
// surface forms of the stop-word-free text for the hash cosine.
std::string ContentWords(const std::vector<rag::AnalyzedWord>& words) {
  std::string out;
  for (const auto& w : words) {
    if (w.stopword) continue;
    if (!out.empty()) out.push_back(' ');
    out += w.stems.front();
  }
  return out;
}

float Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  float dot = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i];
  return dot;  // both unit length (or zero)
}

}  // namespace

std::vector<HeadedSentence> SplitSentencesWithHeadings(std::string_view text) {
  // Documents are often hard-wrapped, so sentences are found in blocks: a paragraph's lines
  // joined with spaces, or one list item or table row. Headings are not sentences; each
  // block remembers the last one.
  std::vector<HeadedSentence> blocks;
  std::string paragraph, heading;
  auto flush = [&] {
    std::string block = Trim(paragraph);
    if (!block.empty()) blocks.push_back({heading, std::move(block)});
    paragraph.clear();
  };
  for (size_t pos = 0; pos <= text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line = Trim(text.substr(pos, nl - pos));
    pos = nl + 1;
    bool list_item = line.rfind("- ", 0) == 0 || line.rfind("* ", 0) == 0 ||
                     (line.size() > 2 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                      line.find(". ") != std::string::npos && line.find(". ") < 4);
    if (line.empty() || line[0] == '#' || line[0] == '|' || list_item) flush();
    if (!line.empty() && line[0] == '#') heading = Trim(line.substr(line.find_first_not_of('#')));
    if (line.empty() || line[0] == '#') continue;
    if (list_item) line = Trim(std::string_view(line).substr(line.find(' ') + 1));
    if (line[0] == '|') {
      blocks.push_back({heading, line});
      continue;
    }
    if (!paragraph.empty()) paragraph.push_back(' ');
    paragraph += line;
    if (list_item) flush();
  }
  flush();

  std::vector<HeadedSentence> out;
  for (const HeadedSentence& block : blocks) {
    std::string_view b(block.text);
    size_t start = 0;
    for (size_t i = 0; i < b.size();) {
      size_t len = 0;
      if (IsSentenceEnd(b, i, len)) {
        std::string s = Trim(b.substr(start, i + len - start));
        if (!s.empty()) out.push_back({block.heading, std::move(s)});
        i += len;
        start = i;
      } else {
        ++i;
      }
    }
    std::string tail = Trim(b.substr(start));
    if (!tail.empty()) out.push_back({block.heading, std::move(tail)});
  }
  // Markdown emphasis markers are formatting, not words of the quote.
  for (HeadedSentence& sentence : out) {
    for (size_t at; (at = sentence.text.find("**")) != std::string::npos;) {
      sentence.text.erase(at, 2);
    }
  }
  return out;
}

std::vector<std::string> SplitSentences(std::string_view text) {
  std::vector<std::string> out;
  for (HeadedSentence& s : SplitSentencesWithHeadings(text)) out.push_back(std::move(s.text));
  return out;
}

ExtractiveAnswerer::ExtractiveAnswerer(ExtractiveOptions options) : options_(options) {}

std::vector<ExtractedSentence> ExtractiveAnswerer::Select(const ChatRequest& request) const {
  // Candidate sentences of every passage, with the stems of their words.
  struct Candidate {
    size_t passage;
    std::string text;
    std::set<std::string> stems, heading_stems;
    std::string content;
  };
  std::vector<Candidate> candidates;
  std::map<std::string, std::set<std::string>> heading_cache;
  for (size_t p = 0; p < request.passages.size(); ++p) {
    for (HeadedSentence& sentence : SplitSentencesWithHeadings(request.passages[p].text)) {
      // Fragments (a few words cut off at a chunk edge, a table cell) make poor quotes.
      if (Utf8Length(sentence.text) < options_.min_sentence_chars) continue;
      const auto words = rag::AnalyzeWords(sentence.text);
      Candidate c{p + 1, std::move(sentence.text), {}, {}, ContentWords(words)};
      for (const auto& w : words) c.stems.insert(w.stems.begin(), w.stems.end());
      auto [heading, fresh] = heading_cache.try_emplace(sentence.heading);
      if (fresh) {
        for (const auto& w : rag::AnalyzeWords(sentence.heading)) {
          if (!w.stopword) heading->second.insert(w.stems.begin(), w.stems.end());
        }
      }
      c.heading_stems = heading->second;
      candidates.push_back(std::move(c));
    }
  }
  if (candidates.empty()) return {};

  // Score: the IDF (over these sentences) of the question's key words each sentence holds,
  // matched by stem (so "leases" finds "lease", and בדירה finds דירה), so a rare word like
  // "starter" outweighs a common one -- as much when only the sentence's heading holds it;
  // a bonus for a number when the question asks how many, how long or when; the hash cosine
  // of the content words as a tie-breaker; and a mild preference for higher-ranked passages.
  // Two question words written as one ("back up": backup) count when some sentence or
  // heading has them. The question's language is detected once, for its words and its pairs.
  const std::string question_language = rag::DetectLanguage(request.question, "en").code;
  const auto question_words = rag::AnalyzeWords(request.question, question_language);
  // A key word: any of its stems, in the sentence or only in its heading (a section called
  // "Backups" is about backups: kHeadingWeight, as much as the sentence saying it); a pair
  // read as one word ("back up": backup) also matches a sentence holding both its words.
  constexpr double kHeadingWeight = 1.0;
  struct KeyWord {
    std::vector<std::string> stems;
    std::vector<std::string> first_stems, second_stems;  // a pair's own words, if a pair
  };
  auto holds = [](const Candidate& c, const KeyWord& w) {
    double best = 0;
    for (const std::string& s : w.stems) {
      if (c.stems.count(s)) return 1.0;
      if (c.heading_stems.count(s)) best = kHeadingWeight;
    }
    auto any_in = [&c](const std::vector<std::string>& stems) {
      return std::any_of(stems.begin(), stems.end(),
                         [&c](const std::string& s) { return c.stems.count(s) > 0; });
    };
    if (!w.first_stems.empty() && any_in(w.first_stems) && any_in(w.second_stems)) return 1.0;
    return best;
  };
  // Pairs that some sentence or heading writes as one word replace their two words.
  std::vector<bool> in_pair(question_words.size(), false);
  std::vector<KeyWord> key;
  for (const rag::JoinedPair& pair : rag::JoinedPairs(question_words, question_language)) {
    if (pair.first + 1 >= question_words.size()) continue;
    KeyWord k{pair.stems, question_words[pair.first].stems, question_words[pair.first + 1].stems};
    const bool written = std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& c) {
      return std::any_of(k.stems.begin(), k.stems.end(), [&c](const std::string& s) {
        return c.stems.count(s) > 0 || c.heading_stems.count(s) > 0;
      });
    });
    if (!written) continue;
    in_pair[pair.first] = in_pair[pair.first + 1] = true;
    key.push_back(std::move(k));
  }
  for (size_t i = 0; i < question_words.size(); ++i) {
    if (!question_words[i].stopword && !in_pair[i])
      key.push_back({question_words[i].stems, {}, {}});
  }
  const double n = static_cast<double>(candidates.size());
  std::vector<double> idf(key.size());
  double max_lexical = 0;
  for (size_t k = 0; k < key.size(); ++k) {
    double df = 0;
    for (const auto& c : candidates) df += holds(c, key[k]) > 0 ? 1 : 0;
    idf[k] = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
    max_lexical += idf[k];
  }
  const bool wants_number = AsksForANumber(question_words);
  const int dim = embedder_.dimension();
  std::vector<float> question(dim), v(dim);
  embedder_.EmbedOne(ContentWords(question_words), question.data());

  std::vector<ExtractedSentence> scored;
  for (auto& c : candidates) {
    double lexical = 0;
    for (size_t k = 0; k < key.size(); ++k) lexical += holds(c, key[k]) * idf[k];
    embedder_.EmbedOne(c.content, v.data());
    const double cosine = Cosine(question, v);
    // Relevant means holding one of the question's key words, or -- for a question whose
    // words the analyzer cannot match (another script, a misspelling) -- a clearly high
    // cosine; hash collisions alone reach ~0.15, so that bar is well above them.
    if (lexical == 0 && cosine < options_.min_similarity) continue;
    double score = (max_lexical > 0 ? lexical / max_lexical : 0) + 0.3 * cosine;
    if (wants_number && HasDigit(c.text)) score += 0.25;
    score /= 1.0 + 0.1 * static_cast<double>(c.passage - 1);
    scored.push_back({c.passage, std::move(c.text), static_cast<float>(score)});
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.similarity > b.similarity; });
  std::vector<ExtractedSentence> chosen;
  std::vector<size_t> per_passage(request.passages.size() + 1, 0);
  for (auto& c : scored) {
    if (chosen.size() == options_.max_sentences) break;
    // Keep only sentences that score close to the best: a weak third quote is noise.
    if (!chosen.empty() && c.similarity < chosen.front().similarity * 0.5f) break;
    if (per_passage[c.passage] == options_.max_sentences_per_passage) continue;
    bool duplicate =
        std::any_of(chosen.begin(), chosen.end(), [&c](const auto& x) { return x.text == c.text; });
    if (duplicate) continue;
    ++per_passage[c.passage];
    chosen.push_back(std::move(c));
  }
  // Read in the order the passages were ranked, so the answer follows the sources.
  std::stable_sort(chosen.begin(), chosen.end(),
                   [](const auto& a, const auto& b) { return a.passage < b.passage; });
  return chosen;
}

std::string ExtractiveAnswerer::Compose(const ChatRequest& request) const {
  Phrases phrases = PhrasesFor(request.language);
  if (request.passages.empty()) {
    return request.grounding == Grounding::kNoDocuments ? phrases.no_documents : phrases.nothing;
  }
  std::vector<ExtractedSentence> chosen = Select(request);
  if (chosen.empty()) return phrases.nothing;
  std::string answer = phrases.intro;
  for (const auto& s : chosen) {
    answer += "\n\n" + s.text + " [" + std::to_string(s.passage) + "]";
  }
  return answer;
}

ChatOutcome ExtractiveAnswerer::Stream(const ChatRequest& request,
                                       const StreamCallbacks& callbacks) {
  ChatOutcome out;
  out.attempts = 1;
  const std::string answer = Compose(request);
  // Stream word by word: each piece is a word with the whitespace before it.
  size_t words = 0;
  for (size_t i = 0; i < answer.size();) {
    size_t word_start = answer.find_first_not_of(" \n", i);
    size_t end =
        word_start == std::string::npos ? answer.size() : answer.find_first_of(" \n", word_start);
    if (end == std::string::npos) end = answer.size();
    if (!callbacks.on_delta(std::string_view(answer).substr(i, end - i))) {
      out.status = Status::Cancelled("stopped by the caller");
      return out;
    }
    out.got_first_token = true;
    ++words;
    i = end;
    if (options_.word_delay_ms > 0 && i < answer.size()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.word_delay_ms));
      if (callbacks.on_tick && !callbacks.on_tick()) {
        out.status = Status::Cancelled("stopped by the caller");
        return out;
      }
    }
  }
  // Word counts stand in for tokens: there is no tokenizer behind this model.
  size_t prompt_words = rag::Tokenize(request.question).size();
  for (const auto& p : request.passages) prompt_words += rag::Tokenize(p.text).size();
  out.usage = {true, static_cast<int64_t>(prompt_words), static_cast<int64_t>(words),
               static_cast<int64_t>(prompt_words + words)};
  out.finish_reason = "stop";
  out.status = Status::Ok();
  return out;
}

}  // namespace ragstream::llm
