// DocumentStore over a real LMDB environment: records, text, chunks and both
// indexes kept consistent through Add and Delete; identical content stored
// once; the index identity.
#include "lib/store/document_store.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lib/core/sha256.h"
#include "lib/store/lmdb.h"
#include "tests/unit/temp_store.h"

namespace ragstream::store {
namespace {

using ragstream::testing::TempDir;

constexpr int kShards = 3;
constexpr uint32_t kDim = 4;

Result<std::unique_ptr<Env>> OpenEnv(const std::string& path, std::vector<std::string> names,
                                     uint64_t map_size_bytes) {
  Env::Options options;
  options.path = path;
  options.map_size_bytes = map_size_bytes;
  options.max_readers = 126;
  options.databases = std::move(names);
  return Env::Open(options);
}

// The test's analyzer: a chunk's terms are its words (MakeDoc adds them the same way).
std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char ch : std::string(text) + " ") {
    if (ch == ' ' || ch == '\n') {
      if (!word.empty()) words.push_back(word);
      word.clear();
    } else {
      word.push_back(ch);
    }
  }
  return words;
}

std::vector<AnalyzedChunk> WordAnalyzer(std::string_view, std::string_view,
                                        const std::vector<std::string_view>& texts) {
  std::vector<AnalyzedChunk> out;
  for (std::string_view t : texts) {
    auto words = Words(t);
    const auto n = static_cast<uint32_t>(words.size());
    out.push_back({std::move(words), n});
  }
  return out;
}

struct DocEnv {
  explicit DocEnv(uint64_t map_size_bytes = 64ull << 20) {
    auto opened = OpenEnv(dir.path(), DocumentStore::Databases(kShards), map_size_bytes);
    if (!opened.ok()) throw std::runtime_error("Env::Open: " + opened.status().ToString());
    env = std::move(opened).value();
    store = std::make_unique<DocumentStore>(*env, kShards, VectorFormat::kFloat, WordAnalyzer);
  }
  ~DocEnv() {
    store.reset();
    env.reset();
  }

  // Number of entries in a database.
  size_t Entries(const char* db) const {
    auto txn = Txn::BeginRead(*env);
    BOOST_REQUIRE(txn.ok());
    MDB_stat stat;
    BOOST_REQUIRE_EQUAL(mdb_stat(txn->raw(), env->Dbi(db), &stat), 0);
    return stat.ms_entries;
  }

  TempDir dir;
  std::unique_ptr<Env> env;
  std::unique_ptr<DocumentStore> store;
};

// A unit vector along axis `axis` (mod kDim), optionally mixed with the next
// axis.
std::vector<float> Axis(uint32_t axis) {
  std::vector<float> v(kDim, 0.0f);
  v[axis % kDim] = 1.0f;
  return v;
}

// A document whose chunks are the given texts (terms: the words), chunk i along
// axis first_axis + i.
NewDocument MakeDoc(const std::string& id, const std::string& title,
                    const std::vector<std::string>& chunk_texts, uint32_t first_axis,
                    int64_t created_at) {
  NewDocument d;
  std::string text;
  for (size_t i = 0; i < chunk_texts.size(); ++i) {
    NewChunk c;
    c.index = static_cast<uint32_t>(i);
    if (!text.empty()) text += "\n\n";
    c.start_char = c.start_byte = text.size();
    text += chunk_texts[i];
    c.end_char = c.end_byte = text.size();
    c.terms = Words(chunk_texts[i]);
    c.length = static_cast<uint32_t>(c.terms.size());
    d.chunks.push_back(std::move(c));
    auto v = Axis(first_axis + static_cast<uint32_t>(i));
    d.vectors.insert(d.vectors.end(), v.begin(), v.end());
  }
  d.text = text;
  d.dimension = kDim;
  d.record.id = id;
  d.record.title = title;
  d.record.content_hash = Sha256Hex(text);
  d.record.bytes = text.size();
  d.record.chars = text.size();
  d.record.chunk_count = static_cast<uint32_t>(chunk_texts.size());
  d.record.created_at = created_at;
  return d;
}

AddResult MustAdd(DocumentStore& store, const NewDocument& d) {
  auto added = store.Add("acme", d);
  BOOST_REQUIRE_MESSAGE(added.ok(), added.status().ToString());
  return std::move(added).value();
}

// "document:index" of dense chunk ids, sorted; a chunk the store no longer knows is "?".
std::vector<std::string> PublicIds(const DocumentStore& store,
                                   const std::vector<uint32_t>& chunks) {
  auto refs = store.Resolve("acme", chunks);
  BOOST_REQUIRE_MESSAGE(refs.ok(), refs.status().ToString());
  std::vector<std::string> out;
  for (const auto& r : *refs) {
    out.push_back(r ? r->document_id + ":" + std::to_string(r->index) : std::string("?"));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> LexicalDocs(const DocumentStore& store,
                                     const std::vector<std::string>& terms) {
  auto hits = store.lexical().Search("acme", Unweighted(terms), 100, {});
  BOOST_REQUIRE_MESSAGE(hits.ok(), hits.status().ToString());
  std::vector<uint32_t> chunks;
  for (const auto& h : hits->hits) chunks.push_back(h.chunk);
  return PublicIds(store, chunks);
}

std::vector<std::string> VectorDocs(const DocumentStore& store, uint32_t axis) {
  auto q = Axis(axis);
  auto hits = store.vectors().Search("acme", q.data(), kDim, 100, {});
  BOOST_REQUIRE_MESSAGE(hits.ok(), hits.status().ToString());
  std::vector<uint32_t> chunks;
  for (const auto& h : *hits) {
    if (h.score > 0.5f) chunks.push_back(h.chunk);
  }
  return PublicIds(store, chunks);
}

uint64_t MustCount(const DocumentStore& store) {
  auto n = store.Count("acme");
  BOOST_REQUIRE(n.ok());
  return *n;
}

void CheckSameRecord(const DocumentRecord& a, const DocumentRecord& b) {
  BOOST_TEST(a.id == b.id);
  BOOST_TEST(a.title == b.title);
  BOOST_TEST(a.content_hash == b.content_hash);
  BOOST_TEST(a.bytes == b.bytes);
  BOOST_TEST(a.chars == b.chars);
  BOOST_TEST(a.chunk_count == b.chunk_count);
  BOOST_TEST(a.created_at == b.created_at);
}

BOOST_AUTO_TEST_SUITE(document_store_test)

BOOST_AUTO_TEST_CASE(add_then_read_everything_back) {
  DocEnv e;
  NewDocument d = MakeDoc("doc_one", "First • שלום", {"alpha beta gamma", "delta alpha"}, 0, 1000);
  AddResult added = MustAdd(*e.store, d);
  BOOST_TEST(added.created);
  CheckSameRecord(added.record, d.record);

  auto got = e.store->Get("acme", "doc_one");
  BOOST_REQUIRE_MESSAGE(got.ok(), got.status().ToString());
  CheckSameRecord(*got, d.record);
  auto text = e.store->GetText("acme", "doc_one");
  BOOST_REQUIRE(text.ok());
  BOOST_TEST(*text == "alpha beta gamma\n\ndelta alpha");

  for (uint32_t i = 0; i < 2; ++i) {
    auto c = e.store->GetChunk("acme", "doc_one", i);
    BOOST_REQUIRE_MESSAGE(c.ok(), c.status().ToString());
    BOOST_TEST(c->index == i);
    BOOST_TEST(c->text == (std::vector<std::string>{"alpha beta gamma", "delta alpha"}[i]));
    BOOST_TEST(c->start_char == d.chunks[i].start_char);
    BOOST_TEST(c->end_char == d.chunks[i].end_char);
    BOOST_TEST(c->length == d.chunks[i].length);
  }
  auto past_end = e.store->GetChunk("acme", "doc_one", 2);
  BOOST_TEST(!past_end.ok());
  BOOST_TEST((past_end.status().kind() == ErrorKind::kNotFound));

  BOOST_TEST(MustCount(*e.store) == 1u);
  BOOST_TEST(LexicalDocs(*e.store, {"alpha"}) ==
             (std::vector<std::string>{"doc_one:0", "doc_one:1"}));
  BOOST_TEST(VectorDocs(*e.store, 1) == std::vector<std::string>{"doc_one:1"});
  auto vectors = e.store->vectors().Count();
  BOOST_REQUIRE(vectors.ok());
  BOOST_TEST(*vectors == 2u);

  for (const std::string id : {"doc_two", "doc_one\n", "doc_on"}) {
    auto missing = e.store->Get("acme", id);
    BOOST_TEST(!missing.ok());
    BOOST_TEST((missing.status().kind() == ErrorKind::kNotFound));
    BOOST_TEST((e.store->GetText("acme", id).status().kind() == ErrorKind::kNotFound));
  }
}

// Ids LMDB cannot hold as keys (empty, or longer than its 511-byte key limit)
// cannot name a stored document: they are unknown, not an internal error
// (Delete: "NotFound if unknown"; Missing: "the ids that do not exist").
// mdb_get refuses an empty key with MDB_BAD_VALSIZE, which Txn::Get turns into
// internal_error.
BOOST_AUTO_TEST_CASE(ids_lmdb_cannot_hold_are_unknown_not_internal_errors) {
  DocEnv e;
  MustAdd(*e.store, MakeDoc("doc_a", "A", {"a"}, 0, 1));
  for (const std::string& id : {std::string(), std::string(600, 'x')}) {
    BOOST_TEST_CONTEXT("id of " << id.size() << " bytes") {
      Status deleted = e.store->Delete("acme", id);
      BOOST_TEST((deleted.kind() == ErrorKind::kNotFound), deleted.ToString());
      auto got = e.store->Get("acme", id);
      BOOST_TEST((got.status().kind() == ErrorKind::kNotFound), got.status().ToString());
      auto missing = e.store->Missing("acme", {"doc_a", id});
      BOOST_TEST(missing.ok(), missing.status().ToString());
      if (missing.ok()) BOOST_TEST(*missing == std::vector<std::string>{id});
    }
  }
}

BOOST_AUTO_TEST_CASE(list_is_newest_first_and_count_follows) {
  DocEnv e;
  BOOST_TEST(MustCount(*e.store) == 0u);
  auto empty = e.store->List("acme");
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(empty->empty());

  MustAdd(*e.store, MakeDoc("doc_b", "B", {"bee"}, 0, 2000));
  MustAdd(*e.store, MakeDoc("doc_c", "C", {"sea"}, 1, 3000));
  MustAdd(*e.store, MakeDoc("doc_a", "A", {"ay"}, 2, 1000));
  BOOST_TEST(MustCount(*e.store) == 3u);
  auto list = e.store->List("acme");
  BOOST_REQUIRE(list.ok());
  BOOST_REQUIRE_EQUAL(list->size(), 3u);
  BOOST_TEST((*list)[0].id == "doc_c");
  BOOST_TEST((*list)[1].id == "doc_b");
  BOOST_TEST((*list)[2].id == "doc_a");
  BOOST_TEST((*list)[0].title == "C");
}

BOOST_AUTO_TEST_CASE(identical_content_is_stored_once) {
  DocEnv e;
  NewDocument first = MakeDoc("doc_first", "First", {"same words here"}, 0, 1000);
  MustAdd(*e.store, first);
  const size_t chunks = e.Entries("chunk_spans"), postings = e.Entries("lex_blocks");

  NewDocument again = MakeDoc("doc_again", "Another title", {"same words here"}, 2, 2000);
  BOOST_REQUIRE(again.record.content_hash == first.record.content_hash);
  AddResult r = MustAdd(*e.store, again);
  BOOST_TEST(!r.created);
  CheckSameRecord(r.record, first.record);  // the first record, not the new one

  BOOST_TEST(MustCount(*e.store) == 1u);
  BOOST_TEST((e.store->Get("acme", "doc_again").status().kind() == ErrorKind::kNotFound));
  BOOST_TEST((e.store->GetText("acme", "doc_again").status().kind() == ErrorKind::kNotFound));
  BOOST_TEST(!e.store->GetChunk("acme", "doc_again", 0).ok());
  BOOST_TEST(e.Entries("chunk_spans") == chunks);
  BOOST_TEST(e.Entries("lex_blocks") == postings);
  BOOST_TEST(e.Entries("doc_text") == 1u);
  BOOST_TEST(e.Entries("doc_by_hash") == 1u);
  BOOST_TEST(VectorDocs(*e.store, 2).empty());
  auto vectors = e.store->vectors().Count();
  BOOST_REQUIRE(vectors.ok());
  BOOST_TEST(*vectors == 1u);
  BOOST_TEST(LexicalDocs(*e.store, {"same"}) == std::vector<std::string>{"doc_first:0"});
}

// "Checked inside the write transaction, so two concurrent identical uploads
// store one."
BOOST_AUTO_TEST_CASE(concurrent_identical_adds_store_one) {
  DocEnv e;
  constexpr int kThreads = 8;
  std::vector<Result<AddResult>> results(kThreads, Status::Internal("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&e, &results, t] {
      results[t] = e.store->Add("acme", MakeDoc("doc_t" + std::to_string(t), "T",
                                                {"the very same text", "twice over"}, 0, t));
    });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  std::set<std::string> ids;
  for (const auto& r : results) {
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    created += r->created;
    ids.insert(r->record.id);
  }
  BOOST_TEST(created == 1);
  BOOST_TEST(ids.size() == 1u);
  BOOST_TEST(MustCount(*e.store) == 1u);
  BOOST_TEST(e.Entries("chunk_spans") == 2u);
  auto vectors = e.store->vectors().Count();
  BOOST_REQUIRE(vectors.ok());
  BOOST_TEST(*vectors == 2u);
}

BOOST_AUTO_TEST_CASE(delete_removes_everything_derived) {
  DocEnv e;
  NewDocument keep = MakeDoc("doc_keep", "Keep", {"shared kept words"}, 0, 1000);
  NewDocument gone = MakeDoc("doc_gone", "Gone", {"shared doomed words", "more doomed"}, 1, 2000);
  MustAdd(*e.store, keep);
  MustAdd(*e.store, gone);
  BOOST_TEST(LexicalDocs(*e.store, {"doomed"}) ==
             (std::vector<std::string>{"doc_gone:0", "doc_gone:1"}));
  BOOST_TEST(VectorDocs(*e.store, 1) == std::vector<std::string>{"doc_gone:0"});

  Status s = e.store->Delete("acme", "doc_gone");
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());

  BOOST_TEST((e.store->Get("acme", "doc_gone").status().kind() == ErrorKind::kNotFound));
  BOOST_TEST((e.store->GetText("acme", "doc_gone").status().kind() == ErrorKind::kNotFound));
  BOOST_TEST((e.store->GetChunk("acme", "doc_gone", 0).status().kind() == ErrorKind::kNotFound));
  BOOST_TEST((e.store->GetChunk("acme", "doc_gone", 1).status().kind() == ErrorKind::kNotFound));
  BOOST_TEST(LexicalDocs(*e.store, {"doomed", "more"}).empty());
  BOOST_TEST(VectorDocs(*e.store, 1).empty());
  BOOST_TEST(VectorDocs(*e.store, 2).empty());
  BOOST_TEST(MustCount(*e.store) == 1u);
  auto vectors = e.store->vectors().Count();
  BOOST_REQUIRE(vectors.ok());
  BOOST_TEST(*vectors == 1u);

  // The survivor is untouched, and its scores are those of a store that only
  // ever held it.
  BOOST_TEST(LexicalDocs(*e.store, {"shared"}) == std::vector<std::string>{"doc_keep:0"});
  BOOST_TEST(VectorDocs(*e.store, 0) == std::vector<std::string>{"doc_keep:0"});
  {
    DocEnv alone;
    MustAdd(*alone.store, keep);
    auto a = e.store->lexical().Search("acme", Unweighted({"shared", "kept"}), 10, {});
    auto b = alone.store->lexical().Search("acme", Unweighted({"shared", "kept"}), 10, {});
    BOOST_REQUIRE(a.ok() && b.ok());
    BOOST_REQUIRE_EQUAL(a->hits.size(), 1u);
    BOOST_REQUIRE_EQUAL(b->hits.size(), 1u);
    BOOST_TEST(a->hits[0].score == b->hits[0].score, boost::test_tools::tolerance(1e-12));
  }
  // Nothing of it is left in any database.
  BOOST_TEST(e.Entries("documents") == 1u);
  BOOST_TEST(e.Entries("doc_text") == 1u);
  BOOST_TEST(e.Entries("doc_by_hash") == 1u);
  BOOST_TEST(e.Entries("chunk_spans") == 1u);
  BOOST_TEST(e.Entries("lex_blocks") == 3u);    // shared, kept, words
  BOOST_TEST(e.Entries("lex_doc_freq") == 0u);  // each in one chunk: counted, not stored

  // The content hash is free again: the same text makes a new document.
  NewDocument back = MakeDoc("doc_back", "Back", {"shared doomed words", "more doomed"}, 1, 3000);
  AddResult r = MustAdd(*e.store, back);
  BOOST_TEST(r.created);
  BOOST_TEST(r.record.id == "doc_back");
  BOOST_TEST(LexicalDocs(*e.store, {"doomed"}) ==
             (std::vector<std::string>{"doc_back:0", "doc_back:1"}));

  // Unknown or already deleted: NotFound, nothing changes.
  BOOST_TEST((e.store->Delete("acme", "doc_gone").kind() == ErrorKind::kNotFound));
  BOOST_TEST((e.store->Delete("acme", "doc_never").kind() == ErrorKind::kNotFound));
  BOOST_TEST(MustCount(*e.store) == 2u);
}

BOOST_AUTO_TEST_CASE(delete_of_the_last_document_leaves_empty_indexes) {
  DocEnv e;
  MustAdd(*e.store, MakeDoc("doc_x", "X", {"one two", "two three"}, 0, 1));
  BOOST_REQUIRE(e.store->Delete("acme", "doc_x").ok());
  for (const char* db :
       {"documents", "doc_text", "doc_by_hash", "doc_by_num", "chunk_spans", "lex_blocks",
        "lex_doc_freq", "lex_norms", "vectors.0", "vectors.1", "vectors.2"}) {
    BOOST_TEST(e.Entries(db) == 0u, db);
  }
  BOOST_TEST(e.store->lexical().Search("acme", Unweighted({"two"}), 10, {})->hits.empty());
}

// The header asks the caller for id, title, content_hash, bytes and chars only;
// the store knows the chunks itself, so a record without chunk_count must still
// be deleted whole.
BOOST_AUTO_TEST_CASE(delete_does_not_depend_on_the_callers_chunk_count) {
  DocEnv e;
  NewDocument d = MakeDoc("doc_n", "N", {"first chunk words", "second chunk words"}, 0, 1);
  d.record.chunk_count = 0;  // not among the fields the header says the caller sets
  MustAdd(*e.store, d);
  auto got = e.store->Get("acme", "doc_n");
  BOOST_REQUIRE(got.ok());
  BOOST_TEST(got->chunk_count == 2u, "Add stored the caller's chunk_count, not the chunks'");
  BOOST_REQUIRE(e.store->Delete("acme", "doc_n").ok());
  BOOST_TEST(!e.store->GetChunk("acme", "doc_n", 0).ok(), "chunk 0 survived Delete");
  BOOST_TEST(LexicalDocs(*e.store, {"words"}).empty(), "postings survived Delete");
  BOOST_TEST(e.Entries("chunk_spans") == 0u);
  BOOST_TEST(e.Entries("lex_doc_freq") == 0u);
}

BOOST_AUTO_TEST_CASE(mismatched_vectors_are_refused_and_nothing_is_stored) {
  DocEnv e;
  NewDocument d = MakeDoc("doc_bad", "Bad", {"a b", "c d"}, 0, 1);
  d.vectors.pop_back();
  auto r = e.store->Add("acme", d);
  BOOST_TEST(!r.ok());
  BOOST_TEST((r.status().kind() == ErrorKind::kInternal));
  BOOST_TEST(MustCount(*e.store) == 0u);
  BOOST_TEST(e.Entries("doc_by_hash") == 0u);
  BOOST_TEST(e.Entries("chunk_spans") == 0u);
}

// A write that does not fit is refused whole: no record without its chunks, no
// postings without a record.
BOOST_AUTO_TEST_CASE(a_full_map_refuses_a_document_whole) {
  DocEnv e(1ull << 20);
  int stored = 0;
  Status last;
  for (int i = 0; i < 200 && last.ok(); ++i) {
    std::vector<std::string> chunks;
    for (int c = 0; c < 4; ++c) {
      std::string text;
      for (int w = 0; w < 400; ++w) {
        text += "w" + std::to_string(i) + "c" + std::to_string(c) + "x" + std::to_string(w) + " ";
      }
      chunks.push_back(text);
    }
    auto r = e.store->Add("acme", MakeDoc("doc_" + std::to_string(i), "T", chunks, 0, i));
    if (r.ok()) {
      ++stored;
    } else {
      last = r.status();
    }
  }
  BOOST_REQUIRE_MESSAGE(!last.ok(), "the map never filled");
  BOOST_TEST((last.kind() == ErrorKind::kStoreFull), last.ToString());
  BOOST_TEST(MustCount(*e.store) == static_cast<uint64_t>(stored));
  BOOST_TEST(e.Entries("doc_text") == static_cast<size_t>(stored));
  BOOST_TEST(e.Entries("doc_by_hash") == static_cast<size_t>(stored));
  BOOST_TEST(e.Entries("chunk_spans") == static_cast<size_t>(stored) * 4);
  auto vectors = e.store->vectors().Count();
  BOOST_REQUIRE(vectors.ok());
  BOOST_TEST(*vectors == static_cast<uint64_t>(stored) * 4);
  // The refused document left no postings: its unique words are not found.
  BOOST_TEST(LexicalDocs(*e.store, {"w" + std::to_string(stored) + "c0x0"}).empty());
  // The stored ones are all there.
  BOOST_TEST(LexicalDocs(*e.store, {"w0c0x0"}) == std::vector<std::string>{"doc_0:0"});
}

BOOST_AUTO_TEST_CASE(add_many_stores_a_batch_in_one_transaction) {
  DocEnv e;
  MustAdd(*e.store, MakeDoc("doc_old", "Old", {"old words"}, 0, 1));
  std::vector<NewDocument> batch = {MakeDoc("doc_a", "A", {"alpha one", "alpha two"}, 1, 2),
                                    MakeDoc("doc_b", "B", {"beta"}, 3, 3),
                                    MakeDoc("doc_c", "Old again", {"old words"}, 4, 4)};
  auto added = e.store->AddMany("acme", batch);
  BOOST_REQUIRE_MESSAGE(added.ok(), added.status().ToString());
  BOOST_REQUIRE_EQUAL(added->size(), 3u);
  BOOST_TEST((*added)[0].created);
  BOOST_TEST((*added)[0].record.id == "doc_a");
  BOOST_TEST((*added)[1].created);
  BOOST_TEST(!(*added)[2].created);  // the same text as doc_old
  BOOST_TEST((*added)[2].record.id == "doc_old");
  BOOST_TEST(MustCount(*e.store) == 3u);
  BOOST_TEST(LexicalDocs(*e.store, {"alpha"}) == std::vector<std::string>({"doc_a:0", "doc_a:1"}));
  BOOST_TEST(VectorDocs(*e.store, 3) == std::vector<std::string>{"doc_b:0"});
  // All or nothing: a refused document (its vectors do not match) stores none of the batch.
  std::vector<NewDocument> bad = {MakeDoc("doc_d", "D", {"delta"}, 5, 5),
                                  MakeDoc("doc_e", "E", {"epsilon"}, 6, 6)};
  bad[1].vectors.pop_back();
  BOOST_TEST(!e.store->AddMany("acme", bad).ok());
  BOOST_TEST(MustCount(*e.store) == 3u);
  BOOST_TEST(LexicalDocs(*e.store, {"delta"}).empty());
}

BOOST_AUTO_TEST_CASE(add_group_answers_each_document) {
  DocEnv e;
  NewDocument a = MakeDoc("doc_a", "A", {"alpha"}, 0, 1);
  NewDocument b = MakeDoc("doc_b", "B", {"beta"}, 1, 2);
  NewDocument b_again = MakeDoc("doc_b2", "B again", {"beta"}, 2, 3);
  NewDocument bad = MakeDoc("doc_bad", "Bad", {"gamma"}, 3, 4);
  bad.vectors.pop_back();
  NewDocument other = MakeDoc("doc_o", "Other tenant", {"omega"}, 4, 5);
  NewDocument over = MakeDoc("doc_x", "Over the limit", {"chi"}, 5, 6);
  // acme may hold 2 documents; doc_x would be its third.
  std::vector<DocumentStore::GroupItem> items = {{"acme", &a, 2},       {"acme", &b, 2},
                                                 {"acme", &b_again, 2}, {"acme", &bad, 2},
                                                 {"other", &other, 2},  {"acme", &over, 2}};
  auto results = e.store->AddGroup(items);
  BOOST_REQUIRE_MESSAGE(results.ok(), results.status().ToString());
  BOOST_REQUIRE_EQUAL(results->size(), items.size());
  const auto& r = *results;
  BOOST_TEST((r[0].ok() && r[0]->created));
  BOOST_TEST((r[1].ok() && r[1]->created));
  BOOST_TEST((r[2].ok() && !r[2]->created && r[2]->record.id == "doc_b"));
  BOOST_TEST((!r[3].ok() && r[3].status().kind() == ErrorKind::kInternal));
  BOOST_TEST((r[4].ok() && r[4]->created));
  BOOST_TEST((!r[5].ok() && r[5].status().code() == "document_limit"));
  BOOST_TEST(MustCount(*e.store) == 2u);
  auto others = e.store->Count("other");
  BOOST_REQUIRE(others.ok());
  BOOST_TEST(*others == 1u);
  BOOST_TEST(LexicalDocs(*e.store, {"gamma"}).empty());
  BOOST_TEST(LexicalDocs(*e.store, {"chi"}).empty());
  BOOST_TEST(LexicalDocs(*e.store, {"beta"}) == std::vector<std::string>{"doc_b:0"});
}

BOOST_AUTO_TEST_CASE(missing_lists_unknown_ids_in_order) {
  DocEnv e;
  MustAdd(*e.store, MakeDoc("doc_a", "A", {"a"}, 0, 1));
  MustAdd(*e.store, MakeDoc("doc_b", "B", {"b"}, 1, 2));
  auto m = e.store->Missing("acme", {"doc_x", "doc_a", "doc_y", "doc_b", "doc_x"});
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(*m == (std::vector<std::string>{"doc_x", "doc_y", "doc_x"}));
  auto none = e.store->Missing("acme", {"doc_b", "doc_a"});
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(none->empty());
  auto empty = e.store->Missing("acme", {});
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(empty->empty());
  BOOST_REQUIRE(e.store->Delete("acme", "doc_a").ok());
  auto after = e.store->Missing("acme", {"doc_a", "doc_b"});
  BOOST_REQUIRE(after.ok());
  BOOST_TEST(*after == std::vector<std::string>{"doc_a"});
}

BOOST_AUTO_TEST_CASE(index_identity_is_recorded_then_enforced) {
  TempDir dir;
  // Both stores' vec.N databases must be declared: the union of their names.
  std::vector<std::string> names = DocumentStore::Databases(kShards);
  for (const auto& n : DocumentStore::Databases(2)) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  auto opened = OpenEnv(dir.path(), names, 64ull << 20);
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  std::unique_ptr<Env> env = std::move(opened).value();
  {
    DocumentStore store(*env, kShards, VectorFormat::kFloat, WordAnalyzer);
    BOOST_REQUIRE(store.CheckIndexIdentity("hash-v1", 384).ok());  // records
    BOOST_TEST(store.CheckIndexIdentity("hash-v1", 384).ok());     // matches

    Status other_name = store.CheckIndexIdentity("openai:text-embedding-3-small", 384);
    BOOST_TEST(!other_name.ok());
    BOOST_TEST(other_name.code() == "index_mismatch");
    BOOST_TEST((other_name.kind() == ErrorKind::kInvalidArgument));
    // The message names both settings.
    BOOST_TEST(other_name.message().find("hash-v1") != std::string::npos);
    BOOST_TEST(other_name.message().find("openai:text-embedding-3-small") != std::string::npos);

    Status other_dim = store.CheckIndexIdentity("hash-v1", 256);
    BOOST_TEST(other_dim.code() == "index_mismatch");
    BOOST_TEST(other_dim.message().find("384") != std::string::npos);
    BOOST_TEST(other_dim.message().find("256") != std::string::npos);

    // A refused check recorded nothing: the original identity still matches.
    BOOST_TEST(store.CheckIndexIdentity("hash-v1", 384).ok());
  }
  {
    DocumentStore other_shards(*env, 2, VectorFormat::kFloat, WordAnalyzer);
    Status s = other_shards.CheckIndexIdentity("hash-v1", 384);
    BOOST_TEST(!s.ok());
    BOOST_TEST(s.code() == "index_mismatch");
    BOOST_TEST(s.message().find("shards") != std::string::npos);
  }
  // The identity survives reopening the environment.
  env.reset();
  auto reopened = OpenEnv(dir.path(), names, 64ull << 20);
  BOOST_REQUIRE(reopened.ok());
  env = std::move(reopened).value();
  DocumentStore again(*env, kShards, VectorFormat::kFloat, WordAnalyzer);
  BOOST_TEST(again.CheckIndexIdentity("hash-v1", 384).ok());
  BOOST_TEST(again.CheckIndexIdentity("hash-v2", 384).code() == "index_mismatch");
  // The store as another version left it: index_meta's "layout" says which.
  auto set_layout = [&](std::string_view layout) {
    auto txn = Txn::BeginWrite(*env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(txn->Put(env->Dbi("index_meta"), "layout", layout).ok());
    BOOST_REQUIRE(txn->Commit().ok());
  };
  {
    // A store from before tenants: an identity but no layout entry. Refused, not misread.
    auto txn = Txn::BeginWrite(*env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(txn->Del(env->Dbi("index_meta"), "layout").ok());
    BOOST_REQUIRE(txn->Commit().ok());
    DocumentStore old(*env, kShards, VectorFormat::kFloat, WordAnalyzer);
    Status s = old.CheckIndexIdentity("hash-v1", 384);
    BOOST_TEST(s.code() == "old_store_layout");
  }
  {
    // The previous layout (per-posting keys): refused, and the message names the command
    // that converts it.
    set_layout("tenant-keys-v1");
    DocumentStore old(*env, kShards, VectorFormat::kFloat, WordAnalyzer);
    Status s = old.CheckIndexIdentity("hash-v1", 384);
    BOOST_TEST(s.code() == "old_store_layout");
    BOOST_TEST(s.message().find("ragstream migrate") != std::string::npos, s.message());
  }
  // Dense ids before vector blocks, and postings of two varints each: opened as they are and
  // marked current, so that a binary of either version (which checks for its own layout)
  // refuses the store from then on, rather than miss the rows in blocks or misread the blocks
  // written now.
  for (const char* earlier : {kUnpackedStoreLayout, kTwoVarintStoreLayout}) {
    set_layout(earlier);
    DocumentStore store(*env, kShards, VectorFormat::kFloat, WordAnalyzer);
    BOOST_TEST(store.CheckIndexIdentity("hash-v1", 384).ok(), earlier);
    auto read = Txn::BeginRead(*env);
    BOOST_REQUIRE(read.ok());
    auto layout = read->Get(env->Dbi("index_meta"), "layout");
    BOOST_REQUIRE(layout.ok() && layout->has_value());
    BOOST_TEST(std::string(**layout) == "dense-ids-v4", earlier);
  }
  {
    // A layout this version does not know (a newer one) is refused, naming it.
    set_layout("dense-ids-v9");
    DocumentStore newer(*env, kShards, VectorFormat::kFloat, WordAnalyzer);
    Status s = newer.CheckIndexIdentity("hash-v1", 384);
    BOOST_TEST(s.code() == "index_mismatch");
    BOOST_TEST(s.message().find("dense-ids-v9") != std::string::npos, s.message());
  }
}

BOOST_AUTO_TEST_CASE(document_record_json_round_trip) {
  DocumentRecord d;
  d.id = "doc_0123456789abcdef01234567";
  d.title = "Quotes \" and \\ and 漢字 and \n";
  d.content_hash = "ab";
  d.bytes = 1ull << 40;
  d.chars = 12345;
  d.chunk_count = 7;
  d.created_at = 1700000000123;
  DocumentRecord back;
  BOOST_REQUIRE(DecodeDocument(EncodeDocument(d), back));
  CheckSameRecord(back, d);
  BOOST_TEST(!DecodeDocument("{}", back));  // no id
  BOOST_TEST(!DecodeDocument("not json", back));
  BOOST_TEST(!DecodeDocument("[1]", back));
}

// The test's second analyzer: upper-cased words, plus the title as a term.
std::vector<AnalyzedChunk> UpperAnalyzer(std::string_view title, std::string_view,
                                         const std::vector<std::string_view>& texts) {
  std::vector<AnalyzedChunk> out = WordAnalyzer(title, "", texts);
  for (auto& c : out) {
    for (auto& t : c.terms) {
      for (char& ch : t) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    c.terms.push_back("^" + std::string(title));
  }
  return out;
}

// A new analyzer re-indexes every chunk from its stored text, in small resumable batches,
// and leaves the postings exactly as if the documents had been added with it.
BOOST_AUTO_TEST_CASE(reindex_lexical_replaces_every_chunk_terms) {
  DocEnv e;
  MustAdd(*e.store, MakeDoc("doc_a", "Alpha", {"red fox", "blue fox jumps"}, 0, 1));
  MustAdd(*e.store, MakeDoc("doc_b", "Beta", {"green frog"}, 2, 2));
  BOOST_TEST(LexicalDocs(*e.store, {"fox"}).size() == 2u);
  int calls = 0;
  DocumentStore upper(*e.env, kShards, VectorFormat::kFloat,
                      [&calls](std::string_view title, std::string_view language,
                               const std::vector<std::string_view>& texts) {
                        calls += static_cast<int>(texts.size());
                        return UpperAnalyzer(title, language, texts);
                      });
  auto done = upper.ReindexLexical("upper-v1", /*batch_chunks=*/1);
  BOOST_REQUIRE_MESSAGE(done.ok(), done.status().ToString());
  BOOST_TEST(*done == 3u);
  BOOST_TEST(calls == 3);
  BOOST_TEST(LexicalDocs(upper, {"fox"}).empty());
  BOOST_TEST(LexicalDocs(upper, {"FOX"}) == (std::vector<std::string>{"doc_a:0", "doc_a:1"}));
  BOOST_TEST(LexicalDocs(upper, {"^Beta"}) == std::vector<std::string>{"doc_b:0"});
  auto chunk = upper.GetChunk("acme", "doc_a", 1);
  BOOST_REQUIRE(chunk.ok());
  BOOST_TEST(chunk->text == "blue fox jumps");
  BOOST_TEST(chunk->length == 3u);
  // Current now: nothing more to do, and the analyzer is not called.
  auto again = upper.ReindexLexical("upper-v1");
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(*again == 0u);
  BOOST_TEST(calls == 3);
  // Deleting analyses the text again with the (new) analyzer and leaves no posting behind.
  BOOST_REQUIRE(upper.Delete("acme", "doc_a").ok());
  BOOST_REQUIRE(upper.Delete("acme", "doc_b").ok());
  BOOST_TEST(e.Entries("lex_blocks") == 0u);
  BOOST_TEST(e.Entries("lex_doc_freq") == 0u);
}

// A rebuild cut short (a worker killed mid-batch) resumes where its last commit left it;
// a document added meanwhile, past the rebuild's position, is indexed by the rebuild, once;
// one deleted meanwhile leaves nothing.
BOOST_AUTO_TEST_CASE(reindex_lexical_resumes_and_indexes_documents_added_meanwhile_once) {
  DocEnv e;
  for (int i = 0; i < 6; ++i) {
    MustAdd(*e.store, MakeDoc("doc_" + std::to_string(i), "T" + std::to_string(i),
                              {"common word" + std::to_string(i), "common again"}, 0, i));
  }
  struct Killed {};
  int calls = 0;
  auto dying = [&calls](std::string_view title, std::string_view language,
                        const std::vector<std::string_view>& texts) {
    if (++calls == 3) throw Killed{};
    return UpperAnalyzer(title, language, texts);
  };
  {
    DocumentStore first(*e.env, kShards, VectorFormat::kFloat, dying);
    BOOST_CHECK_THROW(first.ReindexLexical("upper-v1", /*batch_chunks=*/2), Killed);
  }
  DocumentStore upper(*e.env, kShards, VectorFormat::kFloat, UpperAnalyzer);
  // During the rebuild: one document added, one deleted.
  BOOST_REQUIRE(upper.Add("acme", MakeDoc("doc_new", "New", {"common fresh"}, 1, 9)).ok());
  BOOST_REQUIRE(upper.Delete("acme", "doc_5").ok());
  auto done = upper.ReindexLexical("upper-v1", /*batch_chunks=*/2);
  BOOST_REQUIRE_MESSAGE(done.ok(), done.status().ToString());
  // 5 documents of 2 chunks and the new one: every chunk in the index exactly once.
  auto hits = upper.lexical().Search("acme", Unweighted({"COMMON"}), 100, {});
  BOOST_REQUIRE(hits.ok());
  BOOST_TEST(hits->hits.size() == 11u);
  BOOST_TEST(LexicalDocs(upper, {"FRESH"}) == std::vector<std::string>{"doc_new:0"});
  BOOST_TEST(LexicalDocs(upper, {"WORD5"}).empty());
  auto txn = Txn::BeginRead(*e.env);
  BOOST_REQUIRE(txn.ok());
  // COMMON is in 11 chunks: its df is its postings, counted (stored only above 128).
  BOOST_TEST(!txn->Get(e.env->Dbi("lex_doc_freq"), "acme/COMMON")->has_value());
  auto chunks = ReadCounter(*txn, e.env->Dbi("index_meta"), "bm25_chunks/acme");
  BOOST_REQUIRE(chunks.ok());
  BOOST_TEST(*chunks == 11u);
  BOOST_TEST(!txn->Get(e.env->Dbi("index_meta"), "reindex_cursor")->has_value());
}

// During a rolling restart two analyzers meet: a worker never writes or erases postings the
// index made with another analyzer (it would miss them on delete), until the index is rebuilt
// with its own.
BOOST_AUTO_TEST_CASE(a_worker_of_another_analyzer_version_does_not_touch_the_postings) {
  DocEnv e;
  DocumentStore v1(*e.env, kShards, VectorFormat::kFloat, {WordAnalyzer, "v1"});
  DocumentStore v2(*e.env, kShards, VectorFormat::kFloat, {UpperAnalyzer, "v2"});
  BOOST_REQUIRE(v1.ReindexLexical("v1").ok());  // records v1 (an empty store)
  MustAdd(v1, MakeDoc("doc_a", "A", {"alpha beta"}, 0, 1));
  auto refused = v2.Add("acme", MakeDoc("doc_b", "B", {"gamma"}, 1, 2));
  BOOST_TEST(refused.status().code() == "analyzer_mismatch");
  BOOST_TEST((refused.status().kind() == ErrorKind::kUnavailable));
  BOOST_TEST(v2.Delete("acme", "doc_a").code() == "analyzer_mismatch");
  BOOST_TEST(MustCount(v1) == 1u);
  BOOST_TEST(LexicalDocs(v1, {"alpha"}) == std::vector<std::string>{"doc_a:0"});
  // v2 rebuilds: now v1 is the one refused, and v2 deletes cleanly.
  BOOST_REQUIRE(v2.ReindexLexical("v2").ok());
  BOOST_TEST(v1.Add("acme", MakeDoc("doc_c", "C", {"delta"}, 2, 3)).status().code() ==
             "analyzer_mismatch");
  BOOST_TEST(LexicalDocs(v2, {"ALPHA"}) == std::vector<std::string>{"doc_a:0"});
  BOOST_REQUIRE(v2.Delete("acme", "doc_a").ok());
  BOOST_TEST(e.Entries("lex_blocks") == 0u);
  BOOST_TEST(e.Entries("lex_norms") == 0u);
}

// An empty store just records the analyzer.
BOOST_AUTO_TEST_CASE(reindex_lexical_of_an_empty_store_records_the_version) {
  DocEnv e;
  auto none = e.store->ReindexLexical("v9");
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(*none == 0u);
  auto txn = Txn::BeginRead(*e.env);
  BOOST_REQUIRE(txn.ok());
  auto v = txn->Get(e.env->Dbi("index_meta"), "analyzer");
  BOOST_REQUIRE(v.ok() && v->has_value());
  BOOST_TEST(std::string(**v) == "v9");
}

// The map grows online: documents keep being stored past the starting size, up to the
// maximum, then the last of the map stays for conversations; nothing is half-written.
BOOST_AUTO_TEST_CASE(the_map_grows_online_up_to_its_maximum) {
  TempDir dir;
  Env::Options options;
  options.path = dir.path();
  options.map_size_bytes = 1ull << 20;
  options.max_readers = 126;
  options.max_dbs = 64;
  options.databases = DocumentStore::Databases(kShards);
  options.grow_step_bytes = 1ull << 20;
  options.max_map_bytes = 6ull << 20;
  auto env = Env::Open(options);
  BOOST_REQUIRE(env.ok());
  DocumentStore store(**env, kShards, VectorFormat::kFloat, WordAnalyzer);
  int stored = 0;
  Status last;
  for (int i = 0; i < 400 && last.ok(); ++i) {
    std::string text;
    for (int w = 0; w < 300; ++w) text += "g" + std::to_string(i) + "x" + std::to_string(w) + " ";
    auto r = store.Add("acme", MakeDoc("doc_" + std::to_string(i), "T", {text}, 0, i));
    if (r.ok()) {
      ++stored;
    } else {
      last = r.status();
    }
  }
  BOOST_TEST((last.kind() == ErrorKind::kStoreFull), last.ToString());
  const Env::Usage u = (*env)->MapUsage();
  BOOST_TEST((*env)->growths() >= 2u);
  BOOST_TEST(u.map_bytes > (1ull << 20));
  BOOST_TEST(u.map_bytes <= (6ull << 20));
  // Far more than the starting megabyte holds, and every one of them whole.
  BOOST_TEST(stored > 20, stored);
  BOOST_TEST(MustCount(store) == static_cast<uint64_t>(stored));
  BOOST_TEST(LexicalDocs(store, {"g0x0"}) == std::vector<std::string>{"doc_0:0"});
  BOOST_TEST(LexicalDocs(store, {"g" + std::to_string(stored) + "x0"}).empty());
  // Room is left for conversations: a write transaction still commits.
  auto txn = Txn::BeginWrite(**env);
  BOOST_REQUIRE(txn.ok());
  BOOST_REQUIRE(
      txn->Put((*env)->Dbi("index_meta"), "answer/probe", std::string(64 << 10, 'a')).ok());
  BOOST_TEST(txn->Commit().ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::store
