#include "lib/store/vector_index.h"

#include <immintrin.h>
#include <sched.h>

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
// each chunk of the query is loaded once for four rows (AVX2: only rows longer than
// kShortRowFloats), with explicit intrinsics (GCC 12
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

// Short rows (at most kShortRowFloats, i.e. 2 KiB) are scored one after another, each with
// four accumulators; longer rows four at a time (see RowsAvx512). Four interleaved rows of
// 1.5 KiB are four short streams that the hardware prefetcher (it stops at each 4 KiB page)
// barely picks up before they end. On AMD Zen 3, scoring a 100k x 384 store's blocks in place
// in the map: 1.3-1.5x the time of just reading them four rows at a time, 1.05-1.1x one row
// at a time (reading ahead by hand, 2-4 KiB, did not close the gap). At 1536 four at a time
// streamed about 10% faster, so long rows keep it.
constexpr uint32_t kShortRowFloats = 512;

// One short row (see kShortRowFloats): RowsAvx2 scores every short row with this function, so
// a row scores the same bits alone (DotProduct, the rescoring) as in the scan.
__attribute__((target("avx2,fma"))) inline float DotShort256(const float* a, const float* b,
                                                             uint32_t dim) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  uint32_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), a3);
  }
  for (; i + 8 <= dim; i += 8) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
  }
  float sum = Sum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < dim; ++i) sum += a[i] * b[i];
  return sum;
}

// One long row, summed exactly as RowsAvx2 sums each of its four (see Dot512).
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
  if (dim <= kShortRowFloats) {
    for (uint32_t r = 0; r < count; ++r) out[r] = DotShort256(q, rows + size_t{r} * dim, dim);
    return;
  }
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

// Pieces and blocks (see vector_index.h). A range is kBlockRows consecutive chunk ids.
constexpr uint32_t kBlockMagic = 0x31425352;  // "RSB1"
constexpr size_t kBlockHeaderBytes = 48;      // 16 + 48: rows on a cache line of overflow pages

uint32_t RangeOf(uint32_t chunk) {
  return chunk / VectorIndex::kBlockRows;
}
uint64_t RangeStart(uint64_t range) {
  return range * VectorIndex::kBlockRows;
}

std::string ChunkKey(std::string_view tenant, uint32_t chunk) {
  return TenantKey(tenant, ChunkKeyPart(chunk));
}

// A piece in place in the map: `count` rows of dim floats at `rows`, chunks first + r.
struct PieceView {
  const char* rows;
  uint32_t count;
};
// The piece a vectors.N value holds, or nullopt if it is malformed or of another dimension.
std::optional<PieceView> ViewPiece(std::string_view value, uint32_t dim) {
  if (value.size() < kHeaderBytes) return std::nullopt;
  uint32_t header[4];
  std::memcpy(header, value.data(), sizeof header);
  const uint32_t count = header[1];
  if (header[0] != kMagic || header[2] != dim ||
      value.size() < kHeaderBytes + sizeof(float) * size_t{count} * dim) {
    return std::nullopt;
  }
  return PieceView{value.data() + kHeaderBytes, count};
}

std::string EncodePiece(const float* rows, uint32_t count, uint32_t dim) {
  std::string value(kHeaderBytes + sizeof(float) * size_t{count} * dim, '\0');
  const uint32_t header[4] = {kMagic, count, dim, 0};
  std::memcpy(value.data(), header, sizeof header);
  std::memcpy(value.data() + kHeaderBytes, rows, sizeof(float) * size_t{count} * dim);
  return value;
}

// A block in place in the map: `count` rows at `rows`, then their chunk ids (ascending, u32,
// read with memcpy: a small block in a leaf page is only 2-byte aligned), then a byte per row,
// 1 where a document's rows begin (a piece's first row), so that ForEach can still give its
// visitors a document's rows as one run.
struct BlockView {
  const char* rows;
  const char* ids;
  const char* starts;
  uint32_t count;
  bool Starts(uint32_t r) const { return starts[r] != 0; }
  uint32_t Id(uint32_t r) const {
    uint32_t id;
    std::memcpy(&id, ids + sizeof(uint32_t) * r, sizeof id);
    return id;
  }
  // The row holding `chunk`, or count if none does.
  uint32_t Find(uint32_t chunk) const {
    uint32_t lo = 0, hi = count;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (Id(mid) < chunk)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo < count && Id(lo) == chunk ? lo : count;
  }
};
std::optional<BlockView> ViewBlock(std::string_view value, uint32_t dim) {
  if (value.size() < kBlockHeaderBytes) return std::nullopt;
  uint32_t header[4];
  std::memcpy(header, value.data(), sizeof header);
  const uint64_t count = header[1];
  if (header[0] != kBlockMagic || header[2] != dim ||
      value.size() != kBlockHeaderBytes + count * (sizeof(float) * dim + sizeof(uint32_t) + 1)) {
    return std::nullopt;
  }
  const char* rows = value.data() + kBlockHeaderBytes;
  const char* ids = rows + sizeof(float) * count * dim;
  return BlockView{rows, ids, ids + sizeof(uint32_t) * count, static_cast<uint32_t>(count)};
}

// Rows copied out of the map (the writes of a transaction move what it views), in id order.
struct RowSet {
  std::vector<uint32_t> ids;
  std::vector<float> rows;
  std::vector<uint8_t> starts;  // 1: a document's rows begin here
  void Add(uint32_t id, bool start, const char* row, uint32_t dim) {
    ids.push_back(id);
    starts.push_back(start ? 1 : 0);
    const size_t at = rows.size();
    rows.resize(at + dim);
    std::memcpy(rows.data() + at, row, sizeof(float) * dim);
  }
  void Append(const RowSet& other) {
    ids.insert(ids.end(), other.ids.begin(), other.ids.end());
    rows.insert(rows.end(), other.rows.begin(), other.rows.end());
    starts.insert(starts.end(), other.starts.begin(), other.starts.end());
  }
  // Sorts by id; of two rows with one id the one added last stays.
  void Sort(uint32_t dim) {
    std::vector<uint32_t> order(ids.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return ids[a] < ids[b]; });
    RowSet sorted;
    for (size_t i = 0; i < order.size(); ++i) {
      if (i + 1 < order.size() && ids[order[i + 1]] == ids[order[i]]) continue;
      sorted.ids.push_back(ids[order[i]]);
      sorted.starts.push_back(starts[order[i]]);
      sorted.rows.insert(sorted.rows.end(), rows.begin() + size_t{order[i]} * dim,
                         rows.begin() + size_t{order[i] + 1} * dim);
    }
    *this = std::move(sorted);
  }
};

std::string EncodeBlock(const RowSet& set, uint32_t dim) {
  const std::vector<uint32_t>& ids = set.ids;
  const std::vector<float>& rows = set.rows;
  const uint32_t count = static_cast<uint32_t>(ids.size());
  std::string value(
      kBlockHeaderBytes + size_t{count} * (sizeof(float) * dim + sizeof(uint32_t) + 1), '\0');
  const uint32_t header[4] = {kBlockMagic, count, dim, 0};
  std::memcpy(value.data(), header, sizeof header);
  std::memcpy(value.data() + kBlockHeaderBytes, rows.data(), sizeof(float) * rows.size());
  char* at = value.data() + kBlockHeaderBytes + sizeof(float) * rows.size();
  std::memcpy(at, ids.data(), sizeof(uint32_t) * count);
  std::memcpy(at + sizeof(uint32_t) * count, set.starts.data(), count);
  return value;
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

// Calls run(begin, end) for each maximal run of rows [begin, end) of `count` whose ids
// (id_of(row), ascending) the filter lets through: every row at once without a filter.
template <typename IdOf, typename Run>
void ForEachAdmittedRun(uint32_t count, IdOf id_of, const ChunkFilter& filter, Run run) {
  if (filter.all) {
    if (count > 0) run(0u, count);
    return;
  }
  uint32_t begin = 0;
  while (begin < count) {
    while (begin < count && !filter.Contains(id_of(begin))) ++begin;
    uint32_t end = begin;
    while (end < count && filter.Contains(id_of(end))) ++end;
    if (end > begin) run(begin, end);
    begin = end;
  }
}

// Whether the value keyed at `first` (a block, or a piece) may hold a row the filter admits,
// before the value is read: any id in [first, end of its range). A piece lies in its range (an
// older version's may go further, but then the filter, made of whole documents, admits its
// first chunk).
bool MayPassFilter(const ChunkFilter& filter, uint32_t first) {
  if (filter.all) return true;
  auto it = std::lower_bound(
      filter.ranges.begin(), filter.ranges.end(), first,
      [](const std::pair<uint32_t, uint32_t>& r, uint32_t v) { return r.second <= v; });
  return it != filter.ranges.end() && it->first < RangeStart(RangeOf(first) + uint64_t{1});
}

// Whether the piece keyed at `first` lies in a range wholly below chunk `below`: complete,
// since ids grow, and so to be packed.
bool InCompleteRange(uint32_t first, uint32_t below) {
  return RangeStart(RangeOf(first) + uint64_t{1}) <= RangeStart(RangeOf(below));
}

// A bounded top-k of one shard's scan: a row that cannot enter costs one comparison.
class ShardTop {
 public:
  explicit ShardTop(size_t k) : k_(k) {}
  template <typename IdOf>
  void Offer(const float* scores, uint32_t count, IdOf id_of) {
    for (uint32_t i = 0; i < count; ++i) {
      const float score = scores[i];
      if (heap_.size() < k_) {
        heap_.push({score, id_of(i)});
      } else if (score > heap_.top().score) {
        heap_.pop();
        heap_.push({score, id_of(i)});
      }
    }
  }
  void Drain(std::vector<VectorHit>& out) {
    while (!heap_.empty()) {
      out.push_back({heap_.top().score, heap_.top().chunk});
      heap_.pop();
    }
  }

 private:
  size_t k_;
  std::priority_queue<ScanHit, std::vector<ScanHit>, MinFirst> heap_;
};

// The CPUs the calling thread may run on now (its affinity, which the scan tasks inherit and
// which can change while the process runs).
size_t UsableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
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
  for (const char* kind : {"vectors.", "vectors8.", "vblocks.", "vblocks8."}) {
    for (int s = 0; s < shards; ++s) names.push_back(kind + std::to_string(s));
  }
  return names;
}

VectorIndex::VectorIndex(const Env& env, int shards, VectorFormat format)
    : env_(env), format_(format) {
  for (int s = 0; s < shards; ++s) {
    const std::string n = std::to_string(s);
    dbis_.push_back(env.Dbi("vectors." + n));
    int8_dbis_.push_back(env.Dbi("vectors8." + n));
    block_dbis_.push_back(env.Dbi("vblocks." + n));
    block8_dbis_.push_back(env.Dbi("vblocks8." + n));
  }
}

int VectorIndex::ShardOf(uint32_t first_chunk) const {
  // Fibonacci hashing: consecutive documents spread over the shards.
  return static_cast<int>(((uint64_t{first_chunk} * 0x9E3779B97F4A7C15ull) >> 32) % dbis_.size());
}

int VectorIndex::BlockShardOf(uint32_t chunk) const {
  return ShardOf(RangeOf(chunk));  // consecutive blocks spread over the shards
}

Status VectorIndex::PutPiece(Txn& txn, std::string_view tenant, uint32_t first, const float* rows,
                             uint32_t count, uint32_t dim) {
  const int shard = ShardOf(first);
  const std::string key = ChunkKey(tenant, first);
  if (Status s = txn.Put(dbis_[shard], key, EncodePiece(rows, count, dim)); !s.ok()) return s;
  if (format_ != VectorFormat::kInt8) return Status::Ok();
  return txn.Put(int8_dbis_[shard], key, EncodeInt8Block(rows, count, dim));
}

Status VectorIndex::DropPiece(Txn& txn, int shard, std::string_view key) {
  if (Status s = txn.Del(dbis_[shard], key); !s.ok()) return s;
  return txn.Del(int8_dbis_[shard], key);  // absent (a float index) is not an error
}

Status VectorIndex::WriteBlock(Txn& txn, std::string_view tenant, uint32_t start,
                               const std::vector<uint32_t>& ids, const std::vector<float>& rows,
                               const std::vector<uint8_t>& starts, uint32_t dim) {
  const int shard = BlockShardOf(start);
  const std::string key = ChunkKey(tenant, start);
  if (ids.empty()) {
    if (Status s = txn.Del(block_dbis_[shard], key); !s.ok()) return s;
    return txn.Del(block8_dbis_[shard], key);
  }
  if (Status s = txn.Put(block_dbis_[shard], key, EncodeBlock(RowSet{ids, rows, starts}, dim));
      !s.ok())
    return s;
  if (format_ != VectorFormat::kInt8) return txn.Del(block8_dbis_[shard], key);
  return txn.Put(block8_dbis_[shard], key,
                 EncodeInt8Block(rows.data(), static_cast<uint32_t>(ids.size()), dim));
}

Status VectorIndex::RemoveFromBlock(Txn& txn, std::string_view tenant, uint32_t start,
                                    uint32_t begin, uint64_t end) {
  const int shard = BlockShardOf(start);
  auto raw = txn.Get(block_dbis_[shard], ChunkKey(tenant, start));
  if (!raw.ok()) return raw.status();
  if (!raw->has_value() || (*raw)->size() < kBlockHeaderBytes) return Status::Ok();
  uint32_t header[4];
  std::memcpy(header, (*raw)->data(), sizeof header);
  const uint32_t dim = header[2];
  const auto block = ViewBlock(**raw, dim);
  if (!block)
    return Status::Internal("vector block at chunk " + std::to_string(start) + " is malformed");
  RowSet kept;
  bool removed = false;
  for (uint32_t r = 0; r < block->count; ++r) {
    const uint32_t id = block->Id(r);
    if (id >= begin && id < end) {
      removed = true;
    } else {
      kept.Add(id, block->Starts(r), block->rows + sizeof(float) * size_t{r} * dim, dim);
    }
  }
  if (!removed) return Status::Ok();
  return WriteBlock(txn, tenant, start, kept.ids, kept.rows, kept.starts, dim);
}

Status VectorIndex::Pack(Txn& txn, std::string_view tenant, uint32_t range, uint32_t dim,
                         bool* wrote) {
  if (wrote) *wrote = false;
  const uint64_t start = RangeStart(range), end = start + kBlockRows;
  const std::string prefix = TenantPrefix(tenant);
  RowSet set;
  std::vector<std::pair<int, std::string>> pieces;
  for (int s = 0; s < shards(); ++s) {
    auto cur = Cursor::Open(txn, dbis_[s]);
    if (!cur.ok()) return cur.status();
    for (bool have = cur->SeekAtLeast(ChunkKey(tenant, static_cast<uint32_t>(start)));
         have && HasPrefix(cur->key(), prefix); have = cur->Next()) {
      const uint32_t first = DecodeChunkKeyPart(cur->key().substr(prefix.size()));
      if (first >= end) break;
      const auto piece = ViewPiece(cur->value(), dim);
      // Another dimension, or an older version's piece that goes past the range: left as it is.
      if (!piece || first + uint64_t{piece->count} > end) continue;
      for (uint32_t r = 0; r < piece->count; ++r) {
        set.Add(first + r, r == 0, piece->rows + sizeof(float) * size_t{r} * dim, dim);
      }
      pieces.emplace_back(s, std::string(cur->key()));
    }
  }
  if (pieces.empty()) return Status::Ok();
  // A block already there (rows put again into a packed range) is merged, its rows first so
  // that the pieces' newer rows win.
  const std::string block_key = ChunkKey(tenant, static_cast<uint32_t>(start));
  auto raw = txn.Get(block_dbis_[BlockShardOf(static_cast<uint32_t>(start))], block_key);
  if (!raw.ok()) return raw.status();
  RowSet merged;
  if (raw->has_value()) {
    const auto block = ViewBlock(**raw, dim);
    if (!block) return Status::Ok();  // another dimension: the pieces stay pieces
    for (uint32_t r = 0; r < block->count; ++r) {
      merged.Add(block->Id(r), block->Starts(r), block->rows + sizeof(float) * size_t{r} * dim,
                 dim);
    }
  }
  merged.Append(set);
  merged.Sort(dim);
  if (wrote) *wrote = true;
  for (const auto& [shard, key] : pieces) {
    if (Status s = DropPiece(txn, shard, key); !s.ok()) return s;
  }
  return WriteBlock(txn, tenant, static_cast<uint32_t>(start), merged.ids, merged.rows,
                    merged.starts, dim);
}

Result<std::optional<uint32_t>> VectorIndex::LowestPiece(const Txn& txn, std::string_view tenant,
                                                         uint32_t from) const {
  const std::string prefix = TenantPrefix(tenant);
  std::optional<uint32_t> lowest;
  for (int s = 0; s < shards(); ++s) {
    auto cur = Cursor::Open(txn, dbis_[s]);
    if (!cur.ok()) return cur.status();
    if (cur->SeekAtLeast(ChunkKey(tenant, from)) && HasPrefix(cur->key(), prefix)) {
      const uint32_t first = DecodeChunkKeyPart(cur->key().substr(prefix.size()));
      if (!lowest || first < *lowest) lowest = first;
    }
  }
  return lowest;
}

Result<bool> VectorIndex::HasPiecesBelow(const Txn& txn, std::string_view tenant,
                                         uint32_t below) const {
  auto lowest = LowestPiece(txn, tenant, 0);
  if (!lowest.ok()) return lowest.status();
  return *lowest && InCompleteRange(**lowest, below);
}

Result<VectorIndex::PackProgress> VectorIndex::PackBelow(Txn& txn, std::string_view tenant,
                                                         uint32_t dim, uint32_t from,
                                                         uint32_t below, uint32_t max_ranges) {
  const std::string prefix = TenantPrefix(tenant);
  uint64_t at = RangeStart(RangeOf(from));
  PackProgress progress;
  while (progress.packed < max_ranges) {
    auto lowest = LowestPiece(txn, tenant, static_cast<uint32_t>(at));
    if (!lowest.ok()) return lowest.status();
    if (!*lowest || !InCompleteRange(**lowest, below)) {
      progress.done = true;
      return progress;
    }
    const uint32_t range = RangeOf(**lowest);
    const uint64_t end = RangeStart(range + uint64_t{1});
    // Split the range's pieces that go past its end into one piece per range.
    for (int s = 0; s < shards(); ++s) {
      auto cur = Cursor::Open(txn, dbis_[s]);
      if (!cur.ok()) return cur.status();
      std::vector<std::pair<uint32_t, std::vector<float>>> crossing;
      for (bool have = cur->SeekAtLeast(ChunkKey(tenant, static_cast<uint32_t>(RangeStart(range))));
           have && HasPrefix(cur->key(), prefix); have = cur->Next()) {
        const uint32_t first = DecodeChunkKeyPart(cur->key().substr(prefix.size()));
        if (first >= end) break;
        const auto piece = ViewPiece(cur->value(), dim);
        if (!piece || first + uint64_t{piece->count} <= end) continue;
        std::vector<float> rows(size_t{piece->count} * dim);
        std::memcpy(rows.data(), piece->rows, sizeof(float) * rows.size());
        crossing.emplace_back(first, std::move(rows));
      }
      for (const auto& [first, rows] : crossing) {
        const std::string key = ChunkKey(tenant, first);
        if (Status st = DropPiece(txn, s, key); !st.ok()) return st;
        if (Status st = PutPieces(txn, tenant, first, rows.data(),
                                  static_cast<uint32_t>(rows.size() / dim), dim);
            !st.ok()) {
          return st;
        }
      }
    }
    bool wrote = false;
    if (Status s = Pack(txn, tenant, range, dim, &wrote); !s.ok()) return s;
    if (wrote) ++progress.packed;
    at = end;
  }
  progress.next = static_cast<uint32_t>(std::min<uint64_t>(at, UINT32_MAX));
  return progress;
}

Status VectorIndex::PutPieces(Txn& txn, std::string_view tenant, uint32_t first_chunk,
                              const float* vectors, uint32_t count, uint32_t dim) {
  const uint64_t end = uint64_t{first_chunk} + count;
  for (uint64_t at = first_chunk; at < end;) {
    const uint32_t range = RangeOf(static_cast<uint32_t>(at));
    const uint64_t piece_end = std::min(end, RangeStart(range + uint64_t{1}));
    // Rows put again where a block already holds them replace them.
    if (Status s = RemoveFromBlock(txn, tenant, static_cast<uint32_t>(RangeStart(range)),
                                   static_cast<uint32_t>(at), piece_end);
        !s.ok()) {
      return s;
    }
    if (Status s =
            PutPiece(txn, tenant, static_cast<uint32_t>(at), vectors + (at - first_chunk) * dim,
                     static_cast<uint32_t>(piece_end - at), dim);
        !s.ok()) {
      return s;
    }
    at = piece_end;
  }
  return Status::Ok();
}

Status VectorIndex::Put(Txn& txn, std::string_view tenant, uint32_t first_chunk,
                        const float* vectors, uint32_t count, uint32_t dim) {
  if (count == 0) return Status::Ok();
  if (Status s = PutPieces(txn, tenant, first_chunk, vectors, count, dim); !s.ok()) return s;
  // Chunk ids grow, so every range below the one this document ends in is complete: no later
  // document adds to it. Those that still hold pieces become blocks now (at most the range the
  // previous document ended in, and those this one filled).
  const uint32_t last_range = RangeOf(first_chunk + (count - 1));
  for (uint32_t r = first_chunk > 0 ? RangeOf(first_chunk - 1) : 0; r < last_range; ++r) {
    if (Status s = Pack(txn, tenant, r, dim); !s.ok()) return s;
  }
  return Status::Ok();
}

Status VectorIndex::Delete(Txn& txn, std::string_view tenant, uint32_t first_chunk,
                           uint32_t count) {
  if (count == 0) return Status::Ok();
  const uint64_t end = uint64_t{first_chunk} + count;
  // Its pieces begin at its first chunk and at each range start inside it.
  for (uint64_t at = first_chunk; at < end;
       at = RangeStart(RangeOf(static_cast<uint32_t>(at)) + uint64_t{1})) {
    const uint32_t piece = static_cast<uint32_t>(at);
    const std::string key = ChunkKey(tenant, piece);
    if (Status s = DropPiece(txn, ShardOf(piece), key); !s.ok()) return s;
    if (Status s = RemoveFromBlock(txn, tenant, static_cast<uint32_t>(RangeStart(RangeOf(piece))),
                                   piece, end);
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// Stage 1 over the shard's int8 blocks and pieces keeps k x kDefaultOversample candidates, each
// known by (its value's ordinal in this scan) << 32 | row; stage 2 rescores them exactly from
// the float values, read in the same transaction.
Status VectorIndex::ScanShardInt8(int shard, std::string_view tenant, const float* query,
                                  const Int8Query& quantized, uint32_t dim, size_t k,
                                  const ChunkFilter& filter, std::vector<VectorHit>& out) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  const std::string prefix = TenantPrefix(tenant);
  struct Source {
    std::string_view key;  // a view into the map
    bool block;
  };
  std::vector<Source> sources;  // ordinal -> its value
  TopK candidates(k * kDefaultOversample);
  for (const bool blocks : {true, false}) {
    auto cur = Cursor::Open(*txn, blocks ? block8_dbis_[shard] : int8_dbis_[shard]);
    if (!cur.ok()) return cur.status();
    for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
         have = cur->Next()) {
      const std::string_view key = cur->key();
      const uint32_t first = DecodeChunkKeyPart(key.substr(prefix.size()));
      if (!MayPassFilter(filter, first)) continue;
      const uint64_t ordinal = uint64_t{sources.size()} << 32;
      auto rows = DecodeInt8Block(cur->value(), dim, ordinal);
      if (!rows.ok()) {
        return Status::Internal("int8 vector block at chunk " + std::to_string(first) +
                                " is malformed: " + rows.status().message());
      }
      sources.push_back({key, blocks});
      if (filter.all) {
        ScanInt8Block(quantized, *rows, candidates);
        continue;
      }
      // A filter: only the rows it admits (a block's ids are in its float value).
      std::optional<BlockView> ids;
      if (blocks) {
        auto raw = txn->Get(block_dbis_[shard], key);
        if (!raw.ok()) return raw.status();
        if (raw->has_value()) ids = ViewBlock(**raw, dim);
        if (!ids || ids->count != rows->count) continue;
      }
      ForEachAdmittedRun(
          rows->count, [&](uint32_t r) { return ids ? ids->Id(r) : first + r; }, filter,
          [&](uint32_t begin, uint32_t end) {
            Int8BlockView part = *rows;
            part.rows += size_t{begin} * part.stride;
            part.scales += sizeof(float) * size_t{begin};
            part.count = end - begin;
            part.first_id = ordinal | begin;
            ScanInt8Block(quantized, part, candidates);
          });
    }
  }
  std::vector<float> copy;  // a float row whose place in the map is not 4-byte aligned
  // The candidate's float row, and its chunk id in `chunk`.
  // Each float value is looked up once (candidates cluster in a few blocks); views into a read
  // transaction's map stay valid until it ends.
  std::vector<std::optional<std::string_view>> floats(sources.size());
  auto locate = [&](uint64_t id, uint32_t* chunk) -> const float* {
    const Source& source = sources[id >> 32];
    const uint32_t row = static_cast<uint32_t>(id & 0xffffffffu);
    std::optional<std::string_view>& value = floats[id >> 32];
    if (!value) {
      auto raw = txn->Get(source.block ? block_dbis_[shard] : dbis_[shard], source.key);
      if (!raw.ok()) return nullptr;
      value = raw->value_or(std::string_view());
    }
    const char* rows = nullptr;
    if (source.block) {
      const auto block = ViewBlock(*value, dim);
      if (!block || row >= block->count) return nullptr;
      if (chunk) *chunk = block->Id(row);
      rows = block->rows;
    } else {
      const auto piece = ViewPiece(*value, dim);
      if (!piece || row >= piece->count) return nullptr;
      if (chunk) *chunk = DecodeChunkKeyPart(source.key.substr(prefix.size())) + row;
      rows = piece->rows;
    }
    return FloatsAt(rows + sizeof(float) * size_t{row} * dim, dim, copy);
  };
  for (const ScoredRow& r : Rescore(
           query, dim, candidates.Take(), [&](uint64_t id) { return locate(id, nullptr); }, k)) {
    uint32_t chunk = 0;
    if (locate(r.id, &chunk)) out.push_back({r.score, chunk});
  }
  return Status::Ok();
}

Status VectorIndex::ScanShard(int shard, std::string_view tenant, const float* query, uint32_t dim,
                              size_t k, const ChunkFilter& filter,
                              std::vector<VectorHit>& out) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  ShardTop top(k);
  std::vector<float> unaligned, scores;
  const std::string prefix = TenantPrefix(tenant);
  for (const bool blocks : {true, false}) {
    auto cur = Cursor::Open(*txn, blocks ? block_dbis_[shard] : dbis_[shard]);
    if (!cur.ok()) return cur.status();
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
        // The start of the next value (values are scattered over the map, so the hardware
        // prefetcher cannot foresee them), asked for here and not in a helper: GCC 12 found
        // such a helper free of side effects and dropped its calls, prefetches and all.
        for (size_t off = 0; off < std::min<size_t>(next_value.size(), 4096); off += 64) {
          __builtin_prefetch(next_value.data() + off, 0, 0);
        }
      }
      if (!MayPassFilter(filter, first)) continue;
      std::optional<BlockView> block;
      std::optional<PieceView> piece;
      if (blocks) {
        block = ViewBlock(value, dim);
      } else {
        piece = ViewPiece(value, dim);
      }
      if (!block && !piece) {
        return Status::Internal("vector block at chunk " + std::to_string(first) + " is malformed");
      }
      const char* all_rows = block ? block->rows : piece->rows;
      auto id_of = [&](uint32_t r) { return block ? block->Id(r) : first + r; };
      ForEachAdmittedRun(
          block ? block->count : piece->count, id_of, filter, [&](uint32_t begin, uint32_t end) {
            const uint32_t n = end - begin;
            const float* rows = FloatsAt(all_rows + sizeof(float) * size_t{begin} * dim,
                                         size_t{n} * dim, unaligned);
            scores.resize(n);
            kRows(query, rows, n, dim, scores.data());
            top.Offer(scores.data(), n, [&](uint32_t i) { return id_of(begin + i); });
          });
    }
  }
  top.Drain(out);
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
  // No more tasks than CPUs the caller may run on: more cannot scan any sooner, and each
  // costs a thread's start and its switches (on one CPU, 4% of a 100k x 384 scan).
  const size_t tasks = std::min(dbis_.size(), UsableCpus());
  auto scan_every = [&](size_t task) {
    for (size_t s = task; s < dbis_.size(); s += tasks) {
      if (Status st = scan(s); !st.ok()) return st;
    }
    return Status::Ok();
  };
  for (size_t t = 1; t < tasks; ++t) {
    others.push_back(std::async(std::launch::async, [&, t] { return scan_every(t); }));
  }
  Status first = scan_every(0);
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
  for (const auto* dbis : {&dbis_, &block_dbis_}) {
    const uint32_t magic = dbis == &dbis_ ? kMagic : kBlockMagic;
    for (MDB_dbi dbi : *dbis) {
      auto cur = Cursor::Open(*txn, dbi);
      if (!cur.ok()) return cur.status();
      for (bool have = cur->First(); have; have = cur->Next()) {
        uint32_t header[4];
        if (cur->value().size() < sizeof header) continue;
        std::memcpy(header, cur->value().data(), sizeof header);
        if (header[0] == magic) total += header[1];
      }
    }
  }
  return total;
}

Result<VectorIndex::Layout> VectorIndex::Values(std::string_view tenant) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  const std::string prefix = TenantPrefix(tenant);
  Layout layout;
  for (int s = 0; s < shards(); ++s) {
    for (const bool blocks : {true, false}) {
      auto cur = Cursor::Open(*txn, blocks ? block_dbis_[s] : dbis_[s]);
      if (!cur.ok()) return cur.status();
      for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
           have = cur->Next()) {
        uint32_t header[4] = {};
        std::memcpy(header, cur->value().data(), std::min(sizeof header, cur->value().size()));
        (blocks ? layout.blocks : layout.pieces) += 1;
        (blocks ? layout.block_rows : layout.piece_rows) += header[1];
      }
    }
  }
  return layout;
}

Status VectorIndex::ForEach(const Txn& txn, std::string_view tenant, uint32_t from, uint32_t to,
                            uint32_t dim, const RowsVisitor& visit) const {
  const std::string prefix = TenantPrefix(tenant);
  // Pieces never cross a range boundary (except an older version's), so every value holding a
  // row at or past `from` is keyed at or past its range's start.
  const std::string seek = ChunkKey(tenant, static_cast<uint32_t>(RangeStart(RangeOf(from))));
  std::vector<float> copy;
  for (int s = 0; s < shards(); ++s) {
    for (const bool blocks : {true, false}) {
      auto cur = Cursor::Open(txn, blocks ? block_dbis_[s] : dbis_[s]);
      if (!cur.ok()) return cur.status();
      for (bool have = cur->SeekAtLeast(seek); have && HasPrefix(cur->key(), prefix);
           have = cur->Next()) {
        const uint32_t first = DecodeChunkKeyPart(cur->key().substr(prefix.size()));
        if (first >= to) break;
        // Runs of consecutive ids in [from, to): rows[r] is chunk run_first + r.
        auto visit_run = [&](uint32_t run_first, const char* rows, uint32_t count) {
          const float* at = FloatsAt(rows, size_t{count} * dim, copy);
          return visit(run_first, at, count, at != copy.data());
        };
        if (blocks) {
          const auto block = ViewBlock(cur->value(), dim);
          if (!block) {
            return Status::Internal("vector block at chunk " + std::to_string(first) +
                                    " is malformed");
          }
          uint32_t r = 0;
          while (r < block->count) {
            const uint32_t id = block->Id(r);
            if (id < from || id >= to) {
              ++r;
              continue;
            }
            uint32_t n = 1;
            while (r + n < block->count && block->Id(r + n) == id + n && id + n < to &&
                   !block->Starts(r + n)) {
              ++n;
            }
            if (Status st = visit_run(id, block->rows + sizeof(float) * size_t{r} * dim, n);
                !st.ok()) {
              return st;
            }
            r += n;
          }
          continue;
        }
        const auto piece = ViewPiece(cur->value(), dim);
        if (!piece) {
          return Status::Internal("vector block at chunk " + std::to_string(first) +
                                  " is malformed");
        }
        const uint32_t lo = first >= from ? 0 : from - first;
        const uint32_t hi =
            static_cast<uint32_t>(std::min<uint64_t>(piece->count, uint64_t{to} - first));
        if (lo >= hi) continue;
        if (Status st =
                visit_run(first + lo, piece->rows + sizeof(float) * size_t{lo} * dim, hi - lo);
            !st.ok()) {
          return st;
        }
      }
    }
  }
  return Status::Ok();
}

const float* VectorIndex::BlockRow(const Txn& txn, std::string_view tenant, uint32_t chunk,
                                   uint32_t dim, std::vector<float>& scratch) const {
  const uint32_t start = static_cast<uint32_t>(RangeStart(RangeOf(chunk)));
  auto raw = txn.Get(block_dbis_[BlockShardOf(start)], ChunkKey(tenant, start));
  if (!raw.ok() || !raw->has_value()) return nullptr;
  const auto block = ViewBlock(**raw, dim);
  if (!block) return nullptr;
  const uint32_t r = block->Find(chunk);
  if (r == block->count) return nullptr;
  return FloatsAt(block->rows + sizeof(float) * size_t{r} * dim, dim, scratch);
}

const float* VectorIndex::Row(const Txn& txn, std::string_view tenant, uint32_t first,
                              uint32_t chunk, uint32_t dim, std::vector<float>& scratch) const {
  if (const float* row = BlockRow(txn, tenant, chunk, dim, scratch)) return row;
  return PieceRow(txn, tenant, first, chunk, dim, scratch);
}

const float* VectorIndex::PieceRow(const Txn& txn, std::string_view tenant, uint32_t first,
                                   uint32_t chunk, uint32_t dim,
                                   std::vector<float>& scratch) const {
  const uint32_t start = static_cast<uint32_t>(RangeStart(RangeOf(chunk)));
  // A piece: the document's first, the piece of the chunk's range, or (written by an older
  // version, one piece across ranges) the nearest piece at or below the chunk in any shard.
  auto in_piece = [&](uint32_t piece_first, std::string_view value) -> const float* {
    const auto piece = ViewPiece(value, dim);
    if (!piece || chunk < piece_first || chunk - piece_first >= piece->count) return nullptr;
    return FloatsAt(piece->rows + sizeof(float) * size_t{chunk - piece_first} * dim, dim, scratch);
  };
  for (const uint32_t piece_first : {first, std::max(first, start)}) {
    if (piece_first > chunk) continue;
    auto value = txn.Get(dbis_[ShardOf(piece_first)], ChunkKey(tenant, piece_first));
    if (!value.ok() || !value->has_value()) continue;
    if (const float* row = in_piece(piece_first, **value)) return row;
  }
  const std::string prefix = TenantPrefix(tenant);
  for (int s = 0; s < shards(); ++s) {
    auto cur = Cursor::Open(txn, dbis_[s]);
    if (!cur.ok()) continue;
    const bool past = cur->SeekAfter(ChunkKey(tenant, chunk));
    if (!(past ? cur->Prev() : cur->Last()) || !HasPrefix(cur->key(), prefix)) continue;
    const uint32_t piece_first = DecodeChunkKeyPart(cur->key().substr(prefix.size()));
    if (const float* row = in_piece(piece_first, cur->value())) return row;
  }
  return nullptr;
}

}  // namespace ragstream::store
