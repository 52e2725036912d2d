#include "lib/cluster/replicator.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <random>

#include "lib/cluster/change_codec.h"
#include "lib/core/log.h"

namespace ragstream::cluster {
namespace {

constexpr std::string_view kAppliedKey = "applied_seq";
// SkipUnfinished looks at most this many messages past the applied sequence: an unfinished
// record is one transaction's parts, far fewer.
constexpr uint64_t kMaxUnfinishedParts = 1024;
constexpr int kReadWaitMs = 250;

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
  if (r->options_.role == Role::kPrimary) {
    Replicator* self = r.get();
    env.set_commit_hook([self](store::Txn& txn, const std::vector<store::Change>& changes) {
      return self->Publish(txn, changes);
    });
  } else {
    env.RefuseWrites(Status::Unavailable(
        "standby", "this host is a standby of shard " + r->options_.log.shard +
                       ": it takes writes only from the shard's log; send them to the primary"));
  }
  r->thread_ = std::thread([self = r.get()] { self->Run(); });
  auto applied = r->Applied();
  LogInfo("cluster", "replicating through the shard's log",
          {{"shard", r->options_.log.shard},
           {"role", r->options_.role == Role::kPrimary ? "primary" : "standby"},
           {"stream", r->log_->stream()},
           {"applied_seq", std::to_string(applied.ok() ? *applied : 0)}});
  return r;
}

Replicator::Replicator(store::Env& env, ReplicatorOptions options,
                       std::unique_ptr<JetStreamLog> log)
    : env_(env), options_(std::move(options)), log_(std::move(log)), dbi_(env.Dbi(kDatabase)) {}

Replicator::~Replicator() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

Result<uint64_t> Replicator::Applied() const {
  auto txn = store::Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  return ReadAppliedSeq(*txn, dbi_);
}

Status Replicator::Publish(store::Txn& txn, const std::vector<store::Change>& changes) {
  auto applied = ReadAppliedSeq(txn, dbi_);
  if (!applied.ok()) return applied.status();
  const std::string record = EncodeChanges(env_, changes);
  const auto parts = FrameParts(RandomTxnId(), record, options_.max_part_bytes);
  uint64_t last = *applied;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto seq = log_->Append(parts[i], last);
    if (!seq.ok() && i == 0 && seq.status().kind() == ErrorKind::kConflict) {
      // Past what this store has: an unfinished record (a write that failed half-way) is
      // stepped over; anything else must be applied first.
      auto skip = SkipUnfinished(last);
      if (!skip.ok()) return skip.status();
      seq = log_->Append(parts[i], *skip);
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

Result<uint64_t> Replicator::SkipUnfinished(uint64_t applied) {
  auto last = log_->LastSeq();
  if (!last.ok()) return last.status();
  if (*last <= applied) return Behind("the log is shorter than this store");
  if (*last - applied > kMaxUnfinishedParts) return Behind("records to apply");
  Reassembler r;
  for (uint64_t seq = applied + 1; seq <= *last; ++seq) {
    auto data = log_->Get(seq);
    if (!data.ok()) return data.status();
    auto part = ParsePart(*data);
    if (!part.ok()) return part.status();
    if (r.Feed(*part)) return Behind("a record at sequence " + std::to_string(seq));
  }
  LogWarn("cluster", "stepped over an unfinished record in the shard's log",
          {{"from_seq", std::to_string(applied + 1)}, {"to_seq", std::to_string(*last)}});
  return *last;
}

void Replicator::Run() {
  // One process per host applies; the others wait on the lock and take over if it exits.
  const int fd = ::open(options_.lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0640);
  if (fd < 0) {
    LogError("cluster", "cannot open the replication lock file", {{"path", options_.lock_path}});
    return;
  }
  bool holding = false;
  while (!stop_.load()) {
    if (!holding) {
      if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kReadWaitMs));
        continue;
      }
      holding = true;
    }
    auto applied = Applied();
    Status s = applied.ok() ? ApplyFrom(*applied + 1) : applied.status();
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

Status Replicator::ApplyFrom(uint64_t from) {
  auto reader = log_->Read(from);
  if (!reader.ok()) return reader.status();
  Reassembler parts;
  while (!stop_.load()) {
    auto msg = (*reader)->Next(kReadWaitMs);
    if (!msg.ok()) return msg.status();
    if (!*msg) continue;
    auto part = ParsePart((*msg)->data);
    if (!part.ok()) return part.status();
    auto record = parts.Feed(*part);
    if (!record) continue;
    // On the primary its own records are already in the store: a read finds that.
    {
      auto seen = Applied();
      if (!seen.ok()) return seen.status();
      if (*seen >= (*msg)->seq) continue;
    }
    auto changes = DecodeChanges(*record);
    if (!changes.ok()) return changes.status();
    Status s = Apply(*changes, (*msg)->seq);
    if (s.kind() == ErrorKind::kStoreFull) {
      // A record larger than the map's headroom: grow by what it holds, then once more.
      if (Status grown = env_.Grow(2 * record->size()); !grown.ok()) return grown;
      s = Apply(*changes, (*msg)->seq);
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace ragstream::cluster
