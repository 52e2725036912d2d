// Which keys of the store are a tenant's: what a tenant move copies, replays and deletes.
//
// Every database keys a tenant's records by "T/..." (store/tenant_key.h), except index_meta,
// whose per-tenant counters are "<name>/T" ("doc_count/T", "next_chunk/T", "bm25_tokens/T",
// ...). The replication database and index_meta's other keys belong to the store, not to a
// tenant. index_meta "moving/T" (the move's mark on the source) and "move_snapshot/T",
// "move_source/T" (its progress on the target) are the move's bookkeeping (see TenantMover),
// not the tenant's data: never copied, deleted or counted with it.
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
// index_meta's keys of a move's progress on the target ("move_snapshot", "move_source"):
// bookkeeping, never copied, deleted or counted as the tenant's.
std::string MoveProgressMetaKey(std::string_view name, std::string_view tenant);
inline constexpr std::string_view kMoveSnapshotName = "move_snapshot";
inline constexpr std::string_view kMoveSourceName = "move_source";
inline constexpr std::string_view kMoveProgressNames[] = {kMoveSnapshotName, kMoveSourceName};
inline constexpr std::string_view kMetaDatabase = "index_meta";
// The approximate vector index: derived from the vectors, and not moved (the target builds
// its own; a copy would race the target's builder).
inline constexpr std::string_view kIvfDatabase = "ivf";
// Whether a database's records of a tenant travel with it (all but the ivf database).
bool MovesWithTenant(std::string_view db);

// The tenant whose record `key` of database `db` is ("" for the store's own keys).
std::string_view TenantOfKey(std::string_view db, std::string_view key);
bool IsTenantKey(std::string_view db, std::string_view key, std::string_view tenant);

// Visits every record of `tenant` in the store, database by database, in `txn`: those that
// move with it, or (derived_too) every one, the ivf database's included (what a deletion
// removes).
using TenantRecordVisitor =
    std::function<Status(std::string_view db, std::string_view key, std::string_view value)>;
Status ForEachTenantRecord(const store::Txn& txn, const store::Env& env, std::string_view tenant,
                           const TenantRecordVisitor& visit, bool derived_too = false);

}  // namespace ragstream::cluster
