// The vector index: per shard N, four databases in the LMDB environment.
//
//   vblocks.N   T/BE32(range start) -> a block: the rows of the tenant's chunks whose ids lie in
//               one range of kBlockRows (512) consecutive ids, as raw little-endian float32 after
//               a 48-byte header (so that on overflow pages the rows start on a cache line),
//               then their chunk ids (u32, ascending), then a byte per row marking where each
//               document's rows begin. The exact scan's unit: one kernel call and one cursor
//               step per 512 rows.
//   vectors.N   T/BE32(first chunk) -> a piece: the rows of chunks first, first + 1, ... of one
//               document within one range (a 16-byte header, then the floats). New documents
//               are written as pieces; a range whose last id has been handed out is complete
//               (ids grow), and the Put that passes it packs its pieces into its block in the
//               same transaction. So pieces hold only the ranges still filling (and the rows of
//               stores written before blocks, which keep their per-document values).
//   vblocks8.N, vectors8.N   the same values scalar-quantised (vector_quant.h), int8 format only.
//
// T is the tenant (tenant_key.h). A block lives in shard (its range, mixed) % S, a piece in
// shard (its first chunk, mixed) % S. A search scans only the tenant's key range of each
// shard, so it neither sees nor pays for other tenants, and scores the vectors in place in the
// memory map -- no per-process copy of the index, every worker shares the page cache. A
// deleted document's rows leave their block at once (the block is rewritten: at most
// 512 x dim floats, so no tombstones are needed) and its pieces are dropped.
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
  static constexpr uint32_t kBlockRows = 512;
  static std::vector<std::string> Databases(int shards);

  VectorIndex(const Env& env, int shards, VectorFormat format = VectorFormat::kFloat);
  VectorFormat format() const { return format_; }
  int shards() const { return static_cast<int>(dbis_.size()); }
  // The shard of the piece that begins at `first_chunk`.
  int ShardOf(uint32_t first_chunk) const;

  // Within `txn`: stores `count` vectors of `dim` floats (row-major) for the chunks
  // first_chunk, first_chunk + 1, ... (one document's; rows already stored for those chunks
  // are replaced), and packs the ranges this completes into blocks.
  Status Put(Txn& txn, std::string_view tenant, uint32_t first_chunk, const float* vectors,
             uint32_t count, uint32_t dim);
  // Within `txn`: removes the vectors of chunks [first_chunk, first_chunk + count) (absent is
  // not an error).
  Status Delete(Txn& txn, std::string_view tenant, uint32_t first_chunk, uint32_t count);

  // The tenant's exact top-k by inner product (cosine for unit vectors), highest first; equal
  // scores by chunk id. Shards are scanned in parallel, each in its own read transaction, by at
  // most as many tasks as the calling thread may use CPUs.
  // Only documents whose first chunk `filter` lets through are scanned. Thread-safe.
  Result<std::vector<VectorHit>> Search(std::string_view tenant, const float* query, uint32_t dim,
                                        size_t k, const ChunkFilter& filter = {}) const;

  // Within `txn`: packs up to `max_ranges` ranges that lie wholly below chunk `below` (complete:
  // ids grow) and still hold pieces at or past chunk `from` -- a store written before blocks,
  // whose values are one per document and may cross ranges (split here first). A piece of
  // another dimension stays as it is.
  struct PackProgress {
    uint32_t packed = 0;  // ranges packed in `txn`
    bool done = false;    // no such piece is left
    uint32_t next = 0;    // where the next call starts
  };
  // Whether PackBelow(from 0, `below`) would find a piece to pack (read-only).
  Result<bool> HasPiecesBelow(const Txn& txn, std::string_view tenant, uint32_t below) const;
  Result<PackProgress> PackBelow(Txn& txn, std::string_view tenant, uint32_t dim, uint32_t from,
                                 uint32_t below, uint32_t max_ranges);

  // Number of vectors stored (all shards).
  Result<uint64_t> Count() const;
  // How a tenant's rows are stored: blocks and pieces, and the rows in each.
  struct Layout {
    uint64_t blocks = 0, block_rows = 0, pieces = 0, piece_rows = 0;
  };
  Result<Layout> Values(std::string_view tenant) const;

  // Within `txn`: visit(first, rows, count, stable) for each run of the tenant's rows with
  // consecutive chunk ids in [from, to) (row r is chunk first + r): a document's rows, or the
  // part of them in one range when they cross a range's end (every shard; no particular
  // order). `rows`
  // points into the map and lives as long as `txn` when `stable`; otherwise (a small value,
  // not 4-byte aligned in its page) it is a copy that lives only during the call.
  using RowsVisitor =
      std::function<Status(uint32_t first, const float* rows, uint32_t count, bool stable)>;
  Status ForEach(const Txn& txn, std::string_view tenant, uint32_t from, uint32_t dim,
                 const RowsVisitor& visit) const {
    return ForEach(txn, tenant, from, UINT32_MAX, dim, visit);
  }
  Status ForEach(const Txn& txn, std::string_view tenant, uint32_t from, uint32_t to, uint32_t dim,
                 const RowsVisitor& visit) const;
  // Within `txn`: the vector of `chunk`, whose document's first chunk is `first` (where to look
  // for a piece); nullptr if it is not there. May point into `scratch`.
  const float* Row(const Txn& txn, std::string_view tenant, uint32_t first, uint32_t chunk,
                   uint32_t dim, std::vector<float>& scratch) const;
  // The same when the chunk's rows are in a block (one lookup); nullptr otherwise.
  const float* BlockRow(const Txn& txn, std::string_view tenant, uint32_t chunk, uint32_t dim,
                        std::vector<float>& scratch) const;
  // The same when they are in a piece (one lookup for a document's first range); nullptr
  // otherwise.
  const float* PieceRow(const Txn& txn, std::string_view tenant, uint32_t first, uint32_t chunk,
                        uint32_t dim, std::vector<float>& scratch) const;

 private:
  int BlockShardOf(uint32_t chunk) const;
  // The first chunk of the tenant's lowest piece at or past `from`, over all shards.
  Result<std::optional<uint32_t>> LowestPiece(const Txn& txn, std::string_view tenant,
                                              uint32_t from) const;
  Status PutPiece(Txn& txn, std::string_view tenant, uint32_t first, const float* rows,
                  uint32_t count, uint32_t dim);
  // Deletes the piece at `key` of `shard`, float and int8.
  Status DropPiece(Txn& txn, int shard, std::string_view key);
  // Put without the packing: one piece per range the rows touch.
  Status PutPieces(Txn& txn, std::string_view tenant, uint32_t first_chunk, const float* vectors,
                   uint32_t count, uint32_t dim);
  // Writes the block of the range starting at `start`: rows (ids.size() x dim) of chunks `ids`
  // (ascending), `starts` 1 where a document's rows begin; deletes it when `ids` is empty.
  Status WriteBlock(Txn& txn, std::string_view tenant, uint32_t start,
                    const std::vector<uint32_t>& ids, const std::vector<float>& rows,
                    const std::vector<uint8_t>& starts, uint32_t dim);
  // Removes the rows of chunks [begin, end) from the block of the range starting at `start`.
  Status RemoveFromBlock(Txn& txn, std::string_view tenant, uint32_t start, uint32_t begin,
                         uint64_t end);
  // Moves the range's pieces (of dimension dim) into its block; `wrote` (if set) says whether
  // there were any.
  Status Pack(Txn& txn, std::string_view tenant, uint32_t range, uint32_t dim,
              bool* wrote = nullptr);
  Status ScanShard(int shard, std::string_view tenant, const float* query, uint32_t dim, size_t k,
                   const ChunkFilter& filter, std::vector<VectorHit>& out) const;
  Status ScanShardInt8(int shard, std::string_view tenant, const float* query,
                       const Int8Query& quantized, uint32_t dim, size_t k,
                       const ChunkFilter& filter, std::vector<VectorHit>& out) const;

  const Env& env_;
  VectorFormat format_;
  std::vector<MDB_dbi> dbis_;         // vectors.N: float pieces
  std::vector<MDB_dbi> int8_dbis_;    // vectors8.N: int8 pieces (kInt8 only)
  std::vector<MDB_dbi> block_dbis_;   // vblocks.N: float blocks
  std::vector<MDB_dbi> block8_dbis_;  // vblocks8.N: int8 blocks (kInt8 only)
};

// Inner product of two float vectors (the scan's kernel).
float DotProduct(const float* a, const float* b, uint32_t dim);
// out[r] = <query, rows + r * dim> for r < count (rows contiguous, row-major): the scan's
// kernel, AVX-512F / AVX2+FMA / portable, picked at run time.
void ScoreRows(const float* query, const float* rows, uint32_t count, uint32_t dim, float* out);

}  // namespace ragstream::store
