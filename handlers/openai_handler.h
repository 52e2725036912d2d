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

// {"error": {"message", "type", "param": null, "code"}} with the status that fits (an
// upstream's rate limit stays a 429 with Retry-After, its timeouts are 504).
void WriteOpenAiError(HttpResponse& res, const Status& status);

// Fills `send` from an OpenAI-style list of turns (both APIs): the last user message is the
// question, the turns after it the client's tool round trip, the turns before it the history
// (unless `send.conversation_id` continues a stored conversation, which allows no round trip).
// 400 when there is no user message or the list ends with an assistant's turn; 413 for a
// question over the configured length.
Status AssignTurns(std::vector<llm::ChatMessage> turns, const Config& config,
                   chat::SendRequest& send);

}  // namespace ragstream::handlers
