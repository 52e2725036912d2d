#include "lib/llm/sse_parser.h"

namespace ragstream::llm {

bool SseParser::Feed(std::string_view bytes, const Handler& on_event) {
  size_t i = 0;
  if (skip_lf_ && !bytes.empty()) {
    if (bytes[0] == '\n') i = 1;
    skip_lf_ = false;
  }
  while (i < bytes.size()) {
    size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(i));
      if (line_.size() > kMaxLineBytes) return false;
      return true;
    }
    std::string_view piece = bytes.substr(i, end - i);
    bool ok;
    if (line_.empty()) {
      ok = ProcessLine(piece, on_event);
    } else {
      line_.append(piece);
      if (line_.size() > kMaxLineBytes) return false;
      ok = ProcessLine(line_, on_event);
      line_.clear();
    }
    i = end + 1;
    if (bytes[end] == '\r') {
      if (i < bytes.size()) {
        if (bytes[i] == '\n') ++i;
      } else {
        skip_lf_ = true;
      }
    }
    if (!ok) return false;
  }
  return true;
}

bool SseParser::ProcessLine(std::string_view line, const Handler& on_event) {
  if (line.size() > kMaxLineBytes) return false;
  if (first_line_) {
    first_line_ = false;
    if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // a leading BOM
  }
  if (line.empty()) {
    if (!has_data_) {
      current_.event.clear();
      return true;
    }
    has_data_ = false;
    bool keep_going = on_event(current_);
    current_.event.clear();
    current_.data.clear();
    return keep_going;
  }
  if (line[0] == ':') {
    ++comments_;
    return true;
  }
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) current_.data.push_back('\n');
    current_.data.append(value);
    has_data_ = true;
    if (current_.data.size() > kMaxLineBytes) return false;
  } else if (field == "event") {
    current_.event.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) current_.id.assign(value);
  }
  // "retry" and unknown fields are ignored, as the spec says.
  return true;
}

}  // namespace ragstream::llm
