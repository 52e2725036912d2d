// Validation of a send-message request body. Pure: no store, no transport.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lib/core/config.h"
#include "lib/core/http.h"
#include "lib/core/status.h"

namespace ragstream::handlers {

struct ChatRequestBody {
  std::string message;
  std::optional<std::string> conversation_id;
  std::optional<DisconnectPolicy> on_disconnect;
};

// 415 unless the body is JSON; 400 for malformed JSON, wrong types, a missing or blank
// message; 413 for a message over the configured length; 404 for a conversation id that
// cannot exist.
Result<ChatRequestBody> ParseChatRequest(const HttpRequest& req, const Config& config);

// True if the Content-Type names JSON (parameters such as charset are allowed).
bool IsJsonContentType(std::string_view content_type);

}  // namespace ragstream::handlers
