// ragstream ask "question" [--conversation ID] [--top-k N] [--mode M] [--json]
#include <cstdio>

#include "cli/answer_stream.h"
#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "lib/core/json.h"
#include "lib/core/utf8.h"
#include "lib/llm/sse_parser.h"

namespace ragstream::cli {

int RunAsk(const Context& ctx) {
  const std::string& question = ctx.args.positional[0];
  if (question.find_first_not_of(" \t\r\n") == std::string::npos) {
    return UsageError(ctx, "the question is empty");
  }
  if (!IsValidUtf8(question)) return UsageError(ctx, "the question is not valid UTF-8");
  std::optional<long long> top_k;
  if (auto v = ctx.args.Get("--top-k")) {
    top_k = ParseInt(*v, 1, 20);
    if (!top_k) return UsageError(ctx, "--top-k must be an integer from 1 to 20");
  }
  auto mode = ctx.args.Get("--mode");
  if (mode && *mode != "hybrid" && *mode != "vector" && *mode != "lexical") {
    return UsageError(ctx, "--mode must be hybrid, vector or lexical");
  }
  auto conversation = ctx.args.Get("--conversation");
  if (conversation && (conversation->empty() || !IsValidUtf8(*conversation))) {
    return UsageError(ctx, "--conversation needs a conversation id");
  }

  rapidjson::StringBuffer body;
  JsonWriter w(body);
  w.StartObject();
  WriteKey(w, "message");
  WriteString(w, question);
  if (conversation) {
    WriteKey(w, "conversation_id");
    WriteString(w, *conversation);
  }
  if (top_k) {
    WriteKey(w, "top_k");
    w.Int64(*top_k);
  }
  if (mode) {
    WriteKey(w, "mode");
    WriteString(w, *mode);
  }
  w.EndObject();

  ApiClient client(ctx.url, ctx.api_key);
  AnswerStream answer(ctx.args.Has("--json"));
  llm::SseParser parser;
  auto on_event = [&answer](const llm::SseEvent& e) { return answer.OnEvent(e); };
  auto response = client.Stream(
      "/api/chat/message/stream", {body.GetString(), body.GetSize()}, "application/json",
      [&](std::string_view chunk) { return parser.Feed(chunk, on_event); });
  if (!response.ok()) return PrintFailure(response.status());
  if (!response->ok()) return PrintFailure(ErrorFromResponse(*response));
  if (!answer.saw_events() && !response->body.empty()) {
    return PrintFailure(
        Status(ErrorKind::kInternal, "invalid_response",
               "expected an event stream, got '" + Clean(response->content_type, 80) + "'"));
  }
  return answer.Finish(response->transfer_error);
}

}  // namespace ragstream::cli
