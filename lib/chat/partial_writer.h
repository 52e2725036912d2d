// PartialWriter: saves the partial answers of every stream in the process together, one
// write transaction per interval, so N concurrent streams cost one fsync per interval rather
// than N. (Measured: with a synchronous write per stream every 500 ms, 1,000 streams on one
// worker put p99 relay delay at ~700-800 ms; batched, see docs/ and the closing note.)
//
// Thread-safe. A stream Submit()s a copy of its message; the writer keeps only the latest
// copy per message and commits the batch every `interval_ms`. The store skips any message
// that is no longer `streaming`, so a batch that races a final save never overwrites it.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "lib/store/conversation_store.h"

namespace ragstream::chat {

class PartialWriter {
 public:
  PartialWriter(store::ConversationStore& store, int interval_ms);
  // Flushes what is pending, then stops the writer thread.
  ~PartialWriter();
  PartialWriter(const PartialWriter&) = delete;
  PartialWriter& operator=(const PartialWriter&) = delete;

  // Queues `message` (copied) for the next batch, replacing an earlier queued copy.
  void Submit(const store::Message& message);
  // Drops a queued copy (called before the message's final save).
  void Forget(const std::string& message_id);
  // Writes the pending batch now, on the calling thread.
  Status Flush();

  int interval_ms() const { return interval_ms_; }

 private:
  void Loop();

  store::ConversationStore& store_;
  const int interval_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, store::Message> pending_;
  bool stopping_ = false;
  std::mutex flush_mu_;  // one batch at a time
  std::thread thread_;
};

}  // namespace ragstream::chat
