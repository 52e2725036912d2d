// Cluster mode (RAGSTREAM_CLUSTER_ROLE): a shard's hosts share one replication log
// (JetStreamLog) and each keeps its LMDB store equal to it.
//
// - On the primary, every write transaction's changes (store::Change, captured by the Txn)
//   are appended to the log before the transaction commits, expecting the log's last
//   sequence to be this host's own last applied one, and the new sequence is stored in the
//   same transaction ("replication" database, key "applied_seq"). A write the log refuses is
//   not committed: nothing is ever in the store that is not in the log, and an answer's done
//   event, sent after its final save commits, is in the log first.
// - Every host tails the log (one process per host: the others wait on a file lock) and
//   applies, in order, each complete record past its applied sequence, together with the new
//   sequence in one transaction: applying is exactly-once across crashes. On the primary this
//   finds nothing to do but what a failed commit left in the log.
// - Which host is the primary is a lease in the JetStream key-value store (JetStreamLog::
//   GetLease): the host that holds it takes writes and renews it every quarter of its
//   period; the others refuse writes (503 "standby"). When it lapses (the primary died or lost
//   NATS), a standby applies the log to its end and takes it by compare-and-set. A host that
//   finds the lease held by another refuses writes again. Even two hosts that both believe
//   they lead cannot fork the store: a write is only appended on the log's latest state.
//
// Tenant moves: see tenant_mover.h. Not built yet (issue 15): snapshots that let the log be
// truncated.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lib/cluster/change_codec.h"
#include "lib/cluster/jetstream_log.h"
#include "lib/core/status.h"
#include "lib/store/lmdb.h"

namespace ragstream::cluster {

enum class Role { kPrimary, kStandby };

struct ReplicatorOptions {
  LogOptions log;
  Role role = Role::kPrimary;  // which the host prefers; the lease decides
  std::string node;            // this host's name in the lease (RAGSTREAM_NODE)
  std::string lock_path;       // the file lock that picks the one process per host that applies
  size_t max_part_bytes = 512 << 10;  // below NATS's default max_payload of 1 MB
};

class Replicator {
 public:
  // The database that holds the applied sequence; every process opens it.
  static constexpr const char* kDatabase = "replication";

  // Opens the log; on the primary installs the commit hook, on a standby refuses writes;
  // starts the thread that applies the log.
  static Result<std::unique_ptr<Replicator>> Start(store::Env& env, ReplicatorOptions options);
  ~Replicator();  // stops the thread
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // The store's applied sequence (0: nothing yet).
  Result<uint64_t> Applied() const;
  // Records this process applied from the log, and appended to it.
  uint64_t applied_records() const { return applied_records_.load(); }
  uint64_t published_records() const { return published_records_.load(); }
  bool leader() const { return leader_.load(); }
  // Called (on the lease thread) each time this process starts leading after it started: what
  // the worker's start writes only as primary (the index's identity) is written then. Set once,
  // before it can happen.
  void set_on_lead(std::function<void()> f) {
    std::lock_guard lock(on_lead_mu_);
    on_lead_ = std::move(f);
  }
  // Whether this process is the host's one that applies the log (holds the file lock).
  bool applies_here() const { return holding_.load(); }
  // The shard's log options (the NATS servers, replicas), for the tenant mover.
  const LogOptions& log_options() const { return options_.log; }
  // Prometheus gauges: whether this host leads, its applied sequence, the log's last one
  // and the difference (the replication lag in records; the apply rate is the rate of the
  // applied sequence).
  std::string MetricsText();

 private:
  Replicator(store::Env& env, ReplicatorOptions options, std::unique_ptr<JetStreamLog> log);
  Status Publish(store::Txn& txn, const std::vector<store::Change>& changes);
  // 503 tenant_moving for a write of a tenant this store marks as moving away.
  Status RefuseMovingTenants(const store::Txn& txn,
                             const std::vector<store::Change>& changes) const;
  // Publish's catch-up when `applied` is refused as not the log's last: the log's last sequence,
  // its complete records after `applied` now in `txn` beneath `changes` (written again from
  // `own_record`, their encoding; an unfinished record is stepped over); or log_behind when this
  // host no longer holds the shard's lease (those records are a new primary's) or there are too
  // many to look at.
  Result<uint64_t> CatchUpInside(store::Txn& txn, const std::vector<store::Change>& changes,
                                 const std::string& own_record, uint64_t applied);
  Status StandbyStatus() const;
  // Applies the log from the stored sequence to its end as it is now.
  Status CatchUp();
  // True once the store has applied the whole log (waits a little for the applying thread).
  bool CaughtUp();
  // Reads the lease and acts: leads while this host holds it (renewing it from the applying
  // process), refuses writes otherwise; takes a free one once the log is applied to its end
  // (see the .cc for who may).
  void CheckLease(bool starting);
  void SetLeader(bool leader, const std::string& why);
  void LeaseLoop();
  void Run();
  // Applies records from `from` on; with until > 0, returns once it passed `until` or the
  // log went quiet.
  Status ApplyFrom(uint64_t from, uint64_t until);
  Status ApplyMessage(Reassembler& parts, const LogMessage& msg);
  // One record at `seq`, with the sequence, in one transaction (nothing if already applied).
  Status Apply(const std::vector<DecodedChange>& changes, uint64_t seq);

  store::Env& env_;
  ReplicatorOptions options_;
  std::unique_ptr<JetStreamLog> log_;
  MDB_dbi dbi_;
  std::atomic<bool> stop_{false};
  std::mutex on_lead_mu_;  // set_on_lead may come after the lease thread started
  std::function<void()> on_lead_;
  std::atomic<bool> leader_{false};   // this host holds the shard's lease (as last seen)
  std::atomic<bool> holding_{false};  // this process applies the log for the host
  // The lease thread's own (and Start's, before it runs).
  std::chrono::steady_clock::time_point absent_since_{};
  bool seen_holder_ = false;
  std::atomic<uint64_t> applied_records_{0}, published_records_{0};
  std::mutex mu_;
  std::condition_variable wake_;
  std::thread thread_, lease_thread_;
};

// The applied sequence as stored (0 if none) and its encoding.
Result<uint64_t> ReadAppliedSeq(const store::Txn& txn, MDB_dbi dbi);

}  // namespace ragstream::cluster
