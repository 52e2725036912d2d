// VectorIndex: the sharded scan against a brute-force reference on random data,
// the kernel, alignment of small values, malformed blocks, deletion and
// counting.
#include "lib/store/vector_index.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lib/store/lmdb.h"
#include "tests/unit/temp_store.h"

namespace ragstream::store {
namespace {

using ragstream::testing::TempDir;

struct VectorEnv {
  explicit VectorEnv(int shards, uint64_t map_size_bytes = 512ull << 20,
                     VectorFormat format = VectorFormat::kFloat) {
    Env::Options options;
    options.path = dir.path();
    options.map_size_bytes = map_size_bytes;
    options.max_readers = 126;
    options.databases = VectorIndex::Databases(shards);
    auto opened = Env::Open(options);
    if (!opened.ok()) throw std::runtime_error("Env::Open: " + opened.status().ToString());
    env = std::move(opened).value();
    index = std::make_unique<VectorIndex>(*env, shards, format);
  }
  ~VectorEnv() {
    index.reset();
    env.reset();
  }

  TempDir dir;
  std::unique_ptr<Env> env;
  std::unique_ptr<VectorIndex> index;
};

// Random unit vectors, documents of 1..max_rows of them, and the brute-force
// reference. Documents get dense chunk ids as the catalog hands them out: each
// its own run of consecutive ids, the next document's starting where the last
// one's ended.
struct Corpus {
  uint32_t dim = 0;
  std::map<uint32_t, std::vector<float>> docs;  // first chunk id -> rows x dim
  std::vector<uint32_t> firsts;                 // document number -> first chunk id
  uint32_t next_chunk = 0;                      // the id the next document would start at

  size_t Rows(uint32_t first) const { return docs.at(first).size() / dim; }
  // The first chunk id of document `d`.
  uint32_t First(int d) const { return firsts.at(static_cast<size_t>(d)); }
  // The document (first chunk id) holding `chunk`, nullopt if none does.
  std::optional<uint32_t> DocOf(uint32_t chunk) const {
    auto it = docs.upper_bound(chunk);
    if (it == docs.begin()) return std::nullopt;
    --it;
    if (chunk >= it->first + it->second.size() / dim) return std::nullopt;
    return it->first;
  }
  // A filter letting through exactly the chunks of the documents `numbers`.
  ChunkFilter FilterOf(const std::vector<int>& numbers) const {
    ChunkFilter f;
    f.all = false;
    for (int d : numbers) {
      const uint32_t first = First(d);
      f.ranges.push_back({first, first + static_cast<uint32_t>(Rows(first))});
    }
    std::sort(f.ranges.begin(), f.ranges.end());
    return f;
  }
};

std::vector<float> RandomUnit(std::mt19937& rng, uint32_t dim) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(dim);
  double norm = 0;
  for (float& x : v) {
    x = normal(rng);
    norm += static_cast<double>(x) * x;
  }
  for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

Corpus MakeCorpus(std::mt19937& rng, uint32_t dim, int documents, int max_rows) {
  Corpus c;
  c.dim = dim;
  std::uniform_int_distribution<int> rows(1, max_rows);
  for (int d = 0; d < documents; ++d) {
    const uint32_t first = c.next_chunk;
    std::vector<float>& block = c.docs[first];
    int n = rows(rng);
    for (int r = 0; r < n; ++r) {
      auto v = RandomUnit(rng, dim);
      block.insert(block.end(), v.begin(), v.end());
    }
    c.firsts.push_back(first);
    c.next_chunk += static_cast<uint32_t>(n);
  }
  return c;
}

void Store(VectorEnv& e, const Corpus& c) {
  auto txn = Txn::BeginWrite(*e.env);
  BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
  for (const auto& [first, block] : c.docs) {
    Status s = e.index->Put(*txn, "acme", first, block.data(),
                            static_cast<uint32_t>(block.size() / c.dim), c.dim);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  Status s = txn->Commit();
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
}

double NaiveDot(const float* a, const float* b, uint32_t dim) {
  double sum = 0;
  for (uint32_t i = 0; i < dim; ++i) sum += static_cast<double>(a[i]) * b[i];
  return sum;
}

struct Ref {
  double score;
  uint32_t chunk;
};

// Every chunk of the corpus (restricted to `filter`), best first.
std::vector<Ref> BruteForce(const Corpus& c, const std::vector<float>& q,
                            const ChunkFilter& filter = {}) {
  std::vector<Ref> all;
  for (const auto& [first, block] : c.docs) {
    for (uint32_t r = 0; r < block.size() / c.dim; ++r) {
      if (!filter.Contains(first + r)) continue;
      all.push_back({NaiveDot(q.data(), block.data() + size_t{r} * c.dim, c.dim), first + r});
    }
  }
  std::sort(all.begin(), all.end(), [](const Ref& a, const Ref& b) { return a.score > b.score; });
  return all;
}

// Search equals the brute-force top-k: same ranks' scores within 1e-5, the same
// chunk set (unless the reference itself has a near-tie at the k-th place),
// each reported score the true score of the chunk it names, best first.
void CheckAgainstReference(const VectorEnv& e, const Corpus& c, const std::vector<float>& q,
                           size_t k, const ChunkFilter& filter = {}) {
  auto hits = e.index->Search("acme", q.data(), c.dim, k, filter);
  BOOST_REQUIRE_MESSAGE(hits.ok(), hits.status().ToString());
  std::vector<Ref> ref = BruteForce(c, q, filter);
  const size_t want = std::min(k, ref.size());
  BOOST_REQUIRE_EQUAL(hits->size(), want);
  std::set<uint32_t> got_set, want_set;
  for (size_t i = 0; i < want; ++i) {
    const VectorHit& h = (*hits)[i];
    BOOST_TEST(std::abs(h.score - ref[i].score) < 1e-5,
               "rank " << i << ": " << h.score << " vs " << ref[i].score);
    if (i > 0) BOOST_TEST((*hits)[i - 1].score >= h.score);
    auto doc = c.DocOf(h.chunk);
    BOOST_REQUIRE_MESSAGE(doc.has_value(), "chunk " << h.chunk << " is in no document");
    const float* row = c.docs.at(*doc).data() + size_t{h.chunk - *doc} * c.dim;
    double truth = NaiveDot(q.data(), row, c.dim);
    BOOST_TEST(std::abs(h.score - truth) < 1e-5);
    BOOST_TEST(filter.Contains(h.chunk));
    got_set.insert(h.chunk);
    want_set.insert(ref[i].chunk);
  }
  BOOST_TEST(got_set.size() == want);  // no chunk twice
  const bool near_tie = want < ref.size() && ref[want - 1].score - ref[want].score < 1e-5;
  if (!near_tie) BOOST_TEST((got_set == want_set));
}

void RunRandomComparison(uint32_t dim, int documents, int max_rows, int shards, unsigned seed) {
  std::mt19937 rng(seed);
  VectorEnv e(shards);
  Corpus c = MakeCorpus(rng, dim, documents, max_rows);
  Store(e, c);
  size_t total = 0;
  for (const auto& [first, block] : c.docs) total += block.size() / dim;
  auto count = e.index->Count();
  BOOST_REQUIRE(count.ok());
  BOOST_TEST(*count == total);
  for (int i = 0; i < 20; ++i) CheckAgainstReference(e, c, RandomUnit(rng, dim), 10);
  // A query equal to a stored vector finds it first with score ~1: its first row is the
  // document's first chunk id, a later row that id plus the row.
  const uint32_t probe = c.First(documents / 2);
  std::vector<float> q(c.docs[probe].begin(), c.docs[probe].begin() + dim);
  auto hits = e.index->Search("acme", q.data(), dim, 1);
  BOOST_REQUIRE(hits.ok());
  BOOST_REQUIRE_EQUAL(hits->size(), 1u);
  BOOST_TEST((*hits)[0].chunk == probe);
  BOOST_TEST(std::abs((*hits)[0].score - 1.0f) < 1e-5);
  const uint32_t last_row = static_cast<uint32_t>(c.Rows(probe)) - 1;
  std::vector<float> q_last(c.docs[probe].begin() + size_t{last_row} * dim,
                            c.docs[probe].begin() + size_t{last_row + 1} * dim);
  auto last = e.index->Search("acme", q_last.data(), dim, 1);
  BOOST_REQUIRE(last.ok());
  BOOST_REQUIRE_EQUAL(last->size(), 1u);
  BOOST_TEST((*last)[0].chunk == probe + last_row);
  BOOST_TEST(std::abs((*last)[0].score - 1.0f) < 1e-5);
}

BOOST_AUTO_TEST_SUITE(vector_index_test)

BOOST_AUTO_TEST_CASE(dot_product_matches_a_double_precision_sum) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (uint32_t dim :
       {0u, 1u, 3u, 7u, 8u, 9u, 15u, 16u, 17u, 37u, 40u, 64u, 383u, 384u, 512u, 513u, 1536u}) {
    std::vector<float> a(dim), b(dim);
    for (auto& x : a) x = u(rng);
    for (auto& x : b) x = u(rng);
    double want = NaiveDot(a.data(), b.data(), dim);
    double mag = 0;
    for (uint32_t i = 0; i < dim; ++i) mag += std::abs(static_cast<double>(a[i]) * b[i]);
    float got = DotProduct(a.data(), b.data(), dim);
    BOOST_TEST(std::abs(got - want) <= 1e-6 * (1 + mag),
               "dim " << dim << ": " << got << " vs " << want);
  }
  // Exact small cases, including the tail after the 8-wide blocks.
  const float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  const float y[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2};
  BOOST_TEST(DotProduct(x, y, 11) == 77.0f);
  BOOST_TEST(DotProduct(x, y, 8) == 36.0f);
  BOOST_TEST(DotProduct(x, y, 3) == 6.0f);
  BOOST_TEST(DotProduct(x, y, 0) == 0.0f);
}

// The rescoring of the int8 and approximate paths (DotProduct, one row) gives the very bits
// the scan (ScoreRows, four rows at a time) gives, so their scores equal the exact search's.
BOOST_AUTO_TEST_CASE(one_row_scores_the_same_bits_as_the_scan) {
  std::mt19937 rng(8);
  std::normal_distribution<float> n;
  // Both AVX2 shapes (one row at a time up to 512 floats, four at a time above) and their
  // tails: 8-wide steps after the 32-wide ones (40, 47), a scalar rest (37, 513).
  for (uint32_t dim : {1u, 7u, 8u, 15u, 16u, 17u, 37u, 40u, 47u, 384u, 511u, 512u, 513u, 1536u}) {
    const uint32_t count = 11;
    std::vector<float> q(dim), rows(size_t{dim} * count), scores(count);
    for (auto& x : q) x = n(rng);
    for (auto& x : rows) x = n(rng);
    ScoreRows(q.data(), rows.data(), count, dim, scores.data());
    for (uint32_t r = 0; r < count; ++r) {
      BOOST_TEST(DotProduct(q.data(), rows.data() + size_t{r} * dim, dim) == scores[r],
                 "dim " << dim << " row " << r);
    }
  }
}

BOOST_AUTO_TEST_CASE(search_equals_brute_force_dim_64) {
  RunRandomComparison(64, 300, 20, 3, 1);
}

BOOST_AUTO_TEST_CASE(search_equals_brute_force_dim_384) {
  RunRandomComparison(384, 120, 20, 3, 2);
}

BOOST_AUTO_TEST_CASE(search_equals_brute_force_odd_dim_37) {
  RunRandomComparison(37, 300, 20, 3, 3);
}

BOOST_AUTO_TEST_CASE(search_equals_brute_force_one_and_many_shards) {
  RunRandomComparison(16, 50, 5, 1, 4);
  RunRandomComparison(16, 50, 5, 8, 5);
}

// Search is thread-safe: concurrent searches, with a writer adding documents
// meanwhile, all succeed, and a search of the documents stored before the
// writer started equals the reference.
BOOST_AUTO_TEST_CASE(concurrent_searches_with_a_writer) {
  std::mt19937 rng(41);
  VectorEnv e(3);
  Corpus c = MakeCorpus(rng, 32, 100, 8);
  Store(e, c);
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 8; ++i) queries.push_back(RandomUnit(rng, 32));
  std::vector<std::vector<VectorHit>> expected;
  for (const auto& q : queries) {
    auto hits = e.index->Search("acme", q.data(), 32, 10);
    BOOST_REQUIRE(hits.ok());
    expected.push_back(*hits);
  }
  std::atomic<int> failures{0}, mismatches{0};
  // The documents stored so far: every id below the writer's first.
  const ChunkFilter old_ids{false, {{0, c.next_chunk}}};
  std::thread writer([&] {
    std::mt19937 wrng(42);
    for (uint32_t i = 0; i < 50; ++i) {
      auto v = RandomUnit(wrng, 32);
      auto txn = Txn::BeginWrite(*e.env);
      if (!txn.ok() || !e.index->Put(*txn, "acme", c.next_chunk + i, v.data(), 1, 32).ok() ||
          !txn->Commit().ok()) {
        ++failures;
      }
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        size_t qi = static_cast<size_t>(t + i) % queries.size();
        auto hits = e.index->Search("acme", queries[qi].data(), 32, 10, old_ids);
        if (!hits.ok()) {
          ++failures;
          continue;
        }
        if (hits->size() != expected[qi].size()) {
          ++mismatches;
          continue;
        }
        for (size_t j = 0; j < hits->size(); ++j) {
          if ((*hits)[j].chunk != expected[qi][j].chunk) ++mismatches;
        }
      }
    });
  }
  writer.join();
  for (auto& r : readers) r.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(mismatches.load() == 0);
  auto count = e.index->Count();
  BOOST_REQUIRE(count.ok());
  size_t total = 50;
  for (const auto& [first, block] : c.docs) total += block.size() / 32;
  BOOST_TEST(*count == total);
}

BOOST_AUTO_TEST_CASE(k_larger_than_the_corpus_returns_everything_sorted) {
  std::mt19937 rng(11);
  VectorEnv e(3);
  Corpus c = MakeCorpus(rng, 8, 4, 3);
  Store(e, c);
  CheckAgainstReference(e, c, RandomUnit(rng, 8), 1000);
}

BOOST_AUTO_TEST_CASE(documents_spread_over_shards) {
  VectorEnv e(3);
  std::set<int> shards;
  std::map<int, int> per_shard;
  for (uint32_t first = 0; first < 100; ++first) {
    int s = e.index->ShardOf(first);
    BOOST_TEST(s >= 0);
    BOOST_TEST(s < 3);
    shards.insert(s);
    ++per_shard[s];
    BOOST_TEST(e.index->ShardOf(first) == s);  // stable
  }
  BOOST_TEST(shards.size() == 3u);
  // Consecutive first chunk ids (how documents are numbered) do not all pile into one shard.
  for (const auto& [s, n] : per_shard) BOOST_TEST(n >= 15, "shard " << s << " has " << n);
  // Large ids too (all bits of the id count).
  std::set<int> high;
  for (uint32_t first = 0xFFFFFF00u; first < 0xFFFFFF40u; ++first) {
    const int s = e.index->ShardOf(first);
    BOOST_TEST(s >= 0);
    BOOST_TEST(s < 3);
    high.insert(s);
  }
  BOOST_TEST(high.size() == 3u);
  BOOST_TEST(e.index->shards() == 3);
  BOOST_TEST((VectorIndex::Databases(2) ==
              std::vector<std::string>{"vectors.0", "vectors.1", "vectors8.0", "vectors8.1",
                                       "vblocks.0", "vblocks.1", "vblocks8.0", "vblocks8.1"}));
}

BOOST_AUTO_TEST_CASE(filter_restricts_to_listed_documents) {
  std::mt19937 rng(21);
  VectorEnv e(3);
  Corpus c = MakeCorpus(rng, 64, 300, 20);
  Store(e, c);
  const ChunkFilter filter = c.FilterOf({250, 3, 77, 140, 9});
  for (int i = 0; i < 10; ++i) CheckAgainstReference(e, c, RandomUnit(rng, 64), 10, filter);
  // A filter naming only ids no document has gives nothing; so does an empty one.
  auto q = RandomUnit(rng, 64);
  const ChunkFilter nope{false, {{c.next_chunk + 10, c.next_chunk + 20}}};
  auto none = e.index->Search("acme", q.data(), 64, 10, nope);
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(none->empty());
  auto empty = e.index->Search("acme", q.data(), 64, 10, ChunkFilter{false, {}});
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(empty->empty());
  // A one-document filter returns that document's rows, and only them.
  const uint32_t doc3 = c.First(3);
  auto one = e.index->Search("acme", q.data(), 64, 100, c.FilterOf({3}));
  BOOST_REQUIRE(one.ok());
  BOOST_TEST(one->size() == c.Rows(doc3));
  std::set<uint32_t> rows;
  for (const auto& h : *one) rows.insert(h.chunk);
  BOOST_TEST(rows.size() == c.Rows(doc3));
  BOOST_TEST(*rows.begin() == doc3);
  BOOST_TEST(*rows.rbegin() == doc3 + c.Rows(doc3) - 1);
  // The filter is on chunks: a range holding only a document's first chunk admits that row,
  // whether the document's rows are in a block or still a piece.
  const uint32_t doc4 = c.First(4);
  BOOST_REQUIRE(doc4 == doc3 + c.Rows(doc3));
  auto layout = e.index->Values("acme");
  BOOST_REQUIRE(layout.ok());
  BOOST_TEST(layout->blocks > 0u);  // doc4's rows
  BOOST_TEST(layout->pieces > 0u);  // the last document's
  for (const uint32_t chunk : {doc4, doc4 + 1, c.next_chunk - 1}) {
    auto one_row =
        e.index->Search("acme", q.data(), 64, 100, ChunkFilter{false, {{chunk, chunk + 1}}});
    BOOST_REQUIRE(one_row.ok());
    BOOST_REQUIRE_EQUAL(one_row->size(), 1u);
    BOOST_TEST((*one_row)[0].chunk == chunk);
  }
}

BOOST_AUTO_TEST_CASE(delete_removes_and_count_follows) {
  std::mt19937 rng(31);
  VectorEnv e(3);
  Corpus c = MakeCorpus(rng, 32, 40, 6);
  Store(e, c);
  auto before = e.index->Count();
  BOOST_REQUIRE(before.ok());

  const uint32_t victim = c.First(17);
  const size_t rows = c.Rows(victim);
  std::vector<float> q(c.docs[victim].begin(), c.docs[victim].begin() + 32);
  auto hits = e.index->Search("acme", q.data(), 32, 1);
  BOOST_REQUIRE(hits.ok() && hits->size() == 1);
  BOOST_TEST((*hits)[0].chunk == victim);

  const ChunkFilter victim_filter = c.FilterOf({17});
  {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(e.index->Delete(*txn, "acme", victim, static_cast<uint32_t>(rows)).ok());
    BOOST_REQUIRE(e.index->Delete(*txn, "acme", c.next_chunk + 1000, 3).ok());  // absent: no error
    BOOST_REQUIRE(txn->Commit().ok());
  }
  c.docs.erase(victim);
  auto after = e.index->Count();
  BOOST_REQUIRE(after.ok());
  BOOST_TEST(*after == *before - rows);

  auto all = e.index->Search("acme", q.data(), 32, 1000);
  BOOST_REQUIRE(all.ok());
  BOOST_TEST(all->size() == *after);
  for (const auto& h : *all) {
    BOOST_TEST((h.chunk < victim || h.chunk >= victim + rows), "deleted chunk " << h.chunk);
  }
  CheckAgainstReference(e, c, q, 10);
  // Filtering on the deleted document finds nothing.
  auto filtered = e.index->Search("acme", q.data(), 32, 10, victim_filter);
  BOOST_REQUIRE(filtered.ok());
  BOOST_TEST(filtered->empty());
}

BOOST_AUTO_TEST_CASE(put_replaces_a_documents_vectors) {
  VectorEnv e(2);
  const float first[] = {1, 0, 0, 0, 0, 1, 0, 0};
  const float second[] = {0, 0, 1, 0};
  {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(e.index->Put(*txn, "acme", 5, first, 2, 4).ok());
    BOOST_REQUIRE(e.index->Put(*txn, "acme", 5, second, 1, 4).ok());
    BOOST_REQUIRE(txn->Commit().ok());
  }
  auto count = e.index->Count();
  BOOST_REQUIRE(count.ok());
  BOOST_TEST(*count == 1u);
  const float q[] = {0, 0, 1, 0};
  auto hits = e.index->Search("acme", q, 4, 10);
  BOOST_REQUIRE(hits.ok());
  BOOST_REQUIRE_EQUAL(hits->size(), 1u);
  BOOST_TEST((*hits)[0].score == 1.0f);
  BOOST_TEST((*hits)[0].chunk == 5u);
}

// First chunk ids are 4-byte big-endian key parts: ids with zero and 0xFF bytes, and ones
// whose order differs from their little-endian bytes', come back as stored, rows numbered
// from the id, and a tenant whose name is a prefix of another's sees none of its vectors.
BOOST_AUTO_TEST_CASE(chunk_ids_round_trip_through_the_key_and_tenants_stay_apart) {
  VectorEnv e(3);
  const std::vector<uint32_t> firsts = {0, 2, 255, 256, 65536, 0x01000000u, 0xFFFFFF00u};
  const uint32_t dim = 4;
  // Document i: two rows, scored i + 1 and i + 0.5 by the query {1, 0, 0, 0}.
  {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    for (size_t i = 0; i < firsts.size(); ++i) {
      const float f = static_cast<float>(i);
      const float rows[] = {f + 1, 0, 0, 0, f + 0.5f, 0, 0, 0};
      BOOST_REQUIRE(e.index->Put(*txn, "acme", firsts[i], rows, 2, dim).ok());
    }
    const float other[] = {100, 0, 0, 0};
    BOOST_REQUIRE(e.index->Put(*txn, "acm", 7, other, 1, dim).ok());
    BOOST_REQUIRE(e.index->Put(*txn, "acmex", 9, other, 1, dim).ok());
    BOOST_REQUIRE(txn->Commit().ok());
  }
  const float q[] = {1, 0, 0, 0};
  auto hits = e.index->Search("acme", q, dim, 100);
  BOOST_REQUIRE(hits.ok());
  BOOST_REQUIRE_EQUAL(hits->size(), 2 * firsts.size());
  for (size_t i = 0; i < firsts.size(); ++i) {
    const size_t doc = firsts.size() - 1 - i;  // the highest score first
    const float f = static_cast<float>(doc);
    BOOST_TEST((*hits)[2 * i].chunk == firsts[doc]);
    BOOST_TEST((*hits)[2 * i].score == f + 1);
    BOOST_TEST((*hits)[2 * i + 1].chunk == firsts[doc] + 1);
    BOOST_TEST((*hits)[2 * i + 1].score == f + 0.5f);
  }
  auto acm = e.index->Search("acm", q, dim, 100);
  BOOST_REQUIRE(acm.ok());
  BOOST_REQUIRE_EQUAL(acm->size(), 1u);
  BOOST_TEST((*acm)[0].chunk == 7u);
  auto acmex = e.index->Search("acmex", q, dim, 100);
  BOOST_REQUIRE(acmex.ok());
  BOOST_REQUIRE_EQUAL(acmex->size(), 1u);
  BOOST_TEST((*acmex)[0].chunk == 9u);
  // A filter on the large id's range finds exactly that document.
  auto high =
      e.index->Search("acme", q, dim, 100, ChunkFilter{false, {{0xFFFFFF00u, 0xFFFFFF02u}}});
  BOOST_REQUIRE(high.ok());
  BOOST_REQUIRE_EQUAL(high->size(), 2u);
  BOOST_TEST((*high)[0].chunk == 0xFFFFFF00u);
  BOOST_TEST((*high)[1].chunk == 0xFFFFFF01u);
}

// Equal scores come back in chunk id order, whatever the shards and the order of the Puts.
BOOST_AUTO_TEST_CASE(equal_scores_order_by_chunk_id) {
  VectorEnv e(3);
  const float v[] = {0, 1, 0, 0};
  {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    for (uint32_t first : {40u, 7u, 23u, 3u, 31u, 12u}) {
      BOOST_REQUIRE(e.index->Put(*txn, "acme", first, v, 1, 4).ok());
    }
    BOOST_REQUIRE(txn->Commit().ok());
  }
  const float q[] = {0, 2, 0, 0};
  auto hits = e.index->Search("acme", q, 4, 4);
  BOOST_REQUIRE(hits.ok());
  BOOST_REQUIRE_EQUAL(hits->size(), 4u);
  const std::vector<uint32_t> want = {3, 7, 12, 23};
  for (size_t i = 0; i < want.size(); ++i) {
    BOOST_TEST((*hits)[i].chunk == want[i]);
    BOOST_TEST((*hits)[i].score == 2.0f);
  }
}

// Small values sit inside a leaf page at whatever (2-byte) offset the key
// length leaves them, so their floats are often misaligned; they must still
// score exactly.
BOOST_AUTO_TEST_CASE(small_unaligned_values_score_correctly) {
  VectorEnv e(1);
  std::map<uint32_t, std::vector<float>> docs;  // first chunk id -> its one row
  std::map<uint32_t, int> len_of;
  for (int len = 1; len <= 12; ++len) {
    const uint32_t first = static_cast<uint32_t>(len) * 3;
    docs[first] = {0.5f * len, -1.0f, 0.25f, static_cast<float>(len)};
    len_of[first] = len;
  }
  {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    for (const auto& [first, v] : docs) {
      BOOST_REQUIRE(e.index->Put(*txn, "acme", first, v.data(), 1, 4).ok());
    }
    BOOST_REQUIRE(txn->Commit().ok());
  }
  // Make sure the case under test really happens: some float block is
  // misaligned.
  size_t misaligned = 0;
  {
    auto txn = Txn::BeginRead(*e.env);
    BOOST_REQUIRE(txn.ok());
    for (const auto& [first, v] : docs) {
      auto raw = txn->Get(e.env->Dbi("vectors.0"), "acme/" + ChunkKeyPart(first));
      BOOST_REQUIRE(raw.ok() && raw->has_value());
      BOOST_REQUIRE_EQUAL((*raw)->size(), 16u + 4 * sizeof(float));
      if (reinterpret_cast<uintptr_t>((*raw)->data() + 16) % alignof(float) != 0) ++misaligned;
    }
  }
  BOOST_TEST(misaligned > 0u);

  const float q[] = {1.0f, 2.0f, -4.0f, 0.5f};
  auto hits = e.index->Search("acme", q, 4, 100);
  BOOST_REQUIRE(hits.ok());
  BOOST_REQUIRE_EQUAL(hits->size(), docs.size());
  for (const auto& h : *hits) {
    BOOST_REQUIRE(docs.count(h.chunk) == 1u);
    const auto& v = docs.at(h.chunk);
    // All terms are exact in float: 0.5 len - 2 - 1 + 0.5 len = len - 3.
    BOOST_TEST(h.score == NaiveDot(q, v.data(), 4));
    BOOST_TEST(h.score == static_cast<float>(len_of.at(h.chunk)) - 3.0f);
  }
  BOOST_TEST(len_of.at((*hits)[0].chunk) == 12);  // the highest score first
}

void PutRaw(VectorEnv& e, const std::string& dbi, const std::string& key,
            const std::string& value) {
  auto txn = Txn::BeginWrite(*e.env);
  BOOST_REQUIRE(txn.ok());
  BOOST_REQUIRE(txn->Put(e.env->Dbi(dbi), key, value).ok());
  BOOST_REQUIRE(txn->Commit().ok());
}

std::string Header(uint32_t magic, uint32_t count, uint32_t dim) {
  uint32_t h[4] = {magic, count, dim, 0};
  return std::string(reinterpret_cast<const char*>(h), sizeof h);
}

constexpr uint32_t kMagic = 0x31565352;  // "RSV1", as vector_index.cc writes it

// The good document's first chunk id, and the bad block's.
constexpr uint32_t kGoodChunk = 1;
constexpr uint32_t kBadChunk = 777;

// A good document next to the bad block, so the scan has something to return.
void PutGood(VectorEnv& e) {
  const float v[] = {1, 0, 0, 0};
  auto txn = Txn::BeginWrite(*e.env);
  BOOST_REQUIRE(txn.ok());
  BOOST_REQUIRE(e.index->Put(*txn, "acme", kGoodChunk, v, 1, 4).ok());
  BOOST_REQUIRE(txn->Commit().ok());
}

BOOST_AUTO_TEST_CASE(malformed_blocks_are_errors_not_crashes) {
  const float q[] = {1, 0, 0, 0};
  const std::string floats(4 * sizeof(float), '\0');
  struct Case {
    const char* what;
    std::string value;
  };
  const std::vector<Case> cases = {
      {"wrong magic", Header(0xdeadbeef, 1, 4) + floats},
      {"count larger than the value", Header(kMagic, 1000, 4) + floats},
      {"count near 2^32", Header(kMagic, 0xFFFFFFFFu, 4) + floats},
      {"truncated floats", Header(kMagic, 1, 4) + floats.substr(0, 7)},
      {"another dimension", Header(kMagic, 1, 8) + floats + floats},
      {"random bytes", std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                                   "\x10\x11\x12\x13\x14",
                                   20)},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      VectorEnv e(1);
      PutGood(e);
      PutRaw(e, "vectors.0", "acme/" + ChunkKeyPart(kBadChunk), c.value);
      auto hits = e.index->Search("acme", q, 4, 10);
      BOOST_TEST(!hits.ok());
      if (!hits.ok()) {
        BOOST_TEST((hits.status().kind() == ErrorKind::kInternal));
        // The message names the block by its first chunk id.
        BOOST_TEST(hits.status().message().find(std::to_string(kBadChunk)) != std::string::npos,
                   hits.status().message());
      }
      // Filtered away, the bad block is not read.
      auto filtered = e.index->Search("acme", q, 4, 10, ChunkFilter{false, {{kGoodChunk, 2}}});
      BOOST_REQUIRE(filtered.ok());
      BOOST_TEST(filtered->size() == 1u);
    }
  }
}

// A value shorter than the 16-byte header is as corrupt as one with a wrong
// magic, but the scan skips it silently, hiding the document from every search.
BOOST_AUTO_TEST_CASE(a_block_shorter_than_its_header_is_an_error) {
  VectorEnv e(1);
  PutGood(e);
  PutRaw(e, "vectors.0", "acme/" + ChunkKeyPart(kBadChunk), std::string("RSV", 3));
  const float q[] = {1, 0, 0, 0};
  auto hits = e.index->Search("acme", q, 4, 10);
  BOOST_TEST(!hits.ok(), "a 3-byte vector block was skipped silently");
}

BOOST_AUTO_TEST_CASE(a_query_of_another_dimension_is_an_error) {
  VectorEnv e(2);
  PutGood(e);
  const float q[] = {1, 0, 0, 0, 0, 0, 0, 0};
  auto hits = e.index->Search("acme", q, 8, 10);
  BOOST_TEST(!hits.ok());
}

BOOST_AUTO_TEST_CASE(empty_index) {
  VectorEnv e(3);
  const float q[] = {1, 0, 0, 0};
  auto hits = e.index->Search("acme", q, 4, 10);
  BOOST_REQUIRE(hits.ok());
  BOOST_TEST(hits->empty());
  auto count = e.index->Count();
  BOOST_REQUIRE(count.ok());
  BOOST_TEST(*count == 0u);
}

// k = 0 is a valid size_t; it must give an empty result. ScanShard's heap
// compares the first score with heap.top() of an empty priority_queue
// (undefined behaviour: a null dereference). Run in a child process, so that
// the crash this guards against fails the test instead of taking the suite
// down.
BOOST_AUTO_TEST_CASE(k_zero_returns_nothing) {
  TempDir dir;  // owned (and removed) by the parent
  const pid_t pid = fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE}) signal(sig, SIG_DFL);
    int code = 4;
    try {
      Env::Options options;
      options.path = dir.path();
      options.map_size_bytes = 16ull << 20;
      options.max_readers = 16;
      options.databases = VectorIndex::Databases(1);
      auto env = Env::Open(options);
      if (!env.ok()) _exit(5);
      VectorIndex index(**env, 1);
      const float v[] = {1, 0, 0, 0};
      {
        auto txn = Txn::BeginWrite(**env);
        if (!txn.ok() || !index.Put(*txn, "acme", kGoodChunk, v, 1, 4).ok() || !txn->Commit().ok())
          _exit(6);
      }
      auto hits = index.Search("acme", v, 4, 0);
      code = !hits.ok() ? 1 : !hits->empty() ? 2 : 0;
    } catch (...) {
      code = 3;
    }
    _exit(code);
  }
  int status = 0;
  BOOST_REQUIRE(waitpid(pid, &status, 0) == pid);
  BOOST_TEST(!WIFSIGNALED(status), "Search with k = 0 crashed with signal " << WTERMSIG(status));
  if (WIFEXITED(status)) {
    BOOST_TEST(WEXITSTATUS(status) == 0, "1: an error, 2: hits, 3+: setup failed");
  }
}

BOOST_AUTO_TEST_CASE(int8_format_finds_the_exact_top_10_with_exact_scores) {
  // The int8 scan picks candidates, the float rows rescore them: recall@10 against the exact
  // float scan must be >= 0.99, and every reported score is the float score of its row.
  std::mt19937 rng(77);
  for (uint32_t dim : {384u, 100u}) {
    Corpus c = MakeCorpus(rng, dim, 300, 40);
    VectorEnv exact(3, 512ull << 20, VectorFormat::kFloat);
    VectorEnv quantised(3, 512ull << 20, VectorFormat::kInt8);
    Store(exact, c);
    Store(quantised, c);
    size_t found = 0, wanted = 0;
    for (int qi = 0; qi < 40; ++qi) {
      auto q = RandomUnit(rng, dim);
      auto want = exact.index->Search("acme", q.data(), dim, 10);
      auto got = quantised.index->Search("acme", q.data(), dim, 10);
      BOOST_REQUIRE(want.ok() && got.ok());
      BOOST_REQUIRE_EQUAL(got->size(), 10u);
      std::set<uint32_t> truth;
      for (const auto& h : *want) truth.insert(h.chunk);
      for (const auto& h : *got) {
        found += truth.count(h.chunk);
        auto doc = c.DocOf(h.chunk);
        BOOST_REQUIRE(doc.has_value());
        const auto& block = c.docs.at(*doc);
        BOOST_TEST(h.score ==
                   DotProduct(q.data(), block.data() + size_t{h.chunk - *doc} * dim, dim));
      }
      wanted += truth.size();
      for (size_t i = 1; i < got->size(); ++i) BOOST_TEST((*got)[i - 1].score >= (*got)[i].score);
    }
    BOOST_TEST(static_cast<double>(found) / static_cast<double>(wanted) >= 0.99);
  }
}

BOOST_AUTO_TEST_CASE(int8_format_keeps_filters_tenants_and_deletes) {
  std::mt19937 rng(5);
  Corpus c = MakeCorpus(rng, 64, 30, 5);
  VectorEnv e(2, 64ull << 20, VectorFormat::kInt8);
  Store(e, c);
  auto q = RandomUnit(rng, 64);
  const uint32_t doc3 = c.First(3);
  const size_t rows3 = c.Rows(doc3);
  const ChunkFilter only3 = c.FilterOf({3});
  auto only = e.index->Search("acme", q.data(), 64, 100, only3);
  BOOST_REQUIRE(only.ok());
  BOOST_TEST(only->size() == rows3);
  for (const auto& h : *only) BOOST_TEST((h.chunk >= doc3 && h.chunk < doc3 + rows3));
  auto other = e.index->Search("globex", q.data(), 64, 10);
  BOOST_REQUIRE(other.ok());
  BOOST_TEST(other->empty());
  {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(e.index->Delete(*txn, "acme", doc3, static_cast<uint32_t>(rows3)).ok());
    BOOST_REQUIRE(txn->Commit().ok());
  }
  auto after = e.index->Search("acme", q.data(), 64, 1000);
  BOOST_REQUIRE(after.ok());
  for (const auto& h : *after) BOOST_TEST((h.chunk < doc3 || h.chunk >= doc3 + rows3));
  BOOST_TEST(e.index->Search("acme", q.data(), 64, 10, only3)->empty());
  // A malformed int8 block is an error naming its first chunk id, not a crash.
  PutRaw(e, "vectors8.0", "acme/" + ChunkKeyPart(kBadChunk), std::string("junk", 4));
  PutRaw(e, "vectors8.1", "acme/" + ChunkKeyPart(kBadChunk), std::string("junk", 4));
  auto bad = e.index->Search("acme", q.data(), 64, 10);
  BOOST_TEST(!bad.ok());
  if (!bad.ok()) {
    BOOST_TEST(bad.status().message().find(std::to_string(kBadChunk)) != std::string::npos,
               bad.status().message());
  }
}

// ---- Blocks: rows of 512-id ranges packed into one value each ----

// Puts every document of the corpus in its own transaction, as uploads do.
void StoreOneByOne(VectorEnv& e, const Corpus& c) {
  for (const auto& [first, block] : c.docs) {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    Status s = e.index->Put(*txn, "acme", first, block.data(),
                            static_cast<uint32_t>(block.size() / c.dim), c.dim);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    BOOST_REQUIRE(txn->Commit().ok());
  }
}

// Every stored row is where Row says, with the reference's bits, and no other row is.
void CheckRows(const VectorEnv& e, const Corpus& c, uint32_t end) {
  auto txn = Txn::BeginRead(*e.env);
  BOOST_REQUIRE(txn.ok());
  std::vector<float> scratch;
  for (uint32_t chunk = 0; chunk < end; ++chunk) {
    const auto doc = c.DocOf(chunk);
    const float* row = e.index->Row(*txn, "acme", doc.value_or(chunk), chunk, c.dim, scratch);
    if (!doc) {
      BOOST_TEST(row == nullptr, "chunk " << chunk << " has no document but a row");
      continue;
    }
    BOOST_REQUIRE_MESSAGE(row != nullptr, "chunk " << chunk << " has no row");
    const float* want = c.docs.at(*doc).data() + size_t{chunk - *doc} * c.dim;
    BOOST_TEST(std::memcmp(row, want, sizeof(float) * c.dim) == 0, "chunk " << chunk);
  }
}

// ForEach over [from, to) gives every row in it once, as runs that never span two documents.
void CheckForEach(const VectorEnv& e, const Corpus& c, uint32_t from, uint32_t to) {
  auto txn = Txn::BeginRead(*e.env);
  BOOST_REQUIRE(txn.ok());
  std::map<uint32_t, int> seen;
  Status s = e.index->ForEach(
      *txn, "acme", from, to, c.dim, [&](uint32_t first, const float* rows, uint32_t count, bool) {
        const auto doc = c.DocOf(first);
        BOOST_REQUIRE(doc.has_value());
        BOOST_TEST((c.DocOf(first + count - 1) == doc));
        for (uint32_t r = 0; r < count; ++r) {
          ++seen[first + r];
          const float* want = c.docs.at(*doc).data() + size_t{first + r - *doc} * c.dim;
          BOOST_TEST(std::memcmp(rows + size_t{r} * c.dim, want, sizeof(float) * c.dim) == 0);
        }
        return Status::Ok();
      });
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  size_t want = 0;
  for (const auto& [first, block] : c.docs) {
    for (uint32_t r = 0; r < block.size() / c.dim; ++r) want += first + r >= from && first + r < to;
  }
  BOOST_TEST(seen.size() == want);
  for (const auto& [chunk, n] : seen) {
    BOOST_TEST(n == 1, "chunk " << chunk << " visited " << n << " times");
    BOOST_TEST((chunk >= from && chunk < to));
  }
}

BOOST_AUTO_TEST_CASE(rows_move_into_blocks_as_their_ranges_fill) {
  std::mt19937 rng(77);
  VectorEnv e(3);
  Corpus c = MakeCorpus(rng, 16, 250, 20);  // ~2,600 rows: 5 complete ranges
  StoreOneByOne(e, c);
  auto layout = e.index->Values("acme");
  BOOST_REQUIRE(layout.ok());
  const uint32_t complete = (c.next_chunk - 1) / VectorIndex::kBlockRows;
  BOOST_TEST(layout->blocks == complete);
  BOOST_TEST(layout->block_rows == uint64_t{complete} * VectorIndex::kBlockRows);
  BOOST_TEST(layout->piece_rows == c.next_chunk - layout->block_rows);
  BOOST_TEST(layout->pieces > 0u);
  auto count = e.index->Count();
  BOOST_REQUIRE(count.ok());
  BOOST_TEST(*count == c.next_chunk);
  for (int i = 0; i < 10; ++i) CheckAgainstReference(e, c, RandomUnit(rng, 16), 10);
  CheckRows(e, c, c.next_chunk + 5);
  CheckForEach(e, c, 0, UINT32_MAX);
  CheckForEach(e, c, c.First(40), c.First(200));  // from inside one block to inside another
  CheckForEach(e, c, c.First(240), UINT32_MAX);   // the pieces
  // All at once in one transaction packs the same way.
  VectorEnv batch(3);
  Store(batch, c);
  auto same = batch.index->Values("acme");
  BOOST_REQUIRE(same.ok());
  BOOST_TEST(same->blocks == layout->blocks);
  BOOST_TEST(same->piece_rows == layout->piece_rows);
}

// A deleted document's rows leave their blocks (the one it crosses into too), and a block left
// with no rows is gone; nothing else moves.
BOOST_AUTO_TEST_CASE(deleting_a_document_rewrites_its_blocks) {
  std::mt19937 rng(78);
  VectorEnv e(2);
  Corpus c = MakeCorpus(rng, 16, 250, 20);
  StoreOneByOne(e, c);
  auto before = e.index->Values("acme");
  BOOST_REQUIRE(before.ok());
  // A document whose rows cross from the first block into the second, and those of block 0.
  int crossing = -1;
  std::vector<int> in_first_block;
  for (int d = 0; d < 250; ++d) {
    const uint32_t first = c.First(d), last = first + static_cast<uint32_t>(c.Rows(first)) - 1;
    if (first < 512 && last >= 512) crossing = d;
    if (last < 512) in_first_block.push_back(d);
  }
  BOOST_REQUIRE(crossing >= 0);
  auto erase = [&](int d) {
    const uint32_t first = c.First(d);
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(e.index->Delete(*txn, "acme", first, static_cast<uint32_t>(c.Rows(first))).ok());
    BOOST_REQUIRE(txn->Commit().ok());
    c.docs.erase(first);
  };
  erase(crossing);
  auto count = e.index->Count();
  BOOST_REQUIRE(count.ok());
  size_t total = 0;
  for (const auto& [first, block] : c.docs) total += block.size() / c.dim;
  BOOST_TEST(*count == total);
  CheckRows(e, c, c.next_chunk);
  CheckForEach(e, c, 0, UINT32_MAX);
  for (int i = 0; i < 5; ++i) CheckAgainstReference(e, c, RandomUnit(rng, 16), 10);
  for (int d : in_first_block) erase(d);
  auto after = e.index->Values("acme");
  BOOST_REQUIRE(after.ok());
  BOOST_TEST(after->blocks == before->blocks - 1);
  CheckRows(e, c, c.next_chunk);
  for (int i = 0; i < 5; ++i) CheckAgainstReference(e, c, RandomUnit(rng, 16), 10);
}

// Rows put again for chunks a block already holds replace them there.
BOOST_AUTO_TEST_CASE(putting_rows_again_into_a_packed_range_replaces_them) {
  std::mt19937 rng(79);
  VectorEnv e(2);
  Corpus c = MakeCorpus(rng, 16, 100, 20);
  StoreOneByOne(e, c);
  const uint32_t doc = c.First(3);
  for (float& x : c.docs[doc]) x = -x;
  {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(
        e.index
            ->Put(*txn, "acme", doc, c.docs[doc].data(), static_cast<uint32_t>(c.Rows(doc)), c.dim)
            .ok());
    BOOST_REQUIRE(txn->Commit().ok());
  }
  auto count = e.index->Count();
  BOOST_REQUIRE(count.ok());
  BOOST_TEST(*count == c.next_chunk);
  CheckRows(e, c, c.next_chunk);
  std::vector<float> q(c.docs[doc].begin(), c.docs[doc].begin() + c.dim);
  CheckAgainstReference(e, c, q, 10);
}

// Stores written before blocks keep one value per document, whatever its length; those rows
// stay searchable, readable and deletable beside the blocks of later documents.
BOOST_AUTO_TEST_CASE(values_of_the_per_document_layout_are_still_read) {
  std::mt19937 rng(80);
  VectorEnv e(1);
  Corpus c;
  c.dim = 8;
  // An older version's document of 700 rows from chunk 100: one value across two ranges.
  std::vector<float>& old = c.docs[100];
  for (int r = 0; r < 700; ++r) {
    auto v = RandomUnit(rng, 8);
    old.insert(old.end(), v.begin(), v.end());
  }
  std::string value = Header(kMagic, 700, 8);
  value.append(reinterpret_cast<const char*>(old.data()), sizeof(float) * old.size());
  PutRaw(e, "vectors.0", "acme/" + ChunkKeyPart(100), value);
  c.next_chunk = 800;
  for (int d = 0; d < 100; ++d) {  // then new documents, through two more ranges
    const uint32_t first = c.next_chunk;
    for (int r = 0; r < 15; ++r) {
      auto v = RandomUnit(rng, 8);
      c.docs[first].insert(c.docs[first].end(), v.begin(), v.end());
    }
    c.next_chunk += 15;
  }
  Corpus fresh = c;
  fresh.docs.erase(100);
  StoreOneByOne(e, fresh);
  auto layout = e.index->Values("acme");
  BOOST_REQUIRE(layout.ok());
  BOOST_TEST(layout->blocks > 0u);
  CheckRows(e, c, c.next_chunk);
  CheckForEach(e, c, 0, UINT32_MAX);
  for (int i = 0; i < 5; ++i) CheckAgainstReference(e, c, RandomUnit(rng, 8), 10);
  {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(e.index->Delete(*txn, "acme", 100, 700).ok());
    BOOST_REQUIRE(txn->Commit().ok());
  }
  c.docs.erase(100);
  auto count = e.index->Count();
  BOOST_REQUIRE(count.ok());
  BOOST_TEST(*count == 1500u);
  CheckRows(e, c, c.next_chunk);
}

// A store of the per-document layout is packed a bounded number of ranges per transaction:
// documents that cross a range's end are split, every row keeps its id and bits, and the
// range still filling stays in pieces.
BOOST_AUTO_TEST_CASE(a_store_of_per_document_values_is_packed_in_bounded_steps) {
  std::mt19937 rng(81);
  VectorEnv e(2);
  Corpus c = MakeCorpus(rng, 8, 60, 60);
  for (const auto& [first, block] : c.docs) {
    std::string value = Header(kMagic, static_cast<uint32_t>(block.size() / 8), 8);
    value.append(reinterpret_cast<const char*>(block.data()), sizeof(float) * block.size());
    PutRaw(e, "vectors." + std::to_string(e.index->ShardOf(first)), "acme/" + ChunkKeyPart(first),
           value);
  }
  const uint32_t complete = c.next_chunk / VectorIndex::kBlockRows;
  BOOST_REQUIRE(complete >= 2);
  {
    auto txn = Txn::BeginRead(*e.env);
    BOOST_REQUIRE(txn.ok());
    BOOST_TEST(e.index->HasPiecesBelow(*txn, "acme", c.next_chunk).value());
  }
  uint32_t from = 0, steps = 0;
  while (true) {
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    auto progress = e.index->PackBelow(*txn, "acme", 8, from, c.next_chunk, 1);
    BOOST_REQUIRE_MESSAGE(progress.ok(), progress.status().ToString());
    BOOST_REQUIRE(txn->Commit().ok());
    if (progress->done) break;
    BOOST_TEST(progress->packed == 1u);
    from = progress->next;
    BOOST_REQUIRE(++steps <= complete);
  }
  BOOST_TEST(steps == complete);
  auto layout = e.index->Values("acme");
  BOOST_REQUIRE(layout.ok());
  BOOST_TEST(layout->blocks == complete);
  BOOST_TEST(layout->block_rows == uint64_t{complete} * VectorIndex::kBlockRows);
  BOOST_TEST(layout->piece_rows == c.next_chunk - layout->block_rows);
  {
    auto txn = Txn::BeginRead(*e.env);
    BOOST_REQUIRE(txn.ok());
    BOOST_TEST(!e.index->HasPiecesBelow(*txn, "acme", c.next_chunk).value());
  }
  CheckRows(e, c, c.next_chunk);
  CheckForEach(e, c, 0, UINT32_MAX);
  for (int i = 0; i < 5; ++i) CheckAgainstReference(e, c, RandomUnit(rng, 8), 10);
}

BOOST_AUTO_TEST_CASE(a_malformed_block_is_an_error_naming_its_range) {
  VectorEnv e(1);
  PutGood(e);
  PutRaw(e, "vblocks.0", "acme/" + ChunkKeyPart(1024), std::string(60, 'x'));
  const float q[] = {1, 0, 0, 0};
  auto hits = e.index->Search("acme", q, 4, 10);
  BOOST_REQUIRE(!hits.ok());
  BOOST_TEST(hits.status().message().find("1024") != std::string::npos, hits.status().message());
  // Filtered away, it is not read.
  auto filtered = e.index->Search("acme", q, 4, 10, ChunkFilter{false, {{kGoodChunk, 2}}});
  BOOST_REQUIRE(filtered.ok());
  BOOST_TEST(filtered->size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::store
