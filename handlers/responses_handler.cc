#include "handlers/responses_handler.h"

#include <algorithm>
#include <ctime>
#include <iterator>
#include <map>

#include "handlers/chat_handler.h"
#include "handlers/chat_request.h"
#include "handlers/openai_handler.h"
#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/fcgi/sse_writer.h"
#include "lib/llm/openai_stream.h"

namespace ragstream::handlers {
namespace {

constexpr std::string_view kResponsePrefix = "resp_";

struct ResponsesRequest {
  chat::SendRequest send;
  std::string model;
  std::string previous_response_id;
  bool stream = false;
};

// The text of an item's content: a string, or parts of type input_text / output_text / text.
Result<std::string> ItemText(const rapidjson::Value& content) {
  if (content.IsString()) return std::string(AsView(content));
  if (!content.IsArray()) {
    return Status::InvalidArgument("invalid_field", "content must be a string or parts");
  }
  std::string text;
  for (const auto& part : content.GetArray()) {
    auto type = part.IsObject() ? part.FindMember("type") : rapidjson::Value::ConstMemberIterator();
    if (!part.IsObject() || type == part.MemberEnd() || !type->value.IsString()) {
      return Status::InvalidArgument("invalid_field", "a content part needs a 'type'");
    }
    const std::string_view t = AsView(type->value);
    if (t != "input_text" && t != "output_text" && t != "text") {
      return Status::InvalidArgument("unsupported_content",
                                     "only text content parts are supported");
    }
    auto value = part.FindMember("text");
    if (value == part.MemberEnd() || !value->value.IsString()) {
      return Status::InvalidArgument("invalid_field", "a text part needs a string 'text'");
    }
    text += AsView(value->value);
  }
  return text;
}

std::string Required(const rapidjson::Value& item, const char* name, Status& error) {
  auto v = GetString(item, name, error);
  if (error.ok() && (!v || v->empty())) {
    error =
        Status::InvalidArgument("invalid_field", std::string("a tool item needs '") + name + "'");
  }
  return v ? std::string(*v) : std::string();
}

// `input` as chat turns: messages, and function_call / function_call_output items as an
// assistant's tool calls (consecutive calls share one turn) and tool turns.
Result<std::vector<llm::ChatMessage>> InputTurns(const rapidjson::Value& input) {
  std::vector<llm::ChatMessage> turns;
  std::vector<std::vector<llm::ToolCall>> calls;  // by turn; written into the turns at the end
  if (input.IsString()) {
    turns.push_back({"user", std::string(AsView(input))});
    return turns;
  }
  if (!input.IsArray() || input.Empty()) {
    return Status::InvalidArgument("invalid_field", "'input' must be a string or a list of items");
  }
  Status error;
  for (const auto& item : input.GetArray()) {
    if (!item.IsObject())
      return Status::InvalidArgument("invalid_field", "an item must be an object");
    auto type = GetString(item, "type", error);
    auto role = GetString(item, "role", error);
    if (!error.ok()) return error;
    const std::string_view kind = type ? *type : std::string_view("message");
    if (kind == "message") {
      auto content = item.FindMember("content");
      if (!role || content == item.MemberEnd()) {
        return Status::InvalidArgument("invalid_field",
                                       "a message item needs 'role' and 'content'");
      }
      auto text = ItemText(content->value);
      if (!text.ok()) return text.status();
      if (*role == "user" || *role == "assistant") turns.push_back({std::string(*role), *text});
    } else if (kind == "function_call") {
      std::string call_id = Required(item, "call_id", error);
      std::string name = Required(item, "name", error);
      auto arguments = GetString(item, "arguments", error);
      if (!error.ok()) return error;
      calls.resize(turns.size());
      if (turns.empty() || turns.back().role != "assistant" ||
          (calls.back().empty() && !turns.back().content.empty())) {
        turns.push_back({"assistant", ""});
        calls.resize(turns.size());
      }
      calls.back().push_back(
          {call_id, name, arguments ? std::string(*arguments) : std::string("{}")});
    } else if (kind == "function_call_output") {
      std::string call_id = Required(item, "call_id", error);
      if (!error.ok()) return error;
      auto output = item.FindMember("output");
      if (output == item.MemberEnd()) {
        return Status::InvalidArgument("invalid_field", "a function_call_output needs 'output'");
      }
      auto text = ItemText(output->value);
      if (!text.ok()) return text.status();
      llm::ChatMessage turn{"tool", *text};
      turn.tool_call_id = std::move(call_id);
      turns.push_back(std::move(turn));
    } else if (kind != "reasoning") {
      return Status::InvalidArgument("unsupported_content",
                                     "unsupported input item type '" + std::string(kind) + "'");
    }
  }
  for (size_t t = 0; t < calls.size(); ++t) {
    if (!calls[t].empty()) turns[t].tool_calls_json = llm::ToolCallsJson(calls[t]);
  }
  return turns;
}

Result<ResponsesRequest> ParseResponsesRequest(const AppContext& app, const std::string& tenant,
                                               const HttpRequest& req) {
  rapidjson::Document doc;
  if (Status s = ParseJsonRequest(req, doc); !s.ok()) return s;
  ResponsesRequest out;
  Status error;
  auto model = GetString(doc, "model", error);
  auto stream = GetBool(doc, "stream", error);
  auto previous = GetString(doc, "previous_response_id", error);
  (void)GetString(doc, "instructions", error);  // accepted, not merged (see the header)
  if (!error.ok()) return error;
  out.model = model ? std::string(*model) : app.chat->model_name();
  out.stream = stream.value_or(false);
  auto input = doc.FindMember("input");
  if (input == doc.MemberEnd())
    return Status::InvalidArgument("missing_field", "'input' is required");
  auto turns = InputTurns(input->value);
  if (!turns.ok()) return turns.status();
  chat::SendRequest& send = out.send;
  if (Status s = ParseToolFields(doc, send.tools, ToolShape::kResponses); !s.ok()) return s;
  RetrievalFields retrieval;
  if (Status s = ParseRetrievalFields(doc, retrieval); !s.ok()) return s;

  if (previous) {
    out.previous_response_id = std::string(*previous);
    const std::string message_id(
        previous->substr(std::min(previous->size(), kResponsePrefix.size())));
    if (!previous->starts_with(kResponsePrefix) || !IsWellFormedId(message_id, "msg_")) {
      return Status::NotFound("response " + out.previous_response_id + " not found");
    }
    auto answer = app.conversations->GetMessage(tenant, message_id);
    if (!answer.ok()) return answer.status();
    const bool new_question =
        std::find_if(turns->begin(), turns->end(),
                     [](const llm::ChatMessage& m) { return m.role == "user"; }) != turns->end() &&
        turns->back().role == "user";
    if (new_question) {
      send.conversation_id = answer->conversation_id;  // the stored history continues
    } else {
      // A tool round trip after that answer: the stored turns up to it, then the input,
      // sent as one history (a new conversation holds the question, the calls and the answer).
      auto stored = app.conversations->ListMessages(tenant, answer->conversation_id);
      if (!stored.ok()) return stored.status();
      std::vector<llm::ChatMessage> history;
      for (const store::Message& m : *stored) {
        if (m.seq > answer->seq) break;
        history.push_back({m.role, m.content, m.tool_calls_json, m.tool_call_id});
      }
      history.insert(history.end(), std::make_move_iterator(turns->begin()),
                     std::make_move_iterator(turns->end()));
      *turns = std::move(history);
    }
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

// One output item as it streams or as it ended.
struct OutputItem {
  bool is_call = false;
  std::string id;       // the item's id
  std::string call_id;  // function_call: the model's call id
  std::string name;
  std::string text;  // message: the text; function_call: the arguments
  bool done = false;
};

void WriteUsage(JsonWriter& w, const store::Usage& u) {
  w.StartObject();
  w.Key("input_tokens");
  w.Int64(u.prompt_tokens);
  w.Key("input_tokens_details");
  w.StartObject();
  w.Key("cached_tokens");
  w.Int(0);
  w.EndObject();
  w.Key("output_tokens");
  w.Int64(u.completion_tokens);
  w.Key("output_tokens_details");
  w.StartObject();
  w.Key("reasoning_tokens");
  w.Int(0);
  w.EndObject();
  w.Key("total_tokens");
  w.Int64(u.total_tokens);
  w.EndObject();
}

void WriteItem(JsonWriter& w, const OutputItem& item) {
  w.StartObject();
  w.Key("id");
  WriteString(w, item.id);
  w.Key("type");
  w.String(item.is_call ? "function_call" : "message");
  w.Key("status");
  w.String(item.done ? "completed" : "in_progress");
  if (item.is_call) {
    w.Key("call_id");
    WriteString(w, item.call_id);
    w.Key("name");
    WriteString(w, item.name);
    w.Key("arguments");
    WriteString(w, item.text);
  } else {
    w.Key("role");
    w.String("assistant");
    w.Key("content");
    w.StartArray();
    if (item.done) {
      w.StartObject();
      w.Key("type");
      w.String("output_text");
      w.Key("text");
      WriteString(w, item.text);
      w.Key("annotations");
      w.StartArray();
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

// The response object, as OpenAI documents it, plus ragstream's `x_ragstream` extras.
struct ResponseView {
  std::string id;
  int64_t created_at = 0;
  std::string model;
  std::string previous_response_id;
  const char* status = "in_progress";  // in_progress | completed | failed | incomplete
  const std::vector<OutputItem>* output = nullptr;
  const chat::SendResult* result = nullptr;  // once finished
};

void WriteResponse(JsonWriter& w, const ResponseView& v) {
  w.StartObject();
  w.Key("id");
  WriteString(w, v.id);
  w.Key("object");
  w.String("response");
  w.Key("created_at");
  w.Int64(v.created_at);
  w.Key("status");
  w.String(v.status);
  w.Key("model");
  WriteString(w, v.model);
  w.Key("output");
  w.StartArray();
  if (v.output) {
    for (const auto& item : *v.output) WriteItem(w, item);
  }
  w.EndArray();
  w.Key("previous_response_id");
  if (v.previous_response_id.empty()) {
    w.Null();
  } else {
    WriteString(w, v.previous_response_id);
  }
  w.Key("parallel_tool_calls");
  w.Bool(true);
  w.Key("tool_choice");
  w.String("auto");
  w.Key("tools");
  w.StartArray();
  w.EndArray();
  w.Key("error");
  const chat::SendResult* r = v.result;
  if (r && !r->status.ok()) {
    w.StartObject();
    w.Key("code");
    WriteString(w, r->status.code());
    w.Key("message");
    WriteString(w, r->status.message());
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("incomplete_details");
  w.Null();
  w.Key("usage");
  if (r && r->message.usage.present) {
    WriteUsage(w, r->message.usage);
  } else {
    w.Null();
  }
  if (r) {
    w.Key("x_ragstream");
    w.StartObject();
    w.Key("conversation_id");
    WriteString(w, r->conversation_id);
    w.Key("message_id");
    WriteString(w, r->message.id);
    w.Key("status");
    WriteString(w, r->message.status);
    w.Key("language");
    WriteString(w, r->language);
    w.Key("sources");
    w.RawValue(r->message.sources_json.data(), r->message.sources_json.size(),
               rapidjson::kArrayType);
    w.EndObject();
  }
  w.EndObject();
}

// The items of a finished answer: its text, then the calls it asked for.
std::vector<OutputItem> FinishedItems(const store::Message& m) {
  std::vector<OutputItem> items;
  if (!m.content.empty() || m.tool_calls_json.empty()) {
    items.push_back({false, m.id, "", "", m.content, true});
  }
  rapidjson::Document calls;
  calls.Parse(m.tool_calls_json.data(), m.tool_calls_json.size());
  if (!calls.HasParseError() && calls.IsArray()) {
    for (const auto& c : calls.GetArray()) {
      OutputItem item{true, "", "", "", "", true};
      Status ignored;
      if (auto id = GetString(c, "id", ignored)) item.call_id = std::string(*id);
      if (auto fn = c.FindMember("function"); fn != c.MemberEnd()) {
        if (auto name = GetString(fn->value, "name", ignored)) item.name = std::string(*name);
        if (auto args = GetString(fn->value, "arguments", ignored)) item.text = std::string(*args);
      }
      item.id = "fc_" + std::to_string(items.size()) + "_" + m.id.substr(4);
      items.push_back(std::move(item));
    }
  }
  return items;
}

const char* ResponseStatus(const chat::SendResult& r) {
  if (r.status.ok()) return "completed";
  return r.message.status == store::kStatusCancelled ? "incomplete" : "failed";
}

// Relays the answer as Responses events; headers wait for the first token (see the header).
class ResponsesObserver : public chat::StreamObserver {
 public:
  ResponsesObserver(HttpResponse& res, const ResponsesRequest& request, int ping_interval_ms)
      : res_(res),
        sse_(res, 0, fcgi::SseWriter::Framing::kOpenAi),
        view_{"", static_cast<int64_t>(std::time(nullptr)), request.model,
              request.previous_response_id},
        ping_interval_ms_(ping_interval_ms) {
    view_.output = &items_;
  }

  bool OnStart(const std::string&, const std::string& message_id) override {
    message_id_ = message_id;
    view_.id = std::string(kResponsePrefix) + message_id;
    return !res_.ClientGone();
  }
  bool OnToken(std::string_view text) override {
    if (!Begin()) return false;
    if (text_item_ < 0) {
      text_item_ = static_cast<int>(items_.size());
      items_.push_back({false, message_id_, "", "", "", false});
      if (!ItemEvent("response.output_item.added", text_item_)) return false;
      if (!Emit("response.content_part.added", [&](JsonWriter& w) {
            ItemRef(w, text_item_);
            w.Key("content_index");
            w.Int(0);
            w.Key("part");
            TextPart(w, "");
          })) {
        return false;
      }
    }
    items_[text_item_].text += text;
    return Emit("response.output_text.delta", [&](JsonWriter& w) {
      ItemRef(w, text_item_);
      w.Key("content_index");
      w.Int(0);
      w.Key("delta");
      WriteString(w, text);
    });
  }
  bool OnToolCall(const llm::ToolCallDelta& d) override {
    if (!Begin()) return false;
    auto found = calls_.find(d.index);
    if (found == calls_.end()) {
      const int at = static_cast<int>(items_.size());
      items_.push_back({true, "fc_" + std::to_string(at) + "_" + message_id_.substr(4), d.id,
                        d.name, "", false});
      found = calls_.emplace(d.index, at).first;
      if (!ItemEvent("response.output_item.added", at)) return false;
    }
    OutputItem& item = items_[found->second];
    if (item.call_id.empty()) item.call_id = d.id;
    if (!d.arguments.empty()) {
      item.text += d.arguments;
      return Emit("response.function_call_arguments.delta", [&](JsonWriter& w) {
        ItemRef(w, found->second);
        w.Key("delta");
        WriteString(w, d.arguments);
      });
    }
    return true;
  }
  bool OnIdle() override {
    return begun_ ? sse_.PingIfIdle(ping_interval_ms_) : !res_.ClientGone();
  }

  bool begun() const { return begun_; }

  void Finish(const chat::SendResult& r) {
    if (!Begin()) return;
    for (int i = 0; i < static_cast<int>(items_.size()); ++i) {
      OutputItem& item = items_[i];
      if (!r.status.ok()) break;  // a failed answer leaves its items unfinished
      item.done = true;
      if (item.is_call) {
        Emit("response.function_call_arguments.done", [&](JsonWriter& w) {
          ItemRef(w, i);
          w.Key("arguments");
          WriteString(w, item.text);
        });
      } else {
        Emit("response.output_text.done", [&](JsonWriter& w) {
          ItemRef(w, i);
          w.Key("content_index");
          w.Int(0);
          w.Key("text");
          WriteString(w, item.text);
        });
        Emit("response.content_part.done", [&](JsonWriter& w) {
          ItemRef(w, i);
          w.Key("content_index");
          w.Int(0);
          w.Key("part");
          TextPart(w, item.text);
        });
      }
      ItemEvent("response.output_item.done", i);
    }
    view_.status = ResponseStatus(r);
    view_.result = &r;
    if (!r.status.ok()) {
      Emit("error", [&](JsonWriter& w) {
        w.Key("code");
        WriteString(w, r.status.code());
        w.Key("message");
        WriteString(w, r.status.message());
        w.Key("param");
        w.Null();
      });
    }
    const char* type = r.status.ok()                                 ? "response.completed"
                       : r.message.status == store::kStatusCancelled ? "response.incomplete"
                                                                     : "response.failed";
    Emit(type, [&](JsonWriter& w) {
      w.Key("response");
      WriteResponse(w, view_);
    });
  }

 private:
  bool Begin() {
    if (begun_) return true;
    begun_ = true;
    if (!sse_.Begin()) return false;
    for (const char* type : {"response.created", "response.in_progress"}) {
      if (!Emit(type, [&](JsonWriter& w) {
            w.Key("response");
            WriteResponse(w, view_);
          })) {
        return false;
      }
    }
    return true;
  }
  // {"type", "sequence_number", ...fields} as an event named `type`.
  template <typename Fields>
  bool Emit(const char* type, Fields fields) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    w.Key("type");
    w.String(type);
    w.Key("sequence_number");
    w.Int64(sequence_++);
    fields(w);
    w.EndObject();
    return sse_.Event(type, {buf.GetString(), buf.GetSize()});
  }
  bool ItemEvent(const char* type, int index) {
    return Emit(type, [&](JsonWriter& w) {
      w.Key("output_index");
      w.Int(index);
      w.Key("item");
      WriteItem(w, items_[index]);
    });
  }
  void ItemRef(JsonWriter& w, int index) {
    w.Key("item_id");
    WriteString(w, items_[index].id);
    w.Key("output_index");
    w.Int(index);
  }
  static void TextPart(JsonWriter& w, std::string_view text) {
    w.StartObject();
    w.Key("type");
    w.String("output_text");
    w.Key("text");
    WriteString(w, text);
    w.Key("annotations");
    w.StartArray();
    w.EndArray();
    w.EndObject();
  }

  HttpResponse& res_;
  fcgi::SseWriter sse_;
  ResponseView view_;
  int ping_interval_ms_;
  std::string message_id_;
  std::vector<OutputItem> items_;
  std::map<int, int> calls_;  // the model's call index -> the item's index
  int text_item_ = -1;
  int64_t sequence_ = 0;
  bool begun_ = false;
};

}  // namespace

void HandleResponses(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                     HttpResponse& res, RequestRecord& record) {
  auto parsed = ParseResponsesRequest(app, tenant, req);
  if (!parsed.ok()) {
    record.outcome = "rejected";
    return WriteOpenAiError(res, parsed.status());
  }
  ResponsesRequest& r = *parsed;
  r.send.tenant = tenant;
  chat::SendResult result;
  if (r.stream) {
    ResponsesObserver observer(res, r, app.config.ping_interval_ms);
    const int64_t started = SteadyMillis();
    if (app.metrics) app.metrics->StreamStarted();
    result = app.chat->Send(r.send, observer);
    if (app.metrics) app.metrics->StreamEnded((SteadyMillis() - started) / 1000.0);
    if (result.started && (observer.begun() || result.status.ok())) {
      observer.Finish(result);
    } else if (!res.HeadersSent()) {
      WriteOpenAiError(res, result.status);
    }
  } else {
    SilentObserver observer(res);
    result = app.chat->Send(r.send, observer);
    if (!result.started || !result.status.ok()) {
      WriteOpenAiError(res, result.status);
    } else {
      const std::vector<OutputItem> items = FinishedItems(result.message);
      ResponseView view{std::string(kResponsePrefix) + result.message.id,
                        static_cast<int64_t>(std::time(nullptr)),
                        r.model,
                        r.previous_response_id,
                        ResponseStatus(result),
                        &items,
                        &result};
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      WriteResponse(w, view);
      WriteJson(res, 200, {buf.GetString(), buf.GetSize()});
    }
  }
  RecordChatResult(app, record, result);
}

}  // namespace ragstream::handlers
