// ragstream cluster move TENANT --to SHARD --cluster FILE [--data-dir DIR] [--nats URL]: moves a
// tenant to another shard under load (lib/cluster/tenant_mover.h has the whole protocol). Runs
// on a host of the tenant's shard, next to its store: the snapshot is read from it, and the
// source's log is written through NATS (never the store directly).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <thread>

#include "cli/cluster_file.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "lib/cluster/change_codec.h"
#include "lib/cluster/jetstream_log.h"
#include "lib/cluster/replicator.h"
#include "lib/cluster/tenant_keys.h"
#include "lib/cluster/tenant_mover.h"
#include "lib/core/tenant.h"
#include "lib/store/conversation_store.h"
#include "lib/store/document_store.h"

namespace ragstream::cli {
namespace {

using Clock = std::chrono::steady_clock;
// The tenant's records are batched into log records of about this much (a value larger than
// that, a vector block, is a record of its own); a record goes to the log in messages of at
// most kPartBytes (below NATS's default max_payload of 1 MB).
constexpr size_t kRecordBytes = 256 << 10;
constexpr size_t kPartBytes = 512 << 10;
// The write pause starts once the target is this close to the source's end.
constexpr uint64_t kCloseEnough = 64;

Status Failed(std::string code, std::string message) {
  return Status(ErrorKind::kInternal, std::move(code), std::move(message));
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// The source's store, opened with every database its workers use (they exist already:
// opening creates nothing), for reads only.
Result<std::unique_ptr<store::Env>> OpenSourceStore(const std::string& dir) {
  int shards = 0;
  {
    store::Env::Options probe;
    probe.path = dir;
    probe.databases = {"index_meta"};
    auto env = store::Env::Open(probe);
    if (!env.ok()) return env.status();
    auto txn = store::Txn::BeginRead(**env);
    if (!txn.ok()) return txn.status();
    auto v = txn->Get((*env)->Dbi("index_meta"), "shards");
    if (!v.ok()) return v.status();
    if (v->has_value()) shards = std::atoi(std::string(**v).c_str());
  }
  if (shards <= 0) {
    // A store whose identity was never recorded (written by a host that led only later, before
    // that was fixed): the worker's setting, as the workers opened it.
    const char* configured = std::getenv("RAGSTREAM_VECTOR_SHARDS");
    shards = configured && *configured ? std::atoi(configured) : 4;
  }
  if (shards <= 0) return Failed("no_store", dir + " holds no document index");
  store::Env::Options options;
  options.path = dir;
  options.databases = store::ConversationStore::Databases();
  options.databases.push_back(cluster::Replicator::kDatabase);
  for (auto& name : store::DocumentStore::Databases(shards)) {
    if (std::find(options.databases.begin(), options.databases.end(), name) ==
        options.databases.end()) {
      options.databases.push_back(name);
    }
  }
  options.max_dbs = static_cast<unsigned>(options.databases.size()) + 8;
  return store::Env::Open(options);
}

// Appends one record to a log whose other writers (the source's primary) append meanwhile: on
// what it holds now, retried on a conflict a little later each time. Such records are small
// (a mark, deletions of keys) and go whole in one message, never torn by another writer.
Result<uint64_t> AppendRecord(cluster::JetStreamLog& log, const std::string& record) {
  const auto parts = cluster::FrameParts(std::random_device{}(), record, kPartBytes);
  if (parts.size() != 1) return Failed("record_too_large", "a move record needs one message");
  for (int attempt = 0;; ++attempt) {
    auto last = log.LastSeq();
    if (!last.ok()) return last.status();
    auto seq = log.Append(parts[0], *last);
    if (seq.ok() || seq.status().kind() != ErrorKind::kConflict || attempt == 200) return seq;
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + 5 * (attempt % 10)));
  }
}

// Appends a record, in as many messages as it needs, to a log nobody else writes (the move's
// snapshot stream). The last sequence.
Result<uint64_t> AppendToOwnLog(cluster::JetStreamLog& log, const std::string& record) {
  auto last = log.LastSeq();
  if (!last.ok()) return last.status();
  uint64_t seq = *last;
  for (const auto& part : cluster::FrameParts(std::random_device{}(), record, kPartBytes)) {
    auto appended = log.Append(part, seq);
    if (!appended.ok()) return appended.status();
    seq = *appended;
  }
  return seq;
}

// The tenant's records as log records of about kRecordBytes, handed to `emit` as they are
// read: puts of what moves with it (the copy), or deletions of every record of it (at the
// source, its approximate index's too). `bytes` counts the keys and values.
Status ForTenantRecords(const store::Txn& txn, const store::Env& env, const std::string& tenant,
                        bool deletions, uint64_t* bytes,
                        const std::function<Status(const std::string& record)>& emit) {
  // Views into the map: the read transaction outlives the batch.
  std::vector<cluster::DecodedChange> batch;
  size_t size = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    Status s = emit(cluster::EncodeNamedChanges(batch));
    batch.clear();
    size = 0;
    return s;
  };
  Status s = cluster::ForEachTenantRecord(
      txn, env, tenant,
      [&](std::string_view db, std::string_view key, std::string_view value) -> Status {
        const size_t need = db.size() + key.size() + (deletions ? 0 : value.size()) + 16;
        if (size + need > kRecordBytes) {
          if (Status f = flush(); !f.ok()) return f;
        }
        *bytes += key.size() + value.size();
        batch.push_back({deletions ? store::Change::Op::kDel : store::Change::Op::kPut, db, key,
                         deletions ? std::string_view() : value});
        size += need;
        return Status::Ok();
      },
      /*derived_too=*/deletions);
  if (!s.ok()) return s;
  return flush();
}

Result<uint64_t> AppliedSeq(const store::Env& env) {
  auto txn = store::Txn::BeginRead(env);
  if (!txn.ok()) return txn.status();
  return cluster::ReadAppliedSeq(*txn, env.Dbi(cluster::Replicator::kDatabase));
}

// Waits for the target's progress report to satisfy `ready` (printing it now and then);
// an error it reports ends the wait.
Result<cluster::MoveFields> WaitForTarget(
    cluster::JetStreamLog& control, const std::string& to, const std::string& id, int timeout_s,
    const std::function<bool(const cluster::MoveFields&)>& ready, bool errors_end_wait = true) {
  const auto started = Clock::now();
  auto printed = started;
  for (;;) {
    auto raw = control.GetMoveKey(cluster::MoveProgressKey(to));
    if (!raw.ok()) return raw.status();
    if (raw->has_value()) {
      const cluster::MoveFields p = cluster::ParseMoveFields(**raw);
      if (p.count("id") && p.at("id") == id) {
        if (p.count("error") && errors_end_wait) {
          return Failed("move_failed", "shard " + to + ": " + p.at("error"));
        }
        if (ready(p)) return p;
        if (Seconds(printed) >= 2) {
          std::fprintf(stderr, "  target: snapshot %s, source log at %s\n",
                       p.count("snapshot") ? p.at("snapshot").c_str() : "?",
                       p.count("source") ? p.at("source").c_str() : "?");
          printed = Clock::now();
        }
      }
    }
    if (Seconds(started) > timeout_s) {
      return Failed("move_timeout", "shard " + to +
                                        " did not report the move's progress in time (is its "
                                        "primary running in cluster mode?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Once the routing points at the target: waits until the source's store (this host's) holds
// the mark, so that what it holds of the tenant is all there is, and appends the deletion of
// those records to the source's log. The number of records appended.
Result<uint64_t> DeleteAtSource(const store::Env& env, cluster::JetStreamLog& source,
                                const std::string& data_dir, const std::string& tenant,
                                uint64_t freeze, int timeout_s) {
  const auto started = Clock::now();
  for (;;) {
    auto applied = AppliedSeq(env);
    if (!applied.ok()) return applied.status();
    if (*applied >= freeze) break;
    if (Seconds(started) > timeout_s) {
      return Failed("move_timeout", data_dir + " did not apply the source's log");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto txn = store::Txn::BeginRead(env);
  if (!txn.ok()) return txn.status();
  uint64_t bytes = 0, records = 0;
  Status s = ForTenantRecords(*txn, env, tenant, true, &bytes, [&](const std::string& r) {
    auto seq = AppendRecord(source, r);
    ++records;
    return seq.ok() ? Status::Ok() : seq.status();
  });
  if (!s.ok()) return s;
  return records;
}

using OpenLog =
    std::function<Result<std::unique_ptr<cluster::JetStreamLog>>(const std::string&, bool)>;

// The plan, the progress and the snapshot's stream, once nothing needs them.
void CleanUp(cluster::JetStreamLog& control, const std::string& to, const std::string& stream,
             const OpenLog& open) {
  (void)control.DeleteMoveKey(cluster::MovePlanKey(to));
  (void)control.DeleteMoveKey(cluster::MoveProgressKey(to));
  if (auto snapshot = open(stream, false); snapshot.ok()) (void)(*snapshot)->DeleteStream();
}

// Routes the tenant to the target: the bucket's route (which cluster_agent.sh applies over the
// cluster file wherever it runs) and this host's cluster file.
Status Route(cluster::JetStreamLog& control, const std::string& cluster_path,
             const std::string& tenant, const std::string& to) {
  if (Status s = control.PutMoveKey(cluster::MoveRouteKey(tenant), to); !s.ok()) return s;
  return RouteTenant(cluster_path, tenant, to);
}

// The rest of a move once the target holds everything up to the mark: the routing (recorded in
// the plan first, against the revision read, so that a concurrent --abort and this cannot both
// win), the deletion at the source, the clean-up. Idempotent: a rerun does it again.
Result<uint64_t> RouteAndDelete(const store::Env& env, cluster::JetStreamLog& source,
                                cluster::JetStreamLog& target, cluster::MoveFields plan,
                                uint64_t revision, const std::string& cluster_path,
                                const std::string& data_dir, const std::string& to, int timeout_s,
                                const OpenLog& open) {
  const std::string tenant = plan.at("tenant");
  if (plan["routed"] != "1") {
    plan["routed"] = "1";
    auto updated =
        target.UpdateMoveKey(cluster::MovePlanKey(to), cluster::FormatMoveFields(plan), revision);
    if (!updated.ok()) return updated.status();
  }
  if (Status s = Route(target, cluster_path, tenant, to); !s.ok()) return s;
  auto deletions = DeleteAtSource(env, source, data_dir, tenant,
                                  cluster::MoveNumber(plan, "freeze_seq"), timeout_s);
  if (!deletions.ok()) return deletions.status();
  CleanUp(target, to, plan["stream"], open);
  return deletions;
}

// A move found under way (a run that stopped, or one still running):
// - past the mark (its freeze sequence is in the plan): every step left is idempotent, so this
//   run finishes it: waits for the target, routes, deletes at the source;
// - --abort, before the routing: the plan says so first (against its revision), then the mark
//   is lifted (the tenant's writes resume at the source, which still holds everything), the
//   target deletes what it copied, and the plan goes;
// - otherwise it is refused: it may still be running elsewhere.
int FinishOrAbort(const store::Env& env, cluster::JetStreamLog& source,
                  cluster::JetStreamLog& target, const cluster::MoveFields& plan, uint64_t revision,
                  const std::string& cluster_path, const std::string& data_dir,
                  const std::string& to, bool abort, int timeout_s, const OpenLog& open) {
  const std::string tenant = plan.at("tenant");
  const std::string from = plan.count("from") ? plan.at("from") : "?";
  const bool routed = plan.count("routed") && plan.at("routed") == "1";
  const uint64_t freeze = cluster::MoveNumber(plan, "freeze_seq");
  if (!abort) {
    if (freeze == 0) {
      return PrintFailure(
          Failed("move_under_way", "a move of tenant " + tenant + " into shard " + to +
                                       " is under way (another run?): wait for it, or call it "
                                       "off with --abort"));
    }
    if (!routed) {
      auto done = WaitForTarget(
          target, to, plan.at("id"), timeout_s,
          [&](const cluster::MoveFields& p) { return p.count("done") && p.at("done") == "1"; },
          /*errors_end_wait=*/false);
      if (!done.ok()) return PrintFailure(done.status());
    }
    auto deletions = RouteAndDelete(env, source, target, plan, revision, cluster_path, data_dir, to,
                                    timeout_s, open);
    if (!deletions.ok()) return PrintFailure(deletions.status());
    std::printf("finished moving tenant %s to shard %s: deleted from shard %s in %llu records\n",
                tenant.c_str(), to.c_str(), from.c_str(),
                static_cast<unsigned long long>(*deletions));
    return kExitOk;
  }
  if (routed) {
    return PrintFailure(
        Failed("move_switched", "tenant " + tenant + " is routed to " + to +
                                    " already: too late to call the move off; run it again "
                                    "without --abort to finish it"));
  }
  cluster::MoveFields aborting = plan;
  aborting["abort"] = "1";
  auto updated =
      target.UpdateMoveKey(cluster::MovePlanKey(to), cluster::FormatMoveFields(aborting), revision);
  if (!updated.ok()) return PrintFailure(updated.status());
  // The mark may be there even if the plan does not name it (a run stopped in between).
  auto lifted = AppendRecord(
      source,
      cluster::EncodeNamedChanges(
          {{store::Change::Op::kDel, cluster::kMetaDatabase, cluster::MovingKey(tenant), {}}}));
  if (!lifted.ok()) return PrintFailure(lifted.status());
  auto dropped = WaitForTarget(
      target, to, plan.at("id"), timeout_s,
      [](const cluster::MoveFields& p) { return p.count("aborted") && p.at("aborted") == "1"; },
      /*errors_end_wait=*/false);
  if (!dropped.ok()) return PrintFailure(dropped.status());
  CleanUp(target, to, plan.count("stream") ? plan.at("stream") : "", open);
  std::printf(
      "called off moving tenant %s to shard %s: it stays on shard %s, which takes its "
      "writes again; shard %s deleted its copy\n",
      tenant.c_str(), to.c_str(), from.c_str(), to.c_str());
  return kExitOk;
}

}  // namespace

int RunClusterMove(const Context& ctx) {
  const std::string tenant = ctx.args.positional.at(0);
  if (!ValidTenantName(tenant)) {
    return UsageError(ctx, "a tenant name is 1-64 of A-Z a-z 0-9 . _ -");
  }
  if (!ctx.args.Get("--to")) return UsageError(ctx, "--to SHARD is required");
  if (!ctx.args.Get("--cluster")) return UsageError(ctx, "--cluster FILE is required");
  const std::string to = *ctx.args.Get("--to");
  const std::string cluster_path = *ctx.args.Get("--cluster");
  const int timeout_s = std::atoi(ctx.args.Get("--timeout").value_or("600").c_str());
  const bool abort = ctx.args.Has("--abort");
  const auto file = ReadClusterFile(cluster_path);
  if (!file.ok()) return PrintFailure(file.status());
  if (std::find(file->shards.begin(), file->shards.end(), to) == file->shards.end()) {
    return PrintFailure(Failed("unknown_shard", cluster_path + " has no shard " + to));
  }
  const char* env_dir = std::getenv("RAGSTREAM_DATA_DIR");
  const std::string data_dir =
      ctx.args.Get("--data-dir")
          .value_or(env_dir && *env_dir ? std::string(env_dir) : std::string("./ragstream-data"));
  const char* env_replicas = std::getenv("RAGSTREAM_LOG_REPLICAS");
  cluster::LogOptions base;
  base.urls = NatsUrls(ctx);
  base.replicas = env_replicas && *env_replicas ? std::atoi(env_replicas) : 3;
  base.create = false;
  const OpenLog open = [&](const std::string& shard, bool create) {
    cluster::LogOptions o = base;
    o.shard = shard;
    o.create = create;
    return cluster::JetStreamLog::Open(o);
  };
  auto target = open(to, false);
  if (!target.ok()) return PrintFailure(target.status());
  uint64_t revision = 0;
  auto existing = (*target)->GetMoveKey(cluster::MovePlanKey(to), &revision);
  if (!existing.ok()) return PrintFailure(existing.status());
  cluster::MoveFields found;
  if (existing->has_value()) {
    found = cluster::ParseMoveFields(**existing);
    const std::string planned = found.count("tenant") ? found.at("tenant") : "?";
    if (planned != tenant) {
      return PrintFailure(Failed("move_under_way", "tenant " + planned + " is moving into shard " +
                                                       to + "; one move into a shard at a time"));
    }
  } else if (abort) {
    return PrintFailure(
        Failed("no_move", "no move of tenant " + tenant + " into shard " + to + " is under way"));
  }
  // The tenant's shard: the plan's, else the bucket's route (a tenant moved before), else the
  // cluster file's.
  std::string from = found.count("from") ? found.at("from") : "";
  if (from.empty()) {
    auto routed = (*target)->GetMoveKey(cluster::MoveRouteKey(tenant));
    if (!routed.ok()) return PrintFailure(routed.status());
    from = routed->has_value() ? **routed : file->ShardOf(tenant);
  }
  if (from == to && found.empty()) {
    return PrintFailure(Failed("same_shard", "tenant " + tenant + " is on shard " + to));
  }
  auto env = OpenSourceStore(data_dir);
  if (!env.ok()) return PrintFailure(env.status());
  auto source = open(from, false);
  if (!source.ok()) return PrintFailure(source.status());
  if (!found.empty()) {
    return FinishOrAbort(**env, **source, **target, found, revision, cluster_path, data_dir, to,
                         abort, timeout_s, open);
  }
  const auto started = Clock::now();

  // 1. The snapshot: one read transaction of the source's store, and the log sequence it holds,
  //    streamed into the move's own stream; then the plan, created only if there is none.
  const std::string id = std::to_string(std::random_device{}());
  std::string stream = "move-" + tenant + "-" + id;
  for (char& c : stream) {
    if (c == '.') c = '_';  // a stream name has no dots
  }
  cluster::MoveFields plan{{"id", id}, {"tenant", tenant}, {"from", from}, {"stream", stream}};
  uint64_t bytes = 0, messages = 0;
  {
    auto txn = store::Txn::BeginRead(**env);
    if (!txn.ok()) return PrintFailure(txn.status());
    auto applied = cluster::ReadAppliedSeq(*txn, (*env)->Dbi(cluster::Replicator::kDatabase));
    if (!applied.ok()) return PrintFailure(applied.status());
    if (*applied == 0) {
      return PrintFailure(Failed("not_replicated", data_dir +
                                                       " holds no shard log (is it a host "
                                                       "of shard " +
                                                       from + "?)"));
    }
    plan["snapshot_seq"] = std::to_string(*applied);
    for (const char* name : cluster::kMoveSharedMeta) {
      auto v = txn->Get((*env)->Dbi("index_meta"), name);
      if (!v.ok()) return PrintFailure(v.status());
      if (v->has_value()) plan[std::string("meta_") + name] = std::string(**v);
    }
    auto snapshot = open(stream, true);
    if (!snapshot.ok()) return PrintFailure(snapshot.status());
    Status s = ForTenantRecords(*txn, **env, tenant, false, &bytes, [&](const std::string& r) {
      auto seq = AppendToOwnLog(**snapshot, r);
      if (seq.ok()) messages = *seq;
      return seq.ok() ? Status::Ok() : seq.status();
    });
    if (!s.ok() || messages == 0) {
      (void)(*snapshot)->DeleteStream();
      if (!s.ok()) return PrintFailure(s);
      return PrintFailure(Failed("nothing_to_move", "shard " + from + " holds nothing of tenant " +
                                                        tenant + " (in " + data_dir + ")"));
    }
  }
  plan["messages"] = std::to_string(messages);
  plan["freeze_seq"] = "0";
  auto created =
      (*target)->CreateMoveKey(cluster::MovePlanKey(to), cluster::FormatMoveFields(plan));
  if (!created.ok()) {
    if (auto snapshot = open(stream, false); snapshot.ok()) (void)(*snapshot)->DeleteStream();
    return PrintFailure(created.status());
  }
  revision = *created;
  std::printf(
      "moving tenant %s from shard %s to %s: snapshot of %llu bytes at log sequence %s "
      "in %llu messages (%.1f s)\n",
      tenant.c_str(), from.c_str(), to.c_str(), static_cast<unsigned long long>(bytes),
      plan["snapshot_seq"].c_str(), static_cast<unsigned long long>(messages), Seconds(started));
  std::fflush(stdout);

  // 2. The target applies the snapshot and follows the source's log; close to its end, the
  //    tenant's writes on the source stop (the mark), and the target catches up to the mark.
  auto caught = WaitForTarget(**target, to, id, timeout_s, [&](const cluster::MoveFields& p) {
    if (cluster::MoveNumber(p, "snapshot") < messages) return false;
    auto last = (*source)->LastSeq();
    return last.ok() && cluster::MoveNumber(p, "source") + kCloseEnough >= *last;
  });
  if (!caught.ok()) return PrintFailure(caught.status());
  const auto paused = Clock::now();
  const std::string mark = cluster::EncodeNamedChanges(
      {{store::Change::Op::kPut, cluster::kMetaDatabase, cluster::MovingKey(tenant), to}});
  auto freeze = AppendRecord(**source, mark);
  if (!freeze.ok()) return PrintFailure(freeze.status());
  plan["freeze_seq"] = std::to_string(*freeze);
  auto updated =
      (*target)->UpdateMoveKey(cluster::MovePlanKey(to), cluster::FormatMoveFields(plan), revision);
  if (!updated.ok()) return PrintFailure(updated.status());  // called off meanwhile
  revision = *updated;
  // From the mark on, every step is idempotent: a failure below is finished by a rerun, and
  // an error the target reports meanwhile (NATS unreachable a moment) is waited out.
  auto done = WaitForTarget(
      **target, to, id, timeout_s,
      [&](const cluster::MoveFields& p) {
        return p.count("done") && p.at("done") == "1" &&
               cluster::MoveNumber(p, "source") >= *freeze - 1;
      },
      /*errors_end_wait=*/false);
  if (!done.ok()) return PrintFailure(done.status());
  const double pause_s = Seconds(paused);

  // 3. The routing, then the source's copy.
  auto deletions = RouteAndDelete(**env, **source, **target, plan, revision, cluster_path, data_dir,
                                  to, timeout_s, open);
  if (!deletions.ok()) return PrintFailure(deletions.status());
  const double copy_s = Seconds(started);
  std::printf(
      "moved tenant %s to shard %s: %llu bytes in %.1f s (%.1f MB/s), writes paused "
      "%.2f s; routed to %s (the bucket's route, and %s: cluster_agent.sh applies it); "
      "deleted from shard %s in %llu records\n",
      tenant.c_str(), to.c_str(), static_cast<unsigned long long>(bytes), copy_s,
      static_cast<double>(bytes) / 1e6 / std::max(copy_s, 1e-3), pause_s, to.c_str(),
      cluster_path.c_str(), from.c_str(), static_cast<unsigned long long>(*deletions));
  return kExitOk;
}

}  // namespace ragstream::cli
