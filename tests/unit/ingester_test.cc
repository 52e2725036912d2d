// Ingester: validation errors with their kinds and codes, titles, chunking and
// embedding into the store, identical content, and embedder failures.
#include "lib/rag/ingester.h"
#include "lib/rag/analyzer.h"

#include <boost/test/unit_test.hpp>

#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lib/core/ids.h"
#include "lib/core/sha256.h"
#include "lib/core/utf8.h"
#include "lib/rag/chunker.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/text.h"
#include "lib/store/document_store.h"
#include "lib/store/lmdb.h"
#include "tests/unit/temp_store.h"

namespace ragstream::rag {
namespace {

using ragstream::testing::TempDir;

// Wraps the hash embedder: records batch sizes, and can fail or misbehave on
// demand.
class FakeEmbedder : public Embedder {
 public:
  enum class Mode { kOk, kFail, kWrongDimension, kTooFew };
  explicit FakeEmbedder(int dim = 64) : inner_(dim) {}
  std::string name() const override { return "fake-hash"; }
  int dimension() const override { return inner_.dimension(); }
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts) override {
    std::lock_guard<std::mutex> lock(mu_);
    batches.push_back(texts.size());
    if (mode == Mode::kFail) return Status::Upstream("upstream_unreachable", "fake outage");
    auto out = inner_.Embed(texts);
    if (!out.ok()) return out;
    if (mode == Mode::kWrongDimension && !out->empty()) out->front().push_back(0.0f);
    if (mode == Mode::kTooFew && !out->empty()) out->pop_back();
    return out;
  }

  Mode mode = Mode::kOk;
  std::vector<size_t> batches;

 private:
  std::mutex mu_;
  HashEmbedder inner_;
};

struct Fixture {
  explicit Fixture(IngestOptions options = {}) {
    auto opened = testing::OpenDocumentEnv(dir.path(), 2);
    if (!opened.ok()) throw std::runtime_error("Env::Open: " + opened.status().ToString());
    env = std::move(opened).value();
    documents = std::make_unique<store::DocumentStore>(*env, 2, store::VectorFormat::kFloat,
                                                       rag::AnalyzeDocumentChunks);
    ingester = std::make_unique<Ingester>(*documents, embedder, options);
  }
  ~Fixture() {
    ingester.reset();
    documents.reset();
    env.reset();
  }
  uint64_t Count() const {
    auto n = documents->Count("acme");
    BOOST_REQUIRE(n.ok());
    return *n;
  }

  TempDir dir;
  std::unique_ptr<store::Env> env;
  std::unique_ptr<store::DocumentStore> documents;
  FakeEmbedder embedder;
  std::unique_ptr<Ingester> ingester;
};

// Ingest must fail with `kind` and `code`, Validate must agree, and nothing is
// stored.
void ExpectRejected(Fixture& f, const std::string& title, const std::string& text, ErrorKind kind,
                    const std::string& code) {
  Status v = f.ingester->Validate(title, text);
  BOOST_TEST(!v.ok());
  BOOST_TEST((v.kind() == kind), v.ToString());
  BOOST_TEST(v.code() == code);
  BOOST_TEST(!v.message().empty());
  auto r = f.ingester->Ingest("acme", title, text);
  BOOST_TEST(!r.ok());
  BOOST_TEST((r.status().kind() == kind), r.status().ToString());
  BOOST_TEST(r.status().code() == code);
  BOOST_TEST(f.Count() == 0u);
}

// A string of `n` Hebrew letters (2 bytes each).
std::string Hebrew(size_t n) {
  static const char* kLetters[] = {"א", "ב", "ג", "ד", "ה", "ו", "ז", "ח", "ט", "י"};
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kLetters[i % 10];
  return s;
}

const char kBody[] = "A perfectly ordinary paragraph of text about nothing in particular.";

BOOST_AUTO_TEST_SUITE(ingester_test)

BOOST_AUTO_TEST_CASE(empty_or_whitespace_is_empty_document) {
  Fixture f;
  for (const std::string text : {"", " ", "\n\n\n", " \t\r\n \f "}) {
    BOOST_TEST_CONTEXT("text of " << text.size() << " bytes") {
      ExpectRejected(f, "T", text, ErrorKind::kInvalidArgument, "empty_document");
    }
  }
}

BOOST_AUTO_TEST_CASE(too_large_is_document_too_large) {
  IngestOptions o;
  o.max_document_bytes = 100;
  Fixture f(o);
  ExpectRejected(f, "T", std::string(101, 'a'), ErrorKind::kTooLarge, "document_too_large");
  // Bytes, not characters: 51 Hebrew letters are 102 bytes.
  ExpectRejected(f, "T", Hebrew(51), ErrorKind::kTooLarge, "document_too_large");
  // Exactly at the limit is fine.
  auto ok = f.ingester->Ingest("acme", "T", std::string(100, 'a'));
  BOOST_REQUIRE_MESSAGE(ok.ok(), ok.status().ToString());
  BOOST_TEST(ok->created);
}

BOOST_AUTO_TEST_CASE(binary_content_is_refused) {
  Fixture f;
  ExpectRejected(f, "T", std::string("hello\0world", 11), ErrorKind::kUnsupportedMediaType,
                 "binary_content");
  ExpectRejected(f, "T", std::string(1, '\0'), ErrorKind::kUnsupportedMediaType, "binary_content");
  // Mostly control characters (well over 10%).
  std::string controls;
  for (int i = 0; i < 40; ++i) controls += std::string("ab\x01\x02\x1b", 5);
  ExpectRejected(f, "T", controls, ErrorKind::kUnsupportedMediaType, "binary_content");
  // Text with the usual whitespace controls, and a few others, is not binary.
  std::string fine = std::string(kBody) + "\r\n\tIndented.\f\nNext page \x1b[1m bold.";
  BOOST_TEST(f.ingester->Validate("T", fine).ok());
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_invalid_text) {
  Fixture f;
  for (const std::string& bad :
       {std::string("caf\xC3", 4), std::string("\xFF\xFE text"),
        std::string("overlong \xC0\xAF slash"), std::string("surrogate \xED\xA0\x80 here"),
        std::string("beyond \xF4\x90\x80\x80 U+10FFFF")}) {
    BOOST_TEST_CONTEXT(bad) {
      ExpectRejected(f, "T", bad, ErrorKind::kInvalidArgument, "invalid_text");
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_titles_are_invalid_title) {
  Fixture f;
  for (const std::string& title :
       {std::string("two\nlines"), std::string("carriage\rreturn"), std::string("ends\n"),
        std::string(201, 'x'), Hebrew(201), std::string("bad \xFF byte")}) {
    BOOST_TEST_CONTEXT("title of " << title.size() << " bytes") {
      ExpectRejected(f, title, kBody, ErrorKind::kInvalidArgument, "invalid_title");
    }
  }
  // 200 characters is the limit, counted in characters: 200 Hebrew letters are
  // 400 bytes.
  BOOST_TEST(f.ingester->Validate(std::string(200, 'x'), kBody).ok());
  BOOST_TEST(f.ingester->Validate(Hebrew(200), kBody).ok());
}

BOOST_AUTO_TEST_CASE(an_empty_title_comes_from_the_first_line) {
  Fixture f;
  auto r = f.ingester->Ingest("acme", "", "\n\n  ## Getting started  \r\nThe body of the guide.\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(r->record.title == "Getting started");
  auto spaces = f.ingester->Ingest("acme", "  \t ", "# Second doc\nWith another body.");
  BOOST_REQUIRE(spaces.ok());
  BOOST_TEST(spaces->record.title == "Second doc");
  // A given title is kept as is.
  auto given = f.ingester->Ingest("acme", "My title", "# Heading\nThird body.");
  BOOST_REQUIRE(given.ok());
  BOOST_TEST(given->record.title == "My title");
  auto stored = f.documents->Get("acme", r->record.id);
  BOOST_REQUIRE(stored.ok());
  BOOST_TEST(stored->title == "Getting started");
}

BOOST_AUTO_TEST_CASE(title_from_text_rules) {
  BOOST_TEST(TitleFromText("Plain first line\nsecond", 200) == "Plain first line");
  BOOST_TEST(TitleFromText("### Deep heading ###\n", 200) == "Deep heading ###");
  BOOST_TEST(TitleFromText("\n\n   \n#\nReal\n", 200) == "Real");
  BOOST_TEST(TitleFromText("", 200) == "Untitled");
  BOOST_TEST(TitleFromText("#\n##\n \n", 200) == "Untitled");
  BOOST_TEST(TitleFromText("abcdef", 3) == "abc");
  BOOST_TEST(TitleFromText("שלום עולם", 4) == "שלום");
}

BOOST_AUTO_TEST_CASE(a_long_hebrew_title_is_cut_at_a_character_boundary) {
  const std::string line = Hebrew(250);
  for (size_t max : {1u, 2u, 7u, 199u, 200u}) {
    std::string t = TitleFromText(line + "\nbody", max);
    BOOST_TEST(IsValidUtf8(t));
    BOOST_TEST(Utf8Length(t) == max);
    BOOST_TEST(line.compare(0, t.size(), t) == 0);  // a prefix of the line
  }
  // With pointing (niqqud): cut after whole code points, never inside one.
  std::string pointed;
  for (int i = 0; i < 10; ++i) pointed += "שָׁ";  // shin + qamats + shin dot: 3 code points
  std::string cut = TitleFromText(pointed, 4);
  BOOST_TEST(IsValidUtf8(cut));
  BOOST_TEST(Utf8Length(cut) == 4u);

  Fixture f;
  auto r = f.ingester->Ingest("acme", "", line + "\n" + kBody);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(IsValidUtf8(r->record.title));
  BOOST_TEST(Utf8Length(r->record.title) == 200u);
  BOOST_TEST(r->record.title == Hebrew(200));
}

BOOST_AUTO_TEST_CASE(the_stored_document_matches_the_chunker) {
  IngestOptions o;
  o.chunker.target_chars = 80;
  o.chunker.overlap_chars = 10;
  o.chunker.max_chars = 120;
  o.embed_batch = 2;
  Fixture f(o);
  std::string text;
  for (int i = 0; i < 12; ++i) {
    text += "Sentence number " + std::to_string(i) + " talks about topic " + std::to_string(i * 7) +
            ". ";
    if (i % 3 == 2) text += "\n\n";
  }
  text += "Last words: שלום 世界.";
  const std::vector<Chunk> want = ChunkText(text, o.chunker);
  BOOST_REQUIRE(want.size() >= 4u);

  auto r = f.ingester->Ingest("acme", "Chunky", text);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(r->created);
  const store::DocumentRecord& rec = r->record;
  BOOST_TEST(IsWellFormedId(rec.id, "doc_"));
  BOOST_TEST(rec.title == "Chunky");
  BOOST_TEST(rec.chunk_count == want.size());
  BOOST_TEST(rec.bytes == text.size());
  BOOST_TEST(rec.chars == Utf8Length(text));
  BOOST_TEST(rec.content_hash == Sha256Hex(text));
  BOOST_TEST(rec.created_at > 0);

  auto stored_text = f.documents->GetText("acme", rec.id);
  BOOST_REQUIRE(stored_text.ok());
  BOOST_TEST(*stored_text == text);
  for (uint32_t i = 0; i < want.size(); ++i) {
    auto c = f.documents->GetChunk("acme", rec.id, i);
    BOOST_REQUIRE(c.ok());
    BOOST_TEST(c->text == want[i].text);
    BOOST_TEST(c->start_char == want[i].start_char);
    BOOST_TEST(c->end_char == want[i].end_char);
    // Analysed with the document's title (its "^" terms), and its length in words.
    const ChunkTerms analysed = AnalyzeChunk(want[i].text, "Chunky");
    BOOST_TEST(c->length == analysed.length);
  }
  BOOST_TEST(!f.documents->GetChunk("acme", rec.id, static_cast<uint32_t>(want.size())).ok());

  // Batches of at most embed_batch texts, covering every chunk once.
  size_t total = 0;
  for (size_t b : f.embedder.batches) {
    BOOST_TEST(b <= 2u);
    BOOST_TEST(b > 0u);
    total += b;
  }
  BOOST_TEST(total == want.size());

  // Chunk i's vector is stored as row i: a query with chunk i's text finds
  // chunk i first.
  HashEmbedder same(64);
  for (uint32_t i = 0; i < want.size(); ++i) {
    std::vector<float> q(64);
    same.EmbedOne(want[i].text, q.data());
    auto hits = f.documents->vectors().Search("acme", q.data(), 64, 1, {});
    BOOST_REQUIRE(hits.ok() && hits->size() == 1);
    BOOST_TEST((*hits)[0].chunk == rec.first_chunk + i);
    BOOST_TEST((*hits)[0].score > 0.999f);
  }
}

BOOST_AUTO_TEST_CASE(identical_content_is_not_stored_twice) {
  Fixture f;
  auto first = f.ingester->Ingest("acme", "First", kBody);
  BOOST_REQUIRE(first.ok());
  BOOST_TEST(first->created);
  auto again = f.ingester->Ingest("acme", "Another title", kBody);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(!again->created);
  BOOST_TEST(again->record.id == first->record.id);
  BOOST_TEST(again->record.title == "First");
  BOOST_TEST(again->record.created_at == first->record.created_at);
  BOOST_TEST(f.Count() == 1u);
  // One byte more is another document.
  auto other = f.ingester->Ingest("acme", "Other", std::string(kBody) + "!");
  BOOST_REQUIRE(other.ok());
  BOOST_TEST(other->created);
  BOOST_TEST(other->record.id != first->record.id);
  BOOST_TEST(f.Count() == 2u);
}

BOOST_AUTO_TEST_CASE(embedder_failures_store_nothing) {
  Fixture f;
  f.embedder.mode = FakeEmbedder::Mode::kFail;
  auto failed = f.ingester->Ingest("acme", "T", kBody);
  BOOST_TEST(!failed.ok());
  BOOST_TEST((failed.status().kind() == ErrorKind::kUpstream));
  BOOST_TEST(failed.status().code() == "upstream_unreachable");
  BOOST_TEST(f.Count() == 0u);

  f.embedder.mode = FakeEmbedder::Mode::kWrongDimension;
  auto wrong = f.ingester->Ingest("acme", "T", kBody);
  BOOST_TEST(!wrong.ok());
  BOOST_TEST(f.Count() == 0u);

  f.embedder.mode = FakeEmbedder::Mode::kTooFew;
  auto few = f.ingester->Ingest("acme", "T", kBody);
  BOOST_TEST(!few.ok());
  BOOST_TEST(f.Count() == 0u);

  // Recovered: the same text goes in, created.
  f.embedder.mode = FakeEmbedder::Mode::kOk;
  auto ok = f.ingester->Ingest("acme", "T", kBody);
  BOOST_REQUIRE(ok.ok());
  BOOST_TEST(ok->created);
}

// Group commit: documents ingested at once from many threads share transactions, and each
// caller still gets its own answer -- its document, a duplicate, or its limit.
BOOST_AUTO_TEST_CASE(concurrent_ingests_are_committed_together_and_answered_each) {
  IngestOptions options;
  options.max_documents_per_tenant = 30;
  options.max_group_documents = 4;
  Fixture f(options);
  constexpr int kThreads = 8, kPerThread = 5;
  std::vector<std::vector<Result<IngestResult>>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every thread also sends the one text all threads share.
        std::string text = i == 0 ? std::string("The text every thread sends. ") + kBody
                                  : "Thread " + std::to_string(t) + " document " +
                                        std::to_string(i) + ". " + kBody;
        results[t].push_back(f.ingester->Ingest("acme", "", text));
      }
    });
  }
  for (auto& th : threads) th.join();
  int created = 0, duplicates = 0, limited = 0;
  std::set<std::string> shared_ids, ids;
  for (const auto& per_thread : results) {
    for (size_t i = 0; i < per_thread.size(); ++i) {
      const auto& r = per_thread[i];
      if (!r.ok()) {
        BOOST_TEST(r.status().code() == "document_limit", r.status().ToString());
        ++limited;
        continue;
      }
      if (i == 0) shared_ids.insert(r->record.id);
      if (r->created) {
        ++created;
        BOOST_TEST(ids.insert(r->record.id).second);
      } else {
        ++duplicates;
      }
    }
  }
  // 8 x 4 distinct texts + 1 shared one = 33 documents offered, 30 allowed.
  BOOST_TEST(created == 30);
  // 3 texts refused once each, or, when the shared text came after the limit, 2 + its 8.
  BOOST_TEST((limited == 3 || limited == 10), limited);
  BOOST_TEST(shared_ids.size() <= 1u);  // the shared text is one document
  BOOST_TEST(created + duplicates + limited == kThreads * kPerThread);
  BOOST_TEST(f.Count() == 30u);
  for (const auto& id : ids) BOOST_TEST(f.documents->Get("acme", id).ok());
}

// A batch: prepared on several threads, stored in small commits, each document with its own
// result in order; a refused one does not stop the others; a duplicate is reported as one.
BOOST_AUTO_TEST_CASE(ingest_many_keeps_order_and_per_document_results) {
  IngestOptions options;
  options.max_group_documents = 3;
  options.max_group_bytes = 200;
  options.analysis_threads = 3;
  Fixture f(options);
  std::vector<IngestInput> docs;
  for (int i = 0; i < 60; ++i) {
    docs.push_back({"Doc " + std::to_string(i), "Unique word zq" + std::to_string(i) +
                                                    " in a short text number " + std::to_string(i) +
                                                    "."});
  }
  docs[17].text = "   ";                       // empty_document
  docs[40].text = docs[3].text;                // a duplicate of an earlier one in the batch
  docs[41].text = std::string(1, '\0') + "x";  // binary_content
  auto results = f.ingester->IngestMany("acme", docs);
  BOOST_REQUIRE_EQUAL(results.size(), docs.size());
  for (size_t i = 0; i < results.size(); ++i) {
    BOOST_TEST_CONTEXT("document " << i) {
      if (i == 17) {
        BOOST_TEST(results[i].status().code() == "empty_document");
      } else if (i == 41) {
        BOOST_TEST(results[i].status().code() == "binary_content");
      } else {
        BOOST_REQUIRE(results[i].ok());
        BOOST_TEST(results[i]->created == (i != 40));
        BOOST_TEST(results[i]->record.title == (i == 40 ? "Doc 3" : "Doc " + std::to_string(i)));
        auto text = f.documents->GetText("acme", results[i]->record.id);
        BOOST_REQUIRE(text.ok());
        BOOST_TEST(*text == docs[i == 40 ? 3 : i].text);
      }
    }
  }
  BOOST_TEST(f.Count() == 57u);
  BOOST_TEST(results[40]->record.id == results[3]->record.id);
}

// A commit aims at target_commit_us: the group's bytes shrink after commits slower than
// that (never below min_group_bytes) and stay at max_group_bytes when commits are fast.
BOOST_AUTO_TEST_CASE(group_bytes_follow_the_commit_time_target) {
  // Each batch is likely one group while the budget is large: several batches, so that the
  // budget has several commits to learn from.
  int next = 0;
  auto batch = [&next] {
    std::vector<IngestInput> docs;
    for (int i = 0; i < 10; ++i, ++next) {
      docs.push_back(
          {"", "Document " + std::to_string(next) + " " + std::string(2000, 'a' + next % 26)});
    }
    return docs;
  };
  IngestOptions slow;
  slow.max_group_bytes = 1 << 20;
  slow.min_group_bytes = 4096;
  slow.target_commit_us = 1;  // no commit is this fast
  Fixture tight(slow);
  BOOST_TEST(tight.ingester->group_bytes() == 1u << 20);
  for (int round = 0; round < 12; ++round) {
    for (const auto& r : tight.ingester->IngestMany("acme", batch())) BOOST_TEST(r.ok());
  }
  BOOST_TEST(tight.ingester->group_bytes() == 4096u);
  BOOST_TEST(tight.Count() == 120u);

  IngestOptions fast = slow;
  fast.target_commit_us = 60'000'000;  // every commit is this fast
  Fixture loose(fast);
  for (int round = 0; round < 4; ++round) {
    for (const auto& r : loose.ingester->IngestMany("acme", batch())) BOOST_TEST(r.ok());
  }
  BOOST_TEST(loose.ingester->group_bytes() == 1u << 20);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
