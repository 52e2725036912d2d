#include "lib/store/lmdb.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

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
  for (const auto& [n, dbi] : dbis_) {
    if (n == name) return dbi;
  }
  std::abort();  // a database not declared at Open: a programming error
}

Env::Usage Env::MapUsage() const {
  MDB_envinfo info;
  MDB_stat stat;
  Usage u;
  if (mdb_env_info(env_, &info) == 0 && mdb_env_stat(env_, &stat) == 0) {
    u.map_bytes = info.me_mapsize;
    u.used_bytes = static_cast<uint64_t>(info.me_last_pgno + 1) * stat.ms_psize;
  }
  return u;
}

Result<Txn> Txn::Begin(const Env& env, unsigned flags) {
  MDB_txn* raw = nullptr;
  int rc = mdb_txn_begin(env.raw(), nullptr, flags, &raw);
  if (rc == MDB_MAP_RESIZED) {
    // Another process grew the map. Adopting the new size (mdb_env_set_mapsize(env, 0)) is
    // only safe with no transaction open in this process, which a thread pool cannot promise,
    // so refuse clearly: the operator restarts this worker (as growing the map requires).
    return Status::Unavailable("store_resized",
                               "the store's map was grown by another process; restart this "
                               "worker to adopt the new RAGSTREAM_MAP_SIZE_MB");
  }
  if (rc != 0) return MdbStatus(rc, "mdb_txn_begin");
  return Txn(raw);
}

Status Txn::Commit() {
  MDB_txn* t = txn_;
  txn_ = nullptr;
  return MdbStatus(mdb_txn_commit(t), "mdb_txn_commit");
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
  return MdbStatus(mdb_put(txn_, dbi, &k, &v, flags), "mdb_put");
}

Status Txn::Del(MDB_dbi dbi, std::string_view key) {
  if (key.empty()) return Status::Ok();
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::Ok();
  return MdbStatus(rc, "mdb_del");
}

Result<Cursor> Cursor::Open(const Txn& txn, MDB_dbi dbi) {
  MDB_cursor* cur = nullptr;
  if (int rc = mdb_cursor_open(txn.raw(), dbi, &cur); rc != 0) {
    return MdbStatus(rc, "mdb_cursor_open");
  }
  return Cursor(cur);
}

bool Cursor::Move(MDB_cursor_op op) {
  return mdb_cursor_get(cur_, &k_, &v_, op) == 0;
}

bool Cursor::SeekAtLeast(std::string_view key) {
  k_ = Val(key);
  return mdb_cursor_get(cur_, &k_, &v_, MDB_SET_RANGE) == 0;
}

Status Cursor::DelCurrent() {
  return MdbStatus(mdb_cursor_del(cur_, 0), "mdb_cursor_del");
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
