// POST /api/chat/message and POST /api/chat/message/stream.
#pragma once

#include "handlers/app.h"

namespace ragstream::handlers {

void HandleChatStream(const AppContext& app, const HttpRequest& req, HttpResponse& res,
                      RequestRecord& record);
void HandleChatMessage(const AppContext& app, const HttpRequest& req, HttpResponse& res,
                       RequestRecord& record);

// Metrics and the request log fields of a finished exchange (any chat route).
void RecordChatResult(const AppContext& app, RequestRecord& record, const chat::SendResult& result);

// The final event of a stream (exposed for tests).
std::string DoneEventJson(const chat::SendResult& result);

}  // namespace ragstream::handlers
