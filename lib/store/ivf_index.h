// The approximate vector index: per tenant, an inverted file (IVF) of int8 codes in the same
// LMDB environment as the exact vectors, read in place by every worker while one writes.
//
// A search scores the query against the index's centroids, scans the int8 codes of the
// nearest lists (`nprobe` of them, or a share of all) for k x 4 candidates, and rescores those
// exactly from the float vectors (vector_index.h), so its scores are the exact scan's and only its
// recall can differ.
//
// Database `ivf`, keys under the tenant's prefix T (tenant_key.h):
//   T "a"                                   the active index (IvfState); absent: search exact
//   T "b"                                   a build in progress (BuildClaim: pid, start, id)
//   T "c" BE32(id)                          its centroids: nlist x dim float32, unit length
//   T "l" BE32(id) BE32(list) BE32(first)   a list segment: up to kSegmentRows chunks of the
//                                           list, ids ascending from `first`, each an int8
//                                           code and its scale (vector_quant.h)
//   T "d" BE32(chunk >> 13)                 tombstones: a bitmap of 8192 chunk ids (1 kB)
//   T "s"                                   the chunk count at which a build last found the
//                                           tenant too small (so it is not scanned again soon)
//
// Writes: documents added while an index is active go into its lists in the same transaction
// (one segment per list touched per transaction, keyed by the list's first new chunk, so
// nothing is rewritten). A deleted chunk gets a tombstone bit in the same transaction; a
// search skips it, and the next build leaves it out (compaction). Chunk ids are never reused,
// so a bit never has to be cleared.
//
// Builds (Build): a new index under a new id -- sample, train, assign, write its lists --
// with no transaction held open while it works: rows are read in short read transactions
// (a long-lived reader would keep LMDB from reusing pages freed meanwhile, and the store would
// grow with every commit made during the build) and the lists written in short write
// transactions. It catches up with chunks stored meanwhile the same way, then one transaction
// adds the last few and flips "a" to the new id. Readers see the old index or the new one,
// never half of one; the old one's keys are deleted afterwards.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/chunk_catalog.h"
#include "lib/store/lmdb.h"
#include "lib/store/vector_index.h"

namespace ragstream::store {

struct PendingList;

struct IvfState {
  uint32_t id = 0;
  uint32_t nlist = 0;
  uint32_t dim = 0;
  uint32_t covered_end = 0;  // the lists hold every chunk below this that was stored
  uint64_t built_rows = 0;   // rows the build put in the lists
  uint64_t inserted = 0;     // rows added to the lists since
  uint64_t deleted = 0;      // tombstones set since
  // The default probe (see IvfProbe), as shares of the lists, with the recall@10 each was
  // estimated to give; 0: none.
  // build_*: estimated by the build, with stored rows as the queries (IvfBuildOptions::
  // target_recall): rows are not questions, and it comes out optimistic on real text.
  float build_share = 0, build_recall = 0;
  // live_*: from real questions (ObserveRecall): once enough were checked against the exact
  // scan, the smallest share that found target_recall of their exact top 10.
  float live_share = 0, live_recall = 0;
};

struct IvfBuildOptions {
  uint32_t nlist = 0;  // 0: chosen from the row count (IvfDefaultNlist)
  uint32_t iterations = 10;
  uint32_t sample_per_list = 64;  // training rows per centroid (FAISS warns below 39)
  int threads = 1;
  uint64_t min_rows = 1;        // fewer live rows: no index is built
  size_t txn_bytes = 4 << 20;   // each write transaction of the lists stays about this small
  size_t read_bytes = 8 << 20;  // each read transaction copies about this many bytes of rows
  // Quantised rows held for lists whose segments are not full yet; above this, every list's
  // rows are written as they are (shorter segments, less memory).
  size_t pending_bytes = size_t{256} << 20;
  // Rows stored during the build are caught up in passes until fewer than this are left for
  // the flip, whose transaction holds the write lock while it assigns them.
  uint64_t flip_rows = 4096;
  std::function<void()> after_first_pass;  // for tests: store rows the catch-up must find
  // Runs the build's heavy computation (k-means, assigning rows, quantising, calibrating),
  // never inside a transaction; unset: on the calling thread. The worker runs it at nice
  // 19 (RunAtLowestPriority) while its own thread, at normal priority, does the reads and
  // writes: a starved thread must not hold the write lock.
  std::function<void(const std::function<void()>&)> compute;
  // The default probe is tuned to the smallest share of lists whose recall@10 against the
  // exact scan is estimated at least this (0: no tuning), from `calibration_queries` stored
  // rows used as queries (not counting themselves as neighbours).
  double target_recall = 0.95;
  uint32_t calibration_queries = 64;
  const std::atomic<bool>* stop = nullptr;  // set: the build gives up (and cleans up)
};

struct IvfBuildReport {
  bool built = false;
  std::string skipped;  // why nothing was built
  uint32_t id = 0, nlist = 0;
  uint64_t rows = 0, trained_on = 0;
  uint64_t caught_up = 0;  // rows stored during the build, added by catch-up passes or the flip
  uint64_t flip_rows = 0;  // of those, the ones the flip's transaction added
  double read_s = 0, train_s = 0, assign_s = 0, write_s = 0, flip_s = 0;
  double tuned_share = 0, estimated_recall = 0;  // IvfState::build_share, build_recall
};

// Which lists a search probes: `nprobe` of them; or when that is 0 and `tuned`, the share the
// index learnt from questions (IvfState::live_share), or before it has, the larger of the
// build's estimate and `share`; or `share` of them.
struct IvfProbe {
  uint32_t nprobe = 0;
  bool tuned = true;
  double share = 0.4;
  // A probe expected to read this many rows or more is split over the cores (at most 4
  // threads); below, starting a thread costs more than it saves.
  uint64_t parallel_rows = 32768;
};

struct IvfSearchInfo {
  uint32_t nlist = 0, nprobe = 0;
  uint64_t rows_scanned = 0, candidates = 0;
  // Where nprobe came from: "nprobe" (asked for), "learnt" (IvfState::live_share),
  // "estimated" (IvfState::build_share, above `share`), "share" (IvfProbe::share).
  const char* probe = "";
};

// nlist for `rows` vectors: about 2 x sqrt(rows), at least 16.
uint32_t IvfDefaultNlist(uint64_t rows);

class IvfIndex {
 public:
  static std::vector<std::string> Databases() { return {"ivf"}; }
  IvfIndex(const Env& env, const VectorIndex& vectors);

  Result<std::optional<IvfState>> Active(const Txn& txn, std::string_view tenant) const;

  // Within `txn`: rows of new chunks (first .. first + count - 1) go into the active index's
  // lists, if there is one. Call once per tenant per transaction with all its new rows, after
  // their float vectors are put. Rows below them that the lists never got (stored by a worker
  // without this index) join too, read from the float vectors.
  struct NewRows {
    uint32_t first = 0;
    const float* rows = nullptr;
    uint32_t count = 0;
  };
  Status Insert(Txn& txn, std::string_view tenant, const std::vector<NewRows>& docs, uint32_t dim);
  // Within `txn`: the chunks first .. first + count - 1 are deleted.
  Status Tombstone(Txn& txn, std::string_view tenant, uint32_t first, uint32_t count);

  // A question's exact top 10 (`neighbours`: their vectors, best first), checked against the
  // tenant's active index: for each, how many of the query's nearest lists a probe needs to
  // find it, added to what the index has learnt from earlier questions (a histogram over
  // shares of the lists, older questions fading once there are many); from kMinNeighbours on,
  // the default probe is the smallest share that found `target_recall` of them, plus a
  // standard error for the number of questions seen. Nothing happens without an active
  // index of this dimension (nullopt); else the index's state after.
  Result<std::optional<IvfState>> ObserveRecall(std::string_view tenant, const float* query,
                                                uint32_t dim,
                                                const std::vector<const float*>& neighbours,
                                                double target_recall) const;
  static constexpr uint64_t kMinNeighbours = 200;

  // The tenant's approximate top-k, highest first (equal scores by chunk id), or nullopt when
  // it has no index (search exact instead). Probes `probe.nprobe` lists, or when that is 0
  // the share `probe.share` of the index's lists (at least one; clamped to nlist). Only chunks
  // `filter` lets through. `row(txn, chunk, scratch)` gives a chunk's float vector (nullptr: gone),
  // for the exact rescoring.
  using RowSource =
      std::function<const float*(const Txn& txn, uint32_t chunk, std::vector<float>& scratch)>;
  Result<std::optional<std::vector<VectorHit>>> Search(std::string_view tenant, const float* query,
                                                       uint32_t dim, size_t k, IvfProbe probe,
                                                       const ChunkFilter& filter,
                                                       const RowSource& row,
                                                       IvfSearchInfo* info = nullptr) const;

  // Builds a new index for the tenant and makes it the active one (see the top of this file).
  // Skipped (built false, with the reason) when another process is building one, or the tenant
  // has fewer than options.min_rows live rows. `chunks_now` is the tenant's next chunk id
  // (ChunkCatalog::NextChunk), recorded when it is too small.
  Result<IvfBuildReport> Build(std::string_view tenant, uint32_t dim,
                               const IvfBuildOptions& options);

  // Whether the tenant should get a (new) index: none yet and at least `min_rows` chunks were
  // ever added (and more than min_rows / 4 since a build last found it too small); or one
  // whose rows changed (added or deleted since) by as many as it was built with.
  Result<bool> NeedsBuild(const Txn& txn, std::string_view tenant, uint32_t chunks_now,
                          uint64_t min_rows) const;

  // Removes every key of the tenant's index `id` (not the active one), in short transactions.
  Status Drop(std::string_view tenant, uint32_t id);

 private:
  struct Centroids {
    uint32_t nlist = 0, dim = 0;
    std::vector<float> values;
  };
  // An index's centroids never change once written: cached per (tenant, id).
  Result<std::shared_ptr<const Centroids>> LoadCentroids(const Txn& txn, std::string_view tenant,
                                                         uint32_t id) const;
  // Writes the first `count` of `rows` (ids ascending) as segments of the list.
  Status PutSegments(Txn& txn, std::string_view tenant, uint32_t id, uint32_t list,
                     const PendingList& rows, size_t count, uint32_t dim) const;
  // The tenant's documents whose first chunk is >= from: first chunk and row count, ascending.
  struct RowBlock {
    uint32_t first = 0, count = 0;
  };
  Status ListBlocks(std::string_view tenant, uint32_t from, uint32_t dim,
                    std::vector<RowBlock>& out) const;
  class ListWriter;
  class Calibration;

  const Env& env_;
  const VectorIndex& vectors_;
  MDB_dbi dbi_;
  mutable std::mutex cache_mu_;
  mutable std::map<std::string, std::shared_ptr<const Centroids>, std::less<>> cache_;
};

}  // namespace ragstream::store
