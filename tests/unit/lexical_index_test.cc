// LexicalIndex: BM25 against numbers worked out by hand, over a real LMDB
// environment.
#include "lib/store/lexical_index.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
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

  void Add(const std::string& doc, uint32_t chunk, const std::vector<std::string>& terms) {
    auto txn = Txn::BeginWrite(*env);
    BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
    Status s = index->Add(*txn, "acme", doc, chunk, terms, static_cast<uint32_t>(terms.size()));
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    s = txn->Commit();
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  void Remove(const std::string& doc, uint32_t chunk, const std::vector<std::string>& terms) {
    auto txn = Txn::BeginWrite(*env);
    BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
    Status s = index->Remove(*txn, "acme", doc, chunk, terms, static_cast<uint32_t>(terms.size()));
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    s = txn->Commit();
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  std::vector<LexicalHit> Search(const std::vector<std::string>& query, size_t k = 10,
                                 const std::vector<std::string>& filter = {}) const {
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
  uint64_t Meta(const std::string& key) const {
    auto v = Raw("index_meta", key + "/acme");
    BOOST_REQUIRE(v.has_value());
    BOOST_REQUIRE_EQUAL(v->size(), sizeof(uint64_t));
    uint64_t x;
    std::memcpy(&x, v->data(), sizeof x);
    return x;
  }
  // The stored document frequency of `term`, -1 if it has no entry.
  int64_t Df(const std::string& term) const {
    auto v = Raw("lex_df", "acme/" + term);
    if (!v) return -1;
    BOOST_REQUIRE_EQUAL(v->size(), sizeof(uint32_t));
    uint32_t x;
    std::memcpy(&x, v->data(), sizeof x);
    return x;
  }

  TempDir dir;
  std::unique_ptr<Env> env;
  std::unique_ptr<LexicalIndex> index;
};

// The hand-worked corpus: three chunks, 13 tokens.
const std::vector<std::string> kA0 = {"cat", "sat", "mat"};                        // len 3
const std::vector<std::string> kA1 = {"cat", "dog", "cat", "ran", "far", "away"};  // len 6
const std::vector<std::string> kB0 = {"dog", "sat", "log", "today"};               // len 4

void AddCorpus(LexicalEnv& e) {
  e.Add("doc_a", 0, kA0);
  e.Add("doc_a", 1, kA1);
  e.Add("doc_b", 0, kB0);
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
constexpr double kTol = 1e-9;

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

BOOST_AUTO_TEST_CASE(search_scores_and_ranks_like_the_hand_computation) {
  LexicalEnv e;
  AddCorpus(e);
  BOOST_TEST(e.Meta("lex_chunks") == 3u);
  BOOST_TEST(e.Meta("lex_tokens") == 13u);
  BOOST_TEST(e.Df("cat") == 2);
  BOOST_TEST(e.Df("sat") == 2);
  BOOST_TEST(e.Df("log") == 1);

  auto hits = e.Search({"cat", "log"});
  BOOST_REQUIRE_EQUAL(hits.size(), 3u);
  BOOST_TEST(hits[0].document_id == "doc_b");
  BOOST_TEST(hits[0].chunk_index == 0u);
  BOOST_TEST(hits[0].score == kScoreB0, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[1].document_id == "doc_a");
  BOOST_TEST(hits[1].chunk_index == 1u);
  BOOST_TEST(hits[1].score == kScoreA1, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[2].document_id == "doc_a");
  BOOST_TEST(hits[2].chunk_index == 0u);
  BOOST_TEST(hits[2].score == kScoreA0, boost::test_tools::tolerance(kTol));

  // Term order in the query does not matter.
  auto again = e.Search({"log", "cat"});
  BOOST_REQUIRE_EQUAL(again.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    BOOST_TEST(again[i].document_id == hits[i].document_id);
    BOOST_TEST(again[i].chunk_index == hits[i].chunk_index);
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
  BOOST_TEST(half->hits[0].score == one->hits[0].score / 2, boost::test_tools::tolerance(kTol));
  BOOST_TEST(twice->hits[0].score == one->hits[0].score * 2, boost::test_tools::tolerance(kTol));
  // The mass is weight x IDF; a term the tenant does not have counts at the IDF of df 0.
  BOOST_TEST(one->query_mass == Bm25Idf(3, 1), boost::test_tools::tolerance(kTol));
  auto unknown = e.index->Search("acme", {{"log", 1.0}, {"zebra", 0.5}}, 10, {});
  BOOST_REQUIRE(unknown.ok());
  BOOST_TEST(unknown->query_mass == Bm25Idf(3, 1) + 0.5 * Bm25Idf(3, 0),
             boost::test_tools::tolerance(kTol));
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
  BOOST_TEST(hits[0].document_id == "doc_a");
  BOOST_TEST(hits[0].chunk_index == 1u);
  BOOST_TEST(hits[0].score == a1, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[1].document_id == "doc_a");
  BOOST_TEST(hits[1].chunk_index == 0u);
  BOOST_TEST(hits[1].score == kScoreA0, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[2].document_id == "doc_b");
  BOOST_TEST(hits[2].score == b0, boost::test_tools::tolerance(kTol));
}

BOOST_AUTO_TEST_CASE(k_keeps_the_best) {
  LexicalEnv e;
  AddCorpus(e);
  auto one = e.Search({"cat", "log"}, 1);
  BOOST_REQUIRE_EQUAL(one.size(), 1u);
  BOOST_TEST(one[0].document_id == "doc_b");
  auto two = e.Search({"cat", "log"}, 2);
  BOOST_REQUIRE_EQUAL(two.size(), 2u);
  BOOST_TEST(two[0].document_id == "doc_b");
  BOOST_TEST(two[1].document_id == "doc_a");
  BOOST_TEST(two[1].chunk_index == 1u);
  BOOST_TEST(e.Search({"cat", "log"}, 0).empty());
}

BOOST_AUTO_TEST_CASE(remove_restores_df_totals_and_scores) {
  LexicalEnv e;
  AddCorpus(e);
  e.Remove("doc_a", 1, kA1);
  BOOST_TEST(e.Meta("lex_chunks") == 2u);
  BOOST_TEST(e.Meta("lex_tokens") == 7u);
  BOOST_TEST(e.Df("cat") == 1);
  BOOST_TEST(e.Df("dog") == 1);
  BOOST_TEST(e.Df("ran") == -1);  // df 0 is deleted, not stored as 0
  BOOST_TEST(e.Df("away") == -1);
  BOOST_TEST(e.Search({"ran"}).empty());

  // The same as a corpus that never had doc_a:1.
  LexicalEnv fresh;
  fresh.Add("doc_a", 0, kA0);
  fresh.Add("doc_b", 0, kB0);
  for (const auto& query : std::vector<std::vector<std::string>>{
           {"cat", "log"}, {"cat", "dog"}, {"sat"}, {"today", "mat", "far"}}) {
    auto got = e.Search(query);
    auto want = fresh.Search(query);
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      BOOST_TEST(got[i].document_id == want[i].document_id);
      BOOST_TEST(got[i].chunk_index == want[i].chunk_index);
      BOOST_TEST(got[i].score == want[i].score, boost::test_tools::tolerance(kTol));
    }
  }
  // By hand: N = 2, 7 tokens, avgdl 3.5; cat and log both df 1: IDF ln(2).
  //   doc_a:0 cat len 3: ln 2 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 3/3.5)) =
  //   0.7361701090084937 doc_b:0 log len 4: ln 2 * 2.2 / (1 + 1.2 * (0.25 +
  //   0.75 * 4/3.5)) = 0.6548752503449791
  auto hits = e.Search({"cat", "log"});
  BOOST_REQUIRE_EQUAL(hits.size(), 2u);
  BOOST_TEST(hits[0].document_id == "doc_a");
  BOOST_TEST(hits[0].score == 0.7361701090084937, boost::test_tools::tolerance(kTol));
  BOOST_TEST(hits[1].document_id == "doc_b");
  BOOST_TEST(hits[1].score == 0.6548752503449791, boost::test_tools::tolerance(kTol));

  // Removing everything leaves an empty index.
  e.Remove("doc_a", 0, kA0);
  e.Remove("doc_b", 0, kB0);
  BOOST_TEST(e.Meta("lex_chunks") == 0u);
  BOOST_TEST(e.Meta("lex_tokens") == 0u);
  BOOST_TEST(e.Df("cat") == -1);
  BOOST_TEST(e.Df("sat") == -1);
  BOOST_TEST(e.Search({"cat", "log", "sat"}).empty());
}

BOOST_AUTO_TEST_CASE(filter_restricts_to_document_ids) {
  LexicalEnv e;
  AddCorpus(e);
  auto only_a = e.Search({"cat", "log"}, 10, {"doc_a"});
  BOOST_REQUIRE_EQUAL(only_a.size(), 2u);
  BOOST_TEST(only_a[0].document_id == "doc_a");
  BOOST_TEST(only_a[0].chunk_index == 1u);
  BOOST_TEST(only_a[1].chunk_index == 0u);
  // Filtering does not change the statistics: the scores are the unfiltered
  // ones.
  BOOST_TEST(only_a[0].score == kScoreA1, boost::test_tools::tolerance(kTol));
  BOOST_TEST(only_a[1].score == kScoreA0, boost::test_tools::tolerance(kTol));

  auto only_b = e.Search({"cat", "log"}, 10, {"doc_b"});
  BOOST_REQUIRE_EQUAL(only_b.size(), 1u);
  BOOST_TEST(only_b[0].document_id == "doc_b");

  BOOST_TEST(e.Search({"cat", "log"}, 10, {"doc_missing"}).empty());
  // A prefix of an id is not that id.
  BOOST_TEST(e.Search({"cat", "log"}, 10, {"doc_"}).empty());
  BOOST_TEST(e.Search({"cat", "log"}, 10, {"doc_b", "doc_a"}).size() == 3u);
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
  BOOST_TEST(e.Search({"cat"}, 10, {"doc_a"}).empty());
}

BOOST_AUTO_TEST_CASE(ties_order_by_document_then_chunk) {
  LexicalEnv e;
  e.Add("doc_y", 0, {"same", "words"});
  e.Add("doc_x", 1, {"same", "words"});
  e.Add("doc_x", 0, {"same", "words"});
  e.Add("doc_z", 0, {"other", "words"});
  auto hits = e.Search({"same"});
  BOOST_REQUIRE_EQUAL(hits.size(), 3u);
  BOOST_TEST(hits[0].score == hits[2].score);
  BOOST_TEST(hits[0].document_id == "doc_x");
  BOOST_TEST(hits[0].chunk_index == 0u);
  BOOST_TEST(hits[1].document_id == "doc_x");
  BOOST_TEST(hits[1].chunk_index == 1u);
  BOOST_TEST(hits[2].document_id == "doc_y");
}

BOOST_AUTO_TEST_CASE(chunk_indexes_round_trip_through_the_key) {
  LexicalEnv e;
  // Big-endian chunk indexes, including ones with zero and 0xFF bytes.
  const std::vector<uint32_t> indexes = {0, 1, 255, 256, 65536, 0x01000000u, 0xFFFFFFFFu};
  for (uint32_t i : indexes) e.Add("doc", i, {"word", "pad" + std::to_string(i)});
  auto hits = e.Search({"word"}, 100);
  BOOST_REQUIRE_EQUAL(hits.size(), indexes.size());
  for (size_t i = 0; i < hits.size(); ++i) {
    BOOST_TEST(hits[i].document_id == "doc");
    BOOST_TEST(hits[i].chunk_index == indexes[i]);  // equal scores: by chunk index
  }
}

// The search skips the long lists of common terms once they cannot change the top k: on a
// random corpus with a Zipf-like vocabulary, its results equal BM25 computed over every chunk.
BOOST_AUTO_TEST_CASE(pruned_search_equals_exhaustive_bm25) {
  LexicalEnv e;
  std::mt19937 rng(7);
  auto word = [&] {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return "w" + std::to_string(static_cast<int>(u * u * u * 60));
  };
  struct Chunk {
    std::string doc;
    uint32_t index;
    std::vector<std::string> terms;
  };
  std::vector<Chunk> corpus;
  for (int d = 0; d < 40; ++d) {
    for (uint32_t c = 0; c < 6; ++c) {
      Chunk ch{"doc_" + std::to_string(d), c, {}};
      const int len = 5 + static_cast<int>(rng() % 30);
      for (int i = 0; i < len; ++i) ch.terms.push_back(word());
      corpus.push_back(ch);
    }
  }
  {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    for (const auto& ch : corpus) {
      BOOST_REQUIRE(e.index
                        ->Add(*txn, "acme", ch.doc, ch.index, ch.terms,
                              static_cast<uint32_t>(ch.terms.size()))
                        .ok());
    }
    BOOST_REQUIRE(txn->Commit().ok());
  }
  double total = 0;
  for (const auto& ch : corpus) total += static_cast<double>(ch.terms.size());
  const double avg = total / static_cast<double>(corpus.size());
  auto tf_in = [](const std::vector<std::string>& terms, const std::string& t) {
    return static_cast<uint32_t>(std::count(terms.begin(), terms.end(), t));
  };
  for (int q = 0; q < 200; ++q) {
    std::set<std::string> query;
    const int words = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < words; ++i) query.insert(word());
    const size_t k = 1 + rng() % 8;
    std::vector<std::string> filter;
    if (q % 5 == 0) filter = {"doc_1", "doc_3", "doc_7", "doc_20"};
    // BM25 over every chunk, by the definition.
    std::vector<LexicalHit> want;
    for (const auto& ch : corpus) {
      if (!filter.empty() && std::find(filter.begin(), filter.end(), ch.doc) == filter.end()) {
        continue;
      }
      double score = 0;
      bool matched = false;
      for (const auto& t : query) {
        const uint32_t tf = tf_in(ch.terms, t);
        if (tf == 0) continue;
        uint64_t df = 0;
        for (const auto& other : corpus) df += tf_in(other.terms, t) > 0;
        score += Bm25TermScore(Bm25Idf(corpus.size(), df), tf,
                               static_cast<uint32_t>(ch.terms.size()), avg);
        matched = true;
      }
      if (matched) want.push_back({score, ch.doc, ch.index});
    }
    std::sort(want.begin(), want.end(),
              [](const LexicalHit& a, const LexicalHit& b) { return a.score > b.score; });
    auto got = e.Search(std::vector<std::string>(query.begin(), query.end()), k, filter);
    BOOST_REQUIRE_EQUAL(got.size(), std::min(k, want.size()));
    for (size_t i = 0; i < got.size(); ++i) {
      BOOST_TEST(got[i].score == want[i].score, boost::test_tools::tolerance(kTol));
      // Which chunk holds rank i may differ only between chunks of (nearly) equal score.
      auto same = std::find_if(want.begin(), want.end(), [&](const LexicalHit& w) {
        return w.document_id == got[i].document_id && w.chunk_index == got[i].chunk_index;
      });
      BOOST_REQUIRE(same != want.end());
      BOOST_TEST(same->score == got[i].score, boost::test_tools::tolerance(kTol));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::store
