// The replication log's records: what one write transaction changed, by database name, and
// how a record too large for one log message is cut into parts and put together again.
//
// Record: "RSC1", then per change: u8 op, u8 name length, the database name, u32 key length,
// the key, u32 value length, the value (lengths little-endian). Applying a record replays its
// changes in order, so a standby's databases hold what the primary's do, byte for byte.
//
// Part (one log message): "RSP1", u64 transaction id, u32 index, u32 count, then a piece of
// the record. A transaction's parts are published one after another (the primary holds the
// write lock meanwhile), so a reader sees them in a row; parts of a transaction that never
// finished (its writer failed half-way) are followed by another transaction's first part or
// by nothing, and are dropped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/lmdb.h"

namespace ragstream::cluster {

std::string EncodeChanges(const store::Env& env, const std::vector<store::Change>& changes);

struct DecodedChange {
  store::Change::Op op;
  std::string_view db, key, value;
};
// The same record from changes named by database (a tenant move's copies and deletes).
std::string EncodeNamedChanges(const std::vector<DecodedChange>& changes);
Result<std::vector<DecodedChange>> DecodeChanges(std::string_view record);

// Replays `changes` in `txn` (a BeginApply transaction). A database this binary does not
// have is an error: a newer primary's log is not half-applied.
Status ApplyChanges(store::Txn& txn, const store::Env& env,
                    const std::vector<DecodedChange>& changes);

// Cuts a record into parts of at most max_part_bytes (header included).
std::vector<std::string> FrameParts(uint64_t txn_id, std::string_view record,
                                    size_t max_part_bytes);

struct Part {
  uint64_t txn_id = 0;
  uint32_t index = 0, count = 0;
  std::string_view data;
};
Result<Part> ParsePart(std::string_view message);

// Puts a record together from its parts in log order.
class Reassembler {
 public:
  // A complete record once its last part arrives; nullopt meanwhile. A part that does not
  // continue the pending transaction drops it (dropped() counts those) and starts afresh.
  std::optional<std::string> Feed(const Part& part);
  bool pending() const { return expect_ > 0; }
  uint64_t dropped() const { return dropped_; }

 private:
  uint64_t txn_id_ = 0;
  uint32_t expect_ = 0, count_ = 0;
  std::string record_;
  uint64_t dropped_ = 0;
};

}  // namespace ragstream::cluster
