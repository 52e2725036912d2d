// Float scoring kernels for the vector benchmark's prototypes of the shard scan (what
// vector_index.cc could do): many rows against one query, and many rows against a batch of
// queries, each chosen at run time (AVX-512F, AVX2+FMA, or the product's own DotProduct), and
// the machine's read bandwidth.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vbench {

// out[r] = <query, rows + r * dim> for r < count. Rows are contiguous (row-major).
using RowsFn = void (*)(const float* query, const float* rows, uint32_t count, uint32_t dim,
                        float* out);

// One row at a time through ragstream::store::DotProduct (the product's kernel today).
void RowsProductKernel(const float* query, const float* rows, uint32_t count, uint32_t dim,
                       float* out);
// The product's rows kernel (ragstream::store::ScoreRows: AVX-512F four rows at a time,
// AVX2+FMA, or portable), and the name of the one this CPU runs.
RowsFn BestRowsKernel();
const char* BestRowsKernelName();

// out[j * count + r] = <queries + j * dim, rows + r * dim> for j < nq, r < count: a tile of
// 4 rows x 4 queries is held in 16 registers, so each row is read from memory once per batch
// and the scan is bound by arithmetic, not bandwidth. AVX-512F, else a scalar fallback.
void ScoreBatch(const float* queries, uint32_t nq, const float* rows, uint32_t count, uint32_t dim,
                float* out);
const char* ScoreBatchKernelName();

// Sums `bytes` bytes (a multiple of 256) from `data` with the widest loads the CPU has;
// returns the sum so the compiler cannot drop the reads.
uint64_t ReadAll(const void* data, size_t bytes);

}  // namespace vbench
