#include "lib/fcgi/sse_writer.h"

namespace ragstream::fcgi {

bool SseWriter::Begin() {
  res_.SetStatus(200);
  res_.AddHeader("Content-Type", "text/event-stream; charset=utf-8");
  res_.AddHeader("Cache-Control", "no-cache");
  res_.AddHeader("X-Accel-Buffering", "no");
  std::string hint = "retry: " + std::to_string(retry_ms_) + "\n\n";
  return res_.Write(hint) && res_.Flush();
}

bool SseWriter::Event(std::string_view data) {
  frame_.clear();
  frame_.append("id: ").append(std::to_string(next_id_++)).append("\ndata: ");
  frame_.append(data).append("\n\n");
  return res_.Write(frame_) && res_.Flush();
}

bool SseWriter::Ping() {
  return res_.Write(": ping\n\n") && res_.Flush();
}

}  // namespace ragstream::fcgi
