// The OpenAI-compatible API: POST /v1/chat/completions (streaming and not) running the full
// ragstream pipeline -- retrieval over the documents, language matching, persistence -- and
// answering in the OpenAI chat-completions format; GET /v1/models.
//
// The conversation is chosen by an optional `conversation_id` (a body field, or the
// X-Conversation-Id header); without one the request's messages are the history, as in
// OpenAI, and the exchange is saved as a new conversation. Sources and ids travel in an
// extra `x_ragstream` object that OpenAI clients ignore. Errors are OpenAI-shaped:
// {"error": {"message", "type", "param", "code"}}.
#pragma once

#include "handlers/app.h"

namespace ragstream::handlers {

void HandleChatCompletions(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                           HttpResponse& res, RequestRecord& record);
void HandleModels(const AppContext& app, HttpResponse& res);

// {"error": {"message", "type", "param": null, "code"}} with the status that fits.
void WriteOpenAiError(HttpResponse& res, const Status& status);

}  // namespace ragstream::handlers
