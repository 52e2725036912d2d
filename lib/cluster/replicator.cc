#include "lib/cluster/replicator.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <random>

#include "lib/cluster/change_codec.h"
#include "lib/cluster/tenant_keys.h"
#include "lib/core/log.h"

namespace ragstream::cluster {
namespace {

constexpr std::string_view kAppliedKey = "applied_seq";
// CatchUpInside looks at most this many messages past the applied sequence: an unfinished
// record is one transaction's parts, and a tenant move appends a few records; far fewer.
constexpr uint64_t kMaxUnfinishedParts = 1024;
constexpr int kReadWaitMs = 250;
constexpr auto kColdStartWait = std::chrono::seconds(30);

uint64_t RandomTxnId() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng();
}

Status Behind(std::string why) {
  return Status::Unavailable("log_behind",
                             "this host is catching up with its shard's log (" + why + "); retry");
}

}  // namespace

Result<uint64_t> ReadAppliedSeq(const store::Txn& txn, MDB_dbi dbi) {
  auto v = txn.Get(dbi, kAppliedKey);
  if (!v.ok()) return v.status();
  if (!v->has_value() || (*v)->size() != 8) return uint64_t{0};
  return store::DecodeBigEndian64(**v);
}

Result<std::unique_ptr<Replicator>> Replicator::Start(store::Env& env, ReplicatorOptions options) {
  if (!env.FindDbi(kDatabase)) {
    return Status::Internal("the store was opened without the replication database");
  }
  auto log = JetStreamLog::Open(options.log);
  if (!log.ok()) return log.status();
  std::unique_ptr<Replicator> r(new Replicator(env, std::move(options), std::move(*log)));
  Replicator* self = r.get();
  // Writes go through the log whenever they are allowed; until this host holds the shard's
  // lease they are not.
  env.set_commit_hook([self](store::Txn& txn, const std::vector<store::Change>& changes) {
    return self->Publish(txn, changes);
  });
  env.RefuseWrites(r->StandbyStatus());
  // Before the stores start: the log applied to its end, and, on the preferred primary, the
  // lease taken if nobody holds it, so that the start's own writes (the index's identity)
  // are made as primary.
  if (Status s = r->CatchUp(); !s.ok()) return s;
  r->CheckLease(/*starting=*/true);
  r->thread_ = std::thread([self] { self->Run(); });
  r->lease_thread_ = std::thread([self] { self->LeaseLoop(); });
  auto applied = r->Applied();
  LogInfo("cluster", "replicating through the shard's log",
          {{"shard", r->options_.log.shard},
           {"node", r->options_.node},
           {"prefers", r->options_.role == Role::kPrimary ? "primary" : "standby"},
           {"leader", r->leader_.load() ? "yes" : "no"},
           {"stream", r->log_->stream()},
           {"applied_seq", std::to_string(applied.ok() ? *applied : 0)}});
  return r;
}

Replicator::Replicator(store::Env& env, ReplicatorOptions options,
                       std::unique_ptr<JetStreamLog> log)
    : env_(env), options_(std::move(options)), log_(std::move(log)), dbi_(env.Dbi(kDatabase)) {}

Replicator::~Replicator() {
  {
    std::lock_guard lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  if (lease_thread_.joinable()) lease_thread_.join();
  if (thread_.joinable()) thread_.join();
}

Status Replicator::StandbyStatus() const {
  return Status::Unavailable("standby", "this host is a standby of shard " + options_.log.shard +
                                            ": it takes writes only from the shard's log; send "
                                            "them to the primary");
}

Status Replicator::CatchUp() {
  auto last = log_->LastSeq();
  if (!last.ok()) return last.status();
  auto applied = Applied();
  if (!applied.ok()) return applied.status();
  if (*applied >= *last) return Status::Ok();
  const auto started = std::chrono::steady_clock::now();
  Status s = ApplyFrom(*applied + 1, *last);  // to the end as it was
  LogInfo(
      "cluster", "caught up with the shard's log",
      {{"from_seq", std::to_string(*applied + 1)},
       {"to_seq", std::to_string(*last)},
       {"s",
        std::to_string(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count())}});
  return s;
}

void Replicator::SetLeader(bool leader, const std::string& why) {
  const bool was = leader_.exchange(leader);
  env_.RefuseWrites(leader ? Status::Ok() : StandbyStatus());
  if (was != leader) {
    LogInfo("cluster",
            leader ? "this host leads its shard: writes are taken"
                   : "this host does not lead its shard: writes are refused",
            {{"shard", options_.log.shard}, {"node", options_.node}, {"why", why}});
    if (leader) {
      std::lock_guard lock(on_lead_mu_);
      if (on_lead_) on_lead_();
    }
  }
}

void Replicator::CheckLease(bool starting) {
  auto lease = log_->GetLease();
  if (!lease.ok()) {
    // NATS unreachable: nothing is known; the log refuses writes meanwhile anyway.
    LogWarn("cluster", "cannot read the shard's lease", {{"error", lease.status().message()}});
    return;
  }
  if (*lease) seen_holder_ = true;
  if (*lease && (*lease)->holder == options_.node) {
    absent_since_ = {};
    if (holding_.load()) {
      auto renewed = log_->RenewLease(options_.node, (*lease)->revision);
      if (!renewed.ok()) {
        LogWarn("cluster", "could not renew the shard's lease",
                {{"error", renewed.status().message()}});
        if (renewed.status().kind() == ErrorKind::kConflict) {
          SetLeader(false, renewed.status().message());
        }
        return;
      }
    }
    SetLeader(true, "holds the lease");
    return;
  }
  if (*lease) {
    absent_since_ = {};
    SetLeader(false, "the lease is held by " + (*lease)->holder);
    return;
  }
  SetLeader(false, "nobody holds the lease");
  const auto now = std::chrono::steady_clock::now();
  if (absent_since_ == std::chrono::steady_clock::time_point{}) absent_since_ = now;
  // Who takes a free lease: at start, any process of the preferred primary; afterwards the
  // process that applies the log here, at once when a holder it saw let the lease lapse (the
  // primary died), and on a standby that never saw one only after kColdStartWait, so that at a
  // cold start the preferred primary -- the host nginx lists first -- gets it even when its
  // workers take a while to reach the log (a NATS cluster still creating the stream).
  const bool preferred = options_.role == Role::kPrimary;
  const bool waited = now - absent_since_ >= kColdStartWait;
  const bool may_take =
      (starting && preferred) || (holding_.load() && (preferred || seen_holder_ || waited));
  if (!may_take) return;
  // Only with the whole log applied: a write is only ever made on the log's latest state.
  if (!CaughtUp()) return;
  auto taken = log_->TakeLease(options_.node);
  if (!taken.ok()) {
    // Another process of this host may have taken it a moment before (the host's workers
    // start together): then this one leads too, now rather than at the next look.
    auto now = log_->GetLease();
    if (now.ok() && *now && (*now)->holder == options_.node) {
      absent_since_ = {};
      SetLeader(true, "this host took the lease");
      return;
    }
    LogInfo("cluster", "did not take the shard's lease", {{"why", taken.status().message()}});
    return;
  }
  absent_since_ = {};
  SetLeader(true, "took the lease");
}

bool Replicator::CaughtUp() {
  // What the applying thread (or the catch-up) has applied, against the log's end; an
  // unfinished record at the end is never applied, so progress is what counts.
  uint64_t seen = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    auto last = log_->LastSeq();
    auto applied = Applied();
    if (!last.ok() || !applied.ok()) return false;
    if (*applied >= *last) return true;
    if (*applied != seen) {
      seen = *applied;
    } else if (std::chrono::steady_clock::now() > give_up) {
      // Stuck below the end: only an unfinished record (the next write steps over it), or
      // nobody applying here: apply it now.
      return CatchUp().ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void Replicator::LeaseLoop() {
  const auto period = std::chrono::milliseconds(std::max(100, options_.log.lease_ms / 4));
  std::unique_lock lock(mu_);
  while (!wake_.wait_for(lock, period, [&] { return stop_.load(); })) {
    lock.unlock();
    CheckLease(/*starting=*/false);
    // How far this host has applied, for `ragstream cluster status` (from the process that
    // applies; best effort).
    if (holding_.load()) {
      if (auto applied = Applied(); applied.ok()) {
        (void)log_->ReportApplied(options_.node, *applied);
      }
    }
    lock.lock();
  }
}

std::string Replicator::MetricsText() {
  const std::string label = "{shard=\"" + options_.log.shard + "\"}";
  auto gauge = [&](const char* name, const char* help, const std::string& value) {
    return std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name +
           label + " " + value + "\n";
  };
  std::string out = gauge("ragstream_replication_leader",
                          "1 when this host holds its shard's lease and takes writes.",
                          leader_.load() ? "1" : "0");
  auto applied = Applied();
  if (applied.ok()) {
    out += gauge("ragstream_replication_applied_seq",
                 "The last sequence of the shard's log this host's store holds.",
                 std::to_string(*applied));
  }
  auto last = log_->LastSeq();
  if (last.ok()) {
    out += gauge("ragstream_replication_log_last_seq", "The last sequence of the shard's log.",
                 std::to_string(*last));
    if (applied.ok()) {
      out += gauge("ragstream_replication_lag_records",
                   "Records of the shard's log this host has not applied yet.",
                   std::to_string(*last > *applied ? *last - *applied : 0));
    }
  }
  return out;
}

Result<uint64_t> Replicator::Applied() const {
  auto txn = store::Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  return ReadAppliedSeq(*txn, dbi_);
}

Status Replicator::RefuseMovingTenants(const store::Txn& txn,
                                       const std::vector<store::Change>& changes) const {
  // A tenant moving away is marked in index_meta by the mover's record in this log; every
  // write after that record is made on a store that holds the mark, so checking here, in
  // the writing transaction, refuses all of them and none before.
  const auto meta = env_.FindDbi(kMetaDatabase);
  if (!meta) return Status::Ok();
  std::string_view checked;
  for (const auto& c : changes) {
    const std::string_view tenant = TenantOfKey(env_.DbName(c.dbi), c.key);
    if (tenant.empty() || tenant == checked) continue;
    checked = tenant;
    auto mark = txn.Get(*meta, MovingKey(tenant));
    if (!mark.ok()) return mark.status();
    if (mark->has_value()) {
      return Status::Unavailable("tenant_moving", "tenant " + std::string(tenant) +
                                                      " is moving to shard " + std::string(**mark) +
                                                      "; retry in a moment");
    }
  }
  return Status::Ok();
}

Status Replicator::Publish(store::Txn& txn, const std::vector<store::Change>& changes) {
  if (Status s = RefuseMovingTenants(txn, changes); !s.ok()) return s;
  auto applied = ReadAppliedSeq(txn, dbi_);
  if (!applied.ok()) return applied.status();
  const std::string record = EncodeChanges(env_, changes);
  const auto parts = FrameParts(RandomTxnId(), record, options_.max_part_bytes);
  uint64_t last = *applied;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto seq = log_->Append(parts[i], last);
    if (!seq.ok() && i == 0 && seq.status().kind() == ErrorKind::kConflict) {
      // Past what this store has: records another writer appended (a tenant move's mark and
      // deletions, from `ragstream cluster move`) are applied in this transaction, beneath
      // this write's changes; an unfinished record (a write that failed half-way) is stepped
      // over. This write then goes after them, instead of failing with log_behind.
      auto caught = CatchUpInside(txn, changes, record, last);
      if (!caught.ok()) return caught.status();
      seq = log_->Append(parts[i], *caught);
    }
    if (!seq.ok()) {
      LogWarn("cluster", "a write was not committed: the shard's log did not take it",
              {{"error", seq.status().message()},
               {"part", std::to_string(i + 1) + "/" + std::to_string(parts.size())}});
      if (seq.status().kind() == ErrorKind::kConflict) return Behind(seq.status().message());
      return seq.status();
    }
    last = *seq;
  }
  published_records_.fetch_add(1);
  return txn.PutUncaptured(dbi_, kAppliedKey, store::EncodeBigEndian64(last));
}

Result<uint64_t> Replicator::CatchUpInside(store::Txn& txn,
                                           const std::vector<store::Change>& changes,
                                           const std::string& own_record, uint64_t applied) {
  auto last = log_->LastSeq();
  if (!last.ok()) return last.status();
  if (*last <= applied) return Behind("the log is shorter than this store");
  if (*last - applied > kMaxUnfinishedParts) return Behind("records to apply");
  Reassembler parts;
  std::vector<std::string> records;
  for (uint64_t seq = applied + 1; seq <= *last; ++seq) {
    auto data = log_->Get(seq);
    if (!data.ok()) return data.status();
    auto part = ParsePart(*data);
    if (!part.ok()) return part.status();
    if (auto record = parts.Feed(*part)) records.push_back(std::move(*record));
  }
  if (records.empty()) {
    LogWarn("cluster", "stepped over an unfinished record in the shard's log",
            {{"from_seq", std::to_string(applied + 1)}, {"to_seq", std::to_string(*last)}});
    return *last;
  }
  // Records a primary elected meanwhile appended are what must stop this one (its lease is
  // gone): it answers log_behind, and its lease check turns it into a standby. Only while it
  // still holds the lease are they another writer's (the tenant mover's), to take in.
  auto lease = log_->GetLease();
  if (!lease.ok()) return lease.status();
  if (!*lease || (*lease)->holder != options_.node) {
    return Behind("records past this store's, and the shard's lease is not this host's");
  }
  // The log's order in the store: their changes, then this write's again on top (what they
  // overwrote of it is its own again). Neither is captured: this write's are published as they
  // were captured, and theirs are in the log already.
  struct Resume {
    store::Txn& txn;
    std::unique_ptr<std::vector<store::Change>> captured;
    ~Resume() { txn.ResumeCapture(std::move(captured)); }
  } resume{txn, txn.SuspendCapture()};
  auto apply = [&](const std::string& record) -> Status {
    auto decoded = DecodeChanges(record);
    if (!decoded.ok()) return decoded.status();
    return ApplyChanges(txn, env_, *decoded);
  };
  for (const std::string& record : records) {
    if (Status s = apply(record); !s.ok()) return s;
  }
  if (Status s = apply(own_record); !s.ok()) return s;
  // One of them may have marked a tenant of this write as moving away.
  if (Status s = RefuseMovingTenants(txn, changes); !s.ok()) return s;
  applied_records_.fetch_add(records.size());
  LogInfo("cluster", "applied records another writer appended to the shard's log, then this write",
          {{"records", std::to_string(records.size())}, {"to_seq", std::to_string(*last)}});
  return *last;
}

void Replicator::Run() {
  // One process per host applies; the others wait on the lock and take over if it exits.
  const int fd = ::open(options_.lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0640);
  if (fd < 0) {
    LogError("cluster", "cannot open the replication lock file", {{"path", options_.lock_path}});
    return;
  }
  while (!stop_.load()) {
    if (!holding_.load()) {
      if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kReadWaitMs));
        continue;
      }
      holding_.store(true);
    }
    auto applied = Applied();
    Status s = applied.ok() ? ApplyFrom(*applied + 1, 0) : applied.status();
    if (!s.ok() && !stop_.load()) {
      LogWarn("cluster", "applying the shard's log stopped; trying again",
              {{"error", s.message()}});
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  ::close(fd);  // releases the lock
}

Status Replicator::Apply(const std::vector<DecodedChange>& changes, uint64_t seq) {
  auto txn = store::Txn::BeginApply(env_);
  if (!txn.ok()) return txn.status();
  auto applied = ReadAppliedSeq(*txn, dbi_);
  if (!applied.ok()) return applied.status();
  if (*applied >= seq) return Status::Ok();  // another process applied it meanwhile
  if (Status s = ApplyChanges(*txn, env_, changes); !s.ok()) return s;
  if (Status s = txn->PutUncaptured(dbi_, kAppliedKey, store::EncodeBigEndian64(seq)); !s.ok()) {
    return s;
  }
  if (Status s = txn->Commit(); !s.ok()) return s;
  applied_records_.fetch_add(1);
  return Status::Ok();
}

Status Replicator::ApplyFrom(uint64_t from, uint64_t until) {
  auto reader = log_->Read(from);
  if (!reader.ok()) return reader.status();
  Reassembler parts;
  int idle = 0;
  while (!stop_.load()) {
    auto msg = (*reader)->Next(kReadWaitMs);
    if (!msg.ok()) return msg.status();
    if (!*msg) {
      // Catching up (until > 0): nothing more within a second: an unfinished record at the end.
      if (until > 0 && ++idle >= 4) return Status::Ok();
      continue;
    }
    idle = 0;
    if (Status s = ApplyMessage(parts, **msg); !s.ok()) return s;
    if (until > 0 && (*msg)->seq >= until) return Status::Ok();
  }
  return Status::Ok();
}

Status Replicator::ApplyMessage(Reassembler& parts, const LogMessage& msg) {
  auto part = ParsePart(msg.data);
  if (!part.ok()) return part.status();
  auto record = parts.Feed(*part);
  if (!record) return Status::Ok();
  // On the primary its own records are already in the store: a read finds that.
  auto seen = Applied();
  if (!seen.ok()) return seen.status();
  if (*seen >= msg.seq) return Status::Ok();
  auto changes = DecodeChanges(*record);
  if (!changes.ok()) return changes.status();
  Status s = Apply(*changes, msg.seq);
  if (s.kind() == ErrorKind::kStoreFull) {
    // A record larger than the map's headroom: grow by what it holds, then once more.
    if (Status grown = env_.Grow(2 * record->size()); !grown.ok()) return grown;
    s = Apply(*changes, msg.seq);
  }
  return s;
}

}  // namespace ragstream::cluster
