#include "lib/store/ivf_index.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <future>
#include <random>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "lib/core/log.h"
#include "lib/store/kmeans.h"
#include "lib/store/tenant_key.h"
#include "lib/store/vector_quant.h"

namespace ragstream::store {

// Rows bound for one list, quantised, waiting to be written as segments: a build holds them
// between its short read transactions, so that no snapshot stays open while it works.
struct PendingList {
  std::vector<uint32_t> ids;
  std::vector<float> scales;
  std::vector<int8_t> codes;

  void Add(uint32_t chunk, const float* row, uint32_t dim) {
    ids.push_back(chunk);
    codes.resize(codes.size() + dim);
    scales.push_back(QuantizeInt8(row, dim, codes.data() + codes.size() - dim));
  }
  size_t size() const { return ids.size(); }
  // Forgets the first n rows (written).
  void DropFront(size_t n, uint32_t dim) {
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n));
    scales.erase(scales.begin(), scales.begin() + static_cast<std::ptrdiff_t>(n));
    codes.erase(codes.begin(), codes.begin() + static_cast<std::ptrdiff_t>(n * dim));
  }
};

namespace {

constexpr uint32_t kStateMagic = 0x31465652;     // "RVF1"
constexpr uint32_t kSegmentMagic = 0x31475352;   // "RSG1"
constexpr uint32_t kCentroidMagic = 0x31435652;  // "RVC1"
// Rows per list segment written by a build: big enough that a probe reads a list in a few
// values, small enough that one value stays well inside a write transaction.
constexpr uint32_t kSegmentRows = 512;
constexpr uint32_t kTombstoneShift = 13;  // 8192 chunk ids per bitmap value (1 kB: in a leaf)
constexpr size_t kTombstoneBytes = (size_t{1} << kTombstoneShift) / 8;
constexpr size_t kMaxProbeThreads = 4;  // see IvfProbe::parallel_rows
// A build claimed longer ago than this is abandoned even if its process still exists.
constexpr int64_t kClaimStaleSeconds = 6 * 3600;

std::string Be32(uint32_t v) {
  return ChunkKeyPart(v);
}

std::string StateKey(std::string_view tenant) {
  return TenantKey(tenant, "a");
}
std::string ClaimKey(std::string_view tenant) {
  return TenantKey(tenant, "b");
}
std::string SmallKey(std::string_view tenant) {
  return TenantKey(tenant, "s");
}
std::string CentroidKey(std::string_view tenant, uint32_t id) {
  return TenantKey(tenant, "c" + Be32(id));
}
std::string IndexPrefix(std::string_view tenant, uint32_t id) {
  return TenantKey(tenant, "l" + Be32(id));
}
std::string ListPrefix(std::string_view tenant, uint32_t id, uint32_t list) {
  return IndexPrefix(tenant, id) + Be32(list);
}
std::string RecallKey(std::string_view tenant, uint32_t id) {
  return TenantKey(tenant, "r" + Be32(id));
}
std::string TombstoneKey(std::string_view tenant, uint32_t chunk) {
  return TenantKey(tenant, "d" + Be32(chunk >> kTombstoneShift));
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// 48 bytes, the size every version reads: a worker of the previous version, during a rolling
// restart, must still read the state the others write. The tuned probe lives in the index's
// "r" value instead (Tuning).
std::string EncodeState(const IvfState& s) {
  std::string v(48, '\0');
  const uint32_t head[5] = {kStateMagic, s.id, s.nlist, s.dim, s.covered_end};
  const uint64_t counts[3] = {s.built_rows, s.inserted, s.deleted};
  std::memcpy(v.data(), head, sizeof head);
  std::memcpy(v.data() + 24, counts, sizeof counts);
  return v;
}
std::optional<IvfState> DecodeState(std::string_view v) {
  if (v.size() != 48) return std::nullopt;
  uint32_t head[5];
  uint64_t counts[3];
  std::memcpy(head, v.data(), sizeof head);
  std::memcpy(counts, v.data() + 24, sizeof counts);
  if (head[0] != kStateMagic) return std::nullopt;
  return IvfState{head[1], head[2], head[3], head[4], counts[0], counts[1], counts[2]};
}

// What an index learnt about its probe, under T "r" BE32(id): the build's estimate and the
// share learnt from questions (IvfState's build_* and live_*), then the questions' neighbours
// counted by the share of the lists a probe needed to find them, in kRecallBins bins (bin b:
// up to (b + 1) / kRecallBins of the lists). Once they hold kForgetAt neighbours every count
// is halved, so that the questions of the last while weigh most.
constexpr uint32_t kTuningMagic = 0x32435252;  // "RRC2"
constexpr size_t kRecallBins = 1000;
constexpr size_t kTuningBytes = 20 + 4 * kRecallBins;
constexpr uint64_t kForgetAt = 20000;
struct Tuning {
  float shares[4] = {0, 0, 0, 0};  // build_share, build_recall, live_share, live_recall
  std::vector<uint32_t> counts = std::vector<uint32_t>(kRecallBins, 0);
};
Tuning DecodeTuning(std::optional<std::string_view> v) {
  Tuning t;
  uint32_t magic = 0;
  if (v && v->size() == kTuningBytes &&
      (std::memcpy(&magic, v->data(), 4), magic == kTuningMagic)) {
    std::memcpy(t.shares, v->data() + 4, sizeof t.shares);
    std::memcpy(t.counts.data(), v->data() + 20, 4 * kRecallBins);
  }
  return t;
}
std::string EncodeTuning(const Tuning& t) {
  std::string v(kTuningBytes, '\0');
  std::memcpy(v.data(), &kTuningMagic, 4);
  std::memcpy(v.data() + 4, t.shares, sizeof t.shares);
  std::memcpy(v.data() + 20, t.counts.data(), 4 * kRecallBins);
  return v;
}

struct Claim {
  int64_t pid = 0, since = 0;
  uint32_t id = 0;
};
std::string EncodeClaim(const Claim& c) {
  std::string v(24, '\0');
  std::memcpy(v.data(), &c.pid, 8);
  std::memcpy(v.data() + 8, &c.since, 8);
  std::memcpy(v.data() + 16, &c.id, 4);
  return v;
}
std::optional<Claim> DecodeClaim(std::string_view v) {
  if (v.size() != 24) return std::nullopt;
  Claim c;
  std::memcpy(&c.pid, v.data(), 8);
  std::memcpy(&c.since, v.data() + 8, 8);
  std::memcpy(&c.id, v.data() + 16, 4);
  return c;
}
bool ClaimIsLive(const Claim& c) {
  if (NowSeconds() - c.since > kClaimStaleSeconds) return false;
  return kill(static_cast<pid_t>(c.pid), 0) == 0 || errno == EPERM;
}

// A list segment: header {magic, count, dim, 0}, count chunk ids (ascending), count float
// scales, then count int8 codes of dim bytes each.
std::string EncodeSegment(const PendingList& rows, size_t from, uint32_t count, uint32_t dim) {
  const size_t ids_at = 16, scales_at = ids_at + 4 * size_t{count},
               codes_at = scales_at + 4 * size_t{count};
  std::string v(codes_at + size_t{count} * dim, '\0');
  const uint32_t head[4] = {kSegmentMagic, count, dim, 0};
  std::memcpy(v.data(), head, sizeof head);
  std::memcpy(v.data() + ids_at, rows.ids.data() + from, 4 * size_t{count});
  std::memcpy(v.data() + scales_at, rows.scales.data() + from, 4 * size_t{count});
  std::memcpy(v.data() + codes_at, rows.codes.data() + from * dim, size_t{count} * dim);
  return v;
}
struct SegmentView {
  uint32_t count = 0;
  const char* ids = nullptr;
  const char* scales = nullptr;
  const int8_t* codes = nullptr;
};
std::optional<SegmentView> ViewSegment(std::string_view v, uint32_t dim) {
  if (v.size() < 16) return std::nullopt;
  uint32_t head[4];
  std::memcpy(head, v.data(), sizeof head);
  const uint64_t count = head[1];
  if (head[0] != kSegmentMagic || head[2] != dim || v.size() != 16 + count * (8 + dim)) {
    return std::nullopt;
  }
  return SegmentView{static_cast<uint32_t>(count), v.data() + 16, v.data() + 16 + 4 * count,
                     reinterpret_cast<const int8_t*>(v.data() + 16 + 8 * count)};
}
// rank[list]: where each list stands among the query's nearest (0: nearest); a probe of n
// lists reads those ranked below n.
std::vector<uint32_t> ListRanks(const float* query, uint32_t dim, const float* centroids,
                                uint32_t nlist) {
  std::vector<uint32_t> rank(nlist);
  const std::vector<uint32_t> order = NearestCentroids(query, dim, centroids, nlist, nlist);
  for (uint32_t r = 0; r < nlist; ++r) rank[order[r]] = r;
  return rank;
}
void Compute(const IvfBuildOptions& options, const std::function<void()>& work) {
  if (options.compute) {
    options.compute(work);
  } else {
    work();
  }
}
uint32_t ReadU32(const char* at) {
  uint32_t v;
  std::memcpy(&v, at, 4);
  return v;
}

// Reads the tombstone bitmaps of a tenant in place, one value per 8192 chunk ids.
class Tombstones {
 public:
  Tombstones(const Txn& txn, MDB_dbi dbi, std::string_view tenant)
      : txn_(txn), dbi_(dbi), tenant_(tenant) {}
  bool Dead(uint32_t chunk) {
    const uint32_t page = chunk >> kTombstoneShift;
    if (page != page_) {
      page_ = page;
      auto v = txn_.Get(dbi_, TombstoneKey(tenant_, chunk));
      bits_ = v.ok() && v->has_value() && (*v)->size() == kTombstoneBytes ? (*v)->data() : nullptr;
    }
    if (!bits_) return false;
    const uint32_t bit = chunk & ((1u << kTombstoneShift) - 1);
    return (static_cast<unsigned char>(bits_[bit >> 3]) >> (bit & 7)) & 1;
  }

 private:
  const Txn& txn_;
  MDB_dbi dbi_;
  std::string_view tenant_;
  uint32_t page_ = UINT32_MAX;
  const char* bits_ = nullptr;
};

}  // namespace

uint32_t IvfDefaultNlist(uint64_t rows) {
  return std::max<uint32_t>(16, static_cast<uint32_t>(2 * std::sqrt(static_cast<double>(rows))));
}

IvfIndex::IvfIndex(const Env& env, const VectorIndex& vectors)
    : env_(env), vectors_(vectors), dbi_(env.Dbi("ivf")) {}

Result<std::optional<IvfState>> IvfIndex::Active(const Txn& txn, std::string_view tenant) const {
  auto v = txn.Get(dbi_, StateKey(tenant));
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::optional<IvfState>();
  auto state = DecodeState(**v);
  if (!state) return Status::Internal("the vector index state of a tenant is malformed");
  auto tuning = txn.Get(dbi_, RecallKey(tenant, state->id));
  if (!tuning.ok()) return tuning.status();
  const Tuning t = DecodeTuning(*tuning);
  state->build_share = t.shares[0];
  state->build_recall = t.shares[1];
  state->live_share = t.shares[2];
  state->live_recall = t.shares[3];
  return state;
}

Result<std::shared_ptr<const IvfIndex::Centroids>> IvfIndex::LoadCentroids(const Txn& txn,
                                                                           std::string_view tenant,
                                                                           uint32_t id) const {
  const std::string key = CentroidKey(tenant, id);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  auto v = txn.Get(dbi_, key);
  if (!v.ok()) return v.status();
  if (!v->has_value() || (*v)->size() < 16) {
    return Status::Internal("the centroids of vector index " + std::to_string(id) + " are missing");
  }
  uint32_t head[4];
  std::memcpy(head, (*v)->data(), sizeof head);
  auto c = std::make_shared<Centroids>();
  c->nlist = head[1];
  c->dim = head[2];
  if (head[0] != kCentroidMagic || (*v)->size() != 16 + 4 * size_t{c->nlist} * c->dim) {
    return Status::Internal("the centroids of vector index " + std::to_string(id) +
                            " are malformed");
  }
  c->values.resize(size_t{c->nlist} * c->dim);
  std::memcpy(c->values.data(), (*v)->data() + 16, 4 * c->values.size());
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.size() >= 256) cache_.clear();  // ids are immutable: dropping only costs a reload
  cache_[key] = c;
  return std::shared_ptr<const Centroids>(std::move(c));
}

Status IvfIndex::PutSegments(Txn& txn, std::string_view tenant, uint32_t id, uint32_t list,
                             const PendingList& rows, size_t count, uint32_t dim) const {
  const std::string prefix = ListPrefix(tenant, id, list);
  for (size_t at = 0; at < count; at += kSegmentRows) {
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(kSegmentRows, count - at));
    if (Status s = txn.Put(dbi_, prefix + Be32(rows.ids[at]), EncodeSegment(rows, at, n, dim));
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

Status IvfIndex::Insert(Txn& txn, std::string_view tenant, const std::vector<NewRows>& docs,
                        uint32_t dim) {
  auto state = Active(txn, tenant);
  if (!state.ok()) return state.status();
  if (!*state || docs.empty()) return Status::Ok();
  if ((*state)->dim != dim) {
    return Status::Internal("the vector index has dimension " + std::to_string((*state)->dim) +
                            ", the new vectors " + std::to_string(dim));
  }
  auto centroids = LoadCentroids(txn, tenant, (*state)->id);
  if (!centroids.ok()) return centroids.status();
  // Chunks below the new ones that the lists never got: stored by a worker that predates
  // the index (a rolling upgrade). Chunk ids grow, so they lie between what the lists cover
  // and the first new chunk; they join the lists now. Copied: views into a write
  // transaction's map last only until its next write.
  uint32_t lowest = UINT32_MAX, end = 0;
  for (const NewRows& d : docs) {
    lowest = std::min(lowest, d.first);
    end = std::max(end, d.first + d.count);
  }
  std::vector<NewRows> all = docs;
  std::deque<std::vector<float>> missed;
  if ((*state)->covered_end < lowest) {
    Status s = vectors_.ForEach(txn, tenant, (*state)->covered_end, dim,
                                [&](uint32_t first, const float* r, uint32_t count, bool) {
                                  if (first >= lowest)
                                    return Status::Ok();  // this transaction's own
                                  missed.emplace_back(r, r + size_t{count} * dim);
                                  all.push_back({first, missed.back().data(), count});
                                  return Status::Ok();
                                });
    if (!s.ok()) return s;
  }
  std::vector<const float*> rows;
  std::vector<uint32_t> chunks;
  for (const NewRows& d : all) {
    for (uint32_t r = 0; r < d.count; ++r) {
      rows.push_back(d.rows + size_t{r} * dim);
      chunks.push_back(d.first + r);
    }
  }
  std::vector<uint32_t> lists(rows.size());
  AssignNearest(rows, dim, (*centroids)->values.data(), (*centroids)->nlist, 1, lists.data());
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return chunks[a] < chunks[b]; });
  std::map<uint32_t, PendingList> by_list;
  for (size_t i : order) by_list[lists[i]].Add(chunks[i], rows[i], dim);
  for (auto& [list, members] : by_list) {
    if (Status s = PutSegments(txn, tenant, (*state)->id, list, members, members.size(), dim);
        !s.ok()) {
      return s;
    }
  }
  IvfState next = **state;
  next.inserted += rows.size();
  next.covered_end = std::max(next.covered_end, end);
  return txn.Put(dbi_, StateKey(tenant), EncodeState(next));
}

Status IvfIndex::Tombstone(Txn& txn, std::string_view tenant, uint32_t first, uint32_t count) {
  for (uint64_t c = first; c < uint64_t{first} + count;) {
    const uint32_t chunk = static_cast<uint32_t>(c);
    const std::string key = TombstoneKey(tenant, chunk);
    auto v = txn.Get(dbi_, key);
    if (!v.ok()) return v.status();
    std::string bits = v->has_value() && (*v)->size() == kTombstoneBytes
                           ? std::string(**v)
                           : std::string(kTombstoneBytes, '\0');
    const uint64_t page_end = ((c >> kTombstoneShift) + 1) << kTombstoneShift;
    for (; c < std::min<uint64_t>(page_end, uint64_t{first} + count); ++c) {
      const uint32_t bit = static_cast<uint32_t>(c) & ((1u << kTombstoneShift) - 1);
      bits[bit >> 3] = static_cast<char>(bits[bit >> 3] | (1 << (bit & 7)));
    }
    if (Status s = txn.Put(dbi_, key, bits); !s.ok()) return s;
  }
  auto state = Active(txn, tenant);
  if (!state.ok()) return state.status();
  if (!*state) return Status::Ok();
  IvfState next = **state;
  next.deleted += count;
  return txn.Put(dbi_, StateKey(tenant), EncodeState(next));
}

Result<std::optional<IvfState>> IvfIndex::ObserveRecall(std::string_view tenant, const float* query,
                                                        uint32_t dim,
                                                        const std::vector<const float*>& neighbours,
                                                        double target_recall) const {
  using Out = std::optional<IvfState>;
  if (neighbours.empty()) return Out();
  // Where each neighbour lies among the query's lists, from one read (centroids are
  // immutable); the write below checks that the index is still the same.
  uint32_t id = 0;
  std::vector<uint32_t> bins;
  {
    auto txn = Txn::BeginRead(env_);
    if (!txn.ok()) return txn.status();
    auto state = Active(*txn, tenant);
    if (!state.ok()) return state.status();
    if (!*state || (*state)->dim != dim) return Out();
    id = (*state)->id;
    auto centroids = LoadCentroids(*txn, tenant, id);
    if (!centroids.ok()) return centroids.status();
    const uint32_t nlist = (*centroids)->nlist;
    const float* c = (*centroids)->values.data();
    const std::vector<uint32_t> rank = ListRanks(query, dim, c, nlist);
    std::vector<uint32_t> lists(neighbours.size());
    AssignNearest(neighbours, dim, c, nlist, 1, lists.data());
    for (uint32_t list : lists) {
      const double needed = static_cast<double>(rank[list] + 1) / nlist;
      bins.push_back(static_cast<uint32_t>(
          std::clamp<double>(std::ceil(needed * kRecallBins) - 1, 0, kRecallBins - 1)));
    }
  }
  auto txn = Txn::BeginBulkWrite(env_);
  if (!txn.ok()) return txn.status();
  auto state = Active(*txn, tenant);
  if (!state.ok()) return state.status();
  if (!*state || (*state)->id != id) return Out();  // rebuilt meanwhile
  auto old = txn->Get(dbi_, RecallKey(tenant, id));
  if (!old.ok()) return old.status();
  Tuning tuning = DecodeTuning(*old);
  std::vector<uint32_t>& counts = tuning.counts;
  for (uint32_t b : bins) ++counts[b];
  uint64_t total = 0;
  for (uint32_t n : counts) total += n;
  if (total >= kForgetAt) {
    total = 0;
    for (uint32_t& n : counts) total += (n /= 2);
  }
  IvfState next = **state;
  if (total >= kMinNeighbours) {
    // Aimed a standard error above the target (neighbours of one question go together, so
    // the questions count, about total / 10): what these questions found, the next ones
    // should find too.
    const double target = std::clamp(target_recall, 0.0, 1.0);
    const double aim = std::min(
        1.0, target + std::sqrt(target * (1 - target) / (static_cast<double>(total) / 10)));
    const double want = aim * static_cast<double>(total);
    uint64_t found = 0;
    size_t b = 0;
    for (; b + 1 < kRecallBins; ++b) {
      found += counts[b];
      if (static_cast<double>(found) >= want) break;
    }
    if (b + 1 == kRecallBins) found = total;
    next.live_share = static_cast<float>(static_cast<double>(b + 1) / kRecallBins);
    next.live_recall = static_cast<float>(static_cast<double>(found) / static_cast<double>(total));
    tuning.shares[2] = next.live_share;
    tuning.shares[3] = next.live_recall;
  }
  if (Status s = txn->Put(dbi_, RecallKey(tenant, id), EncodeTuning(tuning)); !s.ok()) return s;
  if (Status s = txn->Commit(); !s.ok()) return s;
  return Out(next);
}

Result<std::optional<std::vector<VectorHit>>> IvfIndex::Search(
    std::string_view tenant, const float* query, uint32_t dim, size_t k, IvfProbe probe,
    const ChunkFilter& filter, const RowSource& row, IvfSearchInfo* info) const {
  using Out = std::optional<std::vector<VectorHit>>;
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto state = Active(*txn, tenant);
  if (!state.ok()) return state.status();
  if (!*state || (*state)->dim != dim) return Out();
  if (k == 0) return Out(std::vector<VectorHit>());
  auto centroids = LoadCentroids(*txn, tenant, (*state)->id);
  if (!centroids.ok()) return centroids.status();
  const uint32_t nlist = (*centroids)->nlist;
  double share = probe.share;
  const char* source = probe.nprobe > 0 ? "nprobe" : "share";
  if (probe.nprobe == 0 && probe.tuned) {
    if ((*state)->live_share > 0) {
      share = (*state)->live_share;
      source = "learnt";
    } else if ((*state)->build_share > share) {
      share = (*state)->build_share;
      source = "estimated";
    }
  }
  const uint32_t nprobe =
      probe.nprobe > 0
          ? std::min(probe.nprobe, nlist)
          : std::clamp<uint32_t>(static_cast<uint32_t>(std::ceil(share * nlist)), 1, nlist);
  const std::vector<uint32_t> lists =
      NearestCentroids(query, dim, (*centroids)->values.data(), nlist, nprobe);

  const Int8Query q = QuantizeQuery(query, dim);
  // The lists of part `part` of `parts` (every parts-th, nearest first) into `out`, in its own
  // read transaction when it runs on another thread (a transaction serves one thread at a
  // time); the lists of an index id only ever gain segments, so a later snapshot sees them all.
  auto scan = [&](const Txn& t, size_t part, size_t parts, TopK& out, uint64_t& scanned) -> Status {
    Tombstones tombstones(t, dbi_, tenant);
    auto cur = Cursor::Open(t, dbi_);
    if (!cur.ok()) return cur.status();
    std::vector<int32_t> dots;
    for (size_t i = part; i < lists.size(); i += parts) {
      const std::string prefix = ListPrefix(tenant, (*state)->id, lists[i]);
      for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
           have = cur->Next()) {
        const auto seg = ViewSegment(cur->value(), dim);
        if (!seg) return Status::Internal("a vector index list segment is malformed");
        dots.resize(seg->count);
        DotInt8Rows(q.q.data(), seg->codes, dim, seg->count, dim, dots.data());
        scanned += seg->count;
        for (uint32_t r = 0; r < seg->count; ++r) {
          float scale;
          std::memcpy(&scale, seg->scales + 4 * size_t{r}, 4);
          const float score = static_cast<float>(dots[r]) * (q.scale * scale);
          if (!out.Accepts(score)) continue;
          const uint32_t chunk = ReadU32(seg->ids + 4 * size_t{r});
          if (!filter.Contains(chunk) || tombstones.Dead(chunk)) continue;
          out.Push(score, chunk);
        }
      }
    }
    return Status::Ok();
  };
  // A probe of many rows is split over the cores, as the exact scan is over its shards.
  const uint64_t rows_expected =
      uint64_t{nprobe} * ((*state)->built_rows + (*state)->inserted) / nlist;
  const size_t parts =
      rows_expected >= probe.parallel_rows
          ? std::clamp<size_t>(std::thread::hardware_concurrency(), 1, kMaxProbeThreads)
          : 1;
  const size_t want = k * kDefaultOversample;
  std::vector<TopK> partial(parts, TopK(want));
  std::vector<uint64_t> scanned_by(parts, 0);
  std::vector<std::future<Status>> others;
  for (size_t p = 1; p < parts; ++p) {
    others.push_back(std::async(std::launch::async, [&, p]() -> Status {
      auto own = Txn::BeginRead(env_);
      if (!own.ok()) return own.status();
      return scan(*own, p, parts, partial[p], scanned_by[p]);
    }));
  }
  Status first = scan(*txn, 0, parts, partial[0], scanned_by[0]);
  for (auto& f : others) {
    Status st = f.get();
    if (first.ok() && !st.ok()) first = st;
  }
  if (!first.ok()) return first;
  TopK candidates(want);
  uint64_t scanned = 0;
  for (size_t p = 0; p < parts; ++p) {
    candidates.Merge(partial[p]);
    scanned += scanned_by[p];
  }
  const std::vector<ScoredRow> found = candidates.Take();
  std::vector<float> scratch;
  const std::vector<ScoredRow> best = Rescore(
      query, dim, found,
      [&](uint64_t chunk) { return row(*txn, static_cast<uint32_t>(chunk), scratch); }, k);
  std::vector<VectorHit> hits;
  for (const ScoredRow& r : best) hits.push_back({r.score, static_cast<uint32_t>(r.id)});
  if (info) *info = {nlist, nprobe, scanned, found.size(), source};
  return Out(std::move(hits));
}

Result<bool> IvfIndex::NeedsBuild(const Txn& txn, std::string_view tenant, uint32_t chunks_now,
                                  uint64_t min_rows) const {
  if (min_rows == 0) return false;
  auto state = Active(txn, tenant);
  if (!state.ok()) return state.status();
  if (*state) {
    const IvfState& s = **state;
    return s.inserted + s.deleted >= std::max<uint64_t>(s.built_rows, min_rows);
  }
  if (chunks_now < min_rows) return false;
  auto small = txn.Get(dbi_, SmallKey(tenant));
  if (!small.ok()) return small.status();
  if (small->has_value() && (*small)->size() == 4) {
    return chunks_now >= uint64_t{ReadU32((*small)->data())} + min_rows / 4;
  }
  return true;
}

Status IvfIndex::Drop(std::string_view tenant, uint32_t id) {
  const std::string prefix = IndexPrefix(tenant, id);
  for (bool more = true; more;) {
    auto txn = Txn::BeginBulkWrite(env_);
    if (!txn.ok()) return txn.status();
    auto state = Active(*txn, tenant);
    if (!state.ok()) return state.status();
    if (*state && (*state)->id == id) return Status::Internal("refusing to drop the active index");
    auto cur = Cursor::Open(*txn, dbi_);
    if (!cur.ok()) return cur.status();
    size_t removed = 0;
    bool have = cur->SeekAtLeast(prefix);
    while (have && HasPrefix(cur->key(), prefix) && removed < 2048) {
      if (Status s = cur->DelCurrent(); !s.ok()) return s;
      ++removed;
      have = cur->SeekAtLeast(prefix);
    }
    more = have && HasPrefix(cur->key(), prefix);
    if (!more) {
      if (Status s = txn->Del(dbi_, CentroidKey(tenant, id)); !s.ok()) return s;
      if (Status s = txn->Del(dbi_, RecallKey(tenant, id)); !s.ok()) return s;
    }
    if (Status s = txn->Commit(); !s.ok()) return s;
  }
  std::lock_guard<std::mutex> lock(cache_mu_);
  cache_.erase(CentroidKey(tenant, id));
  return Status::Ok();
}

Status IvfIndex::ListBlocks(std::string_view tenant, uint32_t from, uint32_t dim,
                            std::vector<RowBlock>& out) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  Status s = vectors_.ForEach(*txn, tenant, from, dim,
                              [&](uint32_t first, const float*, uint32_t count, bool) {
                                out.push_back({first, count});
                                return Status::Ok();
                              });
  if (!s.ok()) return s;
  std::sort(out.begin(), out.end(),
            [](const RowBlock& a, const RowBlock& b) { return a.first < b.first; });
  return Status::Ok();
}

// Estimates, while a build writes its lists, the recall@10 each probe depth would give: a
// few stored rows serve as queries, and their true neighbours (the exact top 10 among every
// row written) are gathered as the rows pass, with the list each went to. A question is none
// of the stored rows and shares no text with them the way a chunk does with its neighbours in
// its own document (chunks overlap) or with its copies: so rows of the query's own document
// and rows equal to it are not counted as its neighbours (counting them made the estimate
// 0.95 where questions measured 0.72). A neighbour is found by a probe of n lists when its list is
// among the query's n nearest centroids. (The search's int8 candidate step can lose a little more;
// bench part 8 measures the whole search with questions held out from any tuning.)
class IvfIndex::Calibration {
 public:
  static constexpr size_t kTop = 10;
  // `documents`: each query's document (its first chunk).
  Calibration(std::vector<uint32_t> documents, std::vector<float> queries, uint32_t dim)
      : documents_(std::move(documents)),
        queries_(std::move(queries)),
        dim_(dim),
        top_(documents_.size()),
        scores_(documents_.size()) {}

  // A row of the document whose first chunk is `document`, assigned to `list`.
  void See(uint32_t chunk, uint32_t document, const float* row, uint32_t list) {
    ScoreRows(row, queries_.data(), static_cast<uint32_t>(documents_.size()), dim_, scores_.data());
    for (size_t q = 0; q < documents_.size(); ++q) {
      if (document == documents_[q] || scores_[q] >= kSame) continue;
      std::vector<Neighbour>& top = top_[q];
      const Neighbour n{scores_[q], chunk, list};
      if (top.size() < kTop) {
        top.push_back(n);
        std::push_heap(top.begin(), top.end(), Worse);
      } else if (Worse(n, top.front())) {
        std::pop_heap(top.begin(), top.end(), Worse);
        top.back() = n;
        std::push_heap(top.begin(), top.end(), Worse);
      }
    }
  }

  // The smallest share of the lists whose estimated recall reaches `target`, and that recall.
  std::pair<double, double> Tune(const float* centroids, uint32_t nlist, double target) const {
    std::vector<uint32_t> needed;  // lists a probe needs to find each neighbour
    for (size_t q = 0; q < documents_.size(); ++q) {
      const std::vector<uint32_t> rank =
          ListRanks(queries_.data() + q * dim_, dim_, centroids, nlist);
      for (const Neighbour& n : top_[q]) needed.push_back(rank[n.list] + 1);
    }
    if (needed.empty()) return {0, 0};
    std::sort(needed.begin(), needed.end());
    const size_t at =
        std::min(needed.size() - 1,
                 static_cast<size_t>(std::ceil(std::clamp(target, 0.0, 1.0) * needed.size())) - 1);
    const uint32_t lists = needed[at];
    const size_t found =
        static_cast<size_t>(std::upper_bound(needed.begin(), needed.end(), lists) - needed.begin());
    return {static_cast<double>(lists) / nlist, static_cast<double>(found) / needed.size()};
  }

 private:
  struct Neighbour {
    float score;
    uint32_t chunk, list;
  };
  // Heap order: the worst neighbour on top (lower score; on equal scores the higher chunk id).
  static bool Worse(const Neighbour& a, const Neighbour& b) {
    return a.score != b.score ? a.score > b.score : a.chunk < b.chunk;
  }
  static constexpr float kSame = 0.9999f;  // unit vectors: a copy of the query's text
  std::vector<uint32_t> documents_;
  std::vector<float> queries_;
  uint32_t dim_;
  std::vector<std::vector<Neighbour>> top_;
  std::vector<float> scores_;
};

// Fills a new index's lists during a build: reads rows a piece at a time (each piece in its
// own read transaction, copied out), assigns them to lists, and writes each list's segments
// as they fill, in write transactions of about options.txn_bytes.
class IvfIndex::ListWriter {
 public:
  ListWriter(const IvfIndex& index, std::string_view tenant, uint32_t id, uint32_t nlist,
             uint32_t dim, const IvfBuildOptions& options, Calibration* calibration)
      : index_(index),
        tenant_(tenant),
        id_(id),
        dim_(dim),
        options_(options),
        calibration_(calibration),
        pending_(nlist) {}

  // The rows of `blocks` (ascending by first chunk; documents deleted since are skipped).
  Status Add(const std::vector<RowBlock>& blocks, const float* centroids,
             const std::function<bool()>& stopped) {
    const size_t piece_rows = std::max<size_t>(1, options_.read_bytes / (sizeof(float) * dim_));
    for (size_t i = 0; i < blocks.size();) {
      if (stopped()) return Status::Internal("stopped");
      size_t j = i, rows = 0;
      while (j < blocks.size() && (j == i || rows + blocks[j].count <= piece_rows)) {
        rows += blocks[j++].count;
      }
      const uint32_t from = blocks[i].first;
      const uint32_t to =
          j < blocks.size() ? blocks[j].first : blocks[j - 1].first + blocks[j - 1].count;
      auto t0 = std::chrono::steady_clock::now();
      std::vector<std::pair<uint32_t, size_t>> order;  // chunk, row in `floats`
      std::vector<uint32_t> document;                  // by row in `floats`: its first chunk
      floats_.clear();
      {
        auto txn = Txn::BeginRead(index_.env_);
        if (!txn.ok()) return txn.status();
        Status s =
            index_.vectors_.ForEach(*txn, tenant_, from, to, dim_,
                                    [&](uint32_t first, const float* r, uint32_t count, bool) {
                                      for (uint32_t k = 0; k < count; ++k) {
                                        order.push_back({first + k, order.size()});
                                        document.push_back(first);
                                      }
                                      floats_.insert(floats_.end(), r, r + size_t{count} * dim_);
                                      return Status::Ok();
                                    });
        if (!s.ok()) return s;
      }
      std::sort(order.begin(), order.end());
      std::vector<const float*> ptrs;
      ptrs.reserve(order.size());
      for (const auto& o : order) ptrs.push_back(floats_.data() + o.second * dim_);
      bool full = false;
      Compute(options_, [&] {
        std::vector<uint32_t> lists(ptrs.size());
        AssignNearest(ptrs, dim_, centroids, static_cast<uint32_t>(pending_.size()),
                      options_.threads, lists.data(), options_.stop);
        if (options_.stop && options_.stop->load()) return;  // `lists` is incomplete
        for (size_t r = 0; r < ptrs.size(); ++r) {
          PendingList& list = pending_[lists[r]];
          list.Add(order[r].first, ptrs[r], dim_);
          if (calibration_) {
            calibration_->See(order[r].first, document[order[r].second], ptrs[r], lists[r]);
          }
          full = full || list.size() >= kSegmentRows;
        }
      });
      if (stopped()) return Status::Internal("stopped");
      pending_bytes_ += ptrs.size() * (8 + dim_);
      rows_ += ptrs.size();
      assign_s_ += Since(t0);
      if (full || pending_bytes_ > options_.pending_bytes) {
        if (Status s = Write(pending_bytes_ > options_.pending_bytes); !s.ok()) return s;
      }
      i = j;
    }
    return Status::Ok();
  }
  // Writes what every list still holds.
  Status Finish() { return Write(true); }

  uint64_t rows() const { return rows_; }
  double assign_s() const { return assign_s_; }
  double write_s() const { return write_s_; }

 private:
  // Writes the lists' full segments, or with `everything` all they hold.
  Status Write(bool everything) {
    auto t0 = std::chrono::steady_clock::now();
    std::optional<Txn> txn;
    size_t bytes = 0;
    for (uint32_t l = 0; l < pending_.size(); ++l) {
      PendingList& list = pending_[l];
      const size_t n = everything ? list.size() : list.size() / kSegmentRows * kSegmentRows;
      if (n == 0) continue;
      if (!txn) {
        auto begun = Txn::BeginBulkWrite(index_.env_);
        if (!begun.ok()) return begun.status();
        txn.emplace(std::move(*begun));
      }
      if (Status s = index_.PutSegments(*txn, tenant_, id_, l, list, n, dim_); !s.ok()) return s;
      bytes += n * (8 + dim_);
      pending_bytes_ -= n * (8 + dim_);
      list.DropFront(n, dim_);
      if (bytes >= options_.txn_bytes) {
        if (Status s = txn->Commit(); !s.ok()) return s;
        txn.reset();
        bytes = 0;
      }
    }
    if (txn) {
      if (Status s = txn->Commit(); !s.ok()) return s;
    }
    write_s_ += Since(t0);
    return Status::Ok();
  }

  const IvfIndex& index_;
  std::string_view tenant_;
  uint32_t id_, dim_;
  const IvfBuildOptions& options_;
  Calibration* calibration_;
  std::vector<PendingList> pending_;
  size_t pending_bytes_ = 0;
  std::vector<float> floats_;
  uint64_t rows_ = 0;
  double assign_s_ = 0, write_s_ = 0;
};

Result<IvfBuildReport> IvfIndex::Build(std::string_view tenant, uint32_t dim,
                                       const IvfBuildOptions& options) {
  IvfBuildReport report;
  if (dim == 0) return Status::Internal("a vector index needs a dimension");
  auto stopped = [&] { return options.stop && options.stop->load(); };
  // 1. Claim the build, so two workers do not both build; a claim left by a process that
  // died is taken over, and what it wrote is dropped.
  std::optional<Claim> abandoned;
  uint32_t old_id = 0;
  {
    auto txn = Txn::BeginBulkWrite(env_);
    if (!txn.ok()) return txn.status();
    auto raw = txn->Get(dbi_, ClaimKey(tenant));
    if (!raw.ok()) return raw.status();
    if (raw->has_value()) {
      auto claim = DecodeClaim(**raw);
      if (claim && ClaimIsLive(*claim)) {
        report.skipped = "process " + std::to_string(claim->pid) + " is building it";
        return report;
      }
      abandoned = claim;
    }
    auto state = Active(*txn, tenant);
    if (!state.ok()) return state.status();
    old_id = *state ? (*state)->id : 0;
    report.id = std::max(old_id, abandoned ? abandoned->id : 0u) + 1;
    if (Status s =
            txn->Put(dbi_, ClaimKey(tenant), EncodeClaim({getpid(), NowSeconds(), report.id}));
        !s.ok()) {
      return s;
    }
    if (Status s = txn->Commit(); !s.ok()) return s;
  }
  auto release = [&]() -> Status {
    auto txn = Txn::BeginBulkWrite(env_);
    if (!txn.ok()) return txn.status();
    if (Status s = txn->Del(dbi_, ClaimKey(tenant)); !s.ok()) return s;
    return txn->Commit();
  };
  if (abandoned && abandoned->id != old_id) {
    if (Status s = Drop(tenant, abandoned->id); !s.ok()) return s;
  }
  auto fail = [&](Status s) -> Result<IvfBuildReport> {
    (void)Drop(tenant, report.id);
    (void)release();
    return s;
  };

  // 2. Which rows there are: each document's first chunk and row count, from one short read
  // transaction. No snapshot stays open while the build works: a long-lived reader keeps LMDB
  // from reusing any page freed after it began, so every commit made during a build of
  // seconds would grow the store. The rows are read again in short pieces below.
  auto t0 = std::chrono::steady_clock::now();
  std::vector<RowBlock> blocks;
  if (Status s = ListBlocks(tenant, 0, dim, blocks); !s.ok()) return fail(s);
  uint64_t total = 0;
  uint32_t covered_end = 0;
  for (const RowBlock& b : blocks) {
    total += b.count;
    covered_end = std::max(covered_end, b.first + b.count);
  }
  report.rows = total;
  if (total < std::max<uint64_t>(options.min_rows, 1)) {
    (void)Drop(tenant, report.id);
    auto txn = Txn::BeginBulkWrite(env_);
    if (!txn.ok()) return txn.status();
    std::string seen(4, '\0');
    std::memcpy(seen.data(), &covered_end, 4);
    if (Status s = txn->Put(dbi_, SmallKey(tenant), seen); !s.ok()) return s;
    if (Status s = txn->Del(dbi_, ClaimKey(tenant)); !s.ok()) return s;
    if (Status s = txn->Commit(); !s.ok()) return s;
    report.skipped =
        std::to_string(total) + " vectors, fewer than " + std::to_string(options.min_rows);
    return report;
  }

  // 3. Train on a sample of rows, copied out in one read.
  report.nlist = options.nlist ? options.nlist : IvfDefaultNlist(total);
  report.nlist = static_cast<uint32_t>(std::min<uint64_t>(report.nlist, total));
  std::vector<uint32_t> sampled;           // chunk ids, ascending
  std::vector<uint32_t> sampled_document;  // their documents' first chunks
  {
    std::vector<uint32_t> positions(total);
    for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<uint32_t>(i);
    std::mt19937_64 random(0x5eed ^ report.id);
    std::shuffle(positions.begin(), positions.end(), random);
    positions.resize(
        std::min<size_t>(positions.size(), size_t{report.nlist} * options.sample_per_list));
    std::sort(positions.begin(), positions.end());
    uint64_t before = 0;  // rows in the blocks before `b`
    size_t b = 0;
    for (uint32_t p : positions) {
      while (p >= before + blocks[b].count) before += blocks[b++].count;
      sampled.push_back(blocks[b].first + static_cast<uint32_t>(p - before));
      sampled_document.push_back(blocks[b].first);
    }
  }
  std::vector<float> sample_rows(sampled.size() * size_t{dim});
  std::vector<char> found(sampled.size(), 0);
  {
    auto txn = Txn::BeginRead(env_);
    if (!txn.ok()) return fail(txn.status());
    Status s =
        vectors_.ForEach(*txn, tenant, 0, covered_end, dim,
                         [&](uint32_t first, const float* rows, uint32_t count, bool) {
                           for (auto it = std::lower_bound(sampled.begin(), sampled.end(), first);
                                it != sampled.end() && *it < first + count; ++it) {
                             std::memcpy(sample_rows.data() + size_t(it - sampled.begin()) * dim,
                                         rows + size_t{*it - first} * dim, sizeof(float) * dim);
                             found[size_t(it - sampled.begin())] = 1;
                           }
                           return Status::Ok();
                         });
    if (!s.ok()) return fail(s);
  }
  report.read_s = Since(t0);
  t0 = std::chrono::steady_clock::now();
  std::vector<const float*> sample;  // less the rows of documents deleted since step 2
  for (size_t i = 0; i < sampled.size(); ++i) {
    if (found[i]) sample.push_back(sample_rows.data() + i * dim);
  }
  // The calibration's queries: rows spread over the sample (see Calibration).
  std::optional<Calibration> calibration;
  if (options.target_recall > 0 && options.calibration_queries > 0) {
    std::vector<uint32_t> documents;
    std::vector<float> queries;
    const size_t step = std::max<size_t>(1, sampled.size() / options.calibration_queries);
    for (size_t i = 0; i < sampled.size() && documents.size() < options.calibration_queries;
         i += step) {
      if (!found[i]) continue;
      documents.push_back(sampled_document[i]);
      queries.insert(queries.end(), sample_rows.data() + i * dim,
                     sample_rows.data() + (i + 1) * dim);
    }
    calibration.emplace(std::move(documents), std::move(queries), dim);
  }
  if (sample.size() < report.nlist)
    return fail(Status::Internal("too few rows are left to train on"));
  report.trained_on = sample.size();
  if (stopped()) return fail(Status::Internal("stopped"));
  std::vector<float> centroids;
  Compute(options, [&] {
    centroids = TrainSphericalKMeans(
        sample, dim, report.nlist,
        {options.iterations, 0x5eed ^ report.id, options.threads, options.stop});
  });
  report.train_s = Since(t0);
  sample.clear();
  sample_rows = std::vector<float>();
  if (stopped()) return fail(Status::Internal("stopped"));

  // 4. Assign every row to its list and write the lists under the new id (invisible to
  // searches until the flip), a piece of rows at a time, each read in its own short read
  // transaction, each write transaction about options.txn_bytes.
  {
    std::string value(16 + 4 * centroids.size(), '\0');
    const uint32_t head[4] = {kCentroidMagic, report.nlist, dim, 0};
    std::memcpy(value.data(), head, sizeof head);
    std::memcpy(value.data() + 16, centroids.data(), 4 * centroids.size());
    auto txn = Txn::BeginBulkWrite(env_);
    if (!txn.ok()) return fail(txn.status());
    if (Status s = txn->Put(dbi_, CentroidKey(tenant, report.id), value); !s.ok()) return fail(s);
    if (Status s = txn->Commit(); !s.ok()) return fail(s);
  }
  ListWriter writer(*this, tenant, report.id, report.nlist, dim, options,
                    calibration ? &*calibration : nullptr);
  if (Status s = writer.Add(blocks, centroids.data(), stopped); !s.ok()) return fail(s);
  blocks.clear();
  report.rows = writer.rows();
  if (options.after_first_pass) options.after_first_pass();

  // 5. Catch up with the chunks stored since step 2, the same way, until few are left for the
  // flip's transaction, which holds the write lock.
  for (int round = 0; round < 8; ++round) {
    std::vector<RowBlock> late;
    if (Status s = ListBlocks(tenant, covered_end, dim, late); !s.ok()) return fail(s);
    uint64_t rows = 0;
    for (const RowBlock& b : late) rows += b.count;
    if (rows < std::max<uint64_t>(options.flip_rows, 1)) break;
    if (Status s = writer.Add(late, centroids.data(), stopped); !s.ok()) return fail(s);
    for (const RowBlock& b : late) covered_end = std::max(covered_end, b.first + b.count);
    report.caught_up += rows;
  }
  if (Status s = writer.Finish(); !s.ok()) return fail(s);
  report.assign_s = writer.assign_s();
  report.write_s = writer.write_s();
  if (calibration) {
    Compute(options, [&] {
      std::tie(report.tuned_share, report.estimated_recall) =
          calibration->Tune(centroids.data(), report.nlist, options.target_recall);
    });
  }

  // 6. Flip: in one transaction, the chunks added since join the new lists and the state
  // points at the new id.
  t0 = std::chrono::steady_clock::now();
  {
    auto txn = Txn::BeginBulkWrite(env_);
    if (!txn.ok()) return fail(txn.status());
    auto claim = txn->Get(dbi_, ClaimKey(tenant));
    if (!claim.ok()) return fail(claim.status());
    auto mine = claim->has_value() ? DecodeClaim(**claim) : std::nullopt;
    if (!mine || mine->id != report.id || mine->pid != getpid()) {
      // Another process judged this build dead and took over: leave it to that one.
      report.skipped = "the build was taken over by another process";
      return report;
    }
    std::vector<NewRows> late;
    std::deque<std::vector<float>> late_copies;
    uint64_t flip_rows = 0;
    Status s = vectors_.ForEach(*txn, tenant, covered_end, dim,
                                [&](uint32_t first, const float* r, uint32_t count, bool) {
                                  // Copied: views into a write transaction's map last only
                                  // until its next write.
                                  late_copies.emplace_back(r, r + size_t{count} * dim);
                                  r = late_copies.back().data();
                                  late.push_back({first, r, count});
                                  flip_rows += count;
                                  return Status::Ok();
                                });
    if (!s.ok()) return fail(s);
    report.caught_up += flip_rows;
    report.flip_rows = flip_rows;
    uint32_t new_end = covered_end;
    for (const NewRows& d : late) new_end = std::max(new_end, d.first + d.count);
    const uint64_t built = writer.rows() + flip_rows;
    IvfState next{report.id, report.nlist, dim, new_end, built, 0, 0};
    Tuning tuning;
    tuning.shares[0] = static_cast<float>(report.tuned_share);
    tuning.shares[1] = static_cast<float>(report.estimated_recall);
    if (Status st = txn->Put(dbi_, RecallKey(tenant, report.id), EncodeTuning(tuning)); !st.ok()) {
      return fail(st);
    }
    if (Status st = txn->Put(dbi_, StateKey(tenant), EncodeState(next)); !st.ok()) return fail(st);
    if (Status st = Insert(*txn, tenant, late, dim); !st.ok()) return fail(st);
    // Insert counted the late rows as inserted; they are part of the build.
    if (Status st = txn->Put(dbi_, StateKey(tenant), EncodeState(next)); !st.ok()) return fail(st);
    if (Status st = txn->Del(dbi_, ClaimKey(tenant)); !st.ok()) return fail(st);
    if (Status st = txn->Commit(); !st.ok()) return fail(st);
  }
  report.flip_s = Since(t0);
  report.built = true;
  if (old_id != 0) {
    if (Status s = Drop(tenant, old_id); !s.ok()) {
      LogWarn("ivf", "could not remove the previous vector index",
              {{"tenant", std::string(tenant)},
               {"id", std::to_string(old_id)},
               {"error", s.message()}});
    }
  }
  return report;
}

}  // namespace ragstream::store
