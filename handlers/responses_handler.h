// OpenAI's Responses API, POST /v1/responses (streaming and not), on the same pipeline as
// /v1/chat/completions: retrieval over the documents, language matching, persistence, tools.
//
// `input` is a string or a list of items (messages; function_call and function_call_output
// items for a tool round trip). `previous_response_id` ("resp_" + the answer's message id)
// continues the conversation that answer belongs to. `instructions` is accepted and, like a
// chat client's system prompt, not merged into ragstream's own. The model may speak only chat
// completions: tools, calls and their results are translated both ways. The stream sends
// named events (response.created, response.output_text.delta, response.completed, ...) with
// the field shapes OpenAI documents; its headers wait for the first token, so a failure
// before it is a real HTTP status.
#pragma once

#include "handlers/app.h"

namespace ragstream::handlers {

void HandleResponses(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                     HttpResponse& res, RequestRecord& record);

}  // namespace ragstream::handlers
