// Validation of a send-message request body. Pure: no store, no transport.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "handlers/request_body.h"
#include "lib/core/config.h"
#include "lib/core/http.h"
#include "lib/core/status.h"
#include "lib/llm/chat_model.h"
#include "lib/rag/retrieval_mode.h"

#include <rapidjson/document.h>

namespace ragstream::handlers {

// The retrieval fields shared by chat and search requests.
struct RetrievalFields {
  std::optional<size_t> top_k;
  rag::RetrievalMode mode = rag::RetrievalMode::kHybrid;
  std::vector<std::string> document_ids;
};

inline constexpr int64_t kMaxTopK = 20;
inline constexpr int64_t kMaxNprobe = 65536;  // /api/search "nprobe"
inline constexpr size_t kMaxDocumentIds = 100;

// top_k (integer 1..20; 422 out of range), mode ("hybrid" | "vector" | "lexical"; 422 for
// another value), document_ids (array of strings, at most 100). 400 for wrong types.
Status ParseRetrievalFields(const rapidjson::Value& body, RetrievalFields& out);

// `tools` (an array of {"type": "function", "function": {"name", ...}}), `tool_choice` (a
// string or an object) and `parallel_tool_calls` (a boolean), kept as JSON for the model.
// 400 for wrong shapes. `function_shape` names where a tool's name is: OpenAI's chat API
// nests it in "function"; its Responses API puts it at the top ({"type": "function", "name"}).
enum class ToolShape { kChatCompletions, kResponses };
Status ParseToolFields(const rapidjson::Value& body, llm::ToolOptions& out,
                       ToolShape shape = ToolShape::kChatCompletions);

struct ChatRequestBody {
  std::string message;
  RetrievalFields retrieval;
  llm::ToolOptions tools;
  std::optional<std::string> conversation_id;
  std::optional<DisconnectPolicy> on_disconnect;
  std::string client_message_id;  // "" when absent
};

// 415 unless the body is JSON; 400 for malformed JSON, wrong types, a missing or blank
// message; 413 for a message over the configured length; 404 for a conversation id that
// cannot exist.
Result<ChatRequestBody> ParseChatRequest(const HttpRequest& req, const Config& config);

}  // namespace ragstream::handlers
