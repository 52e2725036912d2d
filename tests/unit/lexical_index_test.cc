// LexicalIndex: BM25 against numbers worked out by hand, over a real LMDB
// environment.
#include "lib/store/lexical_index.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/store/lmdb.h"
#include "tests/unit/temp_store.h"

namespace ragstream::store {
namespace {

using ragstream::testing::TempDir;

// An LMDB environment holding only the lexical index's databases.
struct LexicalEnv {
  LexicalEnv() {
    Env::Options options;
    options.path = dir.path();
    options.map_size_bytes = 64ull << 20;
    options.max_readers = 126;
    options.databases = LexicalIndex::Databases();
    auto opened = Env::Open(options);
    if (!opened.ok()) throw std::runtime_error("Env::Open: " + opened.status().ToString());
    env = std::move(opened).value();
    index = std::make_unique<LexicalIndex>(*env);
  }
  ~LexicalEnv() {
    index.reset();
    env.reset();
  }

  // Writes / erases `batch` in a transaction of its own.
  void Write(const PostingBatch& batch) {
    auto txn = Txn::BeginWrite(*env);
    BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
    Status s = index->Write(*txn, "acme", batch);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    s = txn->Commit();
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  void Erase(const PostingBatch& batch) {
    auto txn = Txn::BeginWrite(*env);
    BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
    Status s = index->Erase(*txn, "acme", batch);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    s = txn->Commit();
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  // One chunk (its length its number of terms) per batch and transaction.
  void Add(uint32_t chunk, const std::vector<std::string>& terms) {
    PostingBatch batch;
    batch.Add(chunk, terms, static_cast<uint32_t>(terms.size()));
    Write(batch);
  }
  void Remove(uint32_t chunk, const std::vector<std::string>& terms) {
    PostingBatch batch;
    batch.Add(chunk, terms, static_cast<uint32_t>(terms.size()));
    Erase(batch);
  }
  std::vector<LexicalHit> Search(const std::vector<std::string>& query, size_t k = 10,
                                 const ChunkFilter& filter = {}) const {
    auto hits = index->Search("acme", Unweighted(query), k, filter);
    BOOST_REQUIRE_MESSAGE(hits.ok(), hits.status().ToString());
    return std::move(hits->hits);
  }
  // A raw value of the index's bookkeeping, nullopt if absent.
  std::optional<std::string> Raw(const char* db, const std::string& key) const {
    auto txn = Txn::BeginRead(*env);
    BOOST_REQUIRE(txn.ok());
    auto v = txn->Get(env->Dbi(db), key);
    BOOST_REQUIRE(v.ok());
    if (!v->has_value()) return std::nullopt;
    return std::string(**v);
  }
  // A total in index_meta ("bm25_chunks", "bm25_tokens"); absent reads as 0.
  uint64_t Meta(const std::string& key) const {
    auto v = Raw("index_meta", key + "/acme");
    if (!v) return 0;
    BOOST_REQUIRE_EQUAL(v->size(), sizeof(uint64_t));
    uint64_t x;
    std::memcpy(&x, v->data(), sizeof x);
    return x;
  }
  // The document frequency of `term` as the index keeps it, -1 if the term is gone: its
  // lex_doc_freq entry, which exists exactly when it is above 128, else the number of its
  // postings (counted from its blocks).
  int64_t Df(const std::string& term) const {
    auto v = Raw("lex_doc_freq", "acme/" + term);
    size_t postings = 0;
    for (const auto& block : Blocks(term)) postings += block.postings.size();
    if (!v) {
      BOOST_TEST(postings <= 128u, "no df entry for a term in " << postings << " chunks");
      return postings == 0 ? -1 : static_cast<int64_t>(postings);
    }
    BOOST_REQUIRE_EQUAL(v->size(), sizeof(uint32_t));
    uint32_t x;
    std::memcpy(&x, v->data(), sizeof x);
    BOOST_TEST(x > 128u, "a df entry for a term in only " << x << " chunks");
    BOOST_TEST(x == postings, "the stored df is not the number of postings");
    return x;
  }
  // The number of entries of a database (mdb_stat).
  size_t Entries(const char* db) const {
    auto txn = Txn::BeginRead(*env);
    BOOST_REQUIRE(txn.ok());
    MDB_stat stat;
    BOOST_REQUIRE_EQUAL(mdb_stat(txn->raw(), env->Dbi(db), &stat), 0);
    return stat.ms_entries;
  }

  struct Posting {
    uint32_t chunk, tf, length;
  };
  struct Block {
    uint32_t first = 0;  // the id in the key
    std::vector<Posting> postings;
  };
  // The blocks of `term` in lex_blocks, decoded by the layout lexical_index.h documents:
  // key "acme/" + term + '\0' + BE32(first id), value a tag byte 0xff, then per posting a
  // varint 2 x gap (from the previous id, from the key's id for the first) + (tf == 1), and
  // tf as a second varint when it is not 1; each posting's length is its chunk's, from
  // lex_norms (Norm).
  // A chunk's length as lex_norms keeps it: u16 number (chunk % 2040) of the value at key
  // "acme/" + BE32(chunk / 2040); 0 when absent.
  uint32_t Norm(uint32_t chunk) const {
    auto v = Raw("lex_norms", "acme/" + ChunkKeyPart(chunk / 2040));
    if (!v) return 0;
    BOOST_REQUIRE_EQUAL(v->size(), 2040u * 2);
    uint16_t n = 0;
    std::memcpy(&n, v->data() + (chunk % 2040) * 2, sizeof n);
    return n;
  }
  std::vector<Block> Blocks(const std::string& term) const {
    auto txn = Txn::BeginRead(*env);
    BOOST_REQUIRE(txn.ok());
    auto cur = Cursor::Open(*txn, env->Dbi("lex_blocks"));
    BOOST_REQUIRE(cur.ok());
    std::string prefix = "acme/" + term;
    prefix.push_back('\0');
    std::vector<Block> out;
    for (bool have = cur->SeekAtLeast(prefix);
         have && cur->key().substr(0, prefix.size()) == prefix; have = cur->Next()) {
      BOOST_REQUIRE_EQUAL(cur->key().size(), prefix.size() + 4);
      Block block;
      block.first = DecodeChunkKeyPart(cur->key().substr(prefix.size()));
      std::string_view v = cur->value();
      auto varint = [&v] {
        uint32_t x = 0;
        for (int shift = 0;; shift += 7) {
          BOOST_REQUIRE_MESSAGE(!v.empty() && shift <= 28, "truncated varint");
          const auto byte = static_cast<unsigned char>(v.front());
          v.remove_prefix(1);
          x |= static_cast<uint32_t>(byte & 0x7f) << shift;
          if (!(byte & 0x80)) return x;
        }
      };
      uint32_t chunk = block.first;
      BOOST_REQUIRE_MESSAGE(!v.empty() && v.front() == '\xff', "a block without the tag");
      v.remove_prefix(1);
      while (!v.empty()) {
        const uint32_t packed = varint();
        uint32_t tf = 1;
        if (!(packed & 1)) {
          tf = varint();
          BOOST_TEST(tf != 1u, "a term frequency of 1 written out");
        }
        const uint32_t gap = packed >> 1;
        chunk += gap;
        block.postings.push_back({chunk, tf, Norm(chunk)});
      }
      out.push_back(std::move(block));
    }
    return out;
  }

  TempDir dir;
  std::unique_ptr<Env> env;
  std::unique_ptr<LexicalIndex> index;
};

// BM25 by its definition, over chunks kept in memory: what the index must agree with.
struct Reference {
  struct Chunk {
    std::map<std::string, uint32_t> tf;
    uint32_t length = 0;
    std::vector<std::string> terms;  // as given (to erase them again)
  };
  std::map<uint32_t, Chunk> chunks;
  std::map<std::string, uint64_t> df;
  uint64_t tokens = 0;

  void Add(uint32_t id, const std::vector<std::string>& terms, uint32_t length) {
    BOOST_REQUIRE(chunks.count(id) == 0u);
    Chunk& c = chunks[id];
    c.terms = terms;
    c.length = length;
    for (const auto& t : terms) ++c.tf[t];
    for (const auto& [t, n] : c.tf) ++df[t];
    tokens += length;
  }
  void Remove(uint32_t id) {
    const Chunk& c = chunks.at(id);
    for (const auto& [t, n] : c.tf) {
      if (--df[t] == 0) df.erase(t);
    }
    tokens -= c.length;
    chunks.erase(id);
  }
  // Adds chunk `id` to `batch` as it is here.
  void AddTo(PostingBatch& batch, uint32_t id) const {
    const Chunk& c = chunks.at(id);
    batch.Add(id, c.terms, c.length);
  }
  // Every matching chunk that `filter` lets through, highest score first, equal scores by id.
  std::vector<LexicalHit> Search(const std::set<std::string>& query,
                                 const ChunkFilter& filter = {}) const {
    std::vector<LexicalHit> out;
    if (chunks.empty()) return out;
    const double avg = static_cast<double>(tokens) / static_cast<double>(chunks.size());
    for (const auto& [id, c] : chunks) {
      if (!filter.Contains(id)) continue;
      double score = 0;
      bool matched = false;
      for (const auto& t : query) {
        auto it = c.tf.find(t);
        if (it == c.tf.end()) continue;
        score += Bm25TermScore(Bm25Idf(chunks.size(), df.at(t)), it->second, c.length, avg);
        matched = true;
      }
      if (matched) out.push_back({score, id});
    }
    std::sort(out.begin(), out.end(), [](const LexicalHit& a, const LexicalHit& b) {
      return a.score != b.score ? a.score > b.score : a.chunk < b.chunk;
    });
    return out;
  }
};

constexpr double kTol = 1e-9;

// The index's top k for `query` equals the reference's: the same number of hits, each
// rank's score, and every hit a matching chunk with its true score, none twice (which chunk
// holds a rank may differ only between chunks of (nearly) equal score).
void CheckSearch(const LexicalEnv& e, const Reference& ref, const std::set<std::string>& query,
                 size_t k, const ChunkFilter& filter = {}) {
  const std::vector<LexicalHit> want = ref.Search(query, filter);
  const std::vector<LexicalHit> got =
      e.Search(std::vector<std::string>(query.begin(), query.end()), k, filter);
  BOOST_REQUIRE_EQUAL(got.size(), std::min(k, want.size()));
  std::set<uint32_t> seen;
  for (size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST(got[i].score == want[i].score, boost::test_tools::tolerance(kTol));
    if (i > 0) BOOST_TEST(got[i - 1].score >= got[i].score);
    auto same = std::find_if(want.begin(), want.end(),
                             [&](const LexicalHit& w) { return w.chunk == got[i].chunk; });
    BOOST_REQUIRE_MESSAGE(same != want.end(), "chunk " << got[i].chunk << " should not match");
    BOOST_TEST(same->score == got[i].score, boost::test_tools::tolerance(kTol));
    BOOST_TEST(seen.insert(got[i].chunk).second);
  }
}

// The stored document frequencies and totals equal the reference's, and every term's
// blocks hold exactly the reference's postings: in id order, none twice, each block
// between 1 and 128 postings, its key the id of its first posting.
void CheckStored(const LexicalEnv& e, const Reference& ref,
                 const std::set<std::string>& vocabulary) {
  BOOST_TEST(e.Meta("bm25_chunks") == ref.chunks.size());
  BOOST_TEST(e.Meta("bm25_tokens") == ref.tokens);
  size_t stored_df = 0;  // terms in more than 128 chunks have a lex_doc_freq entry
  for (const auto& [term, df] : ref.df) stored_df += df > 128;
  BOOST_TEST(e.Entries("lex_doc_freq") == stored_df);
  for (const auto& term : vocabulary) {
    BOOST_TEST_CONTEXT("term " << term) {
      auto it = ref.df.find(term);
      BOOST_TEST(e.Df(term) == (it == ref.df.end() ? -1 : static_cast<int64_t>(it->second)));
      std::vector<LexicalEnv::Posting> want;
      for (const auto& [id, c] : ref.chunks) {
        auto tf = c.tf.find(term);
        if (tf != c.tf.end()) want.push_back({id, tf->second, c.length});
      }
      std::vector<LexicalEnv::Posting> got;
      for (const auto& block : e.Blocks(term)) {
        BOOST_TEST(!block.postings.empty());
        BOOST_TEST(block.postings.size() <= 128u);
        if (!block.postings.empty()) BOOST_TEST(block.postings.front().chunk == block.first);
        got.insert(got.end(), block.postings.begin(), block.postings.end());
      }
      BOOST_REQUIRE_EQUAL(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        if (i > 0) BOOST_TEST(got[i - 1].chunk < got[i].chunk);
        BOOST_TEST(got[i].chunk == want[i].chunk);
        BOOST_TEST(got[i].tf == want[i].tf);
        BOOST_TEST(got[i].length == want[i].length);
      }
    }
  }
}

// A Zipf-like vocabulary: w0 is in most chunks, w59 in few.
std::string RandomWord(std::mt19937& rng) {
  double u = std::uniform_real_distribution<double>(0, 1)(rng);
  return "w" + std::to_string(static_cast<int>(u * u * u * 60));
}

// Chunks first, first + 1, ... of 5 to 34 random words each (length: the words, plus a
// little, so that length and number of terms differ), plus a word of their own.
void RandomCorpus(std::mt19937& rng, Reference& ref, uint32_t first, uint32_t count) {
  for (uint32_t id = first; id < first + count; ++id) {
    std::vector<std::string> terms;
    const int len = 5 + static_cast<int>(rng() % 30);
    for (int i = 0; i < len; ++i) terms.push_back(RandomWord(rng));
    terms.push_back("own" + std::to_string(id));
    ref.Add(id, terms, static_cast<uint32_t>(terms.size() + rng() % 3));
  }
}

std::set<std::string> Vocabulary(const Reference& ref) {
  std::set<std::string> v;
  for (const auto& [id, c] : ref.chunks) {
    for (const auto& [t, n] : c.tf) v.insert(t);
  }
  v.insert("never_indexed");
  return v;
}

std::set<std::string> RandomQuery(std::mt19937& rng) {
  std::set<std::string> query;
  const int words = 1 + static_cast<int>(rng() % 6);
  for (int i = 0; i < words; ++i) query.insert(RandomWord(rng));
  return query;
}

// Two indexes give exactly the same results: the same chunks in the same order, with
// identical scores.
void CheckSameResults(const LexicalEnv& a, const LexicalEnv& b, const std::set<std::string>& query,
                      size_t k, const ChunkFilter& filter = {}) {
  const std::vector<std::string> terms(query.begin(), query.end());
  auto x = a.Search(terms, k, filter);
  auto y = b.Search(terms, k, filter);
  BOOST_REQUIRE_EQUAL(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    BOOST_TEST(x[i].chunk == y[i].chunk);
    BOOST_TEST(x[i].score == y[i].score);
  }
}

// The hand-worked corpus's two documents, as the catalog would number their chunks: doc_a
// has chunks 10 and 11, doc_b chunk 12.
const std::map<std::string, std::pair<uint32_t, uint32_t>> kDocs = {{"doc_a", {10, 2}},
                                                                    {"doc_b", {12, 1}}};
uint32_t Id(const std::string& doc, uint32_t index) {
  return kDocs.at(doc).first + index;
}
// The filter of a list of documents: their chunks' id ranges.
ChunkFilter DocFilter(const std::vector<std::string>& docs) {
  ChunkFilter f;
  f.all = false;
  for (const auto& d : docs) {
    const auto [first, count] = kDocs.at(d);
    f.ranges.push_back({first, first + count});
  }
  std::sort(f.ranges.begin(), f.ranges.end());
  return f;
}

// The hand-worked corpus: three chunks, 13 tokens.
const std::vector<std::string> kA0 = {"cat", "sat", "mat"};                        // len 3
const std::vector<std::string> kA1 = {"cat", "dog", "cat", "ran", "far", "away"};  // len 6
const std::vector<std::string> kB0 = {"dog", "sat", "log", "today"};               // len 4

void AddCorpus(LexicalEnv& e) {
  e.Add(Id("doc_a", 0), kA0);
  e.Add(Id("doc_a", 1), kA1);
  e.Add(Id("doc_b", 0), kB0);
}

// N = 3 chunks, 13 tokens: avgdl = 13/3.
// IDF = ln(1 + (N - df + 0.5) / (df + 0.5)):
//   cat: df 2 -> ln(1 + 1.5/2.5) = ln(1.6)   = 0.47000362924573563
//   log: df 1 -> ln(1 + 2.5/1.5) = ln(8/3)   = 0.9808292530117263
// score = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl)), k1
// = 1.2, b = 0.75:
//   doc_a:0  cat tf 1, len 3: len/avgdl = 9/13,  denominator 1 + 1.2 * (0.25 +
//   0.75 * 9/13)
//            = 1 + 12/13 = 25/13           -> ln(1.6) * 2.2 * 13/25       =
//            0.5376841518571216
//   doc_a:1  cat tf 2, len 6: len/avgdl = 18/13, denominator 2 + 1.2 * (0.25 +
//   0.75 * 18/13)
//            = 2 + 20.1/13 = 46.1/13       -> ln(1.6) * 4.4 * 13/46.1     =
//            0.5831715312983966
//   doc_b:0  log tf 1, len 4: len/avgdl = 12/13, denominator 1 + 1.2 * (0.25 +
//   0.75 * 12/13)
//            = 1 + 14.7/13 = 27.7/13       -> ln(8/3) * 2.2 * 13/27.7
//            = 1.0126973514850315
// For the query {cat, log}: doc_b:0 > doc_a:1 > doc_a:0.
constexpr double kIdfCat = 0.47000362924573563;
constexpr double kIdfLog = 0.9808292530117263;
constexpr double kAvgLen = 13.0 / 3.0;
constexpr double kScoreA0 = 0.5376841518571216;
constexpr double kScoreA1 = 0.5831715312983966;
constexpr double kScoreB0 = 1.0126973514850315;

BOOST_AUTO_TEST_SUITE(lexical_index_test)

BOOST_AUTO_TEST_CASE(idf_and_term_score_match_the_hand_computation) {
  BOOST_TEST(Bm25Idf(3, 2) == kIdfCat, boost::test_tools::tolerance(kTol));
  BOOST_TEST(Bm25Idf(3, 1) == kIdfLog, boost::test_tools::tolerance(kTol));
  // A term in every chunk keeps a small positive IDF (the "+1" inside the log).
  BOOST_TEST(Bm25Idf(3, 3) == std::log(1.0 + 0.5 / 3.5), boost::test_tools::tolerance(kTol));
  BOOST_TEST(Bm25Idf(3, 3) > 0.0);
  BOOST_TEST(Bm25TermScore(kIdfCat, 1, 3, kAvgLen) == kScoreA0, boost::test_tools::tolerance(kTol));
  BOOST_TEST(Bm25TermScore(kIdfCat, 2, 6, kAvgLen) == kScoreA1, boost::test_tools::tolerance(kTol));
  BOOST_TEST(Bm25TermScore(kIdfLog, 1, 4, kAvgLen) == kScoreB0, boost::test_tools::tolerance(kTol));
  // At the average length the length normalisation is 1: idf * tf * 2.2 / (tf
  // + 1.2).
  BOOST_TEST(Bm25TermScore(1.0, 3, 5, 5.0) == 3 * 2.2 / 4.2, boost::test_tools::tolerance(kTol));
  // An empty corpus average does not divide by zero.
  BOOST_TEST(Bm25TermScore(1.0, 1, 5, 0.0) == 2.2 / 2.2, boost::test_tools::tolerance(kTol));
  // Saturation: more occurrences score more, but never past idf * (k1 + 1).
  BOOST_TEST(Bm25TermScore(1.0, 2, 4, 4.0) > Bm25TermScore(1.0, 1, 4, 4.0));
  BOOST_TEST(Bm25TermScore(1.0, 1000000, 4, 4.0) < 2.2);
}

// Blocks written before the tagged form (two varints a posting: gap, then tf) are read as they
// are, and the next write to the term rewrites its block in the tagged form.
BOOST_AUTO_TEST_CASE(blocks_of_the_previous_form_are_read_and_rewritten) {
  LexicalEnv e;
  AddCorpus(e);
  const auto before = e.Search({"cat", "log"});
  BOOST_REQUIRE_EQUAL(before.size(), 3u);
  {
    // "cat" as the previous form wrote it: doc_a:0 tf 1, doc_a:1 tf 2.
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    std::string key = "acme/cat";
    key.push_back('\0');
    key += ChunkKeyPart(Id("doc_a", 0));
    std::string old_form;
    old_form.push_back(0);  // the first posting's gap
    old_form.push_back(1);  // tf 1
    old_form.push_back(static_cast<char>(Id("doc_a", 1) - Id("doc_a", 0)));
    old_form.push_back(2);  // tf 2
    BOOST_REQUIRE(txn->Put(e.env->Dbi("lex_blocks"), key, old_form).ok());
    BOOST_REQUIRE(txn->Commit().ok());
  }
  const auto after = e.Search({"cat", "log"});
  BOOST_REQUIRE_EQUAL(after.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    BOOST_TEST(after[i].chunk == before[i].chunk);
    BOOST_TEST(after[i].score == before[i].score);
  }
  e.Add(Id("doc_b", 0) + 1, {"cat"});  // extends the term's block: in the tagged form now
  BOOST_TEST(e.Df("cat") == 3);
  const auto blocks = e.Blocks("cat");  // (Blocks requires the tag)
  BOOST_REQUIRE_EQUAL(blocks.size(), 1u);
  BOOST_REQUIRE_EQUAL(blocks[0].postings.size(), 3u);
  BOOST_TEST(blocks[0].postings[1].tf == 2u);
}

BOOST_AUTO_TEST_CASE(search_scores_and_ranks_like_the_hand_computation) {
  LexicalEnv e;
  AddCorpus(e);
  BOOST_TEST(e.Meta("bm25_chunks") == 3u);
  BOOST_TEST(e.Meta("bm25_tokens") == 13u);
  BOOST_TEST(e.Df("cat") == 2);
  BOOST_TEST(e.Df("sat") == 2);
  BOOST_TEST(e.Df("log") == 1);

  auto hits = e.Search({"cat", "log"});
  BOOST_REQUIRE_EQUAL(hits.size(), 3u);
  BOOST_TEST(hits[0].chunk == Id("doc_b", 0));
  BOOST_TEST(hits[0].score == kScoreB0, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[1].chunk == Id("doc_a", 1));
  BOOST_TEST(hits[1].score == kScoreA1, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[2].chunk == Id("doc_a", 0));
  BOOST_TEST(hits[2].score == kScoreA0, boost::test_tools::tolerance(kTol));

  // Term order in the query does not matter.
  auto again = e.Search({"log", "cat"});
  BOOST_REQUIRE_EQUAL(again.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    BOOST_TEST(again[i].chunk == hits[i].chunk);
    BOOST_TEST(again[i].score == hits[i].score, boost::test_tools::tolerance(kTol));
  }
}

BOOST_AUTO_TEST_CASE(weights_scale_each_term_and_the_query_mass) {
  LexicalEnv e;
  AddCorpus(e);
  // "log" alone: B0 only, with the score of the hand computation; weight 0.5 halves it; a
  // term given twice weighs 2.
  auto one = e.index->Search("acme", {{"log", 1.0}}, 10, {});
  auto half = e.index->Search("acme", {{"log", 0.5}}, 10, {});
  auto twice = e.index->Search("acme", Unweighted({"log", "log"}), 10, {});
  BOOST_REQUIRE(one.ok() && half.ok() && twice.ok());
  BOOST_REQUIRE_EQUAL(one->hits.size(), 1u);
  BOOST_TEST(one->hits[0].chunk == Id("doc_b", 0));
  BOOST_TEST(one->hits[0].score == kScoreB0, boost::test_tools::tolerance(kTol));
  BOOST_REQUIRE_EQUAL(half->hits.size(), 1u);
  BOOST_REQUIRE_EQUAL(twice->hits.size(), 1u);
  BOOST_TEST(half->hits[0].score == one->hits[0].score / 2, boost::test_tools::tolerance(kTol));
  BOOST_TEST(twice->hits[0].score == one->hits[0].score * 2, boost::test_tools::tolerance(kTol));
  // The mass is weight x IDF; a term the tenant does not have counts at the IDF of df 0.
  BOOST_TEST(one->query_mass == Bm25Idf(3, 1), boost::test_tools::tolerance(kTol));
  auto unknown = e.index->Search("acme", {{"log", 1.0}, {"zebra", 0.5}}, 10, {});
  BOOST_REQUIRE(unknown.ok());
  BOOST_TEST(unknown->query_mass == Bm25Idf(3, 1) + 0.5 * Bm25Idf(3, 0),
             boost::test_tools::tolerance(kTol));
  BOOST_REQUIRE_EQUAL(unknown->hits.size(), 1u);
  BOOST_TEST(unknown->hits[0].score == one->hits[0].score, boost::test_tools::tolerance(kTol));
  // An optional term the tenant does not have adds nothing to the mass; one it has counts.
  WeightedTerm guess{"zebra", 1.0, true};
  auto optional = e.index->Search("acme", {{"log", 1.0}, guess}, 10, {});
  BOOST_REQUIRE(optional.ok());
  BOOST_TEST(optional->query_mass == Bm25Idf(3, 1), boost::test_tools::tolerance(kTol));
  WeightedTerm known{"cat", 1.0, true};
  auto counted = e.index->Search("acme", {{"log", 1.0}, known}, 10, {});
  BOOST_REQUIRE(counted.ok());
  BOOST_TEST(counted->query_mass == Bm25Idf(3, 1) + Bm25Idf(3, 2),
             boost::test_tools::tolerance(kTol));
  // Zero or negative weights are ignored.
  auto none = e.index->Search("acme", {{"log", 0.0}, {"cat", -1.0}}, 10, {});
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(none->hits.empty());
  BOOST_TEST(none->query_mass == 0.0);
}

BOOST_AUTO_TEST_CASE(a_chunk_matching_two_terms_sums_them) {
  LexicalEnv e;
  AddCorpus(e);
  // "dog": df 2 (doc_a:1, doc_b:0), so the same IDF as "cat".
  //   doc_a:1 gets cat tf 2 + dog tf 1 (len 6): denominators 46.1/13 and 1
  //   + 20.1/13 = 33.1/13 doc_b:0 gets dog tf 1 (len 4): 27.7/13.  doc_a:0 gets
  //   cat tf 1 (len 3): 25/13. a:1 = 0.5831715312983966 + 0.40610585487698 =
  //   0.9892773861753766, a:0 = 0.5376841518571216, b:0 = ln(1.6) * 2.2 *
  //   13/27.7 = 0.4852745052862108.
  const double a1 = 0.9892773861753766;
  const double b0 = 0.4852745052862108;
  auto hits = e.Search({"cat", "dog"});
  BOOST_REQUIRE_EQUAL(hits.size(), 3u);
  BOOST_TEST(hits[0].chunk == Id("doc_a", 1));
  BOOST_TEST(hits[0].score == a1, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[1].chunk == Id("doc_a", 0));
  BOOST_TEST(hits[1].score == kScoreA0, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[2].chunk == Id("doc_b", 0));
  BOOST_TEST(hits[2].score == b0, boost::test_tools::tolerance(kTol));
}

BOOST_AUTO_TEST_CASE(k_keeps_the_best) {
  LexicalEnv e;
  AddCorpus(e);
  auto one = e.Search({"cat", "log"}, 1);
  BOOST_REQUIRE_EQUAL(one.size(), 1u);
  BOOST_TEST(one[0].chunk == Id("doc_b", 0));
  auto two = e.Search({"cat", "log"}, 2);
  BOOST_REQUIRE_EQUAL(two.size(), 2u);
  BOOST_TEST(two[0].chunk == Id("doc_b", 0));
  BOOST_TEST(two[1].chunk == Id("doc_a", 1));
  BOOST_TEST(e.Search({"cat", "log"}, 0).empty());
}

BOOST_AUTO_TEST_CASE(remove_restores_df_totals_and_scores) {
  LexicalEnv e;
  AddCorpus(e);
  e.Remove(Id("doc_a", 1), kA1);
  BOOST_TEST(e.Meta("bm25_chunks") == 2u);
  BOOST_TEST(e.Meta("bm25_tokens") == 7u);
  BOOST_TEST(e.Df("cat") == 1);
  BOOST_TEST(e.Df("dog") == 1);
  BOOST_TEST(e.Df("ran") == -1);  // df 0 is deleted, not stored as 0
  BOOST_TEST(e.Df("away") == -1);
  BOOST_TEST(e.Blocks("ran").empty());  // and the term's last block goes with it
  BOOST_TEST(e.Search({"ran"}).empty());

  // The same as a corpus that never had doc_a:1.
  LexicalEnv fresh;
  fresh.Add(Id("doc_a", 0), kA0);
  fresh.Add(Id("doc_b", 0), kB0);
  for (const auto& query : std::vector<std::vector<std::string>>{
           {"cat", "log"}, {"cat", "dog"}, {"sat"}, {"today", "mat", "far"}}) {
    auto got = e.Search(query);
    auto want = fresh.Search(query);
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      BOOST_TEST(got[i].chunk == want[i].chunk);
      BOOST_TEST(got[i].score == want[i].score, boost::test_tools::tolerance(kTol));
    }
  }
  // By hand: N = 2, 7 tokens, avgdl 3.5; cat and log both df 1: IDF ln(2).
  //   doc_a:0 cat len 3: ln 2 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 3/3.5)) =
  //   0.7361701090084937 doc_b:0 log len 4: ln 2 * 2.2 / (1 + 1.2 * (0.25 +
  //   0.75 * 4/3.5)) = 0.6548752503449791
  auto hits = e.Search({"cat", "log"});
  BOOST_REQUIRE_EQUAL(hits.size(), 2u);
  BOOST_TEST(hits[0].chunk == Id("doc_a", 0));
  BOOST_TEST(hits[0].score == 0.7361701090084937, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[1].chunk == Id("doc_b", 0));
  BOOST_TEST(hits[1].score == 0.6548752503449791, boost::test_tools::tolerance(kTol));

  // Removing everything leaves an empty index.
  e.Remove(Id("doc_a", 0), kA0);
  e.Remove(Id("doc_b", 0), kB0);
  BOOST_TEST(e.Meta("bm25_chunks") == 0u);
  BOOST_TEST(e.Meta("bm25_tokens") == 0u);
  BOOST_TEST(e.Df("cat") == -1);
  BOOST_TEST(e.Df("sat") == -1);
  BOOST_TEST(e.Entries("lex_blocks") == 0u);
  BOOST_TEST(e.Entries("lex_doc_freq") == 0u);
  BOOST_TEST(e.Search({"cat", "log", "sat"}).empty());
}

BOOST_AUTO_TEST_CASE(filter_restricts_to_chunk_ranges) {
  LexicalEnv e;
  AddCorpus(e);
  auto only_a = e.Search({"cat", "log"}, 10, DocFilter({"doc_a"}));
  BOOST_REQUIRE_EQUAL(only_a.size(), 2u);
  BOOST_TEST(only_a[0].chunk == Id("doc_a", 1));
  BOOST_TEST(only_a[1].chunk == Id("doc_a", 0));
  // Filtering does not change the statistics: the scores are the unfiltered
  // ones.
  BOOST_TEST(only_a[0].score == kScoreA1, boost::test_tools::tolerance(kTol));
  BOOST_TEST(only_a[1].score == kScoreA0, boost::test_tools::tolerance(kTol));

  auto only_b = e.Search({"cat", "log"}, 10, DocFilter({"doc_b"}));
  BOOST_REQUIRE_EQUAL(only_b.size(), 1u);
  BOOST_TEST(only_b[0].chunk == Id("doc_b", 0));

  // Ids no chunk has, and no ids at all.
  BOOST_TEST(e.Search({"cat", "log"}, 10, ChunkFilter{false, {{100, 110}}}).empty());
  BOOST_TEST(e.Search({"cat", "log"}, 10, ChunkFilter{false, {}}).empty());
  // A range's end is not in it: [a:0, a:1) is a:0 alone; [a:1, a:1) is nothing.
  auto first_only =
      e.Search({"cat", "log"}, 10, ChunkFilter{false, {{Id("doc_a", 0), Id("doc_a", 1)}}});
  BOOST_REQUIRE_EQUAL(first_only.size(), 1u);
  BOOST_TEST(first_only[0].chunk == Id("doc_a", 0));
  BOOST_TEST(
      e.Search({"cat", "log"}, 10, ChunkFilter{false, {{Id("doc_a", 1), Id("doc_a", 1)}}}).empty());
  BOOST_TEST(e.Search({"cat", "log"}, 10, DocFilter({"doc_b", "doc_a"})).size() == 3u);
  // Two ranges with a hole: a:0 and b:0, not a:1.
  auto holed =
      e.Search({"cat", "log"}, 10,
               ChunkFilter{false, {{Id("doc_a", 0), Id("doc_a", 1)}, {Id("doc_b", 0), 20}}});
  BOOST_REQUIRE_EQUAL(holed.size(), 2u);
  BOOST_TEST(holed[0].chunk == Id("doc_b", 0));
  BOOST_TEST(holed[1].chunk == Id("doc_a", 0));
}

BOOST_AUTO_TEST_CASE(absent_terms_give_no_hits) {
  LexicalEnv e;
  AddCorpus(e);
  BOOST_TEST(e.Search({"zebra"}).empty());
  BOOST_TEST(e.Search({}).empty());
  // A term that is a prefix of an indexed term does not match it.
  BOOST_TEST(e.Search({"ca"}).empty());
  BOOST_TEST(e.Search({"lo"}).empty());
  // An absent term next to a present one adds nothing.
  auto hits = e.Search({"zebra", "log"});
  BOOST_REQUIRE_EQUAL(hits.size(), 1u);
  BOOST_TEST(hits[0].score == kScoreB0, boost::test_tools::tolerance(kTol));
}

BOOST_AUTO_TEST_CASE(empty_index_gives_nothing) {
  LexicalEnv e;
  BOOST_TEST(e.Search({"cat"}).empty());
  BOOST_TEST(e.Search({}).empty());
  BOOST_TEST(e.Search({"cat"}, 10, DocFilter({"doc_a"})).empty());
  // An empty batch writes nothing.
  e.Write(PostingBatch());
  BOOST_TEST(e.Meta("bm25_chunks") == 0u);
  BOOST_TEST(e.Entries("lex_blocks") == 0u);
  BOOST_TEST(e.Entries("lex_doc_freq") == 0u);
}

BOOST_AUTO_TEST_CASE(ties_order_by_chunk_id) {
  LexicalEnv e;
  // Written out of id order, each in its own transaction.
  e.Add(7, {"same", "words"});
  e.Add(3, {"same", "words"});
  e.Add(5, {"same", "words"});
  e.Add(4, {"other", "words"});
  auto hits = e.Search({"same"});
  BOOST_REQUIRE_EQUAL(hits.size(), 3u);
  BOOST_TEST(hits[0].score == hits[2].score);
  BOOST_TEST(hits[0].chunk == 3u);
  BOOST_TEST(hits[1].chunk == 5u);
  BOOST_TEST(hits[2].chunk == 7u);
  // k cuts the tie by id too.
  auto two = e.Search({"same"}, 2);
  BOOST_REQUIRE_EQUAL(two.size(), 2u);
  BOOST_TEST(two[0].chunk == 3u);
  BOOST_TEST(two[1].chunk == 5u);
}

BOOST_AUTO_TEST_CASE(chunk_ids_round_trip_through_the_key) {
  // Big-endian key ids and varint gaps, including ids with zero and 0xFF bytes and the
  // largest; written in a scrambled order, one chunk per transaction, and all in one batch.
  const std::vector<uint32_t> ids = {0, 1, 255, 256, 65536, 0x01000000u, 0xFFFFFFFFu};
  const std::vector<size_t> order = {3, 6, 0, 5, 1, 4, 2};
  LexicalEnv e, batched;
  PostingBatch all;
  for (size_t i : order) {
    const std::vector<std::string> terms = {"word", "pad" + std::to_string(ids[i])};
    e.Add(ids[i], terms);
    all.Add(ids[i], terms, 2);
  }
  batched.Write(all);
  for (const LexicalEnv* env : {&e, &batched}) {
    auto hits = env->Search({"word"}, 100);
    BOOST_REQUIRE_EQUAL(hits.size(), ids.size());
    for (size_t i = 0; i < hits.size(); ++i) {
      BOOST_TEST(hits[i].chunk == ids[i]);  // equal scores: by chunk id
    }
    BOOST_TEST(env->Df("word") == static_cast<int64_t>(ids.size()));
    for (uint32_t id : ids) {
      auto own = env->Search({"pad" + std::to_string(id)});
      BOOST_REQUIRE_EQUAL(own.size(), 1u);
      BOOST_TEST(own[0].chunk == id);
    }
    auto high = env->Search({"word"}, 100, ChunkFilter{false, {{0xFFFFFF00u, 0xFFFFFFFFu}}});
    BOOST_TEST(high.empty());  // the end of a range is not in it
  }
}

// A batch of many chunks, several batches, and one chunk per batch make the same index: the
// same document frequencies, totals and postings, and searches with the same results and
// scores, which are BM25's over every chunk.
BOOST_AUTO_TEST_CASE(batches_of_any_size_equal_chunk_by_chunk_and_bm25) {
  std::mt19937 rng(11);
  Reference ref;
  const uint32_t first = 100, count = 400;
  RandomCorpus(rng, ref, first, count);
  LexicalEnv by_chunk, one_batch, several;
  // One chunk per batch, a transaction every 7 chunks.
  for (uint32_t g = first; g < first + count; g += 7) {
    auto txn = Txn::BeginWrite(*by_chunk.env);
    BOOST_REQUIRE(txn.ok());
    for (uint32_t id = g; id < std::min(g + 7, first + count); ++id) {
      PostingBatch batch;
      ref.AddTo(batch, id);
      BOOST_REQUIRE(by_chunk.index->Write(*txn, "acme", batch).ok());
    }
    BOOST_REQUIRE(txn->Commit().ok());
  }
  // All of them in one batch.
  PostingBatch all;
  for (uint32_t id = first; id < first + count; ++id) ref.AddTo(all, id);
  BOOST_TEST(all.chunks() == count);
  one_batch.Write(all);
  // Batches of 1 to 90 chunks, one or two a transaction.
  for (uint32_t id = first; id < first + count;) {
    auto txn = Txn::BeginWrite(*several.env);
    BOOST_REQUIRE(txn.ok());
    const int batches = 1 + static_cast<int>(rng() % 2);
    for (int b = 0; b < batches && id < first + count; ++b) {
      PostingBatch batch;
      const uint32_t n = 1 + static_cast<uint32_t>(rng() % 90);
      for (uint32_t end = std::min(id + n, first + count); id < end; ++id) ref.AddTo(batch, id);
      BOOST_REQUIRE(several.index->Write(*txn, "acme", batch).ok());
    }
    BOOST_REQUIRE(txn->Commit().ok());
  }
  // The common terms really span several blocks.
  BOOST_TEST(one_batch.Blocks("w0").size() >= 3u);
  BOOST_TEST(by_chunk.Blocks("w0").size() >= 3u);
  const auto vocabulary = Vocabulary(ref);
  for (const LexicalEnv* e : {&by_chunk, &one_batch, &several}) CheckStored(*e, ref, vocabulary);

  const ChunkFilter filter{false, {{150, 180}, {300, 301}, {420, 470}}};
  for (int q = 0; q < 150; ++q) {
    const auto query = RandomQuery(rng);
    const size_t k = q % 10 == 0 ? 10000 : 1 + rng() % 12;
    const ChunkFilter f = q % 4 == 0 ? filter : ChunkFilter{};
    for (const LexicalEnv* e : {&by_chunk, &one_batch, &several}) CheckSearch(*e, ref, query, k, f);
    CheckSameResults(by_chunk, one_batch, query, k, f);
    CheckSameResults(by_chunk, several, query, k, f);
  }
}

// A term in 1000 chunks has its postings in several blocks of at most 128: a search finds
// every one of them, with its own tf and length, and its df counts them all.
BOOST_AUTO_TEST_CASE(a_common_term_spans_many_blocks_and_is_found_completely) {
  LexicalEnv e;
  Reference ref;
  const uint32_t first = 5, count = 1000;
  for (uint32_t id = first; id < first + count; ++id) {
    std::vector<std::string> terms(1 + id % 3, "common");
    terms.push_back("own" + std::to_string(id));
    if (id % 2 == 0) terms.push_back("even");
    ref.Add(id, terms, static_cast<uint32_t>(terms.size() + id % 4));
  }
  // 700 chunks in one batch, then the rest in batches of 10, a transaction each.
  PostingBatch big;
  for (uint32_t id = first; id < first + 700; ++id) ref.AddTo(big, id);
  e.Write(big);
  for (uint32_t id = first + 700; id < first + count; id += 10) {
    PostingBatch batch;
    for (uint32_t c = id; c < id + 10; ++c) ref.AddTo(batch, c);
    e.Write(batch);
  }
  BOOST_TEST(e.Df("common") == 1000);
  BOOST_TEST(e.Df("even") == 500);
  BOOST_TEST(e.Meta("bm25_chunks") == count);
  BOOST_TEST(e.Blocks("common").size() >= 8u);  // at least ceil(1000 / 128)
  CheckStored(e, ref, {"common", "even", "own5", "own704", "own705", "own1004", "absent"});

  auto hits = e.Search({"common"}, 5000);
  BOOST_REQUIRE_EQUAL(hits.size(), count);
  std::set<uint32_t> found;
  for (const auto& h : hits) found.insert(h.chunk);
  BOOST_TEST(found.size() == count);
  BOOST_TEST(*found.begin() == first);
  BOOST_TEST(*found.rbegin() == first + count - 1);
  for (size_t k : {1u, 3u, 50u, 127u, 128u, 129u, 999u, 1000u, 5000u}) {
    CheckSearch(e, ref, {"common"}, k);
    CheckSearch(e, ref, {"common", "even"}, k);
  }
  // Ranges that cut across blocks.
  const ChunkFilter across{false, {{120, 140}, {250, 260}, {600, 610}}};
  auto filtered = e.Search({"common"}, 100, across);
  BOOST_TEST(filtered.size() == 40u);
  for (const auto& h : filtered) BOOST_TEST(across.Contains(h.chunk));
  CheckSearch(e, ref, {"common", "even"}, 7, across);
  // A rare term next to the common one lifts its chunk to the top.
  auto lifted = e.Search({"common", "own777"}, 1);
  BOOST_REQUIRE_EQUAL(lifted.size(), 1u);
  BOOST_TEST(lifted[0].chunk == 777u);
}

// Erasing chunks in the middle of a multi-block list -- across a block boundary, a whole
// block's worth, scattered ones, the last -- removes exactly their postings; writing them
// back (below ids already there) restores them; erasing everything leaves nothing behind.
BOOST_AUTO_TEST_CASE(erase_in_the_middle_of_a_multi_block_list) {
  LexicalEnv e;
  Reference ref;
  const uint32_t count = 1000;
  for (uint32_t id = 0; id < count; ++id) {
    std::vector<std::string> terms(1 + id % 3, "common");
    terms.push_back("own" + std::to_string(id));
    if (id % 2 == 0) terms.push_back("even");
    if (id >= 900) terms.push_back("tail");
    ref.Add(id, terms, static_cast<uint32_t>(terms.size() + id % 5));
  }
  {
    PostingBatch all;
    for (uint32_t id = 0; id < count; ++id) ref.AddTo(all, id);
    e.Write(all);
  }
  const uint64_t tokens_before = e.Meta("bm25_tokens");
  BOOST_TEST(tokens_before == ref.tokens);
  std::vector<uint32_t> erased;
  for (uint32_t id = 100; id < 140; ++id) erased.push_back(id);
  for (uint32_t id = 256; id < 384; ++id) erased.push_back(id);
  for (uint32_t id = 600; id < 900; id += 10) erased.push_back(id);
  erased.push_back(999);
  uint64_t erased_tokens = 0;
  {
    PostingBatch batch;
    // Added in a scrambled order: the batch sorts.
    std::vector<uint32_t> scrambled = erased;
    std::shuffle(scrambled.begin(), scrambled.end(), std::mt19937(3));
    for (uint32_t id : scrambled) {
      ref.AddTo(batch, id);
      erased_tokens += ref.chunks.at(id).length;
    }
    e.Erase(batch);
  }
  for (uint32_t id : erased) ref.Remove(id);
  BOOST_TEST(e.Df("common") == static_cast<int64_t>(count - erased.size()));
  BOOST_TEST(e.Meta("bm25_chunks") == count - erased.size());
  BOOST_TEST(e.Meta("bm25_tokens") == tokens_before - erased_tokens);
  for (uint32_t id : erased) BOOST_TEST(e.Df("own" + std::to_string(id)) == -1);
  auto vocabulary = Vocabulary(ref);
  for (uint32_t id : erased) vocabulary.insert("own" + std::to_string(id));
  CheckStored(e, ref, vocabulary);

  const std::set<uint32_t> gone(erased.begin(), erased.end());
  auto hits = e.Search({"common"}, 5000);
  BOOST_TEST(hits.size() == count - erased.size());
  for (const auto& h : hits) BOOST_TEST(gone.count(h.chunk) == 0u, "erased chunk " << h.chunk);
  for (uint32_t id : {100u, 127u, 128u, 139u, 256u, 383u, 600u, 890u, 999u}) {
    BOOST_TEST(e.Search({"own" + std::to_string(id)}).empty());
  }
  // Their neighbours stay.
  for (uint32_t id : {99u, 140u, 255u, 384u, 601u, 998u}) {
    auto own = e.Search({"own" + std::to_string(id)});
    BOOST_REQUIRE_EQUAL(own.size(), 1u);
    BOOST_TEST(own[0].chunk == id);
  }
  std::mt19937 rng(5);
  const std::vector<std::string> words = {"common", "even", "tail", "own99", "own130", "own500"};
  for (int q = 0; q < 60; ++q) {
    std::set<std::string> query;
    for (int i = 0; i < 3; ++i) query.insert(words[rng() % words.size()]);
    CheckSearch(e, ref, query, 1 + rng() % 10);
    CheckSearch(e, ref, query, 1 + rng() % 10, ChunkFilter{false, {{90, 400}}});
  }

  // Written back: the whole-block range goes below ids already there.
  {
    PostingBatch batch;
    for (uint32_t id = 256; id < 384; ++id) {
      std::vector<std::string> terms(1 + id % 3, "common");
      terms.push_back("own" + std::to_string(id));
      if (id % 2 == 0) terms.push_back("even");
      ref.Add(id, terms, static_cast<uint32_t>(terms.size() + id % 5));
      ref.AddTo(batch, id);
    }
    e.Write(batch);
  }
  CheckStored(e, ref, vocabulary);
  CheckSearch(e, ref, {"common"}, 5000);
  CheckSearch(e, ref, {"common", "even", "own300"}, 3);

  // Everything erased, in three batches and out of order: the odd ids, then the even ones
  // above 500, then the rest.
  std::vector<PostingBatch> rest(3);
  for (const auto& [id, c] : ref.chunks) {
    ref.AddTo(rest[id % 2 == 1 ? 0 : id > 500 ? 1 : 2], id);
  }
  for (const auto& batch : rest) e.Erase(batch);
  BOOST_TEST(e.Meta("bm25_chunks") == 0u);
  BOOST_TEST(e.Meta("bm25_tokens") == 0u);
  BOOST_TEST(e.Df("common") == -1);
  BOOST_TEST(e.Df("even") == -1);
  BOOST_TEST(e.Entries("lex_blocks") == 0u);
  BOOST_TEST(e.Entries("lex_doc_freq") == 0u);
  BOOST_TEST(e.Search({"common", "even", "tail", "own1"}).empty());
}

// Chunk ids grow, but writes need not come in id order: a batch of lower ids after higher
// ones, a batch filled in descending order, and ids interleaved into full blocks all give
// the index that one in-order batch gives.
BOOST_AUTO_TEST_CASE(out_of_order_writes_give_the_same_index) {
  std::mt19937 rng(23);
  Reference ref;
  const uint32_t count = 600;
  RandomCorpus(rng, ref, 0, count);
  LexicalEnv in_order, backwards, interleaved, gaps_filled;
  {
    PostingBatch all;
    for (uint32_t id = 0; id < count; ++id) ref.AddTo(all, id);
    in_order.Write(all);
  }
  {
    PostingBatch high, low, middle;
    for (uint32_t id = 400; id < 600; ++id) ref.AddTo(high, id);
    for (uint32_t id = 0; id < 200; ++id) ref.AddTo(low, id);
    for (uint32_t id = 400; id-- > 200;) ref.AddTo(middle, id);  // descending
    backwards.Write(high);
    backwards.Write(low);
    backwards.Write(middle);
  }
  {
    // The even ids, then each odd one on its own, descending, all in one transaction.
    PostingBatch even;
    for (uint32_t id = 0; id < count; id += 2) ref.AddTo(even, id);
    interleaved.Write(even);
    auto txn = Txn::BeginWrite(*interleaved.env);
    BOOST_REQUIRE(txn.ok());
    for (uint32_t id = count; id-- > 0;) {
      if (id % 2 == 0) continue;
      PostingBatch one;
      ref.AddTo(one, id);
      BOOST_REQUIRE(interleaved.index->Write(*txn, "acme", one).ok());
    }
    BOOST_REQUIRE(txn->Commit().ok());
  }
  {
    // The even ids, then all the odd ones in one batch: it fills gaps in several full blocks
    // at once.
    PostingBatch even, odd;
    for (uint32_t id = 0; id < count; id += 2) ref.AddTo(even, id);
    for (uint32_t id = 1; id < count; id += 2) ref.AddTo(odd, id);
    gaps_filled.Write(even);
    BOOST_TEST(gaps_filled.Blocks("w0").size() >= 2u);
    gaps_filled.Write(odd);
  }
  BOOST_TEST(interleaved.Blocks("w0").size() >= 3u);
  BOOST_TEST(gaps_filled.Blocks("w0").size() >= 3u);
  const auto vocabulary = Vocabulary(ref);
  for (const LexicalEnv* e : {&in_order, &backwards, &interleaved, &gaps_filled}) {
    CheckStored(*e, ref, vocabulary);
  }
  const ChunkFilter filter{false, {{0, 10}, {190, 210}, {395, 405}, {590, 600}}};
  for (int q = 0; q < 100; ++q) {
    const auto query = RandomQuery(rng);
    const size_t k = q % 10 == 0 ? 10000 : 1 + rng() % 12;
    const ChunkFilter f = q % 3 == 0 ? filter : ChunkFilter{};
    for (const LexicalEnv* e : {&in_order, &backwards, &interleaved, &gaps_filled}) {
      CheckSearch(*e, ref, query, k, f);
    }
    CheckSameResults(in_order, backwards, query, k, f);
    CheckSameResults(in_order, interleaved, query, k, f);
    CheckSameResults(in_order, gaps_filled, query, k, f);
  }
}

// The search skips the long lists of common terms once they cannot change the top k: on a
// random corpus with a Zipf-like vocabulary, its results equal BM25 computed over every chunk.
BOOST_AUTO_TEST_CASE(pruned_search_equals_exhaustive_bm25) {
  LexicalEnv e;
  Reference ref;
  std::mt19937 rng(7);
  // 40 documents of 6 chunks each; document d's chunks are 1000 + 6d ... 1000 + 6d + 5.
  auto doc_first = [](uint32_t d) { return 1000 + 6 * d; };
  for (uint32_t d = 0; d < 40; ++d) {
    for (uint32_t c = 0; c < 6; ++c) {
      std::vector<std::string> terms;
      const int len = 5 + static_cast<int>(rng() % 30);
      for (int i = 0; i < len; ++i) terms.push_back(RandomWord(rng));
      ref.Add(doc_first(d) + c, terms, static_cast<uint32_t>(terms.size()));
    }
  }
  {
    // One chunk per batch, all in one transaction.
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    for (const auto& [id, c] : ref.chunks) {
      PostingBatch batch;
      ref.AddTo(batch, id);
      BOOST_REQUIRE(e.index->Write(*txn, "acme", batch).ok());
    }
    BOOST_REQUIRE(txn->Commit().ok());
  }
  ChunkFilter docs{false, {}};
  for (uint32_t d : {1u, 3u, 7u, 20u}) docs.ranges.push_back({doc_first(d), doc_first(d) + 6});
  for (int q = 0; q < 200; ++q) {
    const auto query = RandomQuery(rng);
    const size_t k = 1 + rng() % 8;
    CheckSearch(e, ref, query, k, q % 5 == 0 ? docs : ChunkFilter{});
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::store
