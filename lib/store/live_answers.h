// The answers streaming now, on any worker of the host, and the stops asked for them:
//
//   streaming   T/message id -> message key   (counted against a tenant's stream limit; the
//                                             orphan sweep walks it)
//   cancel_requests  T/message id -> ""       (a stop asked through any worker; the
//                                             streaming worker polls it)
//
// Every call works inside the caller's transaction, so an answer is registered, stopped and
// removed in the same transaction as the messages it concerns.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/lmdb.h"

namespace ragstream::store {

class LiveAnswers {
 public:
  static std::vector<std::string> Databases() { return {"streaming", "cancel_requests"}; }
  explicit LiveAnswers(const Env& env);

  Status Add(Txn& txn, std::string_view tenant, std::string_view message_id,
             std::string_view message_key);
  // Removes an answer and any stop asked for it; `id_key` is T/message id.
  Status Remove(Txn& txn, std::string_view id_key);
  Result<size_t> Count(const Txn& txn, std::string_view tenant) const;
  Status AskToStop(Txn& txn, std::string_view tenant, std::string_view message_id);
  Result<bool> StopAsked(const Txn& txn, std::string_view tenant,
                         std::string_view message_id) const;
  // Every live answer of every tenant: (T/message id, message key).
  Result<std::vector<std::pair<std::string, std::string>>> All(const Txn& txn) const;
  // The message key of a live answer, nullopt once it has ended.
  Result<std::optional<std::string>> KeyOf(const Txn& txn, std::string_view id_key) const;

 private:
  MDB_dbi streaming_, cancels_;
};

}  // namespace ragstream::store
