// The output side of `ragstream ask`: takes the SSE events of an answer stream and prints
// the tokens to stdout as they arrive (flushed per token), then the sources and the
// conversation id on stderr; or, in JSON mode, every event as one JSON line on stdout.
#pragma once

#include <string>

#include <rapidjson/document.h>

#include "lib/llm/sse_parser.h"

namespace ragstream::cli {

class AnswerStream {
 public:
  explicit AnswerStream(bool json_lines) : json_lines_(json_lines) {}

  // Handles one event; false stops the stream (an event that is not the JSON expected).
  bool OnEvent(const llm::SseEvent& event);

  // Ends the answer after the transfer: prints what follows it and returns the exit code
  // (kExitOk only for a done event with status "complete"). `transfer_error` is curl's
  // reason when the body ended abnormally, or "".
  int Finish(const std::string& transfer_error);

  bool saw_events() const { return events_ > 0; }

 private:
  void PrintSources() const;

  bool json_lines_;
  size_t events_ = 0;
  bool saw_done_ = false;
  bool bad_event_ = false;
  bool printed_text_ = false;
  char last_char_ = '\n';
  std::string conversation_id_;
  rapidjson::Document done_;
};

}  // namespace ragstream::cli
