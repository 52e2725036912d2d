// The state of an answer while it streams, kept apart from the message record: a small
// record (status, heartbeat, length) and the content appended as deltas. A partial save
// writes only what arrived since the last one and the small record, so saving an answer is
// linear in its length rather than quadratic; cancel, resume and the orphan sweep read the
// small record. When the answer ends, its whole content goes into the message record once
// and the state and deltas are erased.
//
//   msg_state    message key -> status, updated_at (the heartbeat), length, tokens, deltas
//   msg_deltas   message key + big-endian delta number -> u32 n, n token ends, content bytes
//
// Message keys start with the tenant (tenant_key.h), so these records are the tenant's too.
// A streaming message without a state record (made before this layout) is saved the old
// way, whole.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/lmdb.h"

namespace ragstream::store {

struct StreamState {
  std::string status = "streaming";
  int64_t updated_at = 0;  // the heartbeat
  uint32_t length = 0;     // bytes of content saved
  uint32_t tokens = 0;     // token ends saved
  uint32_t deltas = 0;     // delta records written
};

class MessageStates {
 public:
  static std::vector<std::string> Databases() { return {"msg_state", "msg_deltas"}; }
  explicit MessageStates(const Env& env);

  Result<std::optional<StreamState>> Get(const Txn& txn, std::string_view message_key) const;
  Status Put(Txn& txn, std::string_view message_key, const StreamState& state);
  // Appends the part of `content` / `token_ends` beyond `state` as one delta and advances
  // `state` (the caller writes it with Put). A copy shorter than what is saved is ignored.
  Status Append(Txn& txn, std::string_view message_key, StreamState& state,
                std::string_view content, const std::vector<uint32_t>& token_ends);
  // The saved content and token ends, in order.
  Status Read(const Txn& txn, std::string_view message_key, std::string& content,
              std::vector<uint32_t>& token_ends) const;
  // Erases the state and deltas of one message, or of every message under `prefix`.
  Status Erase(Txn& txn, std::string_view message_key);
  Status ErasePrefix(Txn& txn, std::string_view prefix);

 private:
  MDB_dbi state_, deltas_;
};

}  // namespace ragstream::store
