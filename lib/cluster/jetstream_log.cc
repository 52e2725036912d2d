#include "lib/cluster/jetstream_log.h"

#include <nats/nats.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/config.h"

namespace ragstream::cluster {
namespace {

// JetStream's "wrong last sequence" (JSStreamWrongLastSequenceErr): the stream's last
// sequence is not the one the publish expected.
constexpr int kWrongLastSequence = 10071;
constexpr auto kStartWait = std::chrono::seconds(30);
constexpr const char* kLeaseBucket = "ragstream_leases";
constexpr const char* kMoveBucket = "ragstream_moves";

Status NatsError(natsStatus s, std::string_view what, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string msg = std::string(what) + ": " + natsStatus_GetText(s);
  if (jerr != 0) msg += " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")";
  return Status::Unavailable("log_unavailable", "the replication log (NATS JetStream): " + msg);
}

}  // namespace

Result<std::unique_ptr<JetStreamLog>> JetStreamLog::Open(const LogOptions& options) {
  std::unique_ptr<JetStreamLog> log(new JetStreamLog());
  log->options_ = options;
  log->stream_ = "RAGSTREAM_" + options.shard;
  log->subject_ = "ragstream.log." + options.shard;
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  // A comma-separated list: every server of the NATS cluster, tried in turn.
  const std::vector<std::string> urls = SplitList(options.urls);
  std::vector<const char*> servers;
  for (const auto& u : urls) servers.push_back(u.c_str());
  if (s == NATS_OK) {
    s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  }
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);  // for ever
  // While reconnecting, a publish fails at once instead of waiting in the client's buffer:
  // the write lock is not held for the timeout, and a write the client was told failed is
  // not sent later behind its back.
  if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts, 1);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, options.timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetName(opts, ("ragstream " + options.shard).c_str());
  if (s == NATS_OK) s = natsConnection_Connect(&log->nc_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK)
    return NatsError(s, "cannot connect to " + UrlsWithoutCredentials(options.urls));

  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options.timeout_ms;
  s = natsConnection_JetStream(&log->js_, log->nc_, &jo);
  if (s != NATS_OK) return NatsError(s, "no JetStream context");

  // A NATS cluster that is just starting has no JetStream leader for a while, and creating a
  // replicated stream takes seconds on a loaded machine: the lookup, the creation and the
  // wait for the stream's leader are tried again for up to kStartWait before the worker
  // gives up.
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const auto give_up = std::chrono::steady_clock::now() + kStartWait;
  for (;;) {
    jerr = static_cast<jsErrCode>(0);
    s = js_GetStreamInfo(&si, log->js_, log->stream_.c_str(), nullptr, &jerr);
    if (s == NATS_OK || s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr ||
        std::chrono::steady_clock::now() > give_up) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  if ((s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) && !options.create) {
    return Status::NotFound("the shard's log " + log->stream_ +
                            " does not exist (no host of shard " + options.shard +
                            " has started in cluster mode)");
  }
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[] = {log->subject_.c_str()};
    cfg.Name = log->stream_.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = options.replicas;
    for (;;) {
      jerr = static_cast<jsErrCode>(0);
      s = js_AddStream(&si, log->js_, &cfg, nullptr, &jerr);
      if (s == NATS_OK) break;
      // Another process created it meanwhile (the server says the name or the subject is
      // taken): fine if it is there now.
      jsErrCode again = static_cast<jsErrCode>(0);
      if (js_GetStreamInfo(&si, log->js_, log->stream_.c_str(), nullptr, &again) == NATS_OK) {
        s = NATS_OK;
        break;
      }
      if (std::chrono::steady_clock::now() > give_up) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (s != NATS_OK) return NatsError(s, "cannot create the stream " + log->stream_, jerr);
  } else if (s != NATS_OK) {
    return NatsError(s, "cannot look up the stream " + log->stream_, jerr);
  }
  // The leases' bucket: one for every shard, created by the first worker that needs it.
  log->lease_key_ = "shard_" + options.shard;
  for (;;) {
    s = js_KeyValue(&log->leases_, log->js_, kLeaseBucket);
    if (s == NATS_OK) break;
    if (!options.create) return NatsError(s, std::string("no lease bucket ") + kLeaseBucket);
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = kLeaseBucket;
    kc.History = 1;
    kc.TTL = static_cast<int64_t>(options.lease_ms) * 1000000;  // nanoseconds
    kc.Replicas = options.replicas;
    kc.StorageType = js_FileStorage;
    s = js_CreateKeyValue(&log->leases_, log->js_, &kc);
    if (s == NATS_OK) break;
    if (std::chrono::steady_clock::now() > give_up) {
      return NatsError(s, std::string("cannot create the lease bucket ") + kLeaseBucket);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }

  // A replicated stream takes writes once its Raft group has a leader.
  for (;;) {
    const bool led =
        si && (si->Cluster == nullptr || (si->Cluster->Leader && *si->Cluster->Leader));
    if (si) jsStreamInfo_Destroy(si);
    si = nullptr;
    if (led) break;
    if (std::chrono::steady_clock::now() > give_up) {
      return Status::Unavailable(
          "log_unavailable",
          "the replication log (NATS JetStream): the stream " + log->stream_ + " has no leader");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    jerr = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, log->js_, log->stream_.c_str(), nullptr, &jerr) != NATS_OK)
      si = nullptr;
  }
  return log;
}

JetStreamLog::~JetStreamLog() {
  if (leases_) kvStore_Destroy(leases_);
  if (moves_) kvStore_Destroy(moves_);
  if (js_) jsCtx_Destroy(js_);
  if (nc_) natsConnection_Destroy(nc_);
}

Result<uint64_t> JetStreamLog::Append(std::string_view data, uint64_t expect_last) {
  natsMsg* msg = nullptr;
  natsStatus s =
      natsMsg_Create(&msg, subject_.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return NatsError(s, "natsMsg_Create");
  // Set by hand rather than with jsPubOptions.ExpectLastSeq, which cannot say "empty" (0).
  s = natsMsgHeader_Set(msg, "Nats-Expected-Last-Sequence", std::to_string(expect_last).c_str());
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = options_.timeout_ms;
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (s == NATS_OK) s = js_PublishMsg(&ack, js_, msg, &po, &jerr);
  natsMsg_Destroy(msg);
  if (s != NATS_OK) {
    if (static_cast<int>(jerr) == kWrongLastSequence) {
      return Status(ErrorKind::kConflict, "log_moved_on",
                    "the replication log has moved on past sequence " +
                        std::to_string(expect_last) + ": another host wrote to this shard");
    }
    return NatsError(s, "publish", jerr);
  }
  const uint64_t seq = ack->Sequence;
  jsPubAck_Destroy(ack);
  return seq;
}

Result<uint64_t> JetStreamLog::LastSeq() {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, stream_.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return NatsError(s, "stream info", jerr);
  const uint64_t last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  return last;
}

Result<std::string> JetStreamLog::Get(uint64_t seq) {
  natsMsg* msg = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetMsg(&msg, js_, stream_.c_str(), seq, nullptr, &jerr);
  if (s != NATS_OK) return NatsError(s, "get message " + std::to_string(seq), jerr);
  std::string data(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
  natsMsg_Destroy(msg);
  return data;
}

Result<std::optional<Lease>> JetStreamLog::GetLease() {
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, leases_, lease_key_.c_str());
  if (s == NATS_NOT_FOUND) return std::optional<Lease>();
  if (s != NATS_OK) return NatsError(s, "read the lease");
  std::optional<Lease> out;
  if (kvEntry_Operation(e) == kvOp_Put) {
    out = Lease{std::string(static_cast<const char*>(kvEntry_Value(e)),
                            static_cast<size_t>(kvEntry_ValueLen(e))),
                kvEntry_Revision(e)};
  }
  kvEntry_Destroy(e);
  return out;
}

Result<uint64_t> JetStreamLog::TakeLease(const std::string& node) {
  uint64_t rev = 0;
  natsStatus s =
      kvStore_Create(&rev, leases_, lease_key_.c_str(), node.data(), static_cast<int>(node.size()));
  if (s == NATS_OK) return rev;
  auto now = GetLease();
  if (now.ok() && *now) {
    return Status(ErrorKind::kConflict, "lease_taken", "the lease is held by " + (*now)->holder);
  }
  return NatsError(s, "take the lease");
}

Result<uint64_t> JetStreamLog::RenewLease(const std::string& node, uint64_t revision) {
  uint64_t rev = 0;
  natsStatus s = kvStore_Update(&rev, leases_, lease_key_.c_str(), node.data(),
                                static_cast<int>(node.size()), revision);
  if (s == NATS_OK) return rev;
  auto now = GetLease();
  if (now.ok() && (!*now || (*now)->revision != revision)) {
    return Status(ErrorKind::kConflict, "lease_lost",
                  *now ? "the lease is now held by " + (*now)->holder : "the lease lapsed");
  }
  return NatsError(s, "renew the lease");
}

Status JetStreamLog::ReportApplied(const std::string& node, uint64_t applied) {
  uint64_t rev = 0;
  const std::string key = "applied_" + options_.shard + "_" + node;
  natsStatus s = kvStore_PutString(&rev, leases_, key.c_str(), std::to_string(applied).c_str());
  if (s != NATS_OK) return NatsError(s, "report the applied sequence");
  return Status::Ok();
}

Result<std::vector<JetStreamLog::HostReport>> JetStreamLog::HostReports() {
  kvKeysList keys{};
  natsStatus s = kvStore_Keys(&keys, leases_, nullptr);
  if (s == NATS_NOT_FOUND) return std::vector<HostReport>();
  if (s != NATS_OK) return NatsError(s, "list the host reports");
  const std::string prefix = "applied_" + options_.shard + "_";
  std::vector<HostReport> out;
  for (int i = 0; i < keys.Count; ++i) {
    const std::string key = keys.Keys[i];
    if (key.rfind(prefix, 0) != 0) continue;
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, leases_, key.c_str()) != NATS_OK) continue;
    if (kvEntry_Operation(e) == kvOp_Put) {
      out.push_back(
          {key.substr(prefix.size()), std::strtoull(kvEntry_ValueString(e), nullptr, 10)});
    }
    kvEntry_Destroy(e);
  }
  kvKeysList_Destroy(&keys);
  return out;
}

Status JetStreamLog::OpenMoves() {
  if (moves_) return Status::Ok();
  natsStatus s = js_KeyValue(&moves_, js_, kMoveBucket);
  if (s == NATS_OK) return Status::Ok();
  kvConfig kc;
  kvConfig_Init(&kc);
  kc.Bucket = kMoveBucket;
  kc.History = 1;
  kc.Replicas = options_.replicas;
  kc.StorageType = js_FileStorage;
  s = js_CreateKeyValue(&moves_, js_, &kc);
  // Another process may have created it meanwhile.
  if (s != NATS_OK) s = js_KeyValue(&moves_, js_, kMoveBucket);
  if (s != NATS_OK) return NatsError(s, std::string("cannot open the bucket ") + kMoveBucket);
  return Status::Ok();
}

Result<std::optional<std::string>> JetStreamLog::GetMoveKey(const std::string& key,
                                                            uint64_t* revision) {
  if (Status s = OpenMoves(); !s.ok()) return s;
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, moves_, key.c_str());
  if (s == NATS_NOT_FOUND) return std::optional<std::string>();
  if (s != NATS_OK) return NatsError(s, "read " + key);
  std::optional<std::string> out;
  if (kvEntry_Operation(e) == kvOp_Put) {
    out.emplace(static_cast<const char*>(kvEntry_Value(e)),
                static_cast<size_t>(kvEntry_ValueLen(e)));
    if (revision) *revision = kvEntry_Revision(e);
  }
  kvEntry_Destroy(e);
  return out;
}

Result<uint64_t> JetStreamLog::CreateMoveKey(const std::string& key, std::string_view value) {
  if (Status s = OpenMoves(); !s.ok()) return s;
  uint64_t rev = 0;
  natsStatus s =
      kvStore_Create(&rev, moves_, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s == NATS_OK) return rev;
  auto now = GetMoveKey(key);
  if (now.ok() && now->has_value()) {
    return Status(ErrorKind::kConflict, "move_exists", key + " is there already");
  }
  return NatsError(s, "create " + key);
}

Result<uint64_t> JetStreamLog::UpdateMoveKey(const std::string& key, std::string_view value,
                                             uint64_t revision) {
  if (Status s = OpenMoves(); !s.ok()) return s;
  uint64_t rev = 0;
  natsStatus s = kvStore_Update(&rev, moves_, key.c_str(), value.data(),
                                static_cast<int>(value.size()), revision);
  if (s == NATS_OK) return rev;
  uint64_t now_rev = 0;
  auto now = GetMoveKey(key, &now_rev);
  if (now.ok() && (!now->has_value() || now_rev != revision)) {
    return Status(ErrorKind::kConflict, "move_changed", key + " was changed by someone else");
  }
  return NatsError(s, "update " + key);
}

Result<std::vector<std::pair<std::string, std::string>>> JetStreamLog::MoveKeys(
    const std::string& prefix) {
  if (Status s = OpenMoves(); !s.ok()) return s;
  std::vector<std::pair<std::string, std::string>> out;
  kvKeysList keys{};
  natsStatus s = kvStore_Keys(&keys, moves_, nullptr);
  if (s == NATS_NOT_FOUND) return out;
  if (s != NATS_OK) return NatsError(s, "list the moves");
  for (int i = 0; i < keys.Count; ++i) {
    const std::string key = keys.Keys[i];
    if (key.rfind(prefix, 0) != 0) continue;
    auto v = GetMoveKey(key);
    if (v.ok() && v->has_value()) out.emplace_back(key, **v);
  }
  kvKeysList_Destroy(&keys);
  return out;
}

Status JetStreamLog::PutMoveKey(const std::string& key, std::string_view value) {
  if (Status s = OpenMoves(); !s.ok()) return s;
  uint64_t rev = 0;
  natsStatus s =
      kvStore_Put(&rev, moves_, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return NatsError(s, "write " + key);
  return Status::Ok();
}

Status JetStreamLog::DeleteMoveKey(const std::string& key) {
  if (Status s = OpenMoves(); !s.ok()) return s;
  natsStatus s = kvStore_Delete(moves_, key.c_str());
  if (s != NATS_OK && s != NATS_NOT_FOUND) return NatsError(s, "delete " + key);
  return Status::Ok();
}

Status JetStreamLog::DeleteStream() {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteStream(js_, stream_.c_str(), nullptr, &jerr);
  if (s != NATS_OK && s != NATS_NOT_FOUND) return NatsError(s, "delete " + stream_, jerr);
  return Status::Ok();
}

Result<std::vector<JetStreamLog::Copy>> JetStreamLog::Copies() {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, stream_.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return NatsError(s, "stream info", jerr);
  std::vector<Copy> out;
  if (si->Cluster) {
    if (si->Cluster->Leader) out.push_back({si->Cluster->Leader, true, true, false, 0});
    for (int i = 0; i < si->Cluster->ReplicasLen; ++i) {
      const jsPeerInfo* p = si->Cluster->Replicas[i];
      out.push_back({p->Name ? p->Name : "?", false, p->Current, p->Offline, p->Lag});
    }
  }
  jsStreamInfo_Destroy(si);
  return out;
}

Result<std::unique_ptr<JetStreamLog::Reader>> JetStreamLog::Read(uint64_t from) {
  std::unique_ptr<Reader> r(new Reader());
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream_.c_str();
  so.Ordered = true;  // the client re-creates the consumer at the right place after a gap
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = from < 1 ? 1 : from;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_SubscribeSync(&r->sub_, js_, subject_.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) return NatsError(s, "subscribe", jerr);
  return r;
}

JetStreamLog::Reader::~Reader() {
  if (sub_) natsSubscription_Destroy(sub_);
}

Result<std::optional<LogMessage>> JetStreamLog::Reader::Next(int timeout_ms) {
  natsMsg* msg = nullptr;
  natsStatus s = natsSubscription_NextMsg(&msg, sub_, timeout_ms);
  if (s == NATS_TIMEOUT) return std::optional<LogMessage>();
  if (s != NATS_OK) return NatsError(s, "read");
  jsMsgMetaData* meta = nullptr;
  s = natsMsg_GetMetaData(&meta, msg);
  if (s != NATS_OK) {
    natsMsg_Destroy(msg);
    return NatsError(s, "message metadata");
  }
  LogMessage out;
  out.seq = meta->Sequence.Stream;
  out.data.assign(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
  jsMsgMetaData_Destroy(meta);
  natsMsg_Destroy(msg);
  return std::optional<LogMessage>(std::move(out));
}

}  // namespace ragstream::cluster
