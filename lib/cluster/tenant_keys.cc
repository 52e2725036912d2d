#include "lib/cluster/tenant_keys.h"

#include "lib/cluster/replicator.h"
#include "lib/store/tenant_key.h"

namespace ragstream::cluster {
namespace {

constexpr std::string_view kMovingName = "moving";
// A move's own bookkeeping (TenantMover), per tenant but not the tenant's data.
bool IsMoveBookkeeping(std::string_view name) {
  if (name == kMovingName) return true;
  for (std::string_view n : kMoveProgressNames) {
    if (name == n) return true;
  }
  return false;
}

}  // namespace

std::string MovingKey(std::string_view tenant) {
  return std::string(kMovingName) + "/" + std::string(tenant);
}

std::string MoveProgressMetaKey(std::string_view name, std::string_view tenant) {
  return std::string(name) + "/" + std::string(tenant);
}

std::string_view TenantOfKey(std::string_view db, std::string_view key) {
  if (db == Replicator::kDatabase) return {};
  if (db == kMetaDatabase) {
    const size_t slash = key.find('/');
    if (slash == std::string_view::npos || IsMoveBookkeeping(key.substr(0, slash))) return {};
    return key.substr(slash + 1);
  }
  const size_t slash = key.find('/');
  return slash == std::string_view::npos ? std::string_view() : key.substr(0, slash);
}

bool IsTenantKey(std::string_view db, std::string_view key, std::string_view tenant) {
  return !tenant.empty() && TenantOfKey(db, key) == tenant;
}

bool MovesWithTenant(std::string_view db) {
  return db != kIvfDatabase && db != Replicator::kDatabase;
}

Status ForEachTenantRecord(const store::Txn& txn, const store::Env& env, std::string_view tenant,
                           const TenantRecordVisitor& visit, bool derived_too) {
  for (const auto& [name, dbi] : env.Dbis()) {
    if (name == Replicator::kDatabase || (!derived_too && !MovesWithTenant(name))) continue;
    auto cur = store::Cursor::Open(txn, dbi);
    if (!cur.ok()) return cur.status();
    if (name == kMetaDatabase) {
      // A handful of counters: read them all.
      for (bool more = cur->First(); more; more = cur->Next()) {
        if (IsTenantKey(name, cur->key(), tenant)) {
          if (Status s = visit(name, cur->key(), cur->value()); !s.ok()) return s;
        }
      }
      continue;
    }
    const std::string prefix = store::TenantPrefix(tenant);
    for (bool more = cur->SeekAtLeast(prefix); more && store::HasPrefix(cur->key(), prefix);
         more = cur->Next()) {
      if (Status s = visit(name, cur->key(), cur->value()); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

}  // namespace ragstream::cluster
