#include "lib/store/vector_quant.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lib/store/vector_index.h"

namespace ragstream::store {
namespace {

constexpr uint32_t kInt8Magic = 0x38515352;  // "RSQ8"

// The kernels all compute out[r] = sum_i a[i] * row_r[i] exactly. The SIMD ones use
// |a[i]| * (sign(a[i]) * b[i]): an unsigned-by-signed byte product, which is what the
// instructions multiply, and with both in [-127, 127] no partial sum can saturate.

void RowsScalar(const int8_t* a, const int8_t* rows, size_t stride, uint32_t count, uint32_t dim,
                int32_t* out) {
  for (uint32_t r = 0; r < count; ++r) {
    const int8_t* b = rows + r * stride;
    int32_t sum = 0;
    for (uint32_t i = 0; i < dim; ++i) sum += int32_t{a[i]} * int32_t{b[i]};
    out[r] = sum;
  }
}

__attribute__((target("avx2"))) inline int32_t HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// 32 bytes of a row against the query's: eight 32-bit sums of four products each.
__attribute__((target("avx2"))) inline __m256i Int8Products(__m256i abs_q, __m256i q,
                                                            const int8_t* x, __m256i ones) {
  const __m256i row = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_q, _mm256_sign_epi8(row, q)), ones);
}

constexpr uint32_t kAvx2MaxChunks = 128;  // dims up to 4096 keep the query in these arrays
constexpr size_t kAvx2ReadAheadBytes = 2048;

// AVX2: vpmaddubsw multiplies |q| (unsigned) by sign(q) * x into 16-bit pair sums, vpmaddwd
// widens them to 32 bits. q and |q| are worked out once per call, not once per row. Rows go
// one after another, so the scan reads one forward stream, and the row 2 KiB ahead is asked
// for by hand. On AMD Zen 3, scanning a 100k-row store's int8 blocks in place in the map
// (dims 384 and 1536): 1.4-1.45x the time of just reading them before, 1.15-1.25x after;
// without the read-ahead only the hoisting of |q| is left (no gain in time); four rows at a
// time (sharing the query's loads) was slower still, at 1536 by half.
__attribute__((target("avx2"))) void RowsAvx2(const int8_t* a, const int8_t* rows, size_t stride,
                                              uint32_t count, uint32_t dim, int32_t* out) {
  const uint32_t chunks = dim / 32;
  if (chunks > kAvx2MaxChunks) {
    constexpr uint32_t kPart = kAvx2MaxChunks * 32;
    for (uint32_t r = 0; r < count; ++r) {
      int32_t sum = 0;
      for (uint32_t at = 0; at < dim; at += kPart) {
        int32_t piece;
        RowsAvx2(a + at, rows + r * stride + at, 0, 1, std::min(dim - at, kPart), &piece);
        sum += piece;
      }
      out[r] = sum;
    }
    return;
  }
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i q[kAvx2MaxChunks], abs_q[kAvx2MaxChunks];
  for (uint32_t c = 0; c < chunks; ++c) {
    q[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + c * 32));
    abs_q[c] = _mm256_abs_epi8(q[c]);
  }
  const int8_t* const end = rows + size_t{count} * stride;
  for (uint32_t r = 0; r < count; ++r) {
    const int8_t* b = rows + r * stride;
    // Within the rows given only: past them lies whatever the map holds next.
    const int8_t* ahead = b + kAvx2ReadAheadBytes;
    for (const int8_t* stop = std::min(ahead + stride, end); ahead < stop; ahead += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
    }
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    uint32_t c = 0;
    for (; c + 2 <= chunks; c += 2) {
      acc0 = _mm256_add_epi32(acc0, Int8Products(abs_q[c], q[c], b + c * 32, ones));
      acc1 = _mm256_add_epi32(acc1, Int8Products(abs_q[c + 1], q[c + 1], b + c * 32 + 32, ones));
    }
    if (c < chunks) acc0 = _mm256_add_epi32(acc0, Int8Products(abs_q[c], q[c], b + c * 32, ones));
    int32_t sum = HorizontalSum(_mm256_add_epi32(acc0, acc1));
    for (uint32_t i = chunks * 32; i < dim; ++i) sum += int32_t{a[i]} * int32_t{b[i]};
    out[r] = sum;
  }
}

// AVX-512 BW + VNNI: vpdpbusd adds four u8 x s8 products into each 32-bit lane, 64 bytes an
// instruction; the tail is a masked load, so any dim runs without a scalar loop. The query's
// |q| and sign masks are worked out once per call; rows go four at a time (four independent
// accumulator chains), so a row chunk costs a load, a masked negation and a vpdpbusd.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline int32_t Sum512(__m512i v) {
  // Folded by hand (zero-masked extracts): GCC 12's _mm512_reduce_add_epi32 and the unmasked
  // extracts trip -Wmaybe-uninitialized on their undefined pass-through.
  return HorizontalSum(_mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xF, v, 0),
                                        _mm512_maskz_extracti64x4_epi64(0xF, v, 1)));
}

// The sums of four accumulators at once (zero-masked forms: see Sum512): interleaving pairs leaves
// each 128-bit lane with partial sums of rows [0, 1, 2, 3], so three adds of halves finish all four
// (a third of the instructions of four Sum512 calls, which were a third of the scan's).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline __m128i Sum512x4(__m512i a0,
                                                                               __m512i a1,
                                                                               __m512i a2,
                                                                               __m512i a3) {
  const __m512i t0 = _mm512_add_epi32(_mm512_maskz_unpacklo_epi32(0xFFFF, a0, a1),
                                      _mm512_maskz_unpackhi_epi32(0xFFFF, a0, a1));
  const __m512i t1 = _mm512_add_epi32(_mm512_maskz_unpacklo_epi32(0xFFFF, a2, a3),
                                      _mm512_maskz_unpackhi_epi32(0xFFFF, a2, a3));
  const __m512i t = _mm512_add_epi32(_mm512_maskz_unpacklo_epi64(0xFF, t0, t1),
                                     _mm512_maskz_unpackhi_epi64(0xFF, t0, t1));
  const __m256i h = _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xF, t, 0),
                                     _mm512_maskz_extracti64x4_epi64(0xF, t, 1));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void RowsAvx512(const int8_t* a,
                                                                       const int8_t* rows,
                                                                       size_t stride,
                                                                       uint32_t count, uint32_t dim,
                                                                       int32_t* out) {
  constexpr uint32_t kMaxChunks = 64;  // dims up to 4096 keep the query in these arrays
  const __m512i zero = _mm512_setzero_si512();
  const uint32_t chunks = (dim + 63) / 64;
  if (chunks > kMaxChunks) {
    for (uint32_t r = 0; r < count; ++r) {
      int32_t sum = 0;
      for (uint32_t c0 = 0; c0 < chunks; c0 += kMaxChunks) {
        const uint32_t part = std::min(dim - c0 * 64, kMaxChunks * 64);
        int32_t piece;
        RowsAvx512(a + c0 * 64, rows + r * stride + c0 * 64, 0, 1, part, &piece);
        sum += piece;
      }
      out[r] = sum;
    }
    return;
  }
  __m512i abs_q[kMaxChunks];
  __mmask64 negative[kMaxChunks], load[kMaxChunks];
  for (uint32_t c = 0; c < chunks; ++c) {
    const uint32_t left = dim - c * 64;
    load[c] = left >= 64 ? ~0ull : (~0ull >> (64 - left));
    const __m512i q = _mm512_maskz_loadu_epi8(load[c], a + c * 64);
    abs_q[c] = _mm512_abs_epi8(q);
    negative[c] = _mm512_movepi8_mask(q);
  }
  // Whole chunks with plain loads: a masked byte load costs about as much again per chunk on
  // AMD Zen 4 (100k rows x 384: 3.0 ms masked, 1.5-1.8 ms plain), so only the tail is masked.
  const uint32_t whole = dim / 64;
  uint32_t r = 0;
  for (; r + 4 <= count; r += 4) {
    const int8_t* b = rows + r * stride;
    __m512i acc0 = zero, acc1 = zero, acc2 = zero, acc3 = zero;
    for (uint32_t c = 0; c < whole; ++c) {
      const int8_t* p = b + c * 64;
      const __m512i x0 = _mm512_loadu_si512(p);
      const __m512i x1 = _mm512_loadu_si512(p + stride);
      const __m512i x2 = _mm512_loadu_si512(p + 2 * stride);
      const __m512i x3 = _mm512_loadu_si512(p + 3 * stride);
      acc0 = _mm512_dpbusd_epi32(acc0, abs_q[c], _mm512_mask_sub_epi8(x0, negative[c], zero, x0));
      acc1 = _mm512_dpbusd_epi32(acc1, abs_q[c], _mm512_mask_sub_epi8(x1, negative[c], zero, x1));
      acc2 = _mm512_dpbusd_epi32(acc2, abs_q[c], _mm512_mask_sub_epi8(x2, negative[c], zero, x2));
      acc3 = _mm512_dpbusd_epi32(acc3, abs_q[c], _mm512_mask_sub_epi8(x3, negative[c], zero, x3));
    }
    for (uint32_t c = whole; c < chunks; ++c) {
      const int8_t* p = b + c * 64;
      const __m512i x0 = _mm512_maskz_loadu_epi8(load[c], p);
      const __m512i x1 = _mm512_maskz_loadu_epi8(load[c], p + stride);
      const __m512i x2 = _mm512_maskz_loadu_epi8(load[c], p + 2 * stride);
      const __m512i x3 = _mm512_maskz_loadu_epi8(load[c], p + 3 * stride);
      acc0 = _mm512_dpbusd_epi32(acc0, abs_q[c], _mm512_mask_sub_epi8(x0, negative[c], zero, x0));
      acc1 = _mm512_dpbusd_epi32(acc1, abs_q[c], _mm512_mask_sub_epi8(x1, negative[c], zero, x1));
      acc2 = _mm512_dpbusd_epi32(acc2, abs_q[c], _mm512_mask_sub_epi8(x2, negative[c], zero, x2));
      acc3 = _mm512_dpbusd_epi32(acc3, abs_q[c], _mm512_mask_sub_epi8(x3, negative[c], zero, x3));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r), Sum512x4(acc0, acc1, acc2, acc3));
  }
  for (; r < count; ++r) {
    const int8_t* b = rows + r * stride;
    __m512i acc = zero;
    for (uint32_t c = 0; c < chunks; ++c) {
      const __m512i x = _mm512_maskz_loadu_epi8(load[c], b + c * 64);
      acc = _mm512_dpbusd_epi32(acc, abs_q[c], _mm512_mask_sub_epi8(x, negative[c], zero, x));
    }
    out[r] = Sum512(acc);
  }
}

using RowsFn = void (*)(const int8_t*, const int8_t*, size_t, uint32_t, uint32_t, int32_t*);

struct Kernel {
  RowsFn rows;
  const char* name;
};

Kernel PickKernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni")) {
    return {RowsAvx512, "avx512vnni"};
  }
  if (__builtin_cpu_supports("avx2")) return {RowsAvx2, "avx2"};
  return {RowsScalar, "scalar"};
}

const Kernel kKernel = PickKernel();

bool Better(const ScoredRow& a, const ScoredRow& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

}  // namespace

float QuantizeInt8(const float* x, uint32_t dim, int8_t* out) {
  float max_abs = 0;
  bool finite = true;
  for (uint32_t i = 0; i < dim; ++i) {
    if (!std::isfinite(x[i])) finite = false;
    max_abs = std::max(max_abs, std::fabs(x[i]));
  }
  const float inverse = finite && max_abs > 0 ? 127.0f / max_abs : 0.0f;
  if (!std::isfinite(inverse) || inverse == 0) {
    std::memset(out, 0, dim);
    return 0;
  }
  for (uint32_t i = 0; i < dim; ++i) {
    // Rounds half away from zero without a libm call (|v| <= 127 + rounding).
    const float v = x[i] * inverse;
    const int r = static_cast<int>(v + (v >= 0 ? 0.5f : -0.5f));
    out[i] = static_cast<int8_t>(std::clamp(r, -127, 127));
  }
  return max_abs / 127.0f;
}

void DequantizeInt8(const int8_t* q, float scale, uint32_t dim, float* out) {
  for (uint32_t i = 0; i < dim; ++i) out[i] = static_cast<float>(q[i]) * scale;
}

int32_t DotInt8(const int8_t* a, const int8_t* b, uint32_t dim) {
  int32_t out;
  kKernel.rows(a, b, 0, 1, dim, &out);
  return out;
}

int32_t DotInt8Scalar(const int8_t* a, const int8_t* b, uint32_t dim) {
  int32_t out;
  RowsScalar(a, b, 0, 1, dim, &out);
  return out;
}

const char* DotInt8Kernel() {
  return kKernel.name;
}

void DotInt8Rows(const int8_t* query, const int8_t* rows, size_t stride, uint32_t count,
                 uint32_t dim, int32_t* out) {
  kKernel.rows(query, rows, stride, count, dim, out);
}

bool Int8KernelSupported(Int8Kernel kernel) {
  __builtin_cpu_init();
  switch (kernel) {
    case Int8Kernel::kScalar:
      return true;
    case Int8Kernel::kAvx2:
      return __builtin_cpu_supports("avx2");
    case Int8Kernel::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

void DotInt8RowsWith(Int8Kernel kernel, const int8_t* query, const int8_t* rows, size_t stride,
                     uint32_t count, uint32_t dim, int32_t* out) {
  switch (kernel) {
    case Int8Kernel::kScalar:
      return RowsScalar(query, rows, stride, count, dim, out);
    case Int8Kernel::kAvx2:
      return RowsAvx2(query, rows, stride, count, dim, out);
    case Int8Kernel::kAvx512Vnni:
      return RowsAvx512(query, rows, stride, count, dim, out);
  }
}

void TopK::Push(float score, uint64_t id) {
  const ScoredRow row{score, id};
  if (heap_.size() < k_) {
    heap_.push_back(row);
    std::push_heap(heap_.begin(), heap_.end(), Better);
  } else if (k_ > 0 && Better(row, heap_.front())) {
    std::pop_heap(heap_.begin(), heap_.end(), Better);
    heap_.back() = row;
    std::push_heap(heap_.begin(), heap_.end(), Better);
  }
}

void TopK::Merge(const TopK& other) {
  for (const ScoredRow& row : other.heap_) Push(row.score, row.id);
}

std::vector<ScoredRow> TopK::Take() {
  std::sort_heap(heap_.begin(), heap_.end(), Better);
  std::vector<ScoredRow> out;
  out.swap(heap_);
  heap_.reserve(k_);
  return out;
}

Int8Query QuantizeQuery(const float* query, uint32_t dim) {
  Int8Query q;
  q.q.resize(dim);
  q.dim = dim;
  q.scale = QuantizeInt8(query, dim, q.q.data());
  return q;
}

void ScanInt8Block(const Int8Query& query, const Int8BlockView& block, TopK& candidates) {
  if (query.dim != block.dim || candidates.k() == 0) return;
  constexpr uint32_t kBatch = 256;
  int32_t dots[kBatch];
  const __m128 query_scale = _mm_set1_ps(query.scale);
  for (uint32_t r0 = 0; r0 < block.count; r0 += kBatch) {
    const uint32_t n = std::min(kBatch, block.count - r0);
    DotInt8Rows(query.q.data(), block.rows + size_t{r0} * block.stride, block.stride, n, block.dim,
                dots);
    const char* scales = block.scales + sizeof(float) * size_t{r0};
    const uint64_t first = block.first_id + r0;
    uint32_t i = 0;
    // Eight scores at a time (SSE2: the same operations in the same order as the scalar rest,
    // so the same bits), offered one by one only when the best of them could enter; once the
    // candidates are full almost none can. Row by row this loop held 8% of the int8 scan's
    // samples (AVX2 kernel, AMD Zen 3), now 5%; with a faster kernel its share is larger.
    for (; i + 8 <= n; i += 8) {
      float score[8];
      for (uint32_t h = 0; h < 8; h += 4) {
        const __m128 scale = _mm_loadu_ps(reinterpret_cast<const float*>(scales) + i + h);
        const __m128 dot =
            _mm_cvtepi32_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(dots + i + h)));
        _mm_storeu_ps(score + h, _mm_mul_ps(dot, _mm_mul_ps(query_scale, scale)));
      }
      __m128 best = _mm_max_ps(_mm_loadu_ps(score), _mm_loadu_ps(score + 4));
      best = _mm_max_ps(best, _mm_shuffle_ps(best, best, _MM_SHUFFLE(1, 0, 3, 2)));
      best = _mm_max_ps(best, _mm_shuffle_ps(best, best, _MM_SHUFFLE(2, 3, 0, 1)));
      if (!candidates.Accepts(_mm_cvtss_f32(best))) continue;  // nor can any lower score
      for (uint32_t h = 0; h < 8; ++h) {
        if (candidates.Accepts(score[h])) candidates.Push(score[h], first + i + h);
      }
    }
    for (; i < n; ++i) {
      float scale;
      std::memcpy(&scale, scales + sizeof(float) * i, sizeof scale);
      const float score = static_cast<float>(dots[i]) * (query.scale * scale);
      if (candidates.Accepts(score)) candidates.Push(score, first + i);
    }
  }
}

std::vector<ScoredRow> Rescore(const float* query, uint32_t dim,
                               const std::vector<ScoredRow>& candidates,
                               const std::function<const float*(uint64_t)>& fetch, size_t k) {
  TopK best(k);
  for (const ScoredRow& c : candidates) {
    const float* row = fetch(c.id);
    if (row) best.Push(DotProduct(query, row, dim), c.id);
  }
  return best.Take();
}

std::vector<ScoredRow> TwoStageSearch(const float* query, const Int8BlockView& block,
                                      const float* float_rows, size_t k, size_t oversample) {
  const Int8Query q = QuantizeQuery(query, block.dim);
  TopK candidates(k * std::max<size_t>(oversample, 1));
  ScanInt8Block(q, block, candidates);
  return Rescore(
      query, block.dim, candidates.Take(),
      [&](uint64_t id) { return float_rows + (id - block.first_id) * block.dim; }, k);
}

size_t Int8Stride(uint32_t dim) {
  return (size_t{dim} + 63) / 64 * 64;
}

std::string EncodeInt8Block(const float* rows, uint32_t count, uint32_t dim) {
  const size_t stride = Int8Stride(dim);
  const size_t scales_at = kInt8BlockHeaderBytes + size_t{count} * stride;
  std::string value(scales_at + sizeof(float) * count, '\0');
  const uint32_t header[4] = {kInt8Magic, count, dim, static_cast<uint32_t>(stride)};
  std::memcpy(value.data(), header, sizeof header);
  for (uint32_t r = 0; r < count; ++r) {
    int8_t* q = reinterpret_cast<int8_t*>(value.data() + kInt8BlockHeaderBytes + r * stride);
    const float scale = QuantizeInt8(rows + size_t{r} * dim, dim, q);
    std::memcpy(value.data() + scales_at + sizeof(float) * r, &scale, sizeof scale);
  }
  return value;
}

Result<Int8BlockView> DecodeInt8Block(std::string_view value, uint32_t dim, uint64_t first_id) {
  if (value.size() < kInt8BlockHeaderBytes) return Status::Internal("int8 block is too short");
  uint32_t header[4];
  std::memcpy(header, value.data(), sizeof header);
  const size_t stride = Int8Stride(dim);
  if (header[0] != kInt8Magic) return Status::Internal("int8 block has a wrong magic");
  if (header[2] != dim || header[3] != stride) {
    return Status::Internal("int8 block of dimension " + std::to_string(header[2]) + ", expected " +
                            std::to_string(dim));
  }
  const uint64_t count = header[1];
  // count * (stride + 4) cannot overflow: both factors are below 2^33.
  if (value.size() - kInt8BlockHeaderBytes != count * (stride + sizeof(float))) {
    return Status::Internal("int8 block size does not match its row count");
  }
  Int8BlockView view;
  view.rows = reinterpret_cast<const int8_t*>(value.data() + kInt8BlockHeaderBytes);
  view.scales = value.data() + kInt8BlockHeaderBytes + count * stride;
  view.count = static_cast<uint32_t>(count);
  view.dim = dim;
  view.stride = stride;
  view.first_id = first_id;
  return view;
}

}  // namespace ragstream::store
