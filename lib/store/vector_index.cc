#include "lib/store/vector_index.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <optional>
#include <queue>

#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

constexpr uint32_t kMagic = 0x31565352;  // "RSV1"
constexpr size_t kHeaderBytes = 16;

// A hit while its shard is scanned.
struct ScanHit {
  float score;
  uint32_t chunk;
};
struct MinFirst {
  bool operator()(const ScanHit& a, const ScanHit& b) const { return a.score > b.score; }
};

// The scan's kernels score all rows of a block against the query, four rows at a time so
// each chunk of the query is loaded once for four rows, with explicit intrinsics (GCC 12
// auto-vectorised the earlier portable loop into single-float loads and lane inserts: 4-5x
// the memory-bandwidth floor; see docs/PERFORMANCE.md, part 4). AVX-512F, AVX2+FMA or
// portable C++, picked once at run time.

// Horizontal sums through zero-masked extracts (GCC 12's reduce intrinsics trip
// -Wmaybe-uninitialized on their undefined pass-through).
__attribute__((target("avx2"))) inline float Sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx512f"))) inline float Sum16(__m512 v) {
  const __m512d d = _mm512_castps_pd(v);
  return Sum8(_mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 0)),
                            _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 1))));
}

// One row, summed exactly as RowsAvx512 sums each of its four (one accumulator, the masked
// tail into it), so a row scores the same bits alone (DotProduct, the rescoring of the int8
// and IVF paths) as in the scan.
__attribute__((target("avx512f"))) float Dot512(const float* a, const float* b, uint32_t dim) {
  const uint32_t body = dim & ~15u;
  const __mmask16 tail = static_cast<__mmask16>((1u << (dim - body)) - 1);
  __m512 acc = _mm512_setzero_ps();
  for (uint32_t i = 0; i < body; i += 16) {
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  }
  if (tail) {
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a + body),
                          _mm512_maskz_loadu_ps(tail, b + body), acc);
  }
  return Sum16(acc);
}

__attribute__((target("avx512f"))) void RowsAvx512(const float* q, const float* rows,
                                                   uint32_t count, uint32_t dim, float* out) {
  const uint32_t body = dim & ~15u;
  const __mmask16 tail = static_cast<__mmask16>((1u << (dim - body)) - 1);
  uint32_t r = 0;
  for (; r + 4 <= count; r += 4) {
    const float* x0 = rows + size_t{r} * dim;
    const float* x1 = x0 + dim;
    const float* x2 = x1 + dim;
    const float* x3 = x2 + dim;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint32_t i = 0; i < body; i += 16) {
      const __m512 qq = _mm512_loadu_ps(q + i);
      a0 = _mm512_fmadd_ps(qq, _mm512_loadu_ps(x0 + i), a0);
      a1 = _mm512_fmadd_ps(qq, _mm512_loadu_ps(x1 + i), a1);
      a2 = _mm512_fmadd_ps(qq, _mm512_loadu_ps(x2 + i), a2);
      a3 = _mm512_fmadd_ps(qq, _mm512_loadu_ps(x3 + i), a3);
    }
    if (tail) {
      const __m512 qq = _mm512_maskz_loadu_ps(tail, q + body);
      a0 = _mm512_fmadd_ps(qq, _mm512_maskz_loadu_ps(tail, x0 + body), a0);
      a1 = _mm512_fmadd_ps(qq, _mm512_maskz_loadu_ps(tail, x1 + body), a1);
      a2 = _mm512_fmadd_ps(qq, _mm512_maskz_loadu_ps(tail, x2 + body), a2);
      a3 = _mm512_fmadd_ps(qq, _mm512_maskz_loadu_ps(tail, x3 + body), a3);
    }
    out[r] = Sum16(a0);
    out[r + 1] = Sum16(a1);
    out[r + 2] = Sum16(a2);
    out[r + 3] = Sum16(a3);
  }
  for (; r < count; ++r) out[r] = Dot512(q, rows + size_t{r} * dim, dim);
}

// One row, summed exactly as RowsAvx2 sums each of its four (see Dot512).
__attribute__((target("avx2,fma"))) float Dot256(const float* a, const float* b, uint32_t dim) {
  const uint32_t body = dim & ~7u;
  __m256 acc = _mm256_setzero_ps();
  for (uint32_t i = 0; i < body; i += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  }
  float sum = Sum8(acc);
  for (uint32_t i = body; i < dim; ++i) sum += a[i] * b[i];
  return sum;
}

__attribute__((target("avx2,fma"))) void RowsAvx2(const float* q, const float* rows, uint32_t count,
                                                  uint32_t dim, float* out) {
  const uint32_t body = dim & ~7u;
  uint32_t r = 0;
  for (; r + 4 <= count; r += 4) {
    const float* x0 = rows + size_t{r} * dim;
    const float* x1 = x0 + dim;
    const float* x2 = x1 + dim;
    const float* x3 = x2 + dim;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint32_t i = 0; i < body; i += 8) {
      const __m256 qq = _mm256_loadu_ps(q + i);
      a0 = _mm256_fmadd_ps(qq, _mm256_loadu_ps(x0 + i), a0);
      a1 = _mm256_fmadd_ps(qq, _mm256_loadu_ps(x1 + i), a1);
      a2 = _mm256_fmadd_ps(qq, _mm256_loadu_ps(x2 + i), a2);
      a3 = _mm256_fmadd_ps(qq, _mm256_loadu_ps(x3 + i), a3);
    }
    float s[4] = {Sum8(a0), Sum8(a1), Sum8(a2), Sum8(a3)};
    for (uint32_t i = body; i < dim; ++i) {
      s[0] += q[i] * x0[i];
      s[1] += q[i] * x1[i];
      s[2] += q[i] * x2[i];
      s[3] += q[i] * x3[i];
    }
    for (int j = 0; j < 4; ++j) out[r + j] = s[j];
  }
  for (; r < count; ++r) out[r] = Dot256(q, rows + size_t{r} * dim, dim);
}

// Portable: eight independent accumulators, so no -ffast-math is needed to vectorise.
float DotBaseline(const float* a, const float* b, uint32_t dim) {
  float acc[8] = {};
  uint32_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = 0;
  for (int j = 0; j < 8; ++j) sum += acc[j];
  for (; i < dim; ++i) sum += a[i] * b[i];
  return sum;
}

void RowsBaseline(const float* q, const float* rows, uint32_t count, uint32_t dim, float* out) {
  for (uint32_t r = 0; r < count; ++r) out[r] = DotBaseline(q, rows + size_t{r} * dim, dim);
}

using RowsFn = void (*)(const float*, const float*, uint32_t, uint32_t, float*);

RowsFn PickRows() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return RowsAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RowsAvx2;
  return RowsBaseline;
}

const RowsFn kRows = PickRows();

// A float block in place in the map: `count` rows of dim floats at `rows`.
struct FloatBlockView {
  const char* rows;
  uint32_t count;
};
// The block a vec.N value holds, or nullopt if it is malformed or of another dimension.
std::optional<FloatBlockView> ViewFloatBlock(std::string_view value, uint32_t dim) {
  if (value.size() < kHeaderBytes) return std::nullopt;
  uint32_t header[4];
  std::memcpy(header, value.data(), sizeof header);
  const uint32_t count = header[1];
  if (header[0] != kMagic || header[2] != dim ||
      value.size() < kHeaderBytes + sizeof(float) * size_t{count} * dim) {
    return std::nullopt;
  }
  return FloatBlockView{value.data() + kHeaderBytes, count};
}

// `n` floats read in place from the memory map. Large values sit on overflow pages
// (page-aligned + 16), but a small one inside a leaf page is only 2-byte aligned: those are
// copied into `scratch` (they are small by definition).
const float* FloatsAt(const char* at, size_t n, std::vector<float>& scratch) {
  if (reinterpret_cast<uintptr_t>(at) % alignof(float) == 0) {
    return reinterpret_cast<const float*>(at);
  }
  scratch.resize(n);
  std::memcpy(scratch.data(), at, sizeof(float) * n);
  return scratch.data();
}

// Asks for the start of the next value while the current one is scored: values of random
// document ids are scattered over the map, so the hardware prefetcher cannot foresee them.
void PrefetchValue(std::string_view value) {
  const size_t bytes = std::min<size_t>(value.size(), 4096);
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(value.data() + off, 0, 0);
}

}  // namespace

void ScoreRows(const float* query, const float* rows, uint32_t count, uint32_t dim, float* out) {
  kRows(query, rows, count, dim, out);
}

float DotProduct(const float* a, const float* b, uint32_t dim) {
  float out = 0;
  kRows(a, b, 1, dim, &out);
  return out;
}

const char* VectorFormatName(VectorFormat format) {
  return format == VectorFormat::kInt8 ? "int8" : "float";
}

std::vector<std::string> VectorIndex::Databases(int shards) {
  std::vector<std::string> names;
  for (int s = 0; s < shards; ++s) names.push_back("vectors." + std::to_string(s));
  for (int s = 0; s < shards; ++s) names.push_back("vectors8." + std::to_string(s));
  return names;
}

VectorIndex::VectorIndex(const Env& env, int shards, VectorFormat format)
    : env_(env), format_(format) {
  for (int s = 0; s < shards; ++s) {
    dbis_.push_back(env.Dbi("vectors." + std::to_string(s)));
    int8_dbis_.push_back(env.Dbi("vectors8." + std::to_string(s)));
  }
}

int VectorIndex::ShardOf(uint32_t first_chunk) const {
  // Fibonacci hashing: consecutive documents spread over the shards.
  return static_cast<int>(((uint64_t{first_chunk} * 0x9E3779B97F4A7C15ull) >> 32) % dbis_.size());
}

Status VectorIndex::Put(Txn& txn, std::string_view tenant, uint32_t first_chunk,
                        const float* vectors, uint32_t count, uint32_t dim) {
  std::string value(kHeaderBytes + sizeof(float) * count * dim, '\0');
  uint32_t header[4] = {kMagic, count, dim, 0};
  std::memcpy(value.data(), header, sizeof header);
  std::memcpy(value.data() + kHeaderBytes, vectors, sizeof(float) * count * dim);
  const int shard = ShardOf(first_chunk);
  const std::string key = TenantKey(tenant, ChunkKeyPart(first_chunk));
  if (Status s = txn.Put(dbis_[shard], key, value); !s.ok()) return s;
  if (format_ != VectorFormat::kInt8) return Status::Ok();
  return txn.Put(int8_dbis_[shard], key, EncodeInt8Block(vectors, count, dim));
}

Status VectorIndex::Delete(Txn& txn, std::string_view tenant, uint32_t first_chunk) {
  const int shard = ShardOf(first_chunk);
  const std::string key = TenantKey(tenant, ChunkKeyPart(first_chunk));
  if (Status s = txn.Del(dbis_[shard], key); !s.ok()) return s;
  return txn.Del(int8_dbis_[shard], key);  // absent (a float index) is not an error
}

// Stage 1 over the shard's int8 blocks keeps k x kDefaultOversample candidates, each known by
// (its value's ordinal in this scan) << 32 | row; stage 2 rescores them exactly from the
// float blocks, read in the same transaction.
Status VectorIndex::ScanShardInt8(int shard, std::string_view tenant, const float* query,
                                  const Int8Query& quantized, uint32_t dim, size_t k,
                                  const ChunkFilter& filter, std::vector<VectorHit>& out) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto cur = Cursor::Open(*txn, int8_dbis_[shard]);
  if (!cur.ok()) return cur.status();
  const std::string prefix = TenantPrefix(tenant);
  std::vector<std::string_view> keys;  // ordinal -> full key (views into the map)
  TopK candidates(k * kDefaultOversample);
  for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
       have = cur->Next()) {
    std::string_view key = cur->key();
    if (!filter.Contains(DecodeChunkKeyPart(key.substr(prefix.size())))) continue;
    auto block = DecodeInt8Block(cur->value(), dim, uint64_t{keys.size()} << 32);
    if (!block.ok()) {
      return Status::Internal("int8 vector block at chunk " +
                              std::to_string(DecodeChunkKeyPart(key.substr(prefix.size()))) +
                              " is malformed: " + block.status().message());
    }
    keys.push_back(key);
    ScanInt8Block(quantized, *block, candidates);
  }
  std::vector<float> copy;  // a float row whose place in the map is not 4-byte aligned
  auto fetch = [&](uint64_t id) -> const float* {
    auto raw = txn->Get(dbis_[shard], keys[id >> 32]);
    if (!raw.ok() || !raw->has_value()) return nullptr;
    const auto block = ViewFloatBlock(**raw, dim);
    const uint32_t row = static_cast<uint32_t>(id & 0xffffffffu);
    if (!block || row >= block->count) return nullptr;
    return FloatsAt(block->rows + sizeof(float) * size_t{row} * dim, dim, copy);
  };
  for (const ScoredRow& r : Rescore(query, dim, candidates.Take(), fetch, k)) {
    out.push_back({r.score, DecodeChunkKeyPart(keys[r.id >> 32].substr(prefix.size())) +
                                static_cast<uint32_t>(r.id & 0xffffffffu)});
  }
  return Status::Ok();
}

Status VectorIndex::ScanShard(int shard, std::string_view tenant, const float* query, uint32_t dim,
                              size_t k, const ChunkFilter& filter,
                              std::vector<VectorHit>& out) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto cur = Cursor::Open(*txn, dbis_[shard]);
  if (!cur.ok()) return cur.status();
  std::priority_queue<ScanHit, std::vector<ScanHit>, MinFirst> heap;
  std::vector<float> unaligned, scores;
  const std::string prefix = TenantPrefix(tenant);
  // The cursor runs one value ahead of the scoring: views into a read transaction's map stay
  // valid, so the next value can be prefetched while this one is scored.
  bool more = cur->SeekAtLeast(prefix) && HasPrefix(cur->key(), prefix);
  std::string_view next_key = more ? cur->key() : std::string_view();
  std::string_view next_value = more ? cur->value() : std::string_view();
  while (more) {
    const uint32_t first = DecodeChunkKeyPart(next_key.substr(prefix.size()));
    std::string_view value = next_value;
    more = cur->Next() && HasPrefix(cur->key(), prefix);
    if (more) {
      next_key = cur->key();
      next_value = cur->value();
      PrefetchValue(next_value);
    }
    if (!filter.Contains(first)) continue;
    const auto block = ViewFloatBlock(value, dim);
    if (!block) {
      return Status::Internal("vector block at chunk " + std::to_string(first) + " is malformed");
    }
    const uint32_t count = block->count;
    const float* rows = FloatsAt(block->rows, size_t{count} * dim, unaligned);
    scores.resize(count);
    kRows(query, rows, count, dim, scores.data());
    for (uint32_t i = 0; i < count; ++i) {
      const float score = scores[i];
      if (heap.size() < k) {
        heap.push({score, first + i});
      } else if (score > heap.top().score) {
        heap.pop();
        heap.push({score, first + i});
      }
    }
  }
  while (!heap.empty()) {
    out.push_back({heap.top().score, heap.top().chunk});
    heap.pop();
  }
  return Status::Ok();
}

Result<std::vector<VectorHit>> VectorIndex::Search(std::string_view tenant, const float* query,
                                                   uint32_t dim, size_t k,
                                                   const ChunkFilter& filter) const {
  if (k == 0) return std::vector<VectorHit>();
  std::vector<std::vector<VectorHit>> partial(dbis_.size());
  std::vector<std::future<Status>> others;
  Int8Query quantized;
  if (format_ == VectorFormat::kInt8) quantized = QuantizeQuery(query, dim);
  auto scan = [&](size_t s) {
    return format_ == VectorFormat::kInt8
               ? ScanShardInt8(static_cast<int>(s), tenant, query, quantized, dim, k, filter,
                               partial[s])
               : ScanShard(static_cast<int>(s), tenant, query, dim, k, filter, partial[s]);
  };
  for (size_t s = 1; s < dbis_.size(); ++s) {
    others.push_back(std::async(std::launch::async, [&, s] { return scan(s); }));
  }
  Status first = scan(0);
  std::vector<VectorHit> all;
  for (auto& f : others) {
    Status s = f.get();
    if (first.ok() && !s.ok()) first = s;
  }
  if (!first.ok()) return first;
  for (auto& p : partial) all.insert(all.end(), p.begin(), p.end());
  std::sort(all.begin(), all.end(), [](const VectorHit& a, const VectorHit& b) {
    return a.score != b.score ? a.score > b.score : a.chunk < b.chunk;
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

Status VectorIndex::ForEach(const Txn& txn, std::string_view tenant, uint32_t from, uint32_t to,
                            uint32_t dim, const RowsVisitor& visit) const {
  const std::string prefix = TenantPrefix(tenant);
  std::vector<float> copy;
  for (MDB_dbi dbi : dbis_) {
    auto cur = Cursor::Open(txn, dbi);
    if (!cur.ok()) return cur.status();
    for (bool have = cur->SeekAtLeast(TenantKey(tenant, ChunkKeyPart(from)));
         have && HasPrefix(cur->key(), prefix); have = cur->Next()) {
      const uint32_t first = DecodeChunkKeyPart(cur->key().substr(prefix.size()));
      if (first >= to) break;
      const auto block = ViewFloatBlock(cur->value(), dim);
      if (!block) {
        return Status::Internal("vector block at chunk " + std::to_string(first) + " is malformed");
      }
      const float* rows = FloatsAt(block->rows, size_t{block->count} * dim, copy);
      const bool stable = rows != copy.data();
      if (Status s = visit(first, rows, block->count, stable); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

const float* VectorIndex::Row(const Txn& txn, std::string_view tenant, uint32_t first,
                              uint32_t chunk, uint32_t dim, std::vector<float>& scratch) const {
  if (chunk < first) return nullptr;
  auto raw = txn.Get(dbis_[ShardOf(first)], TenantKey(tenant, ChunkKeyPart(first)));
  if (!raw.ok() || !raw->has_value()) return nullptr;
  const auto block = ViewFloatBlock(**raw, dim);
  if (!block || chunk - first >= block->count) return nullptr;
  return FloatsAt(block->rows + sizeof(float) * size_t{chunk - first} * dim, dim, scratch);
}

}  // namespace ragstream::store
