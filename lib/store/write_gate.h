// WriteGate: lets the writes a person waits for (a question, an answer's saves) go before
// bulk writes (ingestion, background index builds) at LMDB's one write lock, across all the
// processes that share a data directory.
//
// LMDB's write lock is a plain mutex, not a queue: when an ingest commit releases it, the
// next ingest commit (this process's or another worker's) often takes it again before a
// question that was waiting. So a question could wait for several ingest commits in a row.
// With the gate, an ordinary writer announces itself while it waits for the lock, and a bulk
// writer, before it begins a transaction, first lets every announced writer through (for at
// most `max_yield`, so that a steady stream of answers cannot stop an ingest). A question
// then waits for the commit in progress at most.
//
// The announcements live in a small shared file beside the store (`write_gate`), one slot per
// process: a process that dies while announced cannot leave the gate shut, since a slot whose
// process is gone is ignored and taken over.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "lib/core/status.h"

namespace ragstream::store {

class WriteGate {
 public:
  static constexpr int kSlots = 128;

  // Maps `dir`/write_gate (creating it) and claims a slot for this process. A gate whose file
  // cannot be made, or with every slot held by a live process, still works: this process's
  // writers are then not announced (they wait as they would without the gate).
  static Result<std::unique_ptr<WriteGate>> Open(const std::string& dir);
  ~WriteGate();
  WriteGate(const WriteGate&) = delete;
  WriteGate& operator=(const WriteGate&) = delete;

  // Announces an ordinary writer for its life (construct it before waiting for the lock,
  // destroy it once the lock is held).
  class Announce {
   public:
    explicit Announce(const WriteGate* gate);
    ~Announce();
    Announce(const Announce&) = delete;
    Announce& operator=(const Announce&) = delete;

   private:
    std::atomic<uint32_t>* count_ = nullptr;
  };

  // Whether an ordinary writer of a live process is waiting.
  bool AnyWaiting() const;
  // An ordinary writer says it waited for the lock (behind another write); and whether one
  // said so within `window` (in any process). Bulk writers keep their transactions short
  // while answers are waiting for theirs, and may make them larger when none are.
  void NoteWaited() const;
  bool WaitedWithin(std::chrono::milliseconds window) const;
  // Waits while AnyWaiting(), for at most `max_yield`; returns how long it waited.
  std::chrono::microseconds YieldToWaiting(std::chrono::microseconds max_yield) const;
  bool has_slot() const { return slot_ >= 0; }

 private:
  struct Shared;
  WriteGate(Shared* shared, int slot) : shared_(shared), slot_(slot) {}
  // A slot announced as waiting whose process is gone: cleared, so it is not waited for.
  bool Dead(int slot) const;

  Shared* shared_;
  int slot_;
};

}  // namespace ragstream::store
