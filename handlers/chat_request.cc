#include "handlers/chat_request.h"

#include <algorithm>

#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/core/utf8.h"

namespace ragstream::handlers {

Status ParseRetrievalFields(const rapidjson::Value& body, RetrievalFields& out) {
  Status error;
  auto top_k = GetInt(body, "top_k", error);
  auto mode = GetString(body, "mode", error);
  if (!error.ok()) return error;
  if (top_k) {
    if (*top_k < 1 || *top_k > kMaxTopK) {
      return Status(ErrorKind::kUnprocessable, "invalid_top_k",
                    "top_k must be between 1 and " + std::to_string(kMaxTopK));
    }
    out.top_k = static_cast<size_t>(*top_k);
  }
  if (mode && !rag::ParseRetrievalMode(*mode, out.mode)) {
    return Status(ErrorKind::kUnprocessable, "invalid_mode",
                  "mode must be \"hybrid\", \"vector\" or \"lexical\"");
  }
  auto ids = body.FindMember("document_ids");
  if (ids != body.MemberEnd() && !ids->value.IsNull()) {
    if (!ids->value.IsArray()) {
      return Status::InvalidArgument("invalid_field", "field 'document_ids' must be an array");
    }
    if (ids->value.Size() > kMaxDocumentIds) {
      return Status(ErrorKind::kUnprocessable, "too_many_document_ids",
                    "document_ids is limited to " + std::to_string(kMaxDocumentIds) + " ids");
    }
    for (const auto& id : ids->value.GetArray()) {
      if (!id.IsString()) {
        return Status::InvalidArgument("invalid_field",
                                       "field 'document_ids' must contain strings");
      }
      if (!IsWellFormedId(AsView(id), "doc_")) {
        return Status(ErrorKind::kUnprocessable, "unknown_document",
                      "unknown document id " + std::string(AsView(id)) + " in document_ids");
      }
      out.document_ids.emplace_back(AsView(id));
    }
  }
  return Status::Ok();
}

namespace {

std::string ToJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace

Status ParseToolFields(const rapidjson::Value& body, llm::ToolOptions& out, ToolShape shape) {
  auto tools = body.FindMember("tools");
  if (tools == body.MemberEnd() || tools->value.IsNull()) return Status::Ok();
  if (!tools->value.IsArray())
    return Status::InvalidArgument("invalid_field", "'tools' must be an array");
  if (tools->value.Empty()) return Status::Ok();
  rapidjson::Document converted;
  converted.SetArray();
  for (const auto& t : tools->value.GetArray()) {
    auto type = t.IsObject() ? t.FindMember("type") : rapidjson::Value::ConstMemberIterator();
    if (!t.IsObject() || type == t.MemberEnd() || !type->value.IsString() ||
        AsView(type->value) != "function") {
      return Status::InvalidArgument("invalid_field",
                                     "each tool must be an object with \"type\": \"function\"");
    }
    const rapidjson::Value* fn = &t;
    if (shape == ToolShape::kChatCompletions) {
      auto f = t.FindMember("function");
      if (f == t.MemberEnd() || !f->value.IsObject()) {
        return Status::InvalidArgument("invalid_field", "each tool needs a 'function' object");
      }
      fn = &f->value;
    }
    auto name = fn->FindMember("name");
    if (name == fn->MemberEnd() || !name->value.IsString() || name->value.GetStringLength() == 0) {
      return Status::InvalidArgument("invalid_field", "each tool function needs a 'name'");
    }
    if (shape == ToolShape::kResponses) {
      // The model speaks chat completions: {"type", "name", ...} becomes {"type", "function":
      // {...}}.
      rapidjson::Value function(rapidjson::kObjectType);
      for (const auto& m : t.GetObject()) {
        if (AsView(m.name) == "type" || AsView(m.name) == "strict") continue;
        function.AddMember(rapidjson::Value(m.name, converted.GetAllocator()),
                           rapidjson::Value(m.value, converted.GetAllocator()),
                           converted.GetAllocator());
      }
      rapidjson::Value tool(rapidjson::kObjectType);
      tool.AddMember("type", "function", converted.GetAllocator());
      tool.AddMember("function", function, converted.GetAllocator());
      converted.PushBack(tool, converted.GetAllocator());
    }
  }
  out.tools_json = shape == ToolShape::kResponses ? ToJson(converted) : ToJson(tools->value);
  if (auto choice = body.FindMember("tool_choice");
      choice != body.MemberEnd() && !choice->value.IsNull()) {
    if (choice->value.IsString()) {
      out.tool_choice_json = ToJson(choice->value);
    } else if (choice->value.IsObject()) {
      if (shape == ToolShape::kResponses) {
        // {"type": "function", "name"} becomes {"type": "function", "function": {"name"}}.
        auto name = choice->value.FindMember("name");
        if (name == choice->value.MemberEnd() || !name->value.IsString()) {
          return Status::InvalidArgument("invalid_field", "'tool_choice' needs a 'name'");
        }
        rapidjson::StringBuffer buf;
        JsonWriter w(buf);
        w.StartObject();
        w.Key("type");
        w.String("function");
        w.Key("function");
        w.StartObject();
        w.Key("name");
        WriteString(w, AsView(name->value));
        w.EndObject();
        w.EndObject();
        out.tool_choice_json.assign(buf.GetString(), buf.GetSize());
      } else {
        out.tool_choice_json = ToJson(choice->value);
      }
    } else {
      return Status::InvalidArgument("invalid_field",
                                     "'tool_choice' must be a string or an object");
    }
  }
  Status error;
  auto parallel = GetBool(body, "parallel_tool_calls", error);
  if (!error.ok()) return error;
  out.parallel_tool_calls = parallel;
  return Status::Ok();
}

Result<ChatRequestBody> ParseChatRequest(const HttpRequest& req, const Config& config) {
  rapidjson::Document doc;
  if (Status s = ParseJsonRequest(req, doc); !s.ok()) return s;
  Status field_error;
  ChatRequestBody body;
  auto message = GetString(doc, "message", field_error);
  auto conversation_id = GetString(doc, "conversation_id", field_error);
  auto on_disconnect = GetString(doc, "on_disconnect", field_error);
  auto client_message_id = GetString(doc, "client_message_id", field_error);
  if (!field_error.ok()) return field_error;
  if (!message) {
    return Status::InvalidArgument("missing_field", "field 'message' is required");
  }
  if (std::all_of(message->begin(), message->end(),
                  [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; })) {
    return Status::InvalidArgument("empty_message", "field 'message' must not be empty");
  }
  size_t chars = Utf8Length(*message);
  if (chars > static_cast<size_t>(config.max_message_chars)) {
    return Status(ErrorKind::kTooLarge, "message_too_long",
                  "message has " + std::to_string(chars) + " characters; the limit is " +
                      std::to_string(config.max_message_chars));
  }
  if (Status s = ParseRetrievalFields(doc, body.retrieval); !s.ok()) return s;
  if (Status s = ParseToolFields(doc, body.tools); !s.ok()) return s;
  if (client_message_id) {
    const bool ok = !client_message_id->empty() && client_message_id->size() <= 128 &&
                    std::all_of(client_message_id->begin(), client_message_id->end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                             c == '.' || c == ':';
                    });
    if (!ok) {
      return Status::InvalidArgument("invalid_field",
                                     "client_message_id must be 1-128 characters of A-Z a-z 0-9 "
                                     "- _ . :");
    }
    body.client_message_id = std::string(*client_message_id);
  }
  body.message = std::string(*message);
  if (conversation_id) {
    if (!IsWellFormedId(*conversation_id, "conv_")) {
      return Status::NotFound("conversation " + std::string(*conversation_id) + " not found");
    }
    body.conversation_id = std::string(*conversation_id);
  }
  if (on_disconnect) {
    if (*on_disconnect == "cancel") {
      body.on_disconnect = DisconnectPolicy::kCancel;
    } else if (*on_disconnect == "finish") {
      body.on_disconnect = DisconnectPolicy::kFinish;
    } else {
      return Status::InvalidArgument("invalid_field",
                                     "field 'on_disconnect' must be \"cancel\" or \"finish\"");
    }
  }
  return body;
}

}  // namespace ragstream::handlers
