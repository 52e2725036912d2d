#include "lib/cluster/tenant_mover.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <sstream>

#include "lib/cluster/tenant_keys.h"
#include "lib/core/log.h"
#include "lib/store/tenant_key.h"

namespace ragstream::cluster {
namespace {

// The most of the tenant's changes one write transaction of the replay carries.
constexpr size_t kBatchBytes = 1 << 20;
constexpr auto kIdleWait = std::chrono::milliseconds(500);
constexpr auto kBusyWait = std::chrono::milliseconds(50);

}  // namespace

std::string FormatMoveFields(const MoveFields& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += k + " " + v + "\n";
  return out;
}

MoveFields ParseMoveFields(std::string_view text) {
  MoveFields out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

uint64_t MoveNumber(const MoveFields& fields, const std::string& key) {
  auto it = fields.find(key);
  return it == fields.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
}

std::string MovePlanKey(std::string_view target_shard) {
  return "plan_" + std::string(target_shard);
}

std::string MoveProgressKey(std::string_view target_shard) {
  return "progress_" + std::string(target_shard);
}

std::string MoveRouteKey(std::string_view tenant) {
  return std::string(kMoveRoutePrefix) + std::string(tenant);
}

TenantMover::TenantMover(store::Env& env, const Replicator& replicator, std::string shard)
    : env_(env), replicator_(replicator), shard_(std::move(shard)) {}

TenantMover::~TenantMover() {
  {
    std::lock_guard lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TenantMover::Start() {
  thread_ = std::thread([this] { Run(); });
}

void TenantMover::Run() {
  std::unique_lock lock(mu_);
  while (!stop_.load()) {
    lock.unlock();
    bool busy = false;
    // Only the process that applies the log on the shard's primary moves tenants in.
    if (replicator_.leader() && replicator_.applies_here()) {
      const uint64_t before = snapshot_done_ + source_done_;
      Status s = Step();
      if (!s.ok() && s.message() != last_error_) {
        LogWarn("cluster", "a tenant move into this shard is stuck", {{"error", s.message()}});
      }
      last_error_ = s.ok() ? "" : s.message();
      busy = s.ok() && !done_ && snapshot_done_ + source_done_ != before;
    }
    lock.lock();
    wake_.wait_for(lock, busy ? kBusyWait : kIdleWait, [&] { return stop_.load(); });
  }
}

Status TenantMover::Step() {
  if (!control_) {
    LogOptions o = replicator_.log_options();
    o.create = false;
    auto opened = JetStreamLog::Open(o);
    if (!opened.ok()) return opened.status();
    control_ = std::move(*opened);
  }
  auto raw = control_->GetMoveKey(MovePlanKey(shard_));
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) {
    // The move ended (the CLI removed its plan): its progress keys here go too.
    if (!plan_tenant_.empty()) {
      if (Status s = DropProgress(plan_tenant_); !s.ok()) return s;
      plan_tenant_.clear();
    }
    plan_id_.clear();
    snapshot_.reset();
    source_.reset();
    done_ = false;
    return Status::Ok();
  }
  const MoveFields plan = ParseMoveFields(**raw);
  const std::string tenant = plan.count("tenant") ? plan.at("tenant") : "";
  if (tenant.empty() || !plan.count("id") || !plan.count("from") || !plan.count("stream")) {
    return Status::InvalidArgument("bad_move_plan", "the move plan lacks a field: " + **raw);
  }
  if (plan.at("id") != plan_id_) {
    plan_id_ = plan.at("id");
    plan_tenant_ = tenant;
    snapshot_.reset();
    source_.reset();
    parts_ = Reassembler();
    done_ = aborted_ = false;
    snapshot_done_ = source_done_ = 0;
    LogInfo("cluster", "moving a tenant into this shard",
            {{"tenant", tenant}, {"from", plan.at("from")}, {"move", plan_id_}});
  }
  if (MoveNumber(plan, "abort") == 1) {
    // Only what this move copied: a target that refused the move (its own records of the
    // tenant) never started one.
    auto copied = StoredProgress(MoveProgressMetaKey(kMoveSnapshotName, tenant), 0);
    if (!copied.ok()) return copied.status();
    Status s = aborted_ || *copied == 0 ? Status::Ok() : DropCopy(tenant);
    aborted_ = s.ok();
    Report(plan, s.ok() ? "" : s.message());
    return s;
  }
  const uint64_t snapshot_seq = MoveNumber(plan, "snapshot_seq");
  auto snap = StoredProgress(MoveProgressMetaKey(kMoveSnapshotName, tenant), 0);
  if (!snap.ok()) return snap.status();
  auto src = StoredProgress(MoveProgressMetaKey(kMoveSourceName, tenant), snapshot_seq);
  if (!src.ok()) return src.status();
  if (*snap == 0) {
    if (Status s = CheckTarget(plan, tenant); !s.ok()) {
      Report(plan, s.message());
      return s;
    }
  }
  snapshot_done_ = *snap;
  // The stored source sequence is where the last write of the tenant's changes left it; this
  // process may have read further (records with nothing of the tenant's are not written).
  source_done_ = std::max(source_done_, *src);
  Status s = ApplySnapshot(plan, tenant, *snap);
  if (s.ok() && snapshot_done_ >= MoveNumber(plan, "messages")) {
    s = ReplaySource(plan, tenant, source_done_);
  }
  Report(plan, s.ok() ? "" : s.message());
  return s;
}

Status TenantMover::CheckTarget(const MoveFields& plan, const std::string& tenant) {
  auto txn = store::Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  const auto meta = env_.FindDbi(kMetaDatabase);
  for (const char* name : kMoveSharedMeta) {
    auto it = plan.find(std::string("meta_") + name);
    if (it == plan.end() || !meta) continue;
    auto mine = txn->Get(*meta, name);
    if (!mine.ok()) return mine.status();
    if (mine->has_value() && **mine != it->second) {
      return Status::InvalidArgument("move_mismatch",
                                     "the target's store has " + std::string(name) + " '" +
                                         std::string(**mine) + "', the source's '" + it->second +
                                         "': a tenant moves only between stores of the same kind");
    }
  }
  bool found = false;
  Status s = ForEachTenantRecord(*txn, env_, tenant,
                                 [&](std::string_view, std::string_view, std::string_view) {
                                   found = true;
                                   return Status::Ok();
                                 });
  if (found) {
    return Status(ErrorKind::kConflict, "tenant_exists",
                  "shard " + shard_ + " already holds records of tenant " + tenant +
                      ": a move goes to a shard where the tenant has nothing");
  }
  return s;
}

Status TenantMover::ApplySnapshot(const MoveFields& plan, const std::string& tenant,
                                  uint64_t done) {
  const uint64_t messages = MoveNumber(plan, "messages");
  if (done >= messages) return Status::Ok();
  if (!snapshot_) {
    LogOptions o = replicator_.log_options();
    o.shard = plan.at("stream");
    o.create = false;
    auto opened = JetStreamLog::Open(o);
    if (!opened.ok()) return opened.status();
    snapshot_ = std::move(*opened);
  }
  // A bounded slice a step, so the plan is read again (and the thread stops) in between; a
  // record in several messages (a vector block) is put together first. `done` is always the
  // end of a record.
  Reassembler parts;
  bool first = true;
  for (uint64_t seq = done + 1;
       seq <= messages && (seq <= done + 64 || parts.pending()) && !stop_.load(); ++seq) {
    auto data = snapshot_->Get(seq);
    if (!data.ok()) return data.status();
    auto part = ParsePart(*data);
    if (!part.ok()) return part.status();
    auto record = parts.Feed(*part);
    if (!record) continue;
    auto changes = DecodeChanges(*record);
    if (!changes.ok()) return changes.status();
    for (const auto& c : *changes) {
      if (c.op != store::Change::Op::kPut || !IsTenantKey(c.db, c.key, tenant)) {
        return Status::Internal("the move's snapshot holds a record that is not tenant " + tenant +
                                "'s");
      }
    }
    if (Status s = Write(tenant, *changes, MoveProgressMetaKey(kMoveSnapshotName, tenant), seq,
                         /*clear_mark=*/done == 0 && first, false);
        !s.ok()) {
      return s;
    }
    first = false;
    snapshot_done_ = seq;
  }
  return Status::Ok();
}

Status TenantMover::ReplaySource(const MoveFields& plan, const std::string& tenant, uint64_t done) {
  const uint64_t freeze = MoveNumber(plan, "freeze_seq");
  source_done_ = done;
  if (freeze > 0 && done >= freeze) {
    done_ = true;
    return Status::Ok();
  }
  if (!source_) {
    LogOptions o = replicator_.log_options();
    o.shard = plan.at("from");
    o.create = false;
    auto opened = JetStreamLog::Open(o);
    if (!opened.ok()) return opened.status();
    source_ = std::move(*opened);
  }
  // Read by sequence (a direct get each): a record's parts are consecutive, and where the
  // last step stopped is known exactly.
  auto last = source_->LastSeq();
  if (!last.ok()) return last.status();
  parts_ = Reassembler();
  // The tenant's changes of many records go into one write transaction (with the source
  // sequence they reach), so the target keeps up with a busy source.
  std::deque<std::string> records;  // stable: the changes below view them
  std::vector<DecodedChange> batch;
  size_t batch_bytes = 0;
  uint64_t batch_end = source_done_;
  auto flush = [&]() -> Status {
    if (batch_end == source_done_) return Status::Ok();
    if (!batch.empty()) {
      if (Status s = Write(tenant, batch, MoveProgressMetaKey(kMoveSourceName, tenant), batch_end,
                           false, false);
          !s.ok()) {
        return s;
      }
    }
    source_done_ = batch_end;
    batch.clear();
    records.clear();
    batch_bytes = 0;
    return Status::Ok();
  };
  for (uint64_t seq = done + 1; seq <= *last && seq <= done + 4096 && !stop_.load(); ++seq) {
    auto data = source_->Get(seq);
    if (!data.ok()) return data.status();
    auto part = ParsePart(*data);
    if (!part.ok()) return part.status();
    auto record = parts_.Feed(*part);
    if (record) {
      records.push_back(std::move(*record));
      auto changes = DecodeChanges(records.back());
      if (!changes.ok()) return changes.status();
      for (const auto& c : *changes) {
        if (c.op == store::Change::Op::kClear && c.db != Replicator::kDatabase) {
          return Status::Internal("the source's log empties database " + std::string(c.db) +
                                  " (a re-index) during the move: start the move again after it");
        }
        if (MovesWithTenant(c.db) && IsTenantKey(c.db, c.key, tenant)) {
          batch.push_back(c);
          batch_bytes += c.key.size() + c.value.size();
        }
      }
      batch_end = seq;
      if (batch_bytes >= kBatchBytes) {
        if (Status s = flush(); !s.ok()) return s;
      }
    }
    if (freeze > 0 && seq >= freeze) {
      if (parts_.pending()) break;
      // Everything of the tenant's before the mark is here: record where it ended.
      if (Status s = flush(); !s.ok()) return s;
      if (Status s = Write(tenant, {}, MoveProgressMetaKey(kMoveSourceName, tenant), source_done_,
                           false, /*drop_derived=*/true);
          !s.ok()) {
        return s;
      }
      done_ = true;
      LogInfo(
          "cluster", "a tenant moved into this shard",
          {{"tenant", tenant}, {"from", plan.at("from")}, {"up_to_seq", std::to_string(freeze)}});
      return Status::Ok();
    }
  }
  return flush();
}

Status TenantMover::DropProgress(const std::string& tenant) {
  const auto meta = env_.FindDbi(kMetaDatabase);
  if (!meta) return Status::Ok();
  auto txn = store::Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  for (std::string_view name : kMoveProgressNames) {
    if (Status s = txn->Del(*meta, MoveProgressMetaKey(name, tenant)); !s.ok()) return s;
  }
  return txn->Commit();
}

Status TenantMover::DropCopy(const std::string& tenant) {
  // In transactions of a few thousand keys, so that a large tenant's copy does not hold the
  // write lock long; the progress keys go last, so a crash half-way finds this move's copy
  // still to delete. Each pass stops reading at a batch's worth: what the last pass deleted is
  // gone, so the next one starts where it stopped (reading the whole copy each time made
  // dropping a large one quadratic).
  constexpr size_t kBatchKeys = 4096;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> keys;
    {
      auto txn = store::Txn::BeginRead(env_);
      if (!txn.ok()) return txn.status();
      Status s = ForEachTenantRecord(
          *txn, env_, tenant,
          [&](std::string_view db, std::string_view key, std::string_view) {
            keys.emplace_back(db, key);
            return keys.size() < kBatchKeys ? Status::Ok() : Status::Cancelled("a batch is full");
          },
          /*derived_too=*/true);
      if (!s.ok() && keys.size() < kBatchKeys) return s;
    }
    if (keys.empty()) break;
    auto txn = store::Txn::BeginWrite(env_);
    if (!txn.ok()) return txn.status();
    for (const auto& [db, key] : keys) {
      if (Status s = txn->Del(env_.Dbi(db), key); !s.ok()) return s;
    }
    if (Status s = txn->Commit(); !s.ok()) return s;
  }
  if (Status s = DropProgress(tenant); !s.ok()) return s;
  LogInfo("cluster", "a tenant move into this shard was called off: its copy is deleted",
          {{"tenant", tenant}, {"move", plan_id_}});
  return Status::Ok();
}

Status TenantMover::Write(const std::string& tenant, const std::vector<DecodedChange>& changes,
                          const std::string& progress_key, uint64_t progress, bool clear_mark,
                          bool drop_derived) {
  auto txn = store::Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  const auto meta = env_.FindDbi(kMetaDatabase);
  if (!meta) return Status::Internal("the store has no index_meta database");
  // A tenant that once moved away from this shard comes back: its old mark would refuse the
  // move's own writes.
  if (clear_mark) {
    if (Status s = txn->Del(*meta, MovingKey(tenant)); !s.ok()) return s;
  }
  if (Status s = ApplyChanges(*txn, env_, changes); !s.ok()) return s;
  // The plan's id with it: a later move of the same tenant into this shard starts afresh.
  if (Status s = txn->Put(*meta, progress_key, plan_id_ + " " + std::to_string(progress));
      !s.ok()) {
    return s;
  }
  if (drop_derived) {
    // The approximate index is not moved, and one this shard's builder made from part of the
    // tenant's rows would miss the rest: searches go exact until it is built again.
    // Only the ivf database's range of the tenant: this transaction holds the write lock.
    auto cur = store::Cursor::Open(*txn, env_.Dbi(kIvfDatabase));
    if (!cur.ok()) return cur.status();
    const std::string prefix = store::TenantPrefix(tenant);
    for (bool more = cur->SeekAtLeast(prefix); more && store::HasPrefix(cur->key(), prefix);) {
      if (Status s = cur->DelCurrent(); !s.ok()) return s;
      more = cur->SeekAtLeast(prefix);
    }
  }
  return txn->Commit();
}

Result<uint64_t> TenantMover::StoredProgress(const std::string& key, uint64_t absent) {
  auto txn = store::Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  const auto meta = env_.FindDbi(kMetaDatabase);
  if (!meta) return absent;
  auto v = txn->Get(*meta, key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return absent;
  // "<plan id> <sequence>": another move's progress (an earlier one) is not this one's.
  const std::string value(**v);
  const size_t space = value.find(' ');
  if (space == std::string::npos || value.substr(0, space) != plan_id_) return absent;
  return std::strtoull(value.c_str() + space + 1, nullptr, 10);
}

void TenantMover::Report(const MoveFields& plan, const std::string& error) {
  MoveFields progress{{"id", plan_id_},
                      {"tenant", plan.count("tenant") ? plan.at("tenant") : ""},
                      {"snapshot", std::to_string(snapshot_done_)},
                      {"source", std::to_string(source_done_)},
                      {"done", done_ ? "1" : "0"},
                      {"aborted", aborted_ ? "1" : "0"}};
  if (!error.empty()) progress["error"] = error;
  (void)control_->PutMoveKey(MoveProgressKey(shard_), FormatMoveFields(progress));
}

}  // namespace ragstream::cluster
