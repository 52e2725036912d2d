#include "lib/chat/partial_writer.h"

#include <chrono>
#include <vector>

#include "lib/core/log.h"

namespace ragstream::chat {

PartialWriter::PartialWriter(store::ConversationStore& store, int interval_ms)
    : store_(store), interval_ms_(interval_ms), thread_([this] { Loop(); }) {}

PartialWriter::~PartialWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  (void)Flush();
}

void PartialWriter::Submit(const store::Message& message) {
  std::lock_guard lock(mu_);
  pending_[message.id] = message;
}

void PartialWriter::Forget(const std::string& message_id) {
  std::lock_guard lock(mu_);
  pending_.erase(message_id);
}

Status PartialWriter::Flush() {
  std::lock_guard flush_lock(flush_mu_);
  std::vector<store::Message> batch;
  {
    std::lock_guard lock(mu_);
    batch.reserve(pending_.size());
    for (auto& [id, m] : pending_) batch.push_back(std::move(m));
    pending_.clear();
  }
  Status s = store_.SavePartials(batch);
  if (!s.ok()) {
    LogWarn("chat", "could not save partial answers",
            {{"messages", static_cast<int64_t>(batch.size())}, {"error", s.ToString()}});
  }
  return s;
}

void PartialWriter::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
    if (stopping_) break;
    if (pending_.empty()) continue;
    lock.unlock();
    (void)Flush();
    lock.lock();
  }
}

}  // namespace ragstream::chat
