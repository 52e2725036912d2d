// The OpenAI-compatible chat client: POST {base}/chat/completions with stream: true and
// stream_options.include_usage, parsed incrementally as it arrives.
//
// - Each thread keeps its own curl easy + multi handle (thread_local, one RAII owner), so
//   the connection to the upstream stays warm across requests served by that thread.
// - The transfer is driven with curl_multi_poll in 100 ms slices, so callbacks can cancel it
//   promptly (a departed client stops the upstream call within a second).
// - Retries as RetryPolicy says (the embedder's policy too), honouring Retry-After, and
//   only before the first token.
// - The API key goes into one header and nowhere else: it is never logged or echoed.
#pragma once

#include <string>

#include "lib/core/config.h"
#include "lib/llm/chat_model.h"

namespace ragstream::llm {

struct OpenAiOptions {
  std::string base_url;  // e.g. https://api.openai.com/v1 (no trailing slash)
  std::string api_key;   // may be empty (local servers)
  std::string model;
  int connect_timeout_ms = 5000;
  int first_token_timeout_ms = 60000;
  int idle_timeout_ms = 60000;
  int max_retries = 2;
  int max_retry_wait_ms = 20000;
  int base_backoff_ms = 250;
  // The most tokens one answer may take (sent as max_tokens, which OpenAI, vLLM, llama.cpp
  // and Ollama all read); 0 sends none and leaves it to the model.
  int max_tokens = 2048;

  static OpenAiOptions FromConfig(const Config& config);
};

class OpenAiChatModel : public ChatModel {
 public:
  explicit OpenAiChatModel(OpenAiOptions options);
  std::string name() const override { return options_.model; }
  ChatOutcome Stream(const ChatRequest& request, const StreamCallbacks& callbacks) override;

  // The JSON body sent upstream (exposed for tests).
  std::string BuildBody(const ChatRequest& request) const;

 private:
  OpenAiOptions options_;
};

}  // namespace ragstream::llm
