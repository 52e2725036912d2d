// IvfIndex, the approximate vector index: recall against brute force on seeded clustered
// data, exact scores, inserts and deletes after training, filters, tenants, the build claim,
// when a build is needed, and a rebuild's flip under concurrent readers; and the k-means it
// trains with.
#include "lib/store/ivf_index.h"

#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lib/store/kmeans.h"
#include "lib/store/tenant_key.h"
#include "tests/unit/temp_store.h"

namespace ragstream::store {
namespace {

using ragstream::testing::TempDir;

constexpr uint32_t kDim = 32;

void Normalise(std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += double{x} * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
}

// Points around `centers` random unit centres (noise `spread`), unit length: data with the
// structure an IVF finds, as a semantic embedder's vectors have.
struct Clustered {
  explicit Clustered(uint64_t seed, int centers = 64, float spread = 0.35f) : random(seed) {
    for (int c = 0; c < centers; ++c) centres.push_back(Unit());
    this->spread = spread;
  }
  std::vector<float> Unit() {
    std::vector<float> v(kDim);
    for (float& x : v) x = normal(random);
    Normalise(v);
    return v;
  }
  std::vector<float> Point() {
    const auto& c = centres[random() % centres.size()];
    std::vector<float> v(kDim);
    for (uint32_t i = 0; i < kDim; ++i) v[i] = c[i] + spread * normal(random) / 2;
    Normalise(v);
    return v;
  }
  std::mt19937_64 random;
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> centres;
  float spread = 0;
};

// One environment with the vector shards and the ivf database, and per tenant the rows put so
// far (chunk id -> vector; documents of `rows_per_doc` consecutive chunks).
struct IvfEnv {
  IvfEnv() {
    Env::Options options;
    options.path = dir.path();
    options.map_size_bytes = 256ull << 20;
    options.max_readers = 126;
    options.databases = VectorIndex::Databases(2);
    options.databases.push_back("ivf");
    auto opened = Env::Open(options);
    if (!opened.ok()) throw std::runtime_error("Env::Open: " + opened.status().ToString());
    env = std::move(opened).value();
    vectors = std::make_unique<VectorIndex>(*env, 2);
    ivf = std::make_unique<IvfIndex>(*env, *vectors);
  }
  ~IvfEnv() {
    ivf.reset();
    vectors.reset();
    env.reset();
  }

  // Adds documents of `rows_per_doc` rows from `make` until `count` rows are added, as the
  // document store does: float rows and the index's lists in one transaction.
  // `lists` false: only the float rows, as a worker without the approximate index stores them.
  template <typename Make>
  void Add(const std::string& tenant, size_t count, Make make, uint32_t rows_per_doc = 10,
           bool lists = true) {
    auto txn = Txn::BeginWrite(*env);
    BOOST_REQUIRE(txn.ok());
    std::vector<std::vector<float>> keep;
    std::vector<IvfIndex::NewRows> docs;
    uint32_t& next = next_chunk[tenant];
    for (size_t added = 0; added < count;) {
      const uint32_t n = static_cast<uint32_t>(std::min<size_t>(rows_per_doc, count - added));
      std::vector<float> rows;
      for (uint32_t r = 0; r < n; ++r) {
        std::vector<float> v = make();
        rows.insert(rows.end(), v.begin(), v.end());
        stored[tenant][next + r] = v;
        first_of[tenant][next + r] = next;
      }
      BOOST_REQUIRE(vectors->Put(*txn, tenant, next, rows.data(), n, kDim).ok());
      keep.push_back(std::move(rows));
      docs.push_back({next, keep.back().data(), n});
      next += n;
      added += n;
    }
    if (lists) BOOST_REQUIRE(ivf->Insert(*txn, tenant, docs, kDim).ok());
    BOOST_REQUIRE(txn->Commit().ok());
  }
  // Deletes the document whose first chunk is `first`, as the document store does.
  void Delete(const std::string& tenant, uint32_t first) {
    uint32_t n = 0;
    for (auto& [chunk, f] : first_of[tenant]) n += f == first;
    auto txn = Txn::BeginWrite(*env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(vectors->Delete(*txn, tenant, first, n).ok());
    BOOST_REQUIRE(ivf->Tombstone(*txn, tenant, first, n).ok());
    BOOST_REQUIRE(txn->Commit().ok());
    for (uint32_t c = first; c < first + n; ++c) {
      stored[tenant].erase(c);
      first_of[tenant].erase(c);
    }
  }
  IvfIndex::RowSource Rows(const std::string& tenant) {
    return [this, tenant](const Txn& txn, uint32_t chunk, std::vector<float>& scratch) {
      auto it = first_of[tenant].find(chunk);
      if (it == first_of[tenant].end()) return static_cast<const float*>(nullptr);
      return vectors->Row(txn, tenant, it->second, chunk, kDim, scratch);
    };
  }
  // Brute force over the tenant's rows, filtered.
  std::vector<uint32_t> Exact(const std::string& tenant, const std::vector<float>& q, size_t k,
                              const ChunkFilter& filter = {}) {
    std::vector<std::pair<float, uint32_t>> all;
    for (const auto& [chunk, v] : stored[tenant]) {
      if (filter.Contains(chunk)) all.push_back({DotProduct(q.data(), v.data(), kDim), chunk});
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    std::vector<uint32_t> out;
    for (size_t i = 0; i < std::min(k, all.size()); ++i) out.push_back(all[i].second);
    return out;
  }
  std::optional<std::vector<VectorHit>> Search(const std::string& tenant,
                                               const std::vector<float>& q, size_t k,
                                               uint32_t nprobe, const ChunkFilter& filter = {}) {
    auto hits = ivf->Search(tenant, q.data(), kDim, k, {nprobe}, filter, Rows(tenant));
    BOOST_REQUIRE_MESSAGE(hits.ok(), hits.status().ToString());
    return *hits;
  }
  IvfState State(const std::string& tenant) {
    auto txn = Txn::BeginRead(*env);
    BOOST_REQUIRE(txn.ok());
    auto state = ivf->Active(*txn, tenant);
    BOOST_REQUIRE(state.ok() && state->has_value());
    return **state;
  }
  bool NeedsBuild(const std::string& tenant, uint64_t min_rows) {
    auto txn = Txn::BeginRead(*env);
    BOOST_REQUIRE(txn.ok());
    auto needs = ivf->NeedsBuild(*txn, tenant, next_chunk[tenant], min_rows);
    BOOST_REQUIRE(needs.ok());
    return *needs;
  }
  // Keys of the ivf database under the tenant's index `id`.
  size_t ListKeys(const std::string& tenant, uint32_t id) {
    auto txn = Txn::BeginRead(*env);
    BOOST_REQUIRE(txn.ok());
    auto cur = Cursor::Open(*txn, env->Dbi("ivf"));
    BOOST_REQUIRE(cur.ok());
    const std::string prefix = TenantKey(tenant, "l" + ChunkKeyPart(id));
    size_t n = 0;
    for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
         have = cur->Next()) {
      ++n;
    }
    return n;
  }

  TempDir dir;
  std::unique_ptr<Env> env;
  std::unique_ptr<VectorIndex> vectors;
  std::unique_ptr<IvfIndex> ivf;
  std::map<std::string, std::map<uint32_t, std::vector<float>>> stored;
  std::map<std::string, std::map<uint32_t, uint32_t>> first_of;  // chunk -> document's first
  std::map<std::string, uint32_t> next_chunk;
};

IvfBuildOptions Options(uint32_t nlist) {
  IvfBuildOptions o;
  o.nlist = nlist;
  o.threads = 2;
  return o;
}

double Recall(const std::vector<VectorHit>& got, const std::vector<uint32_t>& truth) {
  size_t found = 0;
  for (const auto& h : got) found += std::count(truth.begin(), truth.end(), h.chunk);
  return truth.empty() ? 1.0 : static_cast<double>(found) / truth.size();
}

BOOST_AUTO_TEST_SUITE(ivf_index_test)

BOOST_AUTO_TEST_CASE(kmeans_finds_well_separated_clusters) {
  Clustered data(7, 8, 0.05f);
  std::vector<std::vector<float>> points;
  for (int i = 0; i < 800; ++i) points.push_back(data.Point());
  std::vector<const float*> rows;
  for (auto& p : points) rows.push_back(p.data());
  const std::vector<float> centroids = TrainSphericalKMeans(rows, kDim, 8, {10, 3, 2});
  // Every true centre has its own centroid, close to it.
  std::set<uint32_t> used;
  for (const auto& c : data.centres) {
    const std::vector<uint32_t> nearest = NearestCentroids(c.data(), kDim, centroids.data(), 8, 1);
    used.insert(nearest[0]);
    BOOST_TEST(DotProduct(c.data(), centroids.data() + nearest[0] * kDim, kDim) > 0.95f);
  }
  BOOST_TEST(used.size() == 8u);
  for (uint32_t c = 0; c < 8; ++c) {
    BOOST_TEST(std::abs(DotProduct(centroids.data() + c * kDim, centroids.data() + c * kDim, kDim) -
                        1.0f) < 1e-4f);
  }
}

BOOST_AUTO_TEST_CASE(recall_against_brute_force_on_clustered_data) {
  IvfEnv e;
  Clustered data(11);
  e.Add("t", 6000, [&] { return data.Point(); });
  std::vector<float> q = data.Point();
  BOOST_TEST(!e.Search("t", q, 10, 4).has_value());  // no index yet: the caller scans exactly
  auto report = e.ivf->Build("t", kDim, Options(64));
  BOOST_REQUIRE(report.ok());
  BOOST_TEST(report->built);
  BOOST_TEST(report->rows == 6000u);
  BOOST_TEST(report->nlist == 64u);
  double at8 = 0, at_all = 0;
  const int queries = 100;
  for (int i = 0; i < queries; ++i) {
    q = data.Point();
    const auto truth = e.Exact("t", q, 10);
    auto few = e.Search("t", q, 10, 8);
    auto all = e.Search("t", q, 10, 64);
    BOOST_REQUIRE(few && all);
    at8 += Recall(*few, truth);
    at_all += Recall(*all, truth);
    // Scores are exact inner products (rescored from the float rows), best first.
    for (size_t h = 0; h < all->size(); ++h) {
      const auto& v = e.stored["t"][(*all)[h].chunk];
      BOOST_TEST((*all)[h].score == DotProduct(q.data(), v.data(), kDim));
      if (h) BOOST_TEST((*all)[h - 1].score >= (*all)[h].score);
    }
  }
  // A share of the lists instead of a count: 0.25 of 64 is 16; never below one list.
  IvfSearchInfo info;
  auto shared = e.ivf->Search("t", q.data(), kDim, 10, {0, false, 0.25}, {}, e.Rows("t"), &info);
  BOOST_REQUIRE(shared.ok() && shared->has_value());
  BOOST_TEST(info.nprobe == 16u);
  BOOST_TEST(info.nlist == 64u);
  BOOST_REQUIRE(
      e.ivf->Search("t", q.data(), kDim, 10, {0, false, 0.0001}, {}, e.Rows("t"), &info).ok());
  BOOST_TEST(info.nprobe == 1u);
  // Split over threads (forced here; the product does it from 32k rows) finds the same.
  for (int i = 0; i < 10; ++i) {
    const std::vector<float> query = data.Point();
    auto serial = e.Search("t", query, 10, 16);
    IvfProbe split{16, true, 0, 1};
    auto parallel = e.ivf->Search("t", query.data(), kDim, 10, split, {}, e.Rows("t"), &info);
    BOOST_REQUIRE(serial && parallel.ok() && parallel->has_value());
    BOOST_REQUIRE((*parallel)->size() == serial->size());
    for (size_t h = 0; h < serial->size(); ++h) {
      BOOST_TEST((**parallel)[h].chunk == (*serial)[h].chunk);
      BOOST_TEST((**parallel)[h].score == (*serial)[h].score);
    }
    BOOST_TEST(info.nprobe == 16u);
  }
  BOOST_TEST_MESSAGE("recall@10: nprobe 8 " << at8 / queries << ", all lists " << at_all / queries);
  BOOST_TEST(at8 / queries >= 0.9);
  BOOST_TEST(at_all / queries >= 0.99);
}

BOOST_AUTO_TEST_CASE(rows_added_after_the_build_are_found) {
  IvfEnv e;
  Clustered data(12);
  e.Add("t", 3000, [&] { return data.Point(); });
  BOOST_REQUIRE(e.ivf->Build("t", kDim, Options(32))->built);
  std::vector<std::vector<float>> added;
  e.Add("t", 200, [&] {
    added.push_back(data.Point());
    return added.back();
  });
  BOOST_TEST(e.State("t").inserted == 200u);
  // Each new vector, as the query, is its own best match: it went into the list of its
  // nearest centroid, the one list probed.
  const uint32_t first_new = 3000;
  for (size_t i = 0; i < added.size(); i += 17) {
    auto hits = e.Search("t", added[i], 1, 1);
    BOOST_REQUIRE(hits && hits->size() == 1u);
    BOOST_TEST((*hits)[0].chunk == first_new + i);
  }
}

BOOST_AUTO_TEST_CASE(rows_stored_without_the_lists_join_them_at_the_next_insert) {
  IvfEnv e;
  Clustered data(20);
  e.Add("t", 2000, [&] { return data.Point(); });
  BOOST_REQUIRE(e.ivf->Build("t", kDim, Options(16))->built);
  // A worker of a version without the index stores 30 rows (chunks 2000..2029): not in the
  // lists, so a search probing one list cannot find them.
  std::vector<std::vector<float>> skipped;
  e.Add(
      "t", 30,
      [&] {
        skipped.push_back(data.Point());
        return skipped.back();
      },
      10, false);
  auto miss = e.Search("t", skipped[0], 1, 1);
  BOOST_REQUIRE(miss);
  BOOST_TEST((miss->empty() || (*miss)[0].chunk != 2000u));
  // The next document added by this version brings them in.
  e.Add("t", 10, [&] { return data.Point(); });
  BOOST_TEST(e.State("t").inserted == 40u);
  BOOST_TEST(e.State("t").covered_end == 2040u);
  for (size_t i = 0; i < skipped.size(); ++i) {
    auto hits = e.Search("t", skipped[i], 1, 1);
    BOOST_REQUIRE(hits && hits->size() == 1u);
    BOOST_TEST((*hits)[0].chunk == 2000 + i);
  }
}

BOOST_AUTO_TEST_CASE(deleted_chunks_are_never_returned) {
  IvfEnv e;
  Clustered data(13);
  e.Add("t", 2000, [&] { return data.Point(); });
  BOOST_REQUIRE(e.ivf->Build("t", kDim, Options(16))->built);
  const std::vector<float> q = e.stored["t"][500];  // chunk 500, of the document at 500
  auto before = e.Search("t", q, 5, 16);
  BOOST_REQUIRE(before && !before->empty());
  BOOST_TEST((*before)[0].chunk == 500u);
  // The row source still finds the deleted rows here (it is told nothing): the tombstones
  // alone keep them out.
  auto stale = e.first_of["t"];
  e.Delete("t", 500);
  auto rows = [&](const Txn& txn, uint32_t chunk, std::vector<float>& scratch) -> const float* {
    if (e.first_of["t"].count(chunk) == 0 && stale.count(chunk)) {
      return q.data();  // would score 1, the best there is
    }
    return e.Rows("t")(txn, chunk, scratch);
  };
  auto after = e.ivf->Search("t", q.data(), kDim, 20, {16}, {}, rows);
  BOOST_REQUIRE(after.ok() && after->has_value());
  for (const auto& h : **after) BOOST_TEST((h.chunk < 500 || h.chunk >= 510));
  BOOST_TEST(e.State("t").deleted == 10u);
  // A rebuild leaves them out of the lists altogether.
  auto rebuilt = e.ivf->Build("t", kDim, Options(16));
  BOOST_REQUIRE(rebuilt.ok() && rebuilt->built);
  BOOST_TEST(rebuilt->rows == 1990u);
}

BOOST_AUTO_TEST_CASE(a_filter_is_applied_before_the_candidates_are_chosen) {
  IvfEnv e;
  Clustered data(14);
  e.Add("t", 3000, [&] { return data.Point(); });
  BOOST_REQUIRE(e.ivf->Build("t", kDim, Options(32))->built);
  ChunkFilter filter;
  filter.all = false;
  filter.ranges = {{100, 400}, {2000, 2100}};
  for (int i = 0; i < 20; ++i) {
    const std::vector<float> q = data.Point();
    auto hits = e.Search("t", q, 10, 32, filter);
    BOOST_REQUIRE(hits);
    BOOST_TEST(hits->size() == 10u);  // all lists probed: the filter's best 10
    for (const auto& h : *hits) BOOST_TEST(filter.Contains(h.chunk));
    BOOST_TEST(Recall(*hits, e.Exact("t", q, 10, filter)) >= 0.9);
  }
}

BOOST_AUTO_TEST_CASE(tenants_are_apart) {
  IvfEnv e;
  Clustered a(15), b(16);
  e.Add("alpha", 2000, [&] { return a.Point(); });
  e.Add("beta", 500, [&] { return b.Point(); });  // the same chunk ids 0..499, other vectors
  BOOST_REQUIRE(e.ivf->Build("alpha", kDim, Options(16))->built);
  BOOST_TEST(!e.Search("beta", b.Point(), 5, 4).has_value());  // beta has none of its own
  for (int i = 0; i < 10; ++i) {
    const std::vector<float> q = b.Point();
    auto hits = e.Search("alpha", q, 5, 16);
    BOOST_REQUIRE(hits);
    for (const auto& h : *hits) {
      BOOST_TEST(h.score == DotProduct(q.data(), e.stored["alpha"][h.chunk].data(), kDim));
    }
  }
  // Deleting beta's chunks leaves alpha's ids alone.
  e.Delete("beta", 0);
  auto hits = e.Search("alpha", e.stored["alpha"][3], 1, 16);
  BOOST_REQUIRE(hits && !hits->empty());
  BOOST_TEST((*hits)[0].chunk == 3u);
}

BOOST_AUTO_TEST_CASE(when_a_build_is_needed) {
  IvfEnv e;
  Clustered data(17);
  e.Add("t", 900, [&] { return data.Point(); });
  BOOST_TEST(!e.NeedsBuild("t", 1000));
  BOOST_TEST(!e.NeedsBuild("t", 0));  // 0: never
  e.Add("t", 200, [&] { return data.Point(); });
  BOOST_TEST(e.NeedsBuild("t", 1000));
  // Too few live rows (after deletes) for the minimum: nothing built, and not looked at again
  // until a quarter of the minimum more chunks arrived.
  e.Delete("t", 0);
  e.Delete("t", 10);
  IvfBuildOptions o = Options(16);
  o.min_rows = 1100;
  auto skipped = e.ivf->Build("t", kDim, o);
  BOOST_REQUIRE(skipped.ok());
  BOOST_TEST(!skipped->built);
  BOOST_TEST(e.ListKeys("t", skipped->id) == 0u);
  BOOST_TEST(!e.NeedsBuild("t", 1100));
  e.Add("t", 300, [&] { return data.Point(); });
  BOOST_TEST(e.NeedsBuild("t", 1100));
  o.min_rows = 1000;
  BOOST_REQUIRE(e.ivf->Build("t", kDim, o)->built);
  BOOST_TEST(!e.NeedsBuild("t", 1000));
  // Rebuilt once as many rows changed as it was built with (1380 live rows).
  e.Add("t", 1300, [&] { return data.Point(); });
  BOOST_TEST(!e.NeedsBuild("t", 1000));
  e.Add("t", 100, [&] { return data.Point(); });
  BOOST_TEST(e.NeedsBuild("t", 1000));
}

BOOST_AUTO_TEST_CASE(a_live_claim_is_respected_and_a_dead_ones_work_is_dropped) {
  IvfEnv e;
  Clustered data(18);
  e.Add("t", 1000, [&] { return data.Point(); });
  const MDB_dbi dbi = e.env->Dbi("ivf");
  auto claim = [&](int64_t pid, uint32_t id) {
    std::string v(24, '\0');
    const int64_t since = time(nullptr);
    std::memcpy(v.data(), &pid, 8);
    std::memcpy(v.data() + 8, &since, 8);
    std::memcpy(v.data() + 16, &id, 4);
    auto txn = Txn::BeginWrite(*e.env);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(txn->Put(dbi, TenantKey("t", "b"), v).ok());
    // Half a build's lists under that id, as a crash would leave them.
    BOOST_REQUIRE(
        txn->Put(dbi, TenantKey("t", "l" + ChunkKeyPart(id) + ChunkKeyPart(0) + ChunkKeyPart(0)),
                 "junk")
            .ok());
    BOOST_REQUIRE(txn->Commit().ok());
  };
  claim(getppid(), 1);  // a live process
  auto r = e.ivf->Build("t", kDim, Options(8));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->built);
  BOOST_TEST(r->skipped.find("is building") != std::string::npos);
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  claim(child, 1);  // a process that is gone
  r = e.ivf->Build("t", kDim, Options(8));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->built);
  BOOST_TEST(r->id == 2u);
  BOOST_TEST(e.ListKeys("t", 1) == 0u);  // the dead build's junk is gone
  BOOST_TEST(e.ListKeys("t", 2) > 0u);
}

BOOST_AUTO_TEST_CASE(a_rebuild_flips_under_concurrent_readers_and_writers) {
  IvfEnv e;
  Clustered data(19);
  e.Add("t", 4000, [&] { return data.Point(); });
  BOOST_REQUIRE(e.ivf->Build("t", kDim, Options(32))->built);
  std::atomic<bool> done{false};
  std::atomic<int> searches{0}, failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      Clustered local(100 + r);
      local.centres = data.centres;
      while (!done.load()) {
        const std::vector<float> q = local.Point();
        auto hits =
            e.ivf->Search("t", q.data(), kDim, 5, {8}, {},
                          [&](const Txn& txn, uint32_t chunk, std::vector<float>& s) {
                            // Documents of 10 rows from 0: the first is chunk - chunk % 10.
                            return e.vectors->Row(txn, "t", chunk - chunk % 10, chunk, kDim, s);
                          });
        if (!hits.ok() || !hits->has_value() || (*hits)->size() != 5u) failures.fetch_add(1);
        searches.fetch_add(1);
      }
    });
  }
  // Writes go on while the new index is built: they land in the old one's lists and are
  // carried into the new one at the flip.
  std::thread writer([&] {
    Clustered local(200);
    local.centres = data.centres;
    for (int i = 0; i < 20; ++i) e.Add("t", 50, [&] { return local.Point(); });
  });
  auto rebuilt = e.ivf->Build("t", kDim, Options(48));
  writer.join();
  done.store(true);
  for (auto& t : readers) t.join();
  BOOST_REQUIRE(rebuilt.ok());
  BOOST_TEST(rebuilt->built);
  BOOST_TEST(searches.load() > 0);
  BOOST_TEST(failures.load() == 0);
  const IvfState s = e.State("t");
  BOOST_TEST(s.id == 2u);
  BOOST_TEST(s.nlist == 48u);
  BOOST_TEST(e.ListKeys("t", 1) == 0u);  // the old index is gone
  // Every row is in the new index: probing every list finds each vector as its own best.
  for (uint32_t chunk = 0; chunk < e.next_chunk["t"]; chunk += 97) {
    auto hits = e.Search("t", e.stored["t"][chunk], 1, 48);
    BOOST_REQUIRE(hits && !hits->empty());
    BOOST_TEST((*hits)[0].chunk == chunk);
  }
}

BOOST_AUTO_TEST_CASE(a_build_in_small_pieces_makes_the_same_index) {
  // Two stores with the same rows: one built with the default pieces, one reading 8 rows at a
  // time, flushing its lists every 2 kB (short segments) in tiny write transactions. The
  // same centroids (same sample and seed) and lists: every search returns the same.
  IvfEnv big, small;
  Clustered a(31), b(31);
  big.Add("t", 3000, [&] { return a.Point(); });
  small.Add("t", 3000, [&] { return b.Point(); });
  BOOST_REQUIRE(big.ivf->Build("t", kDim, Options(32))->built);
  IvfBuildOptions tiny = Options(32);
  tiny.read_bytes = 25 * kDim * sizeof(float);  // pieces of 2 or 3 documents
  tiny.pending_bytes = 2048;
  tiny.txn_bytes = 1024;
  auto report = small.ivf->Build("t", kDim, tiny);
  BOOST_REQUIRE(report.ok() && report->built);
  BOOST_TEST(report->rows == 3000u);
  BOOST_TEST(small.ListKeys("t", 1) > 2 * big.ListKeys("t", 1));
  Clustered queries(32);
  queries.centres = a.centres;
  for (int i = 0; i < 30; ++i) {
    const std::vector<float> q = queries.Point();
    auto x = big.Search("t", q, 10, 8);
    auto y = small.Search("t", q, 10, 8);
    BOOST_REQUIRE(x && y && x->size() == y->size());
    for (size_t h = 0; h < x->size(); ++h) {
      BOOST_TEST((*x)[h].chunk == (*y)[h].chunk);
      BOOST_TEST((*x)[h].score == (*y)[h].score);
    }
  }
}

BOOST_AUTO_TEST_CASE(rows_stored_during_a_build_are_caught_up_before_the_flip) {
  IvfEnv e;
  Clustered data(33);
  e.Add("t", 3000, [&] { return data.Point(); });
  IvfBuildOptions o = Options(32);
  o.flip_rows = 100;
  // 600 rows arrive after the first pass: a catch-up pass takes them, as the flip would take
  // fewer than 100.
  o.after_first_pass = [&] { e.Add("t", 600, [&] { return data.Point(); }); };
  auto report = e.ivf->Build("t", kDim, o);
  BOOST_REQUIRE(report.ok() && report->built);
  BOOST_TEST(report->rows == 3000u);
  BOOST_TEST(report->caught_up == 600u);
  BOOST_TEST(report->flip_rows == 0u);  // all 600 by a catch-up pass, none left for the flip
  const IvfState s = e.State("t");
  BOOST_TEST(s.built_rows == 3600u);
  BOOST_TEST(s.inserted == 0u);
  BOOST_TEST(s.covered_end == 3600u);
  for (uint32_t chunk = 0; chunk < 3600; chunk += 37) {
    auto hits = e.Search("t", e.stored["t"][chunk], 1, 32);
    BOOST_REQUIRE(hits && !hits->empty());
    BOOST_TEST((*hits)[0].chunk == chunk);
  }
}

BOOST_AUTO_TEST_CASE(the_build_estimates_a_probe_share_from_its_rows) {
  IvfEnv e;
  Clustered data(41, 64, 0.6f);  // loose clusters: the share needed is well inside (0, 1)
  e.Add("t", 6000, [&] { return data.Point(); });
  IvfBuildOptions o = Options(64);
  o.target_recall = 0.9;
  auto report = e.ivf->Build("t", kDim, o);
  BOOST_REQUIRE(report.ok() && report->built);
  BOOST_TEST(report->estimated_recall >= 0.9);
  BOOST_TEST(report->tuned_share > 0.0);
  BOOST_TEST(report->tuned_share < 1.0);
  const IvfState s = e.State("t");
  BOOST_TEST(s.build_share == static_cast<float>(report->tuned_share));
  BOOST_TEST(s.live_share == 0.0f);
  // Before any question was checked, the default probes the larger of the estimate and
  // `share` (0.4); asking for `share` alone probes that.
  const double expected = std::max(0.4, static_cast<double>(s.build_share));
  IvfSearchInfo info;
  BOOST_REQUIRE(e.ivf->Search("t", data.Point().data(), kDim, 10, {}, {}, e.Rows("t"), &info).ok());
  BOOST_TEST(info.nprobe == static_cast<uint32_t>(std::ceil(expected * 64)));
  IvfProbe fixed;
  fixed.tuned = false;
  BOOST_REQUIRE(
      e.ivf->Search("t", data.Point().data(), kDim, 10, fixed, {}, e.Rows("t"), &info).ok());
  BOOST_TEST(info.nprobe == 26u);
  // A higher target needs at least as many lists; no target, no estimate.
  IvfBuildOptions higher = Options(64);
  higher.target_recall = 0.99;
  auto more = e.ivf->Build("t", kDim, higher);
  BOOST_REQUIRE(more.ok() && more->built);
  BOOST_TEST(more->tuned_share >= report->tuned_share);
  BOOST_TEST(more->estimated_recall >= 0.99);
  IvfBuildOptions none = Options(64);
  none.target_recall = 0;
  BOOST_REQUIRE(e.ivf->Build("t", kDim, none)->built);
  BOOST_TEST(e.State("t").build_share == 0.0f);
}

BOOST_AUTO_TEST_CASE(checked_questions_teach_the_index_how_deep_to_probe) {
  IvfEnv e;
  Clustered data(43, 64, 0.6f);
  e.Add("t", 6000, [&] { return data.Point(); });
  IvfBuildOptions o = Options(64);
  o.target_recall = 0;  // no estimate from the rows: what is learnt comes from the questions
  BOOST_REQUIRE(e.ivf->Build("t", kDim, o)->built);
  auto observe = [&](int questions, double target) {
    for (int i = 0; i < questions; ++i) {
      const std::vector<float> q = data.Point();
      std::vector<const float*> neighbours;
      for (uint32_t chunk : e.Exact("t", q, 10)) neighbours.push_back(e.stored["t"][chunk].data());
      BOOST_REQUIRE(e.ivf->ObserveRecall("t", q.data(), kDim, neighbours, target).ok());
    }
  };
  // Fewer than kMinNeighbours neighbours: nothing learnt yet.
  observe(static_cast<int>(IvfIndex::kMinNeighbours / 10) - 1, 0.9);
  BOOST_TEST(e.State("t").live_share == 0.0f);
  observe(60, 0.9);
  const IvfState s = e.State("t");
  BOOST_TEST(s.live_share > 0.0f);
  BOOST_TEST(s.live_share < 1.0f);
  BOOST_TEST(s.live_recall >= 0.9f);
  // The default now probes what was learnt, and finds about the target on new questions.
  double recall = 0;
  const int queries = 200;
  for (int i = 0; i < queries; ++i) {
    const std::vector<float> q = data.Point();
    IvfSearchInfo info;
    auto hits = e.ivf->Search("t", q.data(), kDim, 10, {}, {}, e.Rows("t"), &info);
    BOOST_REQUIRE(hits.ok() && hits->has_value());
    BOOST_REQUIRE(info.nprobe == static_cast<uint32_t>(std::ceil(s.live_share * 64)));
    recall += Recall(**hits, e.Exact("t", q, 10));
  }
  BOOST_TEST_MESSAGE("learnt share " << s.live_share << " (recall " << s.live_recall
                                     << "), measured " << recall / queries);
  BOOST_TEST(recall / queries >= 0.87);
  // A higher target, learnt from the same kind of questions, probes deeper.
  observe(20, 0.99);
  BOOST_TEST(e.State("t").live_share > s.live_share);
  // The state keeps the 48 bytes every version reads (a worker of the previous version, in a
  // rolling restart, reads what this one writes); what was learnt lives beside it.
  {
    auto txn = Txn::BeginRead(*e.env);
    BOOST_REQUIRE(txn.ok());
    auto raw = txn->Get(e.env->Dbi("ivf"), TenantKey("t", "a"));
    BOOST_REQUIRE(raw.ok() && raw->has_value());
    BOOST_TEST((*raw)->size() == 48u);
  }
  // Inserts keep what was learnt; a rebuild (new lists) starts again.
  e.Add("t", 10, [&] { return data.Point(); });
  BOOST_TEST(e.State("t").live_share > 0.0f);
  BOOST_REQUIRE(e.ivf->Build("t", kDim, o)->built);
  BOOST_TEST(e.State("t").live_share == 0.0f);
}

BOOST_AUTO_TEST_CASE(the_build_computes_outside_every_transaction) {
  // The worker runs the build's computation on a thread that may be starved: if the build
  // held the write lock meanwhile, this writer would wait for it.
  IvfEnv e;
  Clustered data(45);
  e.Add("t", 3000, [&] { return data.Point(); });
  IvfBuildOptions o = Options(32);
  o.read_bytes = 200 * kDim * sizeof(float);
  int computations = 0, writes_blocked = 0;
  o.compute = [&](const std::function<void()>& work) {
    ++computations;
    auto wrote = std::async(std::launch::async, [&] {
      auto txn = Txn::BeginWrite(*e.env);
      return txn.ok() && txn->Commit().ok();
    });
    if (wrote.wait_for(std::chrono::seconds(5)) != std::future_status::ready || !wrote.get()) {
      ++writes_blocked;
    }
    std::thread worker(work);
    worker.join();
  };
  auto report = e.ivf->Build("t", kDim, o);
  BOOST_REQUIRE(report.ok() && report->built);
  BOOST_TEST(computations > 10);  // training, each piece, the calibration
  BOOST_TEST(writes_blocked == 0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::store
