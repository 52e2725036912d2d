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

#include "lib/core/status.h"

struct __natsConnection;
struct __jsCtx;
struct __natsSubscription;

namespace ragstream::cluster {

struct LogOptions {
  std::string urls;       // nats://host:4222[,nats://...]
  std::string shard;      // the stream is RAGSTREAM_<shard>, its subject ragstream.log.<shard>
  int replicas = 3;       // the stream's replicas (NATS servers that hold it)
  int timeout_ms = 5000;  // a publish or request waits at most this long
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

  const std::string& stream() const { return stream_; }
  const std::string& subject() const { return subject_; }

 private:
  JetStreamLog() = default;
  LogOptions options_;
  std::string stream_, subject_;
  __natsConnection* nc_ = nullptr;
  __jsCtx* js_ = nullptr;
};

}  // namespace ragstream::cluster
