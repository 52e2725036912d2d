// Moving a tenant to another shard (`ragstream cluster move`), under load, with a write pause
// only for the final catch-up. No protocol of our own: the data travels through NATS JetStream
// streams, and each step is a write in a shard's own log.
//
// The CLI, on a host of the source shard, with that host's store:
//   1. streams every record of the tenant that moves with it (tenant_keys.h: all but the
//      approximate vector index, which the target builds for itself) from one read snapshot
//      into a stream of its own, in records of about 256 KB (a larger value, a vector block,
//      is a record of its own, in several messages), noting the sequence of the source's log
//      the snapshot holds (S), and creates the plan in the key-value bucket ragstream_moves
//      ("plan_<target shard>"; create-only, so one move into a shard at a time, and updated
//      only against the revision read, so that a run and an --abort cannot both win);
//   2. waits until the target has applied the snapshot and nearly caught up with the source's
//      log, then appends to the source's log one record that marks the tenant moving
//      (index_meta "moving/T"): from that record (F) on, the source refuses the tenant's writes
//      (503 tenant_moving: Replicator checks the mark in every writing transaction), and it
//      adds F to the plan;
//   3. once the target has applied the source's log up to F, records the routing in the plan,
//      routes the tenant to the target (the bucket's "route_<tenant>", which
//      scripts/cluster_agent.sh applies over the cluster file, and the cluster file it was
//      given), and appends to the source's log the deletion of every record of the tenant
//      there (the mark stays: a request that still reaches the source is refused, not answered
//      from nothing). From the mark on every step is idempotent: a rerun finishes a move that
//      stopped; before it, --abort calls it off.
//
// This class is the target's side: a thread of the target shard's primary (the process that
// applies the log) that carries out the plan. It applies the snapshot's records, then the
// tenant's changes in each record of the source's log from S + 1 up to F (batched, up to
// about 1 MB a transaction), each in a write transaction of its own, so that they go through
// the target's log to its standby; at the end it drops any approximate index its own builder
// made of the tenant meanwhile (from part of the rows). Its progress (the snapshot message and
// the source sequence applied, with the plan's id) is kept in the target's store in the same
// transactions (index_meta "move_snapshot/T", "move_source/T"), so a crash or a failover
// resumes exactly where it was; and reported in the bucket ("progress_<shard>") for the CLI.
// A plan marked "abort" makes it delete what it copied instead, the progress keys last.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lib/cluster/change_codec.h"
#include "lib/cluster/jetstream_log.h"
#include "lib/cluster/replicator.h"
#include "lib/core/status.h"
#include "lib/store/lmdb.h"

namespace ragstream::cluster {

// The plan and the progress are "key value" lines.
using MoveFields = std::map<std::string, std::string>;
std::string FormatMoveFields(const MoveFields& fields);
MoveFields ParseMoveFields(std::string_view text);
uint64_t MoveNumber(const MoveFields& fields, const std::string& key);

// The bucket's keys, and the index_meta values a target must share with the source (the
// copied records only make sense in a store of the same layout, embedder and vector shards).
std::string MovePlanKey(std::string_view target_shard);
std::string MoveProgressKey(std::string_view target_shard);
// Where a moved tenant is routed now ("route_<tenant>" -> shard): kept after the move, and
// applied over the cluster file by scripts/cluster_agent.sh (`ragstream cluster leaders
// --routes`).
std::string MoveRouteKey(std::string_view tenant);
inline constexpr std::string_view kMoveRoutePrefix = "route_";
inline constexpr const char* kMoveSharedMeta[] = {"layout", "embedder", "dimension", "shards",
                                                  "analyzer"};

class TenantMover {
 public:
  TenantMover(store::Env& env, const Replicator& replicator, std::string shard);
  ~TenantMover();  // stops the thread
  TenantMover(const TenantMover&) = delete;
  TenantMover& operator=(const TenantMover&) = delete;
  void Start();

 private:
  void Run();
  Status Step();
  Status CheckTarget(const MoveFields& plan, const std::string& tenant);
  Status ApplySnapshot(const MoveFields& plan, const std::string& tenant, uint64_t done);
  Status ReplaySource(const MoveFields& plan, const std::string& tenant, uint64_t done);
  // Applies `changes` and the progress key in one write transaction.
  // clear_mark: first, lift an old "moving" mark of a tenant that comes back; drop_derived: the
  // tenant's approximate index here goes too (the move's last write).
  Status Write(const std::string& tenant, const std::vector<DecodedChange>& changes,
               const std::string& progress_key, uint64_t progress, bool clear_mark,
               bool drop_derived);
  Result<uint64_t> StoredProgress(const std::string& key, uint64_t absent);
  // A move called off (`--abort`): deletes what it copied here.
  Status DropCopy(const std::string& tenant);
  // The move's progress keys, once its plan is gone.
  Status DropProgress(const std::string& tenant);
  void Report(const MoveFields& plan, const std::string& error);

  store::Env& env_;
  const Replicator& replicator_;
  std::string shard_;
  std::unique_ptr<JetStreamLog> control_;  // the bucket, through the target's log options
  std::string plan_id_;                    // the plan the cached streams below belong to
  std::string plan_tenant_;                // its tenant (whose progress keys go when the plan does)
  std::unique_ptr<JetStreamLog> snapshot_, source_;
  Reassembler parts_;
  uint64_t snapshot_done_ = 0, source_done_ = 0;
  bool done_ = false, aborted_ = false;
  std::string last_error_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ragstream::cluster
