#include "lib/store/vector_index.h"

#include <algorithm>
#include <cstring>
#include <future>
#include <queue>

#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

constexpr uint32_t kMagic = 0x31565352;  // "RSV1"
constexpr size_t kHeaderBytes = 16;

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// A hit while its transaction is open: the key views the memory map, so the scan copies
// nothing until the shard's final top-k is known.
struct ScanHit {
  float score;
  std::string_view document_id;
  uint32_t chunk_index;
};
struct MinFirst {
  bool operator()(const ScanHit& a, const ScanHit& b) const { return a.score > b.score; }
};

// Sixteen independent accumulators (two vectors of eight) let the compiler keep the loop in
// vector registers without reassociating one sum, so no -ffast-math is needed; the same
// source is compiled for AVX2+FMA and for the baseline, and the CPU picks at run time.
template <int kLanes>
inline float DotKernel(const float* a, const float* b, uint32_t dim) {
  float acc[kLanes] = {};
  uint32_t i = 0;
  for (; i + kLanes <= dim; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = 0;
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  for (; i < dim; ++i) sum += a[i] * b[i];
  return sum;
}

__attribute__((target("avx2,fma"))) float DotAvx2(const float* a, const float* b, uint32_t dim) {
  return DotKernel<16>(a, b, dim);
}

float DotBaseline(const float* a, const float* b, uint32_t dim) {
  return DotKernel<8>(a, b, dim);
}

using DotFn = float (*)(const float*, const float*, uint32_t);

DotFn PickDot() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? DotAvx2 : DotBaseline;
}

const DotFn kDot = PickDot();

}  // namespace

float DotProduct(const float* a, const float* b, uint32_t dim) {
  return kDot(a, b, dim);
}

std::vector<std::string> VectorIndex::Databases(int shards) {
  std::vector<std::string> names;
  for (int s = 0; s < shards; ++s) names.push_back("vec." + std::to_string(s));
  return names;
}

VectorIndex::VectorIndex(const Env& env, int shards) : env_(env) {
  for (const auto& name : Databases(shards)) dbis_.push_back(env.Dbi(name));
}

int VectorIndex::ShardOf(std::string_view document_id) const {
  return static_cast<int>(Fnv1a(document_id) % dbis_.size());
}

Status VectorIndex::Put(Txn& txn, std::string_view tenant, std::string_view document_id,
                        const float* vectors, uint32_t count, uint32_t dim) {
  std::string value(kHeaderBytes + sizeof(float) * count * dim, '\0');
  uint32_t header[4] = {kMagic, count, dim, 0};
  std::memcpy(value.data(), header, sizeof header);
  std::memcpy(value.data() + kHeaderBytes, vectors, sizeof(float) * count * dim);
  return txn.Put(dbis_[ShardOf(document_id)], TenantKey(tenant, document_id), value);
}

Status VectorIndex::Delete(Txn& txn, std::string_view tenant, std::string_view document_id) {
  return txn.Del(dbis_[ShardOf(document_id)], TenantKey(tenant, document_id));
}

Status VectorIndex::ScanShard(int shard, std::string_view tenant, const float* query, uint32_t dim,
                              size_t k, const std::vector<std::string>& filter,
                              std::vector<VectorHit>& out) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto cur = Cursor::Open(*txn, dbis_[shard]);
  if (!cur.ok()) return cur.status();
  std::priority_queue<ScanHit, std::vector<ScanHit>, MinFirst> heap;
  std::vector<float> unaligned;
  const std::string prefix = TenantPrefix(tenant);
  for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
       have = cur->Next()) {
    std::string_view key = cur->key().substr(prefix.size());  // the document id
    if (!filter.empty() && std::find(filter.begin(), filter.end(), key) == filter.end()) continue;
    std::string_view value = cur->value();
    if (value.size() < kHeaderBytes) {
      return Status::Internal("vector block of " + std::string(key) + " is malformed");
    }
    uint32_t header[4];
    std::memcpy(header, value.data(), sizeof header);
    const uint32_t count = header[1];
    if (header[0] != kMagic || header[2] != dim ||
        value.size() < kHeaderBytes + sizeof(float) * size_t{count} * dim) {
      return Status::Internal("vector block of " + std::string(key) + " is malformed");
    }
    // The floats are read in place from the memory map. Large values sit on overflow pages
    // (page-aligned + 16), but a small one inside a leaf page is only 2-byte aligned: copy
    // those (they are small by definition).
    const char* raw = value.data() + kHeaderBytes;
    const float* rows = reinterpret_cast<const float*>(raw);
    if (reinterpret_cast<uintptr_t>(raw) % alignof(float) != 0) {
      unaligned.resize(size_t{count} * dim);
      std::memcpy(unaligned.data(), raw, sizeof(float) * unaligned.size());
      rows = unaligned.data();
    }
    for (uint32_t i = 0; i < count; ++i) {
      float score = kDot(query, rows + size_t{i} * dim, dim);
      if (heap.size() < k) {
        heap.push({score, key, i});
      } else if (score > heap.top().score) {
        heap.pop();
        heap.push({score, key, i});
      }
    }
  }
  while (!heap.empty()) {
    out.push_back({heap.top().score, std::string(heap.top().document_id), heap.top().chunk_index});
    heap.pop();
  }
  return Status::Ok();
}

Result<std::vector<VectorHit>> VectorIndex::Search(std::string_view tenant, const float* query,
                                                   uint32_t dim, size_t k,
                                                   const std::vector<std::string>& filter) const {
  if (k == 0) return std::vector<VectorHit>();
  std::vector<std::vector<VectorHit>> partial(dbis_.size());
  std::vector<std::future<Status>> others;
  for (size_t s = 1; s < dbis_.size(); ++s) {
    others.push_back(std::async(std::launch::async, [&, s] {
      return ScanShard(static_cast<int>(s), tenant, query, dim, k, filter, partial[s]);
    }));
  }
  Status first = ScanShard(0, tenant, query, dim, k, filter, partial[0]);
  std::vector<VectorHit> all;
  for (auto& f : others) {
    Status s = f.get();
    if (first.ok() && !s.ok()) first = s;
  }
  if (!first.ok()) return first;
  for (auto& p : partial) all.insert(all.end(), p.begin(), p.end());
  std::sort(all.begin(), all.end(), [](const VectorHit& a, const VectorHit& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.document_id != b.document_id) return a.document_id < b.document_id;
    return a.chunk_index < b.chunk_index;
  });
  if (all.size() > k) all.resize(k);
  return all;
}

Result<uint64_t> VectorIndex::Count() const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  uint64_t total = 0;
  for (MDB_dbi dbi : dbis_) {
    auto cur = Cursor::Open(*txn, dbi);
    if (!cur.ok()) return cur.status();
    for (bool have = cur->First(); have; have = cur->Next()) {
      uint32_t header[4];
      if (cur->value().size() < kHeaderBytes) continue;
      std::memcpy(header, cur->value().data(), sizeof header);
      if (header[0] == kMagic) total += header[1];
    }
  }
  return total;
}

}  // namespace ragstream::store
