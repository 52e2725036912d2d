// A shard's replication log: one NATS JetStream stream (Raft-replicated by the NATS servers,
// not by us), written only with an expected last sequence, so that a writer that is not at
// the log's end -- a deposed primary -- is refused by the server, and read in order from any
// sequence by an ordered consumer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

struct __natsConnection;
struct __jsCtx;
struct __natsSubscription;
struct __kvStore;

namespace ragstream::cluster {

struct LogOptions {
  std::string urls;       // nats://host:4222[,nats://...]
  std::string shard;      // the stream is RAGSTREAM_<shard>, its subject ragstream.log.<shard>
  int replicas = 3;       // the stream's replicas (NATS servers that hold it)
  int timeout_ms = 5000;  // a publish or request waits at most this long
  int lease_ms = 6000;    // a leader lease lapses this long after its last renewal
  bool create = true;     // false: a missing stream or lease bucket is an error, not made
};

// A shard's leader lease as the key-value store holds it.
struct Lease {
  std::string holder;  // the node that holds it
  uint64_t revision = 0;
};

struct LogMessage {
  uint64_t seq = 0;
  std::string data;
};

class JetStreamLog {
 public:
  // Connects (retrying reconnects forever afterwards) and creates the stream if it is not
  // there yet.
  static Result<std::unique_ptr<JetStreamLog>> Open(const LogOptions& options);
  ~JetStreamLog();
  JetStreamLog(const JetStreamLog&) = delete;
  JetStreamLog& operator=(const JetStreamLog&) = delete;

  // Appends `data` if the log's last sequence is `expect_last` (0: the log is empty); the new
  // sequence. kConflict (code "log_moved_on") when it is not: someone else wrote.
  Result<uint64_t> Append(std::string_view data, uint64_t expect_last);
  // The log's last sequence (0: empty).
  Result<uint64_t> LastSeq();
  // The message at `seq`.
  Result<std::string> Get(uint64_t seq);

  // Reads from `from` on, in order.
  class Reader {
   public:
    ~Reader();
    // The next message, or nullopt when none arrived within timeout_ms.
    Result<std::optional<LogMessage>> Next(int timeout_ms);

   private:
    friend class JetStreamLog;
    __natsSubscription* sub_ = nullptr;
  };
  Result<std::unique_ptr<Reader>> Read(uint64_t from);

  // The shard's leader lease, in the JetStream key-value bucket ragstream_leases (replicated
  // like the log; an entry lapses lease_ms after its last write). nullopt: nobody holds it.
  Result<std::optional<Lease>> GetLease();
  // Takes the lease if nobody holds it (compare-and-set on its absence); kConflict if
  // someone does.
  Result<uint64_t> TakeLease(const std::string& node);
  // Renews it if it is still at `revision`; kConflict if it moved (someone else took it).
  Result<uint64_t> RenewLease(const std::string& node, uint64_t revision);

  // Each host reports how far it has applied the log (a key per host in the same bucket,
  // lapsing like the lease: a host that stops reporting drops out), for `ragstream cluster
  // status`.
  Status ReportApplied(const std::string& node, uint64_t applied);
  struct HostReport {
    std::string node;
    uint64_t applied = 0;
  };
  Result<std::vector<HostReport>> HostReports();
  // The stream's copies on the NATS servers: the leader, then the replicas with their lag.
  struct Copy {
    std::string server;
    bool leader = false, current = false, offline = false;
    uint64_t lag = 0;
  };
  Result<std::vector<Copy>> Copies();

  // A tenant move's plan and progress (TenantMover), in the key-value bucket ragstream_moves:
  // kept until deleted (no TTL), created on first use. nullopt: no such key.
  Result<std::optional<std::string>> GetMoveKey(const std::string& key,
                                                uint64_t* revision = nullptr);
  Status PutMoveKey(const std::string& key, std::string_view value);
  // Only if the key is absent (kConflict "move_exists" if not); its revision.
  Result<uint64_t> CreateMoveKey(const std::string& key, std::string_view value);
  // Only if the key is still at `revision` (kConflict "move_changed" if not); the new one.
  Result<uint64_t> UpdateMoveKey(const std::string& key, std::string_view value, uint64_t revision);
  // Every key of the bucket that starts with `prefix`, with its value.
  Result<std::vector<std::pair<std::string, std::string>>> MoveKeys(const std::string& prefix);
  Status DeleteMoveKey(const std::string& key);
  // Deletes this log's stream (a tenant move's snapshot, once applied).
  Status DeleteStream();

  const std::string& stream() const { return stream_; }
  const std::string& subject() const { return subject_; }

 private:
  JetStreamLog() = default;
  LogOptions options_;
  std::string stream_, subject_;
  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;
  __kvStore* leases_ = nullptr;
  __kvStore* moves_ = nullptr;
  Status OpenMoves();
  std::string lease_key_;
};

}  // namespace ragstream::cluster
