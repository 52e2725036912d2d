#include "lib/fcgi/sse_writer.h"

#include "lib/core/ids.h"

namespace ragstream::fcgi {

bool SseWriter::Sent(bool ok) {
  last_sent_ms_ = SteadyMillis();
  return ok;
}

bool SseWriter::Begin() {
  last_sent_ms_ = SteadyMillis();
  res_.SetStatus(200);
  res_.AddHeader("Content-Type", "text/event-stream; charset=utf-8");
  res_.AddHeader("Cache-Control", "no-cache");
  res_.AddHeader("X-Accel-Buffering", "no");
  if (framing_ == Framing::kOpenAi) return true;  // headers go out with the first event
  std::string hint = "retry: " + std::to_string(retry_ms_) + "\n\n";
  return Sent(res_.Write(hint) && res_.Flush());
}

bool SseWriter::Event(std::string_view data) {
  frame_.clear();
  if (framing_ == Framing::kNumbered) {
    frame_.append("id: ").append(std::to_string(next_id_++)).append("\n");
  }
  frame_.append("data: ").append(data).append("\n\n");
  return Sent(res_.Write(frame_) && res_.Flush());
}

bool SseWriter::Event(std::string_view name, std::string_view data) {
  frame_.clear();
  if (framing_ == Framing::kNumbered) {
    frame_.append("id: ").append(std::to_string(next_id_++)).append("\n");
  }
  frame_.append("event: ").append(name).append("\n");
  frame_.append("data: ").append(data).append("\n\n");
  return Sent(res_.Write(frame_) && res_.Flush());
}

bool SseWriter::Ping() {
  return Sent(res_.Write(": ping\n\n") && res_.Flush());
}

bool SseWriter::PingIfIdle(int interval_ms) {
  if (res_.ClientGone()) return false;
  if (SteadyMillis() - last_sent_ms_ < interval_ms) return true;
  return Ping();
}

}  // namespace ragstream::fcgi
