// Int8 building blocks for a scalar-quantised vector shard: pure functions, no LMDB.
//
// A float vector x becomes dim int8 values q and one float scale (symmetric max-abs scaling:
// scale = max|x| / 127, q[i] = round(x[i] / scale), so x[i] = q[i] * scale within scale / 2).
// A quantised query scores a quantised row with an exact int32 dot product times both
// scales; that approximate score picks a short candidate list (k x oversample) which is then
// rescored exactly against the float rows. The int8 rows are a quarter of the float bytes,
// so a bandwidth-bound scan reads about 4x less.
//
// The int8 dot product is chosen at run time: AVX-512 VNNI (vpdpbusd, 64 bytes an
// instruction), else AVX2 (vpmaddubsw + vpmaddwd), else a scalar loop. All three give the
// same exact int32 result: the values are kept in [-127, 127], so |a| * sign(a) * b never
// overflows the 16-bit pair sums of AVX2.
//
// Block value (EncodeInt8Block / DecodeInt8Block): a 48-byte header, then `count` rows of
// `stride` bytes (dim rounded up to 64), then `count` float scales. A large LMDB value sits
// on overflow pages whose data starts 16 bytes into a page, so 16 + 48 puts the rows on a
// 64-byte (cache line) boundary in the memory map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

namespace ragstream::store {

// Candidates kept by the int8 stage per result wanted: k x kDefaultOversample are rescored.
inline constexpr size_t kDefaultOversample = 4;

// Quantises dim floats into `out` (dim int8, each in [-127, 127]) and returns the scale
// (0 for an all-zero vector, whose q is all 0). Non-finite input gives an all-zero row.
float QuantizeInt8(const float* x, uint32_t dim, int8_t* out);
// out[i] = q[i] * scale.
void DequantizeInt8(const int8_t* q, float scale, uint32_t dim, float* out);

// Exact sum of a[i] * b[i] for values in [-127, 127] (|sum| <= 16129 dim: exact in int32 for
// any dim below 133,000). The run-time choice of kernel, and the portable reference.
int32_t DotInt8(const int8_t* a, const int8_t* b, uint32_t dim);
int32_t DotInt8Scalar(const int8_t* a, const int8_t* b, uint32_t dim);
// "avx512vnni", "avx2" or "scalar": what DotInt8 runs on this CPU.
const char* DotInt8Kernel();

// out[r] = DotInt8(query, rows + r * stride, dim) for r < count (the scan's inner loop; the
// query's preparation is done once for all rows).
void DotInt8Rows(const int8_t* query, const int8_t* rows, size_t stride, uint32_t count,
                 uint32_t dim, int32_t* out);

// Each kernel by name, for tests and benchmarks: whether this CPU runs it, and DotInt8Rows
// through it (which must not be called for a kernel the CPU lacks).
enum class Int8Kernel { kScalar, kAvx2, kAvx512Vnni };
bool Int8KernelSupported(Int8Kernel kernel);
void DotInt8RowsWith(Int8Kernel kernel, const int8_t* query, const int8_t* rows, size_t stride,
                     uint32_t count, uint32_t dim, int32_t* out);

struct ScoredRow {
  float score = 0;
  uint64_t id = 0;
};

// The k best (highest score; on equal scores the lower id) of everything pushed. A push that
// cannot enter costs one comparison, so a scan over millions of rows pays for the heap only
// when a row is among the best so far.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }
  size_t k() const { return k_; }
  size_t size() const { return heap_.size(); }
  // False when a row with this score cannot be kept now (Push then would do nothing); true
  // may still lose to a kept row of equal score and lower id.
  bool Accepts(float score) const {
    return heap_.size() < k_ || (k_ > 0 && score >= heap_.front().score);
  }
  void Push(float score, uint64_t id);
  // Merges another heap's rows into this one.
  void Merge(const TopK& other);
  // The kept rows, best first; the heap is left empty.
  std::vector<ScoredRow> Take();

 private:
  size_t k_;
  std::vector<ScoredRow> heap_;  // min-heap on (score, -id): front() is the worst kept row
};

struct Int8Query {
  std::vector<int8_t> q;
  float scale = 0;
  uint32_t dim = 0;
};
Int8Query QuantizeQuery(const float* query, uint32_t dim);

// A block of quantised rows in place (e.g. in the memory map). Row r has id first_id + r.
struct Int8BlockView {
  const int8_t* rows = nullptr;  // count rows, `stride` bytes apart
  const char* scales = nullptr;  // count floats, any alignment (read with memcpy)
  uint32_t count = 0;
  uint32_t dim = 0;
  size_t stride = 0;
  uint64_t first_id = 0;
};

// Stage 1: the approximate score (int8 dot x query scale x row scale) of every row of the
// block, pushed into `candidates` (sized k x oversample by the caller).
void ScanInt8Block(const Int8Query& query, const Int8BlockView& block, TopK& candidates);

// Stage 2: the exact float score of each candidate (DotProduct, the float scan's kernel, so
// the scores equal the exact scan's), best k first. `fetch(id)` gives the candidate's dim
// floats (4-byte aligned), or nullptr to drop it.
std::vector<ScoredRow> Rescore(const float* query, uint32_t dim,
                               const std::vector<ScoredRow>& candidates,
                               const std::function<const float*(uint64_t)>& fetch, size_t k);

// Both stages over one block whose float rows (count x dim, row-major, ids first_id + r)
// sit beside its int8 rows.
std::vector<ScoredRow> TwoStageSearch(const float* query, const Int8BlockView& block,
                                      const float* float_rows, size_t k,
                                      size_t oversample = kDefaultOversample);

// Row stride of a block: dim rounded up to a cache line.
size_t Int8Stride(uint32_t dim);
inline constexpr size_t kInt8BlockHeaderBytes = 48;
// Quantises `count` float rows (row-major) into one block value.
std::string EncodeInt8Block(const float* rows, uint32_t count, uint32_t dim);
// Views a block value in place (no copy); an error if it is malformed or of another dim.
// The view lives as long as `value` does.
Result<Int8BlockView> DecodeInt8Block(std::string_view value, uint32_t dim, uint64_t first_id);

}  // namespace ragstream::store
