// Decoding of the data of one OpenAI chat-completions stream event ("chat.completion.chunk",
// the usage chunk, "[DONE]", or an {"error": ...} object); and the `tool_calls` array of whole
// calls, as OpenAI writes it.
#pragma once

#include <string>
#include <string_view>

#include <vector>

#include "lib/llm/chat_model.h"
#include "lib/store/conversation_store.h"

namespace ragstream::llm {

struct ChunkInfo {
  enum class Kind { kChunk, kDone, kError, kInvalid };
  Kind kind = Kind::kInvalid;
  std::string content;                    // choices[0].delta.content (may be empty)
  std::vector<ToolCallDelta> tool_calls;  // choices[0].delta.tool_calls
  std::string finish_reason;              // choices[0].finish_reason when set
  store::Usage usage;                     // usage when present and not null
  std::string error_code;                 // for kError: error.code, else error.type
  std::string error_message;
};

ChunkInfo DecodeChunk(std::string_view data);

// OpenAI's `tool_calls` array for `calls`: [{"id", "type": "function", "function": {"name",
// "arguments"}}, ...].
std::string ToolCallsJson(const std::vector<ToolCall>& calls);

// Parses an OpenAI-shaped error body ({"error": {"message", "type", "code"}}) into
// `code` (code, else type) and `message`; false if it is not one.
bool DecodeErrorBody(std::string_view body, std::string& code, std::string& message);

// Replaces every occurrence of `secret` in `text` with "[redacted]". An upstream's error text
// may quote the request, key included; it is scrubbed before it is logged, stored or relayed.
std::string Scrub(std::string text, const std::string& secret);

// What a client is told about an upstream that answered HTTP `http_status` with the error
// code `upstream_code` (possibly empty): our own stable code and words
// (upstream_quota_exceeded, upstream_rate_limited, upstream_auth, upstream_server_error for a 5xx,
// upstream_rejected for any other status).
// The upstream's own code and message may name internal hosts, organisations or keys: they
// belong in the log (scrubbed), never in a response or the store.
Status ClientFacingUpstreamError(long http_status, const std::string& upstream_code);

}  // namespace ragstream::llm
