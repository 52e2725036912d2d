// RAII wrappers over LMDB: one Env per process, short transactions, cursors.
//
// Caveats of the store, each with its remedy (see lmdb.h's own Caveats section):
// - One MDB_env per process, opened once, never across fork(): Env is created in main after
//   any fork and shared by all threads.
// - Threads come from a pool and a read transaction may not outlive its thread's use of it:
//   the env is opened with MDB_NOTLS, so reader slots belong to transactions, not threads,
//   and every Txn is aborted or committed in its destructor's scope.
// - A reader killed with kill -9 leaves a stale reader slot that pins old pages: Open() calls
//   mdb_reader_check() at start, and the worker's sweeper calls ClearStaleReaders() every
//   few seconds, so a killed neighbour's slots do not pin pages until the next restart.
// - Keep read transactions short (they pin pages) and never hold a write transaction across
//   a network wait (it blocks every other writer on the host).
// - MDB_MAP_FULL: the write is refused with StoreFull (HTTP 507) and the transaction aborted,
//   so nothing is half-written. Growing the map is RAGSTREAM_MAP_SIZE_MB and a restart.
// - MDB_MAP_RESIZED (another process grew the map): refused with 503 store_resized, since
//   adopting the size needs no open transaction in the process; restart the worker.
// - A value pointer returned by Get() lives only until its transaction ends: copy it, or use
//   it inside the transaction's scope.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

namespace ragstream::store {

// Maps an LMDB return code to a Status (MDB_MAP_FULL -> StoreFull, others -> Internal).
Status MdbStatus(int rc, std::string_view what);

class Env {
 public:
  struct Options {
    std::string path;
    uint64_t map_size_bytes = 1ull << 30;
    unsigned max_dbs = 64;
    unsigned max_readers = 4096;
    std::vector<std::string> databases;  // named databases created/opened at start
  };

  // Opens (creating the directory if needed) and opens every named database. Thread-safe
  // afterwards. Returns the number of stale readers cleared through `stale_readers`.
  static Result<std::unique_ptr<Env>> Open(const Options& options, int* stale_readers = nullptr);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* raw() const { return env_; }
  // mdb_reader_check: frees the reader slots of processes that died; returns how many.
  Result<int> ClearStaleReaders() const;
  // The handle of a database listed in Options::databases. Aborts on an unknown name
  // (a programming error).
  MDB_dbi Dbi(std::string_view name) const;

  struct Usage {
    uint64_t map_bytes = 0;
    uint64_t used_bytes = 0;
  };
  Usage MapUsage() const;

 private:
  explicit Env(MDB_env* env) : env_(env) {}
  MDB_env* env_;
  std::vector<std::pair<std::string, MDB_dbi>> dbis_;
};

class Txn {
 public:
  static Result<Txn> BeginRead(const Env& env) { return Begin(env, MDB_RDONLY); }
  static Result<Txn> BeginWrite(const Env& env) { return Begin(env, 0); }
  Txn(Txn&& other) noexcept : txn_(other.txn_) { other.txn_ = nullptr; }
  Txn& operator=(Txn&&) = delete;
  ~Txn() {
    if (txn_) mdb_txn_abort(txn_);
  }

  // Commits (durably, since the env is not opened with MDB_NOSYNC). The Txn is finished
  // either way.
  Status Commit();

  // The value at `key`, nullopt if absent. The view lives until this Txn ends.
  Result<std::optional<std::string_view>> Get(MDB_dbi dbi, std::string_view key) const;
  Status Put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  // Deleting an absent key is not an error.
  Status Del(MDB_dbi dbi, std::string_view key);

  MDB_txn* raw() const { return txn_; }

 private:
  static Result<Txn> Begin(const Env& env, unsigned flags);
  explicit Txn(MDB_txn* txn) : txn_(txn) {}
  MDB_txn* txn_;
};

class Cursor {
 public:
  static Result<Cursor> Open(const Txn& txn, MDB_dbi dbi);
  Cursor(Cursor&& other) noexcept : cur_(other.cur_) { other.cur_ = nullptr; }
  Cursor& operator=(Cursor&&) = delete;
  ~Cursor() {
    if (cur_) mdb_cursor_close(cur_);
  }

  // Positions the cursor; false when there is no such entry. key()/value() then view the
  // entry (valid until the transaction ends or the cursor moves).
  bool First() { return Move(MDB_FIRST); }
  bool Last() { return Move(MDB_LAST); }
  bool Next() { return Move(MDB_NEXT); }
  bool Prev() { return Move(MDB_PREV); }
  bool SeekAtLeast(std::string_view key);  // first entry with key >= `key`
  Status DelCurrent();

  std::string_view key() const { return {static_cast<const char*>(k_.mv_data), k_.mv_size}; }
  std::string_view value() const { return {static_cast<const char*>(v_.mv_data), v_.mv_size}; }

 private:
  explicit Cursor(MDB_cursor* cur) : cur_(cur) {}
  bool Move(MDB_cursor_op op);
  MDB_cursor* cur_;
  MDB_val k_{}, v_{};
};

// Big-endian encoding so that byte order equals numeric order in keys.
std::string EncodeBigEndian64(uint64_t v);
uint64_t DecodeBigEndian64(std::string_view bytes);

// Counters kept as values (native-endian u64; an absent key reads as 0).
Result<uint64_t> ReadCounter(const Txn& txn, MDB_dbi dbi, std::string_view key);
// Within `txn`: adds `delta` to the counter, which never goes below 0.
Status AddToCounter(Txn& txn, MDB_dbi dbi, std::string_view key, int64_t delta);

}  // namespace ragstream::store
