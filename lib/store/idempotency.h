// Idempotency keys (a send's client_message_id), kept as Stripe keeps them: scoped to the
// tenant, bound to the request they first came with, expiring after a time to live, and
// deleted with their conversation.
//
//   client_ids   T/ + 0x1f + key -> {"m": message id, "c": conversation id,
//                                     "f": request fingerprint, "t": created at (ms)}
//
// Rows of the earlier layout (the key prefixed with a conversation id, the value a bare
// message id) are never matched and are removed by Expire().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/status.h"
#include "lib/store/lmdb.h"

namespace ragstream::store {

struct IdempotencyRecord {
  std::string message_id;       // the assistant message the key produced
  std::string conversation_id;  // its conversation
  std::string fingerprint;      // of the request the key first came with
  int64_t created_at = 0;
};

class IdempotencyKeys {
 public:
  explicit IdempotencyKeys(MDB_dbi dbi) : dbi_(dbi) {}

  // The live record of `key` (nullopt when there is none, or it is older than `ttl_ms`).
  Result<std::optional<IdempotencyRecord>> Find(const Txn& txn, std::string_view tenant,
                                                std::string_view key, int64_t now_ms,
                                                int64_t ttl_ms) const;
  Status Put(Txn& txn, std::string_view tenant, std::string_view key,
             const IdempotencyRecord& record);
  // Deletes the tenant's keys that produced messages of `conversation_id`.
  Status DeleteForConversation(Txn& txn, std::string_view tenant, std::string_view conversation_id);
  // Deletes up to `max_rows` keys (of every tenant) older than `ttl_ms`, or of the earlier
  // layout; returns how many.
  Result<size_t> Expire(Txn& txn, int64_t now_ms, int64_t ttl_ms, size_t max_rows);

 private:
  MDB_dbi dbi_;
};

// A fingerprint of a request: SHA-256 of its parts, each length-prefixed so that no two
// different lists of parts give the same input.
std::string RequestFingerprint(std::initializer_list<std::string_view> parts);

}  // namespace ragstream::store
