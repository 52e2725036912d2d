// Which keys of the store are a tenant's: what a tenant move copies, replays and deletes.
//
// Every database keys a tenant's records by "T/..." (store/tenant_key.h), except index_meta,
// whose per-tenant counters are "<name>/T" ("doc_count/T", "next_chunk/T", "bm25_tokens/T",
// ...). The replication database and index_meta's other keys belong to the store, not to a
// tenant. index_meta "moving/T" is the move's own mark on the source (see TenantMover), not
// the tenant's data: it is never copied or deleted with it.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "lib/core/status.h"
#include "lib/store/lmdb.h"

namespace ragstream::cluster {

// index_meta's key marking a tenant that is moving (or moved) away; its value names the
// shard it goes to. A write of the tenant's on this shard is refused while it is there.
std::string MovingKey(std::string_view tenant);
inline constexpr std::string_view kMetaDatabase = "index_meta";

// The tenant whose record `key` of database `db` is ("" for the store's own keys).
std::string_view TenantOfKey(std::string_view db, std::string_view key);
bool IsTenantKey(std::string_view db, std::string_view key, std::string_view tenant);

// Visits every record of `tenant` in the store, database by database, in `txn`.
using TenantRecordVisitor =
    std::function<Status(std::string_view db, std::string_view key, std::string_view value)>;
Status ForEachTenantRecord(const store::Txn& txn, const store::Env& env, std::string_view tenant,
                           const TenantRecordVisitor& visit);

}  // namespace ragstream::cluster
