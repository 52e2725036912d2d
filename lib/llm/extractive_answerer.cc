#include "lib/llm/extractive_answerer.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "lib/core/utf8.h"
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
    return {"לפי המסמכים שלך (ציטוט):", "לא מצאתי במסמכים שלך מידע שעונה על השאלה הזאת.",
            "אין עדיין מסמכים לחפש בהם. אפשר להעלות מסמכים דרך "
            "‎/api/documents‎."};
  }
  if (language == "ar") {
    return {"من مستنداتك (اقتباس):", "لم أجد في مستنداتك ما يجيب عن هذا السؤال.",
            "لا توجد مستندات للبحث فيها بعد. يمكن رفعها عبر "
            "‎/api/documents‎."};
  }
  if (language == "ru") {
    return {"Из ваших документов (цитата):",
            "Я не нашёл в ваших документах ничего, что отвечало бы на этот вопрос.",
            "Документов для поиска пока нет. Загрузите их через /api/documents."};
  }
  return {"From your documents (quoted):",
          "I could not find anything in your documents that answers this question.",
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

// Question words that say nothing about the topic (English and Hebrew), ignored when
// matching a question against sentences. Retrieval itself keeps every word (BM25's IDF
// handles them there).
bool IsStopWord(const std::string& t) {
  static const std::set<std::string> kStop = {
      "a",     "an",     "and",  "are",  "as",   "at",   "be",    "by",    "can",  "could",
      "did",   "do",     "does", "for",  "from", "had",  "has",   "have",  "how",  "i",
      "in",    "is",     "it",   "its",  "long", "many", "much",  "my",    "of",   "on",
      "or",    "should", "so",   "tell", "than", "that", "the",   "their", "them", "then",
      "there", "these",  "they", "this", "to",   "was",  "we",    "were",  "what", "when",
      "where", "which",  "who",  "why",  "will", "with", "would", "you",   "your", "me",
      "את",    "איך",    "אם",   "אני",  "האם",  "הוא",  "היא",   "זה",    "זו",   "יש",
      "כמה",   "כי",     "לא",   "למה",  "מה",   "מי",   "מתי",   "על",    "עם",   "של",
      "שלי",   "איפה",   "אפשר", "לי",   "גם",   "או",   "כל",    "היה",   "היו",  "הם"};
  return kStop.count(t) > 0;
}

// The words of `text` that are not stop words, joined by spaces: what the cosine compares,
// so two texts do not look alike merely for sharing "the", "is" and "of".
std::string ContentWords(std::string_view text) {
  std::string out;
  for (const std::string& t : rag::Tokenize(text)) {
    if (IsStopWord(t)) continue;
    if (!out.empty()) out.push_back(' ');
    out += t;
  }
  return out;
}

float Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  float dot = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i];
  return dot;  // both unit length (or zero)
}

}  // namespace

std::vector<std::string> SplitSentences(std::string_view text) {
  // Documents are often hard-wrapped, so sentences are found in blocks: a paragraph's lines
  // joined with spaces, or one list item or table row. Headings are dropped.
  std::vector<std::string> blocks;
  std::string paragraph;
  auto flush = [&] {
    std::string block = Trim(paragraph);
    if (!block.empty()) blocks.push_back(std::move(block));
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
    if (line.empty() || line[0] == '#') continue;
    if (list_item) line = Trim(std::string_view(line).substr(line.find(' ') + 1));
    if (line[0] == '|') {
      blocks.push_back(line);
      continue;
    }
    if (!paragraph.empty()) paragraph.push_back(' ');
    paragraph += line;
    if (list_item) flush();
  }
  flush();

  std::vector<std::string> out;
  for (const std::string& block : blocks) {
    std::string_view b(block);
    size_t start = 0;
    for (size_t i = 0; i < b.size();) {
      size_t len = 0;
      if (IsSentenceEnd(b, i, len)) {
        std::string s = Trim(b.substr(start, i + len - start));
        if (!s.empty()) out.push_back(std::move(s));
        i += len;
        start = i;
      } else {
        ++i;
      }
    }
    std::string tail = Trim(b.substr(start));
    if (!tail.empty()) out.push_back(std::move(tail));
  }
  // Markdown emphasis markers are formatting, not words of the quote.
  for (std::string& sentence : out) {
    for (size_t at; (at = sentence.find("**")) != std::string::npos;) sentence.erase(at, 2);
  }
  return out;
}

ExtractiveAnswerer::ExtractiveAnswerer(ExtractiveOptions options) : options_(options) {}

std::vector<ExtractedSentence> ExtractiveAnswerer::Select(const ChatRequest& request) const {
  // Candidate sentences of every passage.
  struct Candidate {
    size_t passage;
    std::string text;
    std::set<std::string> terms;
  };
  std::vector<Candidate> candidates;
  for (size_t p = 0; p < request.passages.size(); ++p) {
    for (std::string& sentence : SplitSentences(request.passages[p].text)) {
      // Fragments (a few words cut off at a chunk edge, a table cell) make poor quotes.
      if (Utf8Length(sentence) < options_.min_sentence_chars) continue;
      std::vector<std::string> tokens = rag::Tokenize(sentence);
      candidates.push_back({p + 1, std::move(sentence), {tokens.begin(), tokens.end()}});
    }
  }
  if (candidates.empty()) return {};

  // Score: the IDF (over these sentences) of the question's content words each sentence
  // contains, so a rare word like "starter" outweighs a common one like "long"; plus the
  // hash-embedding cosine, whose character trigrams catch inflections and Hebrew prefixes
  // that exact words miss; and a mild preference for higher-ranked passages.
  std::set<std::string> question_terms;
  for (std::string& t : rag::Tokenize(request.question)) {
    if (!IsStopWord(t)) question_terms.insert(std::move(t));
  }
  std::map<std::string, size_t> df;
  for (const auto& c : candidates) {
    for (const auto& t : question_terms) df[t] += c.terms.count(t);
  }
  const double n = static_cast<double>(candidates.size());
  double max_lexical = 0;
  for (const auto& t : question_terms) {
    max_lexical += std::log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5));
  }
  const int dim = embedder_.dimension();
  std::vector<float> question(dim), v(dim);
  embedder_.EmbedOne(ContentWords(request.question), question.data());

  std::vector<ExtractedSentence> scored;
  for (auto& c : candidates) {
    double lexical = 0;
    for (const auto& t : question_terms) {
      if (c.terms.count(t)) lexical += std::log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5));
    }
    embedder_.EmbedOne(ContentWords(c.text), v.data());
    double cosine = Cosine(question, v);
    // Relevant means sharing a content word with the question, or -- for inflected forms and
    // Hebrew prefixes that exact words miss -- a clearly high cosine; hash collisions alone
    // reach ~0.15, so that bar is well above them.
    if (lexical == 0 && cosine < options_.min_similarity) continue;
    double score = (max_lexical > 0 ? lexical / max_lexical : 0) + cosine;
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
  if (request.passages.empty()) return phrases.no_documents;
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
