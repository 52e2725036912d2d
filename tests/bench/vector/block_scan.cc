#include "tests/bench/vector/block_scan.h"

#include <immintrin.h>

#include "lib/store/vector_index.h"

namespace vbench {
namespace {

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

__attribute__((target("avx512f"))) float Dot512(const float* a, const float* b, uint32_t dim) {
  const uint32_t body = dim & ~15u;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  uint32_t i = 0;
  for (; i + 32 <= body; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < body; i += 16) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  }
  if (i < dim) {
    const __mmask16 m = static_cast<__mmask16>((1u << (dim - i)) - 1);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  return Sum16(_mm512_add_ps(acc0, acc1));
}

// A 4-row x 4-query tile: each row chunk and query chunk is loaded once for 16 FMAs.
__attribute__((target("avx512f"))) void Tile4x4(const float* const* q, const float* const* x,
                                                uint32_t dim, float* out, size_t out_stride) {
  const uint32_t body = dim & ~15u;
  const __mmask16 tail = static_cast<__mmask16>((1u << (dim - body)) - 1);
  __m512 acc[4][4];
#pragma GCC unroll 4
  for (int a = 0; a < 4; ++a) {
#pragma GCC unroll 4
    for (int b = 0; b < 4; ++b) acc[a][b] = _mm512_setzero_ps();
  }
  for (uint32_t i = 0; i <= body; i += 16) {
    const __mmask16 m = i < body ? static_cast<__mmask16>(0xFFFF) : tail;
    if (!m) break;
    __m512 qv[4], xv[4];
#pragma GCC unroll 4
    for (int a = 0; a < 4; ++a) qv[a] = _mm512_maskz_loadu_ps(m, q[a] + i);
#pragma GCC unroll 4
    for (int b = 0; b < 4; ++b) xv[b] = _mm512_maskz_loadu_ps(m, x[b] + i);
#pragma GCC unroll 4
    for (int a = 0; a < 4; ++a) {
#pragma GCC unroll 4
      for (int b = 0; b < 4; ++b) acc[a][b] = _mm512_fmadd_ps(qv[a], xv[b], acc[a][b]);
    }
  }
#pragma GCC unroll 4
  for (int a = 0; a < 4; ++a) {
#pragma GCC unroll 4
    for (int b = 0; b < 4; ++b) out[a * out_stride + b] = Sum16(acc[a][b]);
  }
}

__attribute__((target("avx512f"))) void BatchAvx512(const float* queries, uint32_t nq,
                                                    const float* rows, uint32_t count, uint32_t dim,
                                                    float* out) {
  uint32_t r = 0;
  for (; r + 4 <= count; r += 4) {
    const float* x[4] = {rows + size_t{r} * dim, rows + size_t{r + 1} * dim,
                         rows + size_t{r + 2} * dim, rows + size_t{r + 3} * dim};
    uint32_t j = 0;
    for (; j + 4 <= nq; j += 4) {
      const float* q[4] = {queries + size_t{j} * dim, queries + size_t{j + 1} * dim,
                           queries + size_t{j + 2} * dim, queries + size_t{j + 3} * dim};
      Tile4x4(q, x, dim, out + size_t{j} * count + r, count);
    }
    for (; j < nq; ++j) {
      for (int b = 0; b < 4; ++b)
        out[size_t{j} * count + r + b] = Dot512(queries + size_t{j} * dim, x[b], dim);
    }
  }
  for (; r < count; ++r) {
    for (uint32_t j = 0; j < nq; ++j) {
      out[size_t{j} * count + r] = Dot512(queries + size_t{j} * dim, rows + size_t{r} * dim, dim);
    }
  }
}

void BatchScalar(const float* queries, uint32_t nq, const float* rows, uint32_t count, uint32_t dim,
                 float* out) {
  for (uint32_t r = 0; r < count; ++r) {
    for (uint32_t j = 0; j < nq; ++j) {
      out[size_t{j} * count + r] =
          ragstream::store::DotProduct(queries + size_t{j} * dim, rows + size_t{r} * dim, dim);
    }
  }
}

__attribute__((target("avx512f"))) uint64_t Read512(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 256) {
    a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(p + i + 64));
    a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(p + i + 128));
    a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(p + i + 192));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
  uint64_t sum = 0;
  for (uint64_t v : lanes) sum += v;
  return sum;
}

__attribute__((target("avx2"))) uint64_t Read256(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

bool HasAvx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return has;
}
bool HasAvx2Fma() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}

}  // namespace

void RowsProductKernel(const float* query, const float* rows, uint32_t count, uint32_t dim,
                       float* out) {
  for (uint32_t r = 0; r < count; ++r) {
    out[r] = ragstream::store::DotProduct(query, rows + size_t{r} * dim, dim);
  }
}

// The product's own rows kernel (AVX-512F, AVX2+FMA or portable, picked at run time): the
// prototypes of other layouts are measured with exactly the kernel VectorIndex uses.
RowsFn BestRowsKernel() {
  return ragstream::store::ScoreRows;
}

const char* BestRowsKernelName() {
  return HasAvx512() ? "avx512f" : HasAvx2Fma() ? "avx2+fma" : "portable";
}

void ScoreBatch(const float* queries, uint32_t nq, const float* rows, uint32_t count, uint32_t dim,
                float* out) {
  if (HasAvx512()) return BatchAvx512(queries, nq, rows, count, dim, out);
  return BatchScalar(queries, nq, rows, count, dim, out);
}

const char* ScoreBatchKernelName() {
  return HasAvx512() ? "avx512f 4x4 tiles" : "scalar";
}

uint64_t ReadAll(const void* data, size_t bytes) {
  if (HasAvx512()) return Read512(data, bytes);
  if (HasAvx2Fma()) return Read256(data, bytes);
  const uint64_t* p = static_cast<const uint64_t*>(data);
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes / 8; ++i) sum += p[i];
  return sum;
}

}  // namespace vbench
