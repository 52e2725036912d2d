// The vector index: S shard databases (vectors.0 ... vectors.S-1) in the LMDB environment.
//
// Layout: one value per document, keyed by tenant + '/' + BE32(its first dense chunk id)
// (tenant_key.h, chunk_catalog.h), holding the vectors of all its chunks back to back as raw
// little-endian float32 (row i is chunk first + i), after a 16-byte header. A document lives
// in shard (first chunk id, mixed) % S. A search scans
// only the tenant's key range of each shard, so it neither sees nor pays for other tenants. Search
// scores the vectors in place in the memory map -- no per-process copy of the index, every worker
// shares the page cache -- and each value is one contiguous run of vectors (large ones sit on
// contiguous overflow pages), so the scan streams memory rather than hopping between small values.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/chunk_catalog.h"
#include "lib/store/lmdb.h"
#include "lib/store/vector_quant.h"

namespace ragstream::store {

// float: search scans the float vectors. int8: every block is also stored scalar-quantised
// (vectors8.N, vector_quant.h: a quarter of the bytes); search scans those for k x 4 candidates
// and rescores them exactly from the float vectors, so the scores are the float scan's.
enum class VectorFormat { kFloat, kInt8 };
const char* VectorFormatName(VectorFormat format);

struct VectorHit {
  float score = 0;
  uint32_t chunk = 0;  // the dense chunk id
};

class VectorIndex {
 public:
  static std::vector<std::string> Databases(int shards);

  VectorIndex(const Env& env, int shards, VectorFormat format = VectorFormat::kFloat);
  VectorFormat format() const { return format_; }
  int shards() const { return static_cast<int>(dbis_.size()); }
  int ShardOf(uint32_t first_chunk) const;

  // Within `txn`: stores `count` vectors of `dim` floats (row-major) for the chunks
  // first_chunk, first_chunk + 1, ... (one document's).
  Status Put(Txn& txn, std::string_view tenant, uint32_t first_chunk, const float* vectors,
             uint32_t count, uint32_t dim);
  // Within `txn`: removes the vectors Put stored at `first_chunk` (absent is not an error).
  Status Delete(Txn& txn, std::string_view tenant, uint32_t first_chunk);

  // The tenant's exact top-k by inner product (cosine for unit vectors), highest first; equal
  // scores by chunk id. Shards are scanned in parallel, each in its own read transaction.
  // Only documents whose first chunk `filter` lets through are scanned. Thread-safe.
  Result<std::vector<VectorHit>> Search(std::string_view tenant, const float* query, uint32_t dim,
                                        size_t k, const ChunkFilter& filter = {}) const;

  // Number of vectors stored (all shards).
  Result<uint64_t> Count() const;

  // Within `txn`: visit(first, rows, count, stable) for each of the tenant's documents whose
  // first chunk is >= `from` and < `to` (every shard; no particular order). `rows` points into the
  // map and lives as long as `txn` when `stable`; otherwise (a small value, not 4-byte aligned in
  // its page) it is a copy that lives only during the call.
  using RowsVisitor =
      std::function<Status(uint32_t first, const float* rows, uint32_t count, bool stable)>;
  Status ForEach(const Txn& txn, std::string_view tenant, uint32_t from, uint32_t dim,
                 const RowsVisitor& visit) const {
    return ForEach(txn, tenant, from, UINT32_MAX, dim, visit);
  }
  Status ForEach(const Txn& txn, std::string_view tenant, uint32_t from, uint32_t to, uint32_t dim,
                 const RowsVisitor& visit) const;
  // Within `txn`: the vector of `chunk`, whose document's first chunk is `first`; nullptr if
  // it is not there. May point into `scratch`.
  const float* Row(const Txn& txn, std::string_view tenant, uint32_t first, uint32_t chunk,
                   uint32_t dim, std::vector<float>& scratch) const;

 private:
  Status ScanShard(int shard, std::string_view tenant, const float* query, uint32_t dim, size_t k,
                   const ChunkFilter& filter, std::vector<VectorHit>& out) const;
  Status ScanShardInt8(int shard, std::string_view tenant, const float* query,
                       const Int8Query& quantized, uint32_t dim, size_t k,
                       const ChunkFilter& filter, std::vector<VectorHit>& out) const;

  const Env& env_;
  VectorFormat format_;
  std::vector<MDB_dbi> dbis_;       // vectors.N: float blocks
  std::vector<MDB_dbi> int8_dbis_;  // vectors8.N: int8 blocks (kInt8 only)
};

// Inner product of two float vectors (the scan's kernel).
float DotProduct(const float* a, const float* b, uint32_t dim);
// out[r] = <query, rows + r * dim> for r < count (rows contiguous, row-major): the scan's
// kernel, AVX-512F / AVX2+FMA / portable, picked at run time.
void ScoreRows(const float* query, const float* rows, uint32_t count, uint32_t dim, float* out);

}  // namespace ragstream::store
