// The vector index: S shard databases (vec.0 ... vec.S-1) in the LMDB environment.
//
// Layout: one value per document, keyed by tenant + '/' + document id (tenant_key.h),
// holding the vectors of all its chunks back to back as raw little-endian float32 (chunk i is
// row i), after a 16-byte header. A document lives in shard Fnv1a(id) % S. A search scans
// only the tenant's key range of each shard, so it neither sees nor pays for other tenants. Search
// scores the vectors in place in the memory map -- no per-process copy of the index, every worker
// shares the page cache -- and each value is one contiguous run of vectors (large ones sit on
// contiguous overflow pages), so the scan streams memory rather than hopping between small values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/lmdb.h"
#include "lib/store/vector_quant.h"

namespace ragstream::store {

// float: search scans the float vectors. int8: every block is also stored scalar-quantised
// (vec8.N, vector_quant.h: a quarter of the bytes); search scans those for k x 4 candidates
// and rescores them exactly from the float vectors, so the scores are the float scan's.
enum class VectorFormat { kFloat, kInt8 };
const char* VectorFormatName(VectorFormat format);

struct VectorHit {
  float score = 0;
  std::string document_id;
  uint32_t chunk_index = 0;
};

class VectorIndex {
 public:
  static std::vector<std::string> Databases(int shards);

  VectorIndex(const Env& env, int shards, VectorFormat format = VectorFormat::kFloat);
  VectorFormat format() const { return format_; }
  int shards() const { return static_cast<int>(dbis_.size()); }
  int ShardOf(std::string_view document_id) const;

  // Within `txn`: stores `count` vectors of `dim` floats (row-major) for the document.
  Status Put(Txn& txn, std::string_view tenant, std::string_view document_id, const float* vectors,
             uint32_t count, uint32_t dim);
  // Within `txn`: removes the document's vectors (absent is not an error).
  Status Delete(Txn& txn, std::string_view tenant, std::string_view document_id);

  // The tenant's exact top-k by inner product (cosine for unit vectors), highest first.
  // Shards are scanned in parallel, each in its own read transaction. A non-empty `filter`
  // (document ids, any order) restricts the scan to those documents. Thread-safe.
  Result<std::vector<VectorHit>> Search(std::string_view tenant, const float* query, uint32_t dim,
                                        size_t k, const std::vector<std::string>& filter) const;

  // Number of vectors stored (all shards).
  Result<uint64_t> Count() const;

 private:
  Status ScanShard(int shard, std::string_view tenant, const float* query, uint32_t dim, size_t k,
                   const std::vector<std::string>& filter, std::vector<VectorHit>& out) const;
  Status ScanShardInt8(int shard, std::string_view tenant, const float* query,
                       const Int8Query& quantized, uint32_t dim, size_t k,
                       const std::vector<std::string>& filter, std::vector<VectorHit>& out) const;

  const Env& env_;
  VectorFormat format_;
  std::vector<MDB_dbi> dbis_;       // vec.N: float blocks
  std::vector<MDB_dbi> int8_dbis_;  // vec8.N: int8 blocks (kInt8 only)
};

// Inner product of two float vectors (the scan's kernel).
float DotProduct(const float* a, const float* b, uint32_t dim);
// out[r] = <query, rows + r * dim> for r < count (rows contiguous, row-major): the scan's
// kernel, AVX-512F / AVX2+FMA / portable, picked at run time.
void ScoreRows(const float* query, const float* rows, uint32_t count, uint32_t dim, float* out);

}  // namespace ragstream::store
