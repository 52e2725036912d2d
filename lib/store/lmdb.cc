#include "lib/store/lmdb.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "lib/core/log.h"

namespace ragstream::store {
namespace {

MDB_val Val(std::string_view s) {
  return {s.size(), const_cast<char*>(s.data())};
}

}  // namespace

Status MdbStatus(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::Ok();
  if (rc == MDB_MAP_FULL) {
    return Status::StoreFull(
        "the store is full (LMDB map size reached); raise "
        "RAGSTREAM_MAP_SIZE_MB and restart the workers");
  }
  return Status::Internal(std::string(what) + ": " + mdb_strerror(rc));
}

Result<std::unique_ptr<Env>> Env::Open(const Options& options, int* stale_readers) {
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return Status::Internal("cannot create data dir " + options.path + ": " + ec.message());

  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) return MdbStatus(rc, "mdb_env_create");
  std::unique_ptr<Env> env(new Env(raw));
  env->path_ = options.path;
  env->grow_step_bytes_ = options.grow_step_bytes;
  env->max_map_bytes_ = options.max_map_bytes;
  env->reserve_bytes_ = options.reserve_bytes;
  if (int rc = mdb_env_set_mapsize(raw, options.map_size_bytes); rc != 0) {
    return MdbStatus(rc, "mdb_env_set_mapsize");
  }
  if (int rc = mdb_env_set_maxdbs(raw, options.max_dbs); rc != 0) {
    return MdbStatus(rc, "mdb_env_set_maxdbs");
  }
  if (int rc = mdb_env_set_maxreaders(raw, options.max_readers); rc != 0) {
    return MdbStatus(rc, "mdb_env_set_maxreaders");
  }
  if (int rc = mdb_env_open(raw, options.path.c_str(), MDB_NOTLS, 0640); rc != 0) {
    return MdbStatus(rc, "mdb_env_open " + options.path);
  }
  int dead = 0;
  if (int rc = mdb_reader_check(raw, &dead); rc != 0) return MdbStatus(rc, "mdb_reader_check");
  if (stale_readers) *stale_readers = dead;
  if (auto gate = WriteGate::Open(options.path); gate.ok()) {
    env->gate_ = std::move(*gate);
    if (!env->gate_->has_slot()) {
      LogWarn("store",
              "every slot of the write gate is held: this process's answers are not "
              "put ahead of bulk writes");
    }
  } else {
    LogWarn("store", "no write gate: answers are not put ahead of bulk writes",
            {{"error", gate.status().ToString()}});
  }

  auto txn = Txn::BeginWrite(*env);
  if (!txn.ok()) return txn.status();
  for (const auto& name : options.databases) {
    MDB_dbi dbi;
    if (int rc = mdb_dbi_open(txn->raw(), name.c_str(), MDB_CREATE, &dbi); rc != 0) {
      return MdbStatus(rc, "mdb_dbi_open " + name);
    }
    env->dbis_.emplace_back(name, dbi);
  }
  if (Status s = txn->Commit(); !s.ok()) return s;
  return env;
}

Result<int> Env::ClearStaleReaders() const {
  int dead = 0;
  if (int rc = mdb_reader_check(env_, &dead); rc != 0) return MdbStatus(rc, "mdb_reader_check");
  return dead;
}

Env::~Env() {
  mdb_env_close(env_);
}

MDB_dbi Env::Dbi(std::string_view name) const {
  if (auto dbi = FindDbi(name)) return *dbi;
  std::abort();  // a database not declared at Open: a programming error
}

std::optional<MDB_dbi> Env::FindDbi(std::string_view name) const {
  for (const auto& [n, dbi] : dbis_) {
    if (n == name) return dbi;
  }
  return std::nullopt;
}

std::string_view Env::DbName(MDB_dbi dbi) const {
  for (const auto& [n, d] : dbis_) {
    if (d == dbi) return n;
  }
  return {};
}

void Env::RefuseWrites(Status why) {
  std::lock_guard lock(refused_mu_);
  refused_ = std::move(why);
  writes_refused_.store(!refused_.ok(), std::memory_order_release);
}

Status Env::WritesRefused() const {
  std::lock_guard lock(refused_mu_);
  return refused_;
}

Env::Usage Env::MapUsage() const {
  // mdb_env_info reads the meta pages inside the map: never while a resize remaps it.
  std::shared_lock guard(resize_mu_);
  return MapUsageUnlocked();
}

Env::Usage Env::MapUsageUnlocked() const {
  MDB_envinfo info;
  MDB_stat stat;
  Usage u;
  if (mdb_env_info(env_, &info) == 0 && mdb_env_stat(env_, &stat) == 0) {
    u.map_bytes = info.me_mapsize;
    u.used_bytes = static_cast<uint64_t>(info.me_last_pgno + 1) * stat.ms_psize;
  }
  return u;
}

namespace {
// How long a resize waits for the process's open transactions to end.
constexpr auto kResizeWait = std::chrono::seconds(2);
}  // namespace

uint64_t Env::MaxMapBytes(const Usage& u) const {
  if (grow_step_bytes_ == 0) return u.map_bytes;  // a fixed map
  if (max_map_bytes_ > 0) return max_map_bytes_;
  // As large as the disk allows: what the map holds now plus the free space, less a reserve.
  std::error_code ec;
  const auto space = std::filesystem::space(path_, ec);
  if (ec) return u.map_bytes;
  const uint64_t available =
      space.available > reserve_bytes_ ? space.available - reserve_bytes_ : 0;
  return std::max(u.map_bytes, u.used_bytes + available);
}

Env::Room Env::RoomLeft() const {
  const Usage u = MapUsage();
  Room room;
  room.free_bytes = u.free_bytes();
  room.max_bytes = MaxMapBytes(u);
  room.can_grow = grow_step_bytes_ > 0 && u.map_bytes < room.max_bytes;
  return room;
}

void Env::GrowIfNeeded() const {
  if (grow_step_bytes_ == 0) return;
  const Usage u = MapUsage();
  if (u.map_bytes == 0 || u.free_bytes() >= grow_step_bytes_ / 2) return;
  if (u.map_bytes >= MaxMapBytes(u)) return;
  (void)Grow();  // a failure leaves the map as it is: the write may still fit
}

Status Env::Grow(uint64_t need_bytes) const {
  if (grow_step_bytes_ == 0)
    return Status::StoreFull("the store is full and RAGSTREAM_MAP_GROW_MB is 0");
  std::unique_lock lock(resize_mu_, std::defer_lock);
  if (!lock.try_lock_for(kResizeWait)) {
    return Status::Unavailable("store_busy",
                               "the store could not be grown: transactions stayed open");
  }
  // Take any size another process set first, then look again: it may be enough.
  if (int rc = mdb_env_set_mapsize(env_, 0); rc != 0) return MdbStatus(rc, "mdb_env_set_mapsize");
  const Usage u = MapUsageUnlocked();
  if (u.free_bytes() >= std::max(need_bytes, grow_step_bytes_ / 2)) return Status::Ok();
  const uint64_t limit = MaxMapBytes(u);
  const uint64_t target = std::min(limit, std::max(u.map_bytes + grow_step_bytes_,
                                                   u.used_bytes + need_bytes + grow_step_bytes_));
  if (target <= u.map_bytes) {
    return Status::StoreFull("the store is full: the map is at its maximum of " +
                             std::to_string(limit >> 20) + " MB (RAGSTREAM_MAP_MAX_MB, free disk)");
  }
  if (int rc = mdb_env_set_mapsize(env_, target); rc != 0)
    return MdbStatus(rc, "mdb_env_set_mapsize");
  growths_.fetch_add(1);
  if (on_grow_) on_grow_();
  LogInfo("store", "grew the LMDB map",
          {{"from_mb", static_cast<int64_t>(u.map_bytes >> 20)},
           {"to_mb", static_cast<int64_t>(target >> 20)},
           {"used_mb", static_cast<int64_t>(u.used_bytes >> 20)},
           {"max_mb", static_cast<int64_t>(limit >> 20)}});
  return Status::Ok();
}

Status Env::AdoptResize() const {
  std::unique_lock lock(resize_mu_, std::defer_lock);
  if (!lock.try_lock_for(kResizeWait)) {
    return Status::Unavailable("store_resized",
                               "another process grew the store's map and this one could not "
                               "adopt it yet; retry");
  }
  if (int rc = mdb_env_set_mapsize(env_, 0); rc != 0) return MdbStatus(rc, "mdb_env_set_mapsize");
  LogInfo("store", "adopted the LMDB map size another process set",
          {{"map_mb", static_cast<int64_t>(MapUsageUnlocked().map_bytes >> 20)}});
  return Status::Ok();
}

Result<Txn> Txn::Begin(const Env& env, unsigned flags) {
  for (int attempt = 0;; ++attempt) {
    if (!(flags & MDB_RDONLY)) env.GrowIfNeeded();
    std::shared_lock guard(env.resize_mu_);
    MDB_txn* raw = nullptr;
    int rc = mdb_txn_begin(env.raw(), nullptr, flags, &raw);
    if (rc == MDB_MAP_RESIZED && attempt < 3) {
      // Another process grew the map: adopt its size (with no transaction of this process
      // open) and begin again.
      guard.unlock();
      if (Status s = env.AdoptResize(); !s.ok()) return s;
      continue;
    }
    if (rc != 0) return MdbStatus(rc, "mdb_txn_begin");
    return Txn(raw, std::move(guard));
  }
}

bool Env::AnswersWaitedWithin(std::chrono::milliseconds window) const {
  return gate_ && gate_->WaitedWithin(window);
}

Result<Txn> Txn::BeginWrite(const Env& env) {
  return BeginWriting(env, /*bulk=*/false);
}

Result<Txn> Txn::BeginBulkWrite(const Env& env) {
  return BeginWriting(env, /*bulk=*/true);
}

Result<Txn> Txn::BeginWriting(const Env& env, bool bulk) {
  if (env.writes_refused_.load(std::memory_order_acquire)) {
    if (Status why = env.WritesRefused(); !why.ok()) return why;
  }
  if (bulk && env.gate_) env.gate_->YieldToWaiting(kMaxBulkYield);
  const auto from = std::chrono::steady_clock::now();
  auto txn = [&] {
    WriteGate::Announce waiting(bulk ? nullptr : env.gate_.get());  // until the lock is held
    return Begin(env, 0);
  }();
  if (!bulk && env.gate_ && std::chrono::steady_clock::now() - from > kWaitedForLock) {
    env.gate_->NoteWaited();
  }
  if (txn.ok() && env.captures_changes()) {
    txn->env_ = &env;
    txn->changes_ = std::make_unique<std::vector<Change>>();
  }
  return txn;
}

Result<Txn> Txn::BeginApply(const Env& env) {
  return Begin(env, 0);
}

Status Txn::Commit() {
  // Cluster mode: the change goes to the log first; if it cannot, nothing is committed.
  Status logged =
      env_ && changes_ && !changes_->empty() ? env_->commit_hook_(*this, *changes_) : Status::Ok();
  MDB_txn* t = txn_;
  txn_ = nullptr;
  Status s = Status::Ok();
  if (logged.ok()) {
    s = MdbStatus(mdb_txn_commit(t), "mdb_txn_commit");
  } else {
    mdb_txn_abort(t);
    s = std::move(logged);
  }
  if (resize_guard_.owns_lock()) resize_guard_.unlock();
  return s;
}

Result<std::optional<std::string_view>> Txn::Get(MDB_dbi dbi, std::string_view key) const {
  // LMDB rejects an empty key (EINVAL); no entry can have one, so it is simply absent.
  if (key.empty()) return std::optional<std::string_view>();
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return MdbStatus(rc, "mdb_get");
  return std::optional<std::string_view>(
      std::string_view(static_cast<const char*>(v.mv_data), v.mv_size));
}

Status Txn::Put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = Val(key), v = Val(value);
  Status s = MdbStatus(mdb_put(txn_, dbi, &k, &v, flags), "mdb_put");
  if (s.ok() && changes_) {
    changes_->push_back({Change::Op::kPut, dbi, std::string(key), std::string(value)});
  }
  return s;
}

Status Txn::PutUncaptured(MDB_dbi dbi, std::string_view key, std::string_view value) {
  MDB_val k = Val(key), v = Val(value);
  return MdbStatus(mdb_put(txn_, dbi, &k, &v, 0), "mdb_put");
}

Status Txn::Clear(MDB_dbi dbi) {
  Status s = MdbStatus(mdb_drop(txn_, dbi, 0), "mdb_drop");
  if (s.ok() && changes_) changes_->push_back({Change::Op::kClear, dbi, {}, {}});
  return s;
}

Status Txn::Del(MDB_dbi dbi, std::string_view key) {
  if (key.empty()) return Status::Ok();
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::Ok();
  if (rc == 0 && changes_) changes_->push_back({Change::Op::kDel, dbi, std::string(key), {}});
  return MdbStatus(rc, "mdb_del");
}

Result<Cursor> Cursor::Open(const Txn& txn, MDB_dbi dbi) {
  MDB_cursor* cur = nullptr;
  if (int rc = mdb_cursor_open(txn.raw(), dbi, &cur); rc != 0) {
    return MdbStatus(rc, "mdb_cursor_open");
  }
  return Cursor(cur, txn.changes());
}

bool Cursor::Move(MDB_cursor_op op) {
  return mdb_cursor_get(cur_, &k_, &v_, op) == 0;
}

bool Cursor::SeekAtLeast(std::string_view key) {
  k_ = Val(key);
  return mdb_cursor_get(cur_, &k_, &v_, MDB_SET_RANGE) == 0;
}

bool Cursor::SeekAfter(std::string_view key) {
  if (key.empty()) return First();
  if (!SeekAtLeast(key)) return false;
  return this->key() == key ? Next() : true;
}

Status Cursor::DelCurrent() {
  std::string key;
  if (changes_) {
    MDB_val k{}, v{};
    if (int rc = mdb_cursor_get(cur_, &k, &v, MDB_GET_CURRENT); rc != 0) {
      return MdbStatus(rc, "mdb_cursor_get");
    }
    key.assign(static_cast<const char*>(k.mv_data), k.mv_size);
  }
  Status s = MdbStatus(mdb_cursor_del(cur_, 0), "mdb_cursor_del");
  if (s.ok() && changes_) {
    changes_->push_back({Change::Op::kDel, mdb_cursor_dbi(cur_), std::move(key), {}});
  }
  return s;
}

std::string EncodeBigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

uint64_t DecodeBigEndian64(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) {
    v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return v;
}

Result<uint64_t> ReadCounter(const Txn& txn, MDB_dbi dbi, std::string_view key) {
  auto raw = txn.Get(dbi, key);
  if (!raw.ok()) return raw.status();
  uint64_t value = 0;
  if (raw->has_value() && (*raw)->size() == sizeof value) {
    std::memcpy(&value, (*raw)->data(), sizeof value);
  }
  return value;
}

Status AddToCounter(Txn& txn, MDB_dbi dbi, std::string_view key, int64_t delta) {
  auto current = ReadCounter(txn, dbi, key);
  if (!current.ok()) return current.status();
  const uint64_t next =
      static_cast<uint64_t>(std::max<int64_t>(0, static_cast<int64_t>(*current) + delta));
  return txn.Put(dbi, key, std::string_view(reinterpret_cast<const char*>(&next), sizeof next));
}

}  // namespace ragstream::store
