// An incremental Server-Sent Events parser (the WHATWG event-stream grammar): bytes may be
// split anywhere across Feed() calls, lines end in LF, CRLF or CR (a CR at the end of one
// chunk and the LF at the start of the next are one line end), ':' lines are comments,
// multiple data lines join with '\n', and an event is dispatched at a blank line.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace ragstream::llm {

struct SseEvent {
  std::string event;  // "" means the default "message"
  std::string data;
  std::string id;
};

class SseParser {
 public:
  using Handler = std::function<bool(const SseEvent&)>;  // false stops parsing

  // Parses `bytes`, calling `on_event` for each complete event. Returns false if a handler
  // returned false (the rest of `bytes` is dropped) or a line exceeded the size limit.
  bool Feed(std::string_view bytes, const Handler& on_event);
  // Number of comment lines seen (": keep-alive" and the like).
  size_t comments() const { return comments_; }
  // Bytes of an unfinished line or event waiting for more input.
  size_t buffered() const { return line_.size() + current_.data.size(); }

  static constexpr size_t kMaxLineBytes = 4 << 20;

 private:
  bool ProcessLine(std::string_view line, const Handler& on_event);

  std::string line_;
  SseEvent current_;
  bool has_data_ = false;
  bool skip_lf_ = false;  // the previous chunk ended with CR
  bool first_line_ = true;
  size_t comments_ = 0;
};

}  // namespace ragstream::llm
