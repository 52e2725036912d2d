#include "handlers/openai_handler.h"

#include <algorithm>
#include <ctime>
#include <iterator>

#include "handlers/chat_handler.h"
#include "handlers/chat_request.h"
#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/core/utf8.h"
#include "lib/fcgi/sse_writer.h"

namespace ragstream::handlers {
namespace {

const char* OpenAiErrorType(const Status& s) {
  switch (s.kind()) {
    case ErrorKind::kUnauthorized:
      return "authentication_error";
    case ErrorKind::kNotFound:
      return "not_found_error";
    case ErrorKind::kRateLimited:
      return "rate_limit_error";
    case ErrorKind::kInternal:
    case ErrorKind::kUpstream:
    case ErrorKind::kUnavailable:
    case ErrorKind::kStoreFull:
      return "server_error";
    default:
      return "invalid_request_error";
  }
}

void WriteErrorBody(JsonWriter& w, const Status& s) {
  w.Key("error");
  w.StartObject();
  w.Key("message");
  WriteString(w, s.message());
  w.Key("type");
  w.String(OpenAiErrorType(s));
  w.Key("param");
  w.Null();
  w.Key("code");
  WriteString(w, s.code());
  w.EndObject();
}

std::string CompletionId(const std::string& message_id) {
  return "chatcmpl-" + message_id;
}

void WriteExtras(JsonWriter& w, const chat::SendResult& r) {
  w.Key("x_ragstream");
  w.StartObject();
  w.Key("conversation_id");
  WriteString(w, r.conversation_id);
  w.Key("message_id");
  WriteString(w, r.message.id);
  w.Key("status");
  WriteString(w, r.message.status);
  w.Key("language");
  WriteString(w, r.language);
  w.Key("sources");
  w.RawValue(r.message.sources_json.data(), r.message.sources_json.size(), rapidjson::kArrayType);
  w.EndObject();
}

struct CompletionRequest {
  chat::SendRequest send;
  std::string model;
  bool stream = false;
  bool include_usage = false;
};

// Text of a message's content: a string, or an array of {"type": "text", "text"} parts.
Result<std::string> ContentText(const rapidjson::Value& content) {
  if (content.IsString()) return std::string(AsView(content));
  if (!content.IsArray()) {
    return Status::InvalidArgument("invalid_field", "message content must be a string or parts");
  }
  std::string text;
  for (const auto& part : content.GetArray()) {
    if (!part.IsObject()) return Status::InvalidArgument("invalid_field", "bad content part");
    auto type = part.FindMember("type");
    auto t = part.FindMember("text");
    if (type == part.MemberEnd() || !type->value.IsString() || AsView(type->value) != "text") {
      return Status::InvalidArgument("unsupported_content",
                                     "only text content parts are supported");
    }
    if (t == part.MemberEnd() || !t->value.IsString()) {
      return Status::InvalidArgument("invalid_field", "a text part needs a string 'text'");
    }
    text += AsView(t->value);
  }
  return text;
}

// The request's messages as turns: user and assistant text, an assistant's tool calls, tool
// results. The instructions are ragstream's own (language, passages): a client's system
// prompt is not merged into them.
Result<std::vector<llm::ChatMessage>> ParseMessages(const rapidjson::Value& messages) {
  std::vector<llm::ChatMessage> turns;
  Status error;
  for (const auto& m : messages.GetArray()) {
    if (!m.IsObject())
      return Status::InvalidArgument("invalid_field", "a message must be an object");
    auto role = GetString(m, "role", error);
    auto tool_call_id = GetString(m, "tool_call_id", error);
    if (!error.ok()) return error;
    if (!role) return Status::InvalidArgument("invalid_field", "each message needs a 'role'");
    llm::ChatMessage turn{std::string(*role), ""};
    auto calls = m.FindMember("tool_calls");
    if (turn.role == "assistant" && calls != m.MemberEnd() && !calls->value.IsNull()) {
      if (!calls->value.IsArray()) {
        return Status::InvalidArgument("invalid_field", "'tool_calls' must be an array");
      }
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      calls->value.Accept(w);
      if (!calls->value.Empty()) turn.tool_calls_json.assign(buf.GetString(), buf.GetSize());
    }
    auto content = m.FindMember("content");
    const bool no_content = content == m.MemberEnd() || content->value.IsNull();
    if (no_content && turn.tool_calls_json.empty()) {
      return Status::InvalidArgument("invalid_field", "each message needs 'role' and 'content'");
    }
    if (!no_content) {
      auto text = ContentText(content->value);
      if (!text.ok()) return text.status();
      turn.content = std::move(*text);
    }
    if (turn.role == "tool") {
      if (!tool_call_id || tool_call_id->empty()) {
        return Status::InvalidArgument("invalid_field", "a tool message needs 'tool_call_id'");
      }
      turn.tool_call_id = std::string(*tool_call_id);
    }
    if (turn.role == "user" || turn.role == "assistant" || turn.role == "tool") {
      turns.push_back(std::move(turn));
    }
  }
  return turns;
}

Result<CompletionRequest> ParseCompletionRequest(const AppContext& app, const HttpRequest& req) {
  rapidjson::Document doc;
  if (Status s = ParseJsonRequest(req, doc); !s.ok()) return s;
  CompletionRequest out;
  Status error;
  auto model = GetString(doc, "model", error);
  auto stream = GetBool(doc, "stream", error);
  auto conversation = GetString(doc, "conversation_id", error);
  if (!error.ok()) return error;
  out.model = model ? std::string(*model) : app.chat->model_name();
  out.stream = stream.value_or(false);
  if (auto so = doc.FindMember("stream_options"); so != doc.MemberEnd() && !so->value.IsNull()) {
    if (!so->value.IsObject()) {
      return Status::InvalidArgument("invalid_field", "stream_options must be an object");
    }
    auto usage = GetBool(so->value, "include_usage", error);
    if (!error.ok()) return error;
    out.include_usage = usage.value_or(false);
  }
  auto messages = doc.FindMember("messages");
  if (messages == doc.MemberEnd() || !messages->value.IsArray() || messages->value.Empty()) {
    return Status::InvalidArgument("missing_field", "'messages' must be a non-empty array");
  }
  auto turns = ParseMessages(messages->value);
  if (!turns.ok()) return turns.status();
  RetrievalFields retrieval;
  if (Status s = ParseRetrievalFields(doc, retrieval); !s.ok()) return s;
  if (Status s = ParseToolFields(doc, out.send.tools); !s.ok()) return s;
  std::string conversation_id =
      conversation ? std::string(*conversation) : req.Header("x-conversation-id");
  chat::SendRequest& send = out.send;
  if (!conversation_id.empty()) {
    if (!IsWellFormedId(conversation_id, "conv_")) {
      return Status::NotFound("conversation " + conversation_id + " not found");
    }
    send.conversation_id = conversation_id;
  }
  if (Status s = AssignTurns(std::move(*turns), app.config, send); !s.ok()) return s;
  send.top_k = retrieval.top_k;
  send.mode = retrieval.mode;
  send.document_ids = std::move(retrieval.document_ids);
  send.on_disconnect = app.config.on_disconnect;
  send.request_id = req.request_id;
  send.discard_if_failed_early = true;
  return out;
}

// Relays the answer as chat.completion.chunk events. The response's headers wait for the
// model's first token, as OpenAI's do: until then a failure can still be a real HTTP status
// (429 with Retry-After, 502, 504) that clients' retry logic understands.
class ChunkObserver : public chat::StreamObserver {
 public:
  ChunkObserver(HttpResponse& res, std::string model, int ping_interval_ms)
      : res_(res),
        sse_(res, 0, fcgi::SseWriter::Framing::kOpenAi),
        model_(std::move(model)),
        ping_interval_ms_(ping_interval_ms) {}

  bool OnStart(const std::string&, const std::string& message_id) override {
    id_ = CompletionId(message_id);
    return !res_.ClientGone();
  }
  bool OnToken(std::string_view text) override {
    return Begin() && Send(Chunk([text](JsonWriter& w) {
             w.StartObject();
             w.Key("content");
             WriteString(w, text);
             w.EndObject();
           }));
  }
  bool OnToolCall(const llm::ToolCallDelta& d) override {
    return Begin() && Send(Chunk([&d](JsonWriter& w) {
             w.StartObject();
             w.Key("tool_calls");
             w.StartArray();
             w.StartObject();
             w.Key("index");
             w.Int(d.index);
             if (!d.id.empty()) {
               w.Key("id");
               WriteString(w, d.id);
               w.Key("type");
               w.String("function");
             }
             w.Key("function");
             w.StartObject();
             if (!d.name.empty()) {
               w.Key("name");
               WriteString(w, d.name);
             }
             w.Key("arguments");
             WriteString(w, d.arguments);
             w.EndObject();
             w.EndObject();
             w.EndArray();
             w.EndObject();
           }));
  }
  bool OnIdle() override {
    return begun_ ? sse_.PingIfIdle(ping_interval_ms_) : !res_.ClientGone();
  }

  // Whether the stream has begun (headers and the role chunk sent).
  bool begun() const { return begun_; }

  // The rest of a stream that began, or all of a successful one that never sent a token.
  void Finish(const chat::SendResult& r, bool include_usage) {
    if (!Begin()) return;
    if (!r.status.ok()) {
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      w.StartObject();
      WriteErrorBody(w, r.status);
      WriteExtras(w, r);
      w.EndObject();
      Event({buf.GetString(), buf.GetSize()});
      return;
    }
    const std::string finish = r.message.finish_reason.empty() ? "stop" : r.message.finish_reason;
    Event(Chunk(
        [](JsonWriter& w) {
          w.StartObject();
          w.EndObject();
        },
        finish, &r));
    if (include_usage) {
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      Header(w);
      w.Key("choices");
      w.StartArray();
      w.EndArray();
      w.Key("usage");
      WriteUsage(w, r.message.usage);
      w.EndObject();
      Event({buf.GetString(), buf.GetSize()});
    }
    Event("[DONE]");
  }

 private:
  bool Begin() {
    if (begun_) return true;
    begun_ = true;
    return sse_.Begin() && Send(Chunk([](JsonWriter& w) {
             w.StartObject();
             w.Key("role");
             w.String("assistant");
             w.Key("content");
             w.String("");
             w.EndObject();
           }));
  }
  void Header(JsonWriter& w) {
    w.StartObject();
    w.Key("id");
    WriteString(w, id_);
    w.Key("object");
    w.String("chat.completion.chunk");
    w.Key("created");
    w.Int64(created_);
    w.Key("model");
    WriteString(w, model_);
  }
  template <typename DeltaFn>
  std::string Chunk(DeltaFn delta, const std::string& finish = "",
                    const chat::SendResult* extras = nullptr) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    Header(w);
    w.Key("choices");
    w.StartArray();
    w.StartObject();
    w.Key("index");
    w.Int(0);
    w.Key("delta");
    delta(w);
    w.Key("finish_reason");
    if (finish.empty()) {
      w.Null();
    } else {
      WriteString(w, finish);
    }
    w.EndObject();
    w.EndArray();
    if (extras) WriteExtras(w, *extras);
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
  }
  bool Event(std::string_view data) { return sse_.Event(data); }
  bool Send(const std::string& chunk) { return sse_.Event(chunk); }

  HttpResponse& res_;
  fcgi::SseWriter sse_;
  std::string model_;
  int ping_interval_ms_;
  std::string id_;
  int64_t created_ = static_cast<int64_t>(std::time(nullptr));
  bool begun_ = false;
};

}  // namespace

Status AssignTurns(std::vector<llm::ChatMessage> turns, const Config& config,
                   chat::SendRequest& send) {
  // The question is the last user message; what follows it is the client's tool round trip.
  auto last_user = std::find_if(turns.rbegin(), turns.rend(),
                                [](const llm::ChatMessage& m) { return m.role == "user"; });
  if (last_user == turns.rend()) {
    return Status::InvalidArgument("invalid_messages", "there must be a message from the user");
  }
  std::vector<llm::ChatMessage> tool_turns(last_user.base(), turns.end());
  if (!tool_turns.empty() && tool_turns.back().role != "tool") {
    return Status::InvalidArgument("invalid_messages",
                                   "the last message must be from the user or a tool");
  }
  std::string question = std::move(last_user->content);
  turns.erase(std::prev(last_user.base()), turns.end());
  if (question.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::InvalidArgument("empty_message", "the user's message is empty");
  }
  if (Utf8Length(question) > static_cast<size_t>(config.max_message_chars)) {
    return Status(
        ErrorKind::kTooLarge, "message_too_long",
        "the message is longer than " + std::to_string(config.max_message_chars) + " characters");
  }
  send.message = std::move(question);
  if (send.conversation_id) {
    if (!tool_turns.empty()) {
      return Status::InvalidArgument(
          "invalid_messages",
          "a tool round trip is sent as the whole history, without conversation_id");
    }
  } else {
    send.history = std::move(turns);  // OpenAI semantics: the request is the history
  }
  send.tool_turns = std::move(tool_turns);
  return Status::Ok();
}

void WriteOpenAiError(HttpResponse& res, const Status& given) {
  // An upstream's 429 and timeouts keep their meaning for the client: its SDK retries a 429
  // after Retry-After, and a 504 says the model, not ragstream, was slow.
  Status status = given;
  int http_status = HttpStatusFor(status);
  if (status.code() == "upstream_rate_limited") {
    status = Status(ErrorKind::kRateLimited, status.code(), status.message());
    http_status = 429;
  } else if (status.code() == "upstream_first_token_timeout" ||
             status.code() == "upstream_idle_timeout") {
    http_status = 504;
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteErrorBody(w, status);
  w.EndObject();
  AddErrorHeaders(res, status);
  WriteJson(res, http_status, {buf.GetString(), buf.GetSize()});
}

void HandleChatCompletions(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                           HttpResponse& res, RequestRecord& record) {
  auto parsed = ParseCompletionRequest(app, req);
  if (!parsed.ok()) {
    record.outcome = "rejected";
    return WriteOpenAiError(res, parsed.status());
  }
  CompletionRequest& c = *parsed;
  c.send.tenant = tenant;
  chat::SendResult result;
  if (c.stream) {
    ChunkObserver observer(res, c.model, app.config.ping_interval_ms);
    const int64_t started = SteadyMillis();
    if (app.metrics) app.metrics->StreamStarted();
    result = app.chat->Send(c.send, observer);
    if (app.metrics) app.metrics->StreamEnded((SteadyMillis() - started) / 1000.0);
    if (result.started && (observer.begun() || result.status.ok())) {
      observer.Finish(result, c.include_usage);
    } else if (!res.HeadersSent()) {
      WriteOpenAiError(res, result.status);
    }
  } else {
    SilentObserver observer(res);
    result = app.chat->Send(c.send, observer);
    if (!result.started || !result.status.ok()) {
      WriteOpenAiError(res, result.status);
    } else {
      const store::Message& m = result.message;
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      w.StartObject();
      w.Key("id");
      WriteString(w, CompletionId(m.id));
      w.Key("object");
      w.String("chat.completion");
      w.Key("created");
      w.Int64(static_cast<int64_t>(std::time(nullptr)));
      w.Key("model");
      WriteString(w, c.model);
      w.Key("choices");
      w.StartArray();
      w.StartObject();
      w.Key("index");
      w.Int(0);
      w.Key("message");
      w.StartObject();
      w.Key("role");
      w.String("assistant");
      w.Key("content");
      if (m.content.empty() && !m.tool_calls_json.empty()) {
        w.Null();
      } else {
        WriteString(w, m.content);
      }
      if (!m.tool_calls_json.empty()) {
        w.Key("tool_calls");
        w.RawValue(m.tool_calls_json.data(), m.tool_calls_json.size(), rapidjson::kArrayType);
      }
      w.EndObject();
      w.Key("finish_reason");
      WriteString(w, m.finish_reason.empty() ? std::string("stop") : m.finish_reason);
      w.EndObject();
      w.EndArray();
      w.Key("usage");
      WriteUsage(w, m.usage);
      WriteExtras(w, result);
      w.EndObject();
      WriteJson(res, 200, {buf.GetString(), buf.GetSize()});
    }
  }
  RecordChatResult(app, record, result);
}

void HandleModels(const AppContext& app, HttpResponse& res) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("object");
  w.String("list");
  w.Key("data");
  w.StartArray();
  w.StartObject();
  w.Key("id");
  WriteString(w, app.chat->model_name());
  w.Key("object");
  w.String("model");
  w.Key("created");
  w.Int64(static_cast<int64_t>(std::time(nullptr)) - (SteadyMillis() - app.started_at_ms) / 1000);
  w.Key("owned_by");
  w.String("ragstream");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  WriteJson(res, 200, {buf.GetString(), buf.GetSize()});
}

}  // namespace ragstream::handlers
