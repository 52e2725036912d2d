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
// - The map grows online (Options::grow_step_bytes): a write transaction that would begin
//   with less than half a step free first grows the map by a step, up to the maximum. Both
//   growing and adopting another process's growth (MDB_MAP_RESIZED) need no transaction of
//   this process open, so every Txn holds a shared lock on the Env for its life and the
//   resize takes it exclusively (waiting at most a couple of seconds; a resize that cannot
//   get it is tried again by the next transaction).
// - MDB_MAP_FULL (at the maximum, or a write larger than the headroom): the write is
//   refused with StoreFull (HTTP 507) and the transaction aborted, so nothing is
//   half-written; the caller may Grow() and try again.
// - A value pointer returned by Get() lives only until its transaction ends: copy it, or use
//   it inside the transaction's scope.
// - In cluster mode (lib/cluster/replicator.h) every change a write transaction makes is
//   captured (Change) and handed to the Env's commit hook before the commit, which ships it
//   to the shard's log; a standby refuses every write but the log's (BeginApply). Every write
//   therefore goes through Txn::Put/Del/Clear or Cursor::DelCurrent, never raw mdb_* calls.
#pragma once

#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/write_gate.h"

namespace ragstream::store {

// Maps an LMDB return code to a Status (MDB_MAP_FULL -> StoreFull, others -> Internal).
Status MdbStatus(int rc, std::string_view what);

class Txn;

// One change of a write transaction, as captured for the replication log.
struct Change {
  enum class Op : uint8_t { kPut = 1, kDel = 2, kClear = 3 };  // kClear: every key of the db
  Op op = Op::kPut;
  MDB_dbi dbi = 0;
  std::string key, value;
};

class Env {
 public:
  struct Options {
    std::string path;
    uint64_t map_size_bytes = 1ull << 30;
    unsigned max_dbs = 64;
    unsigned max_readers = 4096;
    std::vector<std::string> databases;  // named databases created/opened at start
    // Online growth: the step (0: the map never grows) and the largest size (0: as large as
    // the data directory's free disk allows, less reserve_bytes).
    uint64_t grow_step_bytes = 0;
    uint64_t max_map_bytes = 0;
    uint64_t reserve_bytes = 1ull << 30;
  };
  // Called after each growth this process makes (for metrics); set once, before use.
  void set_on_grow(std::function<void()> f) { on_grow_ = std::move(f); }
  // Cluster mode: write transactions capture their changes, and Commit calls this with them
  // (holding the write lock) before it commits; an error aborts the transaction. Set once,
  // before use.
  using CommitHook = std::function<Status(Txn&, const std::vector<Change>&)>;
  void set_commit_hook(CommitHook hook) { commit_hook_ = std::move(hook); }
  bool captures_changes() const { return static_cast<bool>(commit_hook_); }
  // From now on BeginWrite fails with `why` (a standby, or a primary that lost its place in
  // the log); BeginApply still works. Ok() lets writes through again. Thread-safe.
  void RefuseWrites(Status why);
  Status WritesRefused() const;

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
  // The same without aborting: nullopt for a name not opened (a change from another version).
  std::optional<MDB_dbi> FindDbi(std::string_view name) const;
  // The name of an opened database ("" if none).
  std::string_view DbName(MDB_dbi dbi) const;
  // Every opened database, by name.
  const std::vector<std::pair<std::string, MDB_dbi>>& Dbis() const { return dbis_; }

  struct Usage {
    uint64_t map_bytes = 0;
    uint64_t used_bytes = 0;
    uint64_t free_bytes() const { return map_bytes - std::min(map_bytes, used_bytes); }
  };
  Usage MapUsage() const;

  // Grows the map by a step (at least `need_bytes` beyond what is used), up to the maximum,
  // with no transaction of this process open. Ok if it grew, or another thread or process
  // already did; StoreFull at the maximum; Unavailable if the process's transactions did not
  // end within the wait. Thread-safe.
  Status Grow(uint64_t need_bytes = 0) const;
  // What room is left: free bytes in the map as it is, the largest it may grow to, and
  // whether it still can (one look at the map and the disk).
  struct Room {
    uint64_t free_bytes = 0;
    uint64_t max_bytes = 0;
    bool can_grow = false;
  };
  Room RoomLeft() const;
  // Whether an ordinary write (an answer's, a question's: not a bulk one) waited for the write
  // lock within `window`, in any process of the host (WriteGate).
  bool AnswersWaitedWithin(std::chrono::milliseconds window) const;
  uint64_t growths() const { return growths_.load(); }

 private:
  friend class Txn;
  explicit Env(MDB_env* env) : env_(env) {}
  // Before a write transaction: grows if less than half a step is free.
  void GrowIfNeeded() const;
  // MDB_MAP_RESIZED: takes the size another process set.
  Status AdoptResize() const;
  // MapUsage without the shared lock (the caller holds the lock, either way).
  Usage MapUsageUnlocked() const;
  uint64_t MaxMapBytes(const Usage& u) const;

  MDB_env* env_;
  std::vector<std::pair<std::string, MDB_dbi>> dbis_;
  std::string path_;
  uint64_t grow_step_bytes_ = 0, max_map_bytes_ = 0, reserve_bytes_ = 0;
  mutable std::shared_timed_mutex resize_mu_;
  mutable std::atomic<uint64_t> growths_{0};
  std::function<void()> on_grow_;
  CommitHook commit_hook_;
  mutable std::mutex refused_mu_;
  Status refused_ = Status::Ok();
  std::atomic<bool> writes_refused_{false};
  std::unique_ptr<WriteGate> gate_;  // null if its file could not be made
};

class Txn {
 public:
  static Result<Txn> BeginRead(const Env& env) { return Begin(env, MDB_RDONLY); }
  static Result<Txn> BeginWrite(const Env& env);
  // A write no person is waiting on (ingestion's commits, background builds, sweeps): first
  // lets the ordinary writers that are waiting for the lock, in any process, go ahead
  // (WriteGate), for at most kMaxBulkYield; and it does not count as an answer that waited
  // (AnswersWaitedWithin). Keep each one short: a writer arriving during it still waits for
  // its commit.
  static Result<Txn> BeginBulkWrite(const Env& env);
  static constexpr std::chrono::milliseconds kMaxBulkYield{50};
  // An ordinary write that took longer than this to begin waited behind another write.
  static constexpr std::chrono::milliseconds kWaitedForLock{2};
  // A write transaction that applies the replication log: allowed while writes are refused,
  // and not captured (it is the log's change, not a new one).
  static Result<Txn> BeginApply(const Env& env);
  Txn(Txn&& other) noexcept
      : txn_(other.txn_),
        resize_guard_(std::move(other.resize_guard_)),
        env_(other.env_),
        changes_(std::move(other.changes_)) {
    other.txn_ = nullptr;
  }
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
  // Deletes every key of the database (mdb_drop without deleting the database).
  Status Clear(MDB_dbi dbi);
  // A Put that is not captured: the commit hook's own bookkeeping (the log position).
  Status PutUncaptured(MDB_dbi dbi, std::string_view key, std::string_view value);

  MDB_txn* raw() const { return txn_; }
  // The changes captured so far (null when this transaction does not capture).
  std::vector<Change>* changes() const { return changes_.get(); }
  // Stops capturing until the vector is handed back to ResumeCapture: the commit hook's own
  // writes (records of the log another writer appended, applied in this transaction).
  std::unique_ptr<std::vector<Change>> SuspendCapture() { return std::move(changes_); }
  void ResumeCapture(std::unique_ptr<std::vector<Change>> changes) {
    changes_ = std::move(changes);
  }

 private:
  static Result<Txn> Begin(const Env& env, unsigned flags);
  static Result<Txn> BeginWriting(const Env& env, bool bulk);
  Txn(MDB_txn* txn, std::shared_lock<std::shared_timed_mutex> guard)
      : txn_(txn), resize_guard_(std::move(guard)) {}
  MDB_txn* txn_;
  // Held while the transaction is open: the map is never resized under it.
  std::shared_lock<std::shared_timed_mutex> resize_guard_;
  const Env* env_ = nullptr;                      // set for a capturing write transaction
  std::unique_ptr<std::vector<Change>> changes_;  // what it changed, in order
};

class Cursor {
 public:
  static Result<Cursor> Open(const Txn& txn, MDB_dbi dbi);
  Cursor(Cursor&& other) noexcept : cur_(other.cur_), changes_(other.changes_) {
    other.cur_ = nullptr;
  }
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
  // The first entry with key > `key` (the first entry when `key` is empty): where a scan that
  // stopped at `key` resumes.
  bool SeekAfter(std::string_view key);
  Status DelCurrent();

  std::string_view key() const { return {static_cast<const char*>(k_.mv_data), k_.mv_size}; }
  std::string_view value() const { return {static_cast<const char*>(v_.mv_data), v_.mv_size}; }

 private:
  Cursor(MDB_cursor* cur, std::vector<Change>* changes) : cur_(cur), changes_(changes) {}
  bool Move(MDB_cursor_op op);
  MDB_cursor* cur_;
  std::vector<Change>* changes_ = nullptr;
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
