// ExtractiveAnswerer: sentence splitting across scripts and Markdown, selection
// of relevant sentences within the limits, the composed answer and its
// citations, and streaming with cancellation.
#include "lib/llm/extractive_answerer.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "lib/core/utf8.h"
#include "lib/rag/text.h"

namespace ragstream::llm {
namespace {

using Sentences = std::vector<std::string>;

ChatRequest Request(const std::string& question, const std::vector<std::string>& passages,
                    const std::string& language = "en") {
  ChatRequest r;
  r.question = question;
  r.language = language;
  r.messages = {{"user", question}};
  for (size_t i = 0; i < passages.size(); ++i) {
    r.passages.push_back({"Passage " + std::to_string(i + 1), passages[i]});
  }
  return r;
}

ExtractiveOptions Fast() {
  ExtractiveOptions o;
  o.word_delay_ms = 0;
  return o;
}

const char kLmdb[] =
    "LMDB readers never block writers, because every reader sees a consistent "
    "snapshot. "
    "A single writer lock serializes the write transactions in LMDB. "
    "The memory map of LMDB is shared by every process that opens the "
    "environment.";
const char kBread[] =
    "Sourdough bread needs a lively starter made from flour and water. "
    "Let the dough ferment slowly overnight in a cool kitchen. "
    "Bake the loaf in a very hot Dutch oven for the best crust.";
const char kVolcano[] =
    "Sticky rhyolite magma traps gas until the volcano explodes violently. "
    "Runny basalt lava flows gently down the slopes of shield volcanoes.";
const char kQuestion[] = "How do LMDB readers and writers share the memory map?";

// The answer's quoted sentences: the paragraphs after the intro, each "sentence
// [n]".
struct Quote {
  std::string sentence;
  size_t passage;
};

std::vector<Quote> ParseQuotes(const std::string& answer) {
  std::vector<Quote> out;
  size_t pos = answer.find("\n\n");
  while (pos != std::string::npos) {
    size_t start = pos + 2;
    size_t end = answer.find("\n\n", start);
    std::string para = answer.substr(start, end == std::string::npos ? end : end - start);
    size_t open = para.rfind(" [");
    BOOST_REQUIRE_MESSAGE(open != std::string::npos && para.back() == ']',
                          "a quoted sentence without [n]: " << para);
    out.push_back({para.substr(0, open),
                   static_cast<size_t>(std::stoul(para.substr(open + 2, para.size() - open - 3)))});
    pos = end;
  }
  return out;
}

BOOST_AUTO_TEST_SUITE(extractive_answerer_test)

BOOST_AUTO_TEST_CASE(split_english_sentences) {
  BOOST_TEST(
      SplitSentences("The cat sat on the mat. The dog ran away! Did it come back? Yes.") ==
      (Sentences{"The cat sat on the mat.", "The dog ran away!", "Did it come back?", "Yes."}));
  // A full stop inside a number, a word or a URL is not a sentence end.
  BOOST_TEST(SplitSentences("Pi is about 3.14 and e is 2.71. See example.com for more.") ==
             (Sentences{"Pi is about 3.14 and e is 2.71.", "See example.com for more."}));
  // Hard-wrapped lines of one paragraph are joined; a blank line separates
  // paragraphs.
  BOOST_TEST(SplitSentences("This sentence is\nwrapped over\r\nthree "
                            "lines.\n\nA new paragraph") ==
             (Sentences{"This sentence is wrapped over three lines.", "A new paragraph"}));
  BOOST_TEST(SplitSentences("Wait… what?! Fine.") == (Sentences{"Wait…", "what?!", "Fine."}));
  BOOST_TEST(SplitSentences("").empty());
  BOOST_TEST(SplitSentences(" \n\n \t\n").empty());
}

BOOST_AUTO_TEST_CASE(split_hebrew_sentences) {
  BOOST_TEST(SplitSentences("החתול ישב על השטיח. האם הכלב ברח? כן, הוא ברח.") ==
             (Sentences{"החתול ישב על השטיח.", "האם הכלב ברח?", "כן, הוא ברח."}));
  // Sof pasuq and the Arabic question mark end sentences too.
  BOOST_TEST(SplitSentences("בראשית ברא׃ והארץ היתה") == (Sentences{"בראשית ברא׃", "והארץ היתה"}));
  BOOST_TEST(SplitSentences("كيف حالك؟ أنا بخير.") == (Sentences{"كيف حالك؟", "أنا بخير."}));
}

BOOST_AUTO_TEST_CASE(split_cjk_sentences_without_spaces) {
  BOOST_TEST(SplitSentences("我喜欢猫。狗也很好！你呢？好的") ==
             (Sentences{"我喜欢猫。", "狗也很好！", "你呢？", "好的"}));
  BOOST_TEST(SplitSentences("東京は大きい。大阪も。") == (Sentences{"東京は大きい。", "大阪も。"}));
}

BOOST_AUTO_TEST_CASE(split_markdown_headings_lists_and_tables) {
  const std::string md =
      "# The Title\n"
      "Intro sentence one. Intro two\n"
      "## A section\n"
      "- first item\n"
      "- second item. With two sentences.\n"
      "* starred item\n"
      "1. numbered one\n"
      "12. numbered twelve\n"
      "| col a | col b |\n"
      "Closing words.";
  BOOST_TEST(SplitSentences(md) ==
             (Sentences{"Intro sentence one.", "Intro two", "first item", "second item.",
                        "With two sentences.", "starred item", "numbered one", "numbered twelve",
                        "| col a | col b |", "Closing words."}));
  // A list item does not swallow the next line's paragraph, and headings are
  // dropped.
  BOOST_TEST(SplitSentences("### Only a heading").empty());
  BOOST_TEST(SplitSentences("- item\nparagraph after") == (Sentences{"item", "paragraph after"}));
}

BOOST_AUTO_TEST_CASE(select_prefers_relevant_sentences) {
  const auto request = Request(kQuestion, {kBread, kLmdb, kVolcano});
  // Two sentences: both from the LMDB passage, quoted verbatim.
  ExtractiveOptions two = Fast();
  two.max_sentences = 2;
  auto chosen = ExtractiveAnswerer(two).Select(request);
  BOOST_REQUIRE_EQUAL(chosen.size(), 2u);
  for (const auto& s : chosen) {
    BOOST_TEST(s.passage == 2u, s.text);
    BOOST_TEST(s.text.find("LMDB") != std::string::npos);
    BOOST_TEST(std::string(kLmdb).find(s.text) != std::string::npos);  // verbatim
  }
  // With room for more, still nothing from the bread or volcano passages.
  ExtractiveOptions wide = Fast();
  wide.max_sentences = 100;
  wide.max_sentences_per_passage = 100;
  auto all = ExtractiveAnswerer(wide).Select(request);
  BOOST_TEST(all.size() >= 2u);
  for (const auto& s : all) BOOST_TEST(s.passage == 2u, s.text);
  // The passage order does not matter: the LMDB passage is found wherever it is.
  auto last = ExtractiveAnswerer(two).Select(Request(kQuestion, {kBread, kVolcano, kLmdb}));
  BOOST_REQUIRE(!last.empty());
  for (const auto& s : last) BOOST_TEST(s.passage == 3u, s.text);
}

BOOST_AUTO_TEST_CASE(select_respects_the_limits) {
  const std::string lmdb2 =
      "LMDB writers take the writer lock while readers keep reading the memory map. "
      "Readers of LMDB use reader slots, and writers never wait for readers to finish. "
      "Every LMDB reader and writer shares the same memory map of the file.";
  const std::string lmdb3 =
      "In LMDB the memory map is read-only for readers and writers write through it. "
      "LMDB readers and writers coordinate through a lock file and the memory map.";
  const auto request = Request(kQuestion, {kLmdb, lmdb2, lmdb3});

  ExtractiveOptions wide = Fast();
  wide.max_sentences = 100;
  wide.max_sentences_per_passage = 100;
  const auto all = ExtractiveAnswerer(wide).Select(request);
  BOOST_REQUIRE_MESSAGE(all.size() >= 4u,
                        "expected at least 4 relevant sentences, got " << all.size());

  const auto defaults = ExtractiveAnswerer(Fast()).Select(request);
  BOOST_TEST(defaults.size() <= 3u);  // max_sentences = 3
  BOOST_TEST(defaults.size() >= 2u);

  float best = 0;
  for (const auto& s : all) best = std::max(best, s.similarity);
  for (size_t max : {1u, 2u, 4u}) {
    for (size_t per : {1u, 2u}) {
      ExtractiveOptions o = Fast();
      o.max_sentences = max;
      o.max_sentences_per_passage = per;
      const auto chosen = ExtractiveAnswerer(o).Select(request);
      BOOST_TEST_CONTEXT("max " << max << " per passage " << per) {
        BOOST_TEST(!chosen.empty());
        BOOST_TEST(chosen.size() <= std::min(max, 3 * per));
        std::vector<size_t> count(4, 0);
        for (const auto& s : chosen) {
          BOOST_REQUIRE(s.passage >= 1u && s.passage <= 3u);
          BOOST_TEST(++count[s.passage] <= per);
        }
        for (size_t i = 1; i < chosen.size(); ++i) {
          BOOST_TEST(chosen[i - 1].passage <= chosen[i].passage);  // in passage order
        }
        // The best sentence overall is always among the chosen.
        bool has_best = false;
        for (const auto& s : chosen) has_best = has_best || s.similarity == best;
        BOOST_TEST(has_best);
      }
    }
  }
  // One sentence per passage and room for all: one from each passage that has any.
  ExtractiveOptions spread = Fast();
  spread.max_sentences = 10;
  spread.max_sentences_per_passage = 1;
  const auto one_each = ExtractiveAnswerer(spread).Select(request);
  for (size_t i = 1; i < one_each.size(); ++i) {
    BOOST_TEST(one_each[i - 1].passage < one_each[i].passage);
  }
}

BOOST_AUTO_TEST_CASE(select_skips_fragments_and_duplicates) {
  ExtractiveAnswerer a(Fast());
  // "LMDB readers." is relevant but shorter than min_sentence_chars (25).
  auto short_only = a.Select(Request(kQuestion, {"LMDB readers. LMDB writers."}));
  BOOST_TEST(short_only.empty());
  // The same sentence in two passages is quoted once.
  const std::string s = "LMDB readers and writers share one memory map of the database file.";
  ExtractiveOptions o = Fast();
  o.max_sentences = 5;
  auto twice = ExtractiveAnswerer(o).Select(Request(kQuestion, {s, s}));
  BOOST_REQUIRE_EQUAL(twice.size(), 1u);
  BOOST_TEST(twice[0].passage == 1u);
}

// A sentence under a heading that names the question's subject is about it: "## Backups"
// makes "The copy tool ..." an answer to "How do I back up ...?" ("back up" read as backup).
BOOST_AUTO_TEST_CASE(a_heading_and_a_word_pair_count_for_the_sentences_under_it) {
  const std::string passage =
      "## Cats\n\nCats sleep for most of the day and purr when content.\n\n"
      "## Backups\n\nThe mdb_copy tool writes a consistent copy of the whole store.\n";
  auto picked =
      ExtractiveAnswerer(Fast()).Select(Request("How do I back up the files?", {passage}));
  BOOST_REQUIRE_EQUAL(picked.size(), 1u);
  BOOST_TEST(picked[0].text == "The mdb_copy tool writes a consistent copy of the whole store.");
  auto split = SplitSentencesWithHeadings(passage);
  BOOST_REQUIRE_EQUAL(split.size(), 2u);
  BOOST_TEST(split[0].heading == "Cats");
  BOOST_TEST(split[1].heading == "Backups");
}

// How-many questions prefer the sentence with the number; key words match by stem.
BOOST_AUTO_TEST_CASE(a_question_for_a_number_gets_the_sentence_with_it) {
  const std::string passage =
      "The Dead Sea is a salt lake between Israel and Jordan. The water of the Dead Sea is "
      "very dense, so bathers in the Dead Sea float. The depth of the lake is about 300 "
      "metres. The Dead Sea shrinks every year.";
  ExtractiveOptions o = Fast();
  o.max_sentences = 1;
  auto picked =
      ExtractiveAnswerer(o).Select(Request("What is the depth of the Dead Sea?", {passage}));
  BOOST_REQUIRE_EQUAL(picked.size(), 1u);
  BOOST_TEST(picked[0].text == "The depth of the lake is about 300 metres.");
  const std::string he =
      "ים המלח הוא אגם מלוח בין ישראל לירדן. המים בים המלח צפופים מאוד. העומק המרבי של "
      "האגם הוא כ־300 מטרים. ים המלח נסוג בכל שנה.";
  auto hebrew = ExtractiveAnswerer(o).Select(Request("מה עומק ים המלח?", {he}, "he"));
  BOOST_REQUIRE_EQUAL(hebrew.size(), 1u);
  BOOST_TEST(hebrew[0].text == "העומק המרבי של האגם הוא כ־300 מטרים.");
}

BOOST_AUTO_TEST_CASE(compose_without_passages_says_there_are_no_documents) {
  ExtractiveAnswerer a(Fast());
  ChatRequest empty = Request(kQuestion, {});
  empty.grounding = Grounding::kNoDocuments;
  BOOST_TEST(a.Compose(empty) ==
             "There are no documents to search yet. Upload some through "
             "/api/documents.");
  ChatRequest he = Request("איך זה עובד?", {}, "he");
  he.grounding = Grounding::kNoDocuments;
  BOOST_TEST(a.Compose(he).rfind("אין עדיין מסמכים", 0) == 0u);
  BOOST_TEST(IsValidUtf8(a.Compose(he)));
}

// Nothing above the relevance floor: a plain "not covered", in the question's language.
BOOST_AUTO_TEST_CASE(compose_when_nothing_fits_says_the_documents_do_not_cover_it) {
  ExtractiveAnswerer a(Fast());
  const std::pair<const char*, const char*> cases[] = {
      {"en", "Your documents do not cover this question."},
      {"he", "המסמכים שלך אינם עוסקים בשאלה הזאת."},
      {"ar", "مستنداتك لا تتناول هذا السؤال."},
      {"ru", "В ваших документах нет ответа на этот вопрос."},
      {"fr", "Your documents do not cover this question."},
  };
  for (const auto& [language, want] : cases) {
    ChatRequest r = Request("?", {}, language);
    r.grounding = Grounding::kNothingFits;
    BOOST_TEST(a.Compose(r) == want, language);
  }
}

// Hash collisions alone give cosines up to ~0.15 between unrelated texts ("lmdb readers
// block writers" vs "sourdough bread needs lively starter made flour water": 0.122), so a
// cosine just above min_similarity (0.12) with no shared content word is not relevance.
BOOST_AUTO_TEST_CASE(compose_with_irrelevant_passages_says_so) {
  ExtractiveAnswerer a(Fast());
  BOOST_TEST(a.Compose(Request("Do LMDB readers block writers?", {kBread, kVolcano})) ==
             "Your documents do not cover this question.");
  BOOST_TEST(a.Compose(Request("מה זה LMDB ואיך הוא עובד?", {kBread}, "he")) ==
             "המסמכים שלך אינם עוסקים בשאלה הזאת.");
}

// Sharing only a function word ("the") with the question is not relevance. The hash
// embedder weighs "the" like any word (plus its trigrams), so compared on all words, one
// shared "the" in a short sentence gives a cosine of 0.14-0.20 -- above min_similarity --
// and "Bake the loaf in a very hot Dutch oven for the best crust." was quoted to a question
// about LMDB.
BOOST_AUTO_TEST_CASE(a_shared_function_word_is_not_relevance) {
  ExtractiveAnswerer a(Fast());
  const std::string nothing = "Your documents do not cover this question.";
  BOOST_TEST(a.Compose(Request(kQuestion, {kBread, kVolcano})) == nothing);
  BOOST_TEST(a.Compose(Request("What is the capital of France?", {kBread, kVolcano})) == nothing);
}

BOOST_AUTO_TEST_CASE(compose_quotes_with_citations_to_their_passages) {
  ExtractiveAnswerer a(Fast());
  const std::vector<std::string> passages = {kBread, kLmdb, kVolcano};
  const std::string answer = a.Compose(Request(kQuestion, passages));
  BOOST_TEST(answer.rfind("From your documents (quoted):\n\n", 0) == 0u, answer);
  auto quotes = ParseQuotes(answer);
  BOOST_REQUIRE(!quotes.empty());
  const auto chosen = a.Select(Request(kQuestion, passages));
  BOOST_REQUIRE_EQUAL(quotes.size(), chosen.size());
  for (size_t i = 0; i < quotes.size(); ++i) {
    BOOST_REQUIRE(quotes[i].passage >= 1u && quotes[i].passage <= passages.size());
    // The cited passage holds the quoted sentence.
    BOOST_TEST(passages[quotes[i].passage - 1].find(quotes[i].sentence) != std::string::npos,
               quotes[i].sentence << " [" << quotes[i].passage << "]");
    BOOST_TEST(quotes[i].sentence == chosen[i].text);
    BOOST_TEST(quotes[i].passage == chosen[i].passage);
  }

  // With relevant sentences in two passages, each cites its own.
  const std::vector<std::string> two = {
      kLmdb,
      "Writers in LMDB append pages while readers keep using the old "
      "memory map pages."};
  auto quotes2 = ParseQuotes(a.Compose(Request(kQuestion, two)));
  std::vector<bool> cited(3, false);
  for (const auto& q : quotes2) {
    BOOST_REQUIRE(q.passage >= 1u && q.passage <= 2u);
    BOOST_TEST(two[q.passage - 1].find(q.sentence) != std::string::npos);
    cited[q.passage] = true;
  }
  BOOST_TEST(cited[1]);
  BOOST_TEST(cited[2]);
}

BOOST_AUTO_TEST_CASE(compose_in_hebrew) {
  ExtractiveAnswerer a(Fast());
  const std::string passage =
      "מסד הנתונים LMDB משתמש במיפוי זיכרון משותף לכל התהליכים. "
      "הקוראים לעולם אינם חוסמים את הכותבים במסד הנתונים. "
      "עוגת שוקולד נאפית בתנור חם במשך ארבעים דקות?";
  const std::string answer =
      a.Compose(Request("האם הקוראים חוסמים את הכותבים במסד הנתונים LMDB?", {passage}, "he"));
  BOOST_TEST(answer.rfind("לפי המסמכים שלך (ציטוט):\n\n", 0) == 0u, answer);
  BOOST_TEST(IsValidUtf8(answer));
  auto quotes = ParseQuotes(answer);
  BOOST_REQUIRE(!quotes.empty());
  for (const auto& q : quotes) {
    BOOST_TEST(q.passage == 1u);
    BOOST_TEST(passage.find(q.sentence) != std::string::npos);
    BOOST_TEST(q.sentence.find("שוקולד") == std::string::npos);  // the irrelevant one
  }
  // An English request with the same passages gets the English intro.
  const std::string en = a.Compose(Request("Do LMDB readers block writers?", {kLmdb}, "en"));
  BOOST_TEST(en.rfind("From your documents (quoted):", 0) == 0u);
  // An unknown language falls back to English.
  const std::string fr = a.Compose(Request("Do LMDB readers block writers?", {kLmdb}, "fr"));
  BOOST_TEST(fr.rfind("From your documents (quoted):", 0) == 0u);
}

struct Recorder {
  std::vector<std::string> deltas;
  int ticks = 0;
  int stop_after_deltas = -1;  // on_delta returns false on this call (1-based)
  int stop_after_ticks = -1;

  StreamCallbacks Callbacks() {
    StreamCallbacks cb;
    cb.on_delta = [this](std::string_view d) {
      deltas.emplace_back(d);
      return static_cast<int>(deltas.size()) != stop_after_deltas;
    };
    cb.on_tick = [this] { return ++ticks != stop_after_ticks; };
    return cb;
  }
  std::string Joined() const {
    std::string s;
    for (const auto& d : deltas) s += d;
    return s;
  }
};

BOOST_AUTO_TEST_CASE(stream_deltas_concatenate_to_compose) {
  ExtractiveAnswerer a(Fast());
  for (const auto& request : {Request(kQuestion, {kBread, kLmdb, kVolcano}), Request(kQuestion, {}),
                              Request(kQuestion, {kBread}), Request("מה זה?", {}, "he")}) {
    Recorder rec;
    ChatOutcome out = a.Stream(request, rec.Callbacks());
    BOOST_TEST(out.status.ok(), out.status.ToString());
    BOOST_TEST(rec.Joined() == a.Compose(request));
    BOOST_TEST(out.finish_reason == "stop");
    BOOST_TEST(out.got_first_token);
    BOOST_TEST(out.attempts == 1);
    BOOST_TEST(out.usage.present);
    BOOST_TEST(out.usage.completion_tokens == static_cast<int64_t>(rec.deltas.size()));
    size_t prompt = rag::Tokenize(request.question).size();
    for (const auto& p : request.passages) prompt += rag::Tokenize(p.text).size();
    BOOST_TEST(out.usage.prompt_tokens == static_cast<int64_t>(prompt));
    BOOST_TEST(out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens);
    // Each delta is one word with the whitespace before it.
    for (size_t i = 0; i < rec.deltas.size(); ++i) {
      const std::string& d = rec.deltas[i];
      size_t word = d.find_first_not_of(" \n");
      BOOST_REQUIRE(word != std::string::npos);
      BOOST_TEST(d.find_first_of(" \n", word) == std::string::npos, d);
      if (i == 0) BOOST_TEST(word == 0u);
      if (i > 0) BOOST_TEST(word > 0u);
      BOOST_TEST(IsValidUtf8(d));
    }
  }
}

BOOST_AUTO_TEST_CASE(stream_stops_when_on_delta_says_so) {
  ExtractiveAnswerer a(Fast());
  const auto request = Request(kQuestion, {kLmdb});
  for (int stop : {1, 3}) {
    Recorder rec;
    rec.stop_after_deltas = stop;
    ChatOutcome out = a.Stream(request, rec.Callbacks());
    BOOST_TEST((out.status.kind() == ErrorKind::kCancelled));
    BOOST_TEST(out.status.code() == "cancelled");
    BOOST_TEST(rec.deltas.size() == static_cast<size_t>(stop));
    BOOST_TEST(a.Compose(request).rfind(rec.Joined(), 0) == 0u);  // a prefix
    BOOST_TEST(out.finish_reason != "stop");
    BOOST_TEST(out.got_first_token == (stop > 1));
  }
}

BOOST_AUTO_TEST_CASE(stream_with_a_delay_is_paced_and_on_tick_cancels) {
  ExtractiveOptions o;
  o.word_delay_ms = 5;
  ExtractiveAnswerer a(o);
  const auto request = Request(kQuestion, {kLmdb});
  {
    Recorder rec;
    rec.stop_after_ticks = 2;
    ChatOutcome out = a.Stream(request, rec.Callbacks());
    BOOST_TEST((out.status.kind() == ErrorKind::kCancelled));
    BOOST_TEST(rec.ticks == 2);
    BOOST_TEST(rec.deltas.size() == 2u);  // delta, tick, delta, tick (stop)
  }
  {
    Recorder rec;
    const auto start = std::chrono::steady_clock::now();
    ChatOutcome out = a.Stream(request, rec.Callbacks());
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    BOOST_TEST(out.status.ok());
    BOOST_TEST(rec.Joined() == a.Compose(request));
    BOOST_REQUIRE(rec.deltas.size() > 3u);
    // A pause between words (not after the last one), each followed by a tick.
    BOOST_TEST(rec.ticks == static_cast<int>(rec.deltas.size()) - 1);
    BOOST_TEST(ms >= static_cast<long>(5 * (rec.deltas.size() - 1)));
  }
  {
    // No on_tick at all is fine.
    Recorder rec;
    StreamCallbacks cb = rec.Callbacks();
    cb.on_tick = nullptr;
    ExtractiveOptions quick;
    quick.word_delay_ms = 1;
    ChatOutcome out = ExtractiveAnswerer(quick).Stream(request, cb);
    BOOST_TEST(out.status.ok());
    BOOST_TEST(rec.Joined() == a.Compose(request));
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::llm
