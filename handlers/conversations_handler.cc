#include "handlers/conversations_handler.h"

#include <charconv>

#include "handlers/request_body.h"
#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/core/utf8.h"

namespace ragstream::handlers {
namespace {

constexpr size_t kDefaultLimit = 20;
constexpr size_t kMaxLimit = 100;
constexpr size_t kMaxTitleChars = 200;

void WriteConversationFields(JsonWriter& w, const store::Conversation& c) {
  w.Key("id");
  WriteString(w, c.id);
  w.Key("title");
  WriteString(w, c.title);
  w.Key("language");
  WriteString(w, c.language);
  w.Key("created_at");
  w.Int64(c.created_at);
  w.Key("updated_at");
  w.Int64(c.updated_at);
  w.Key("message_count");
  w.Uint64(c.message_count);
}

void WriteMessage(JsonWriter& w, const store::Message& m) {
  w.StartObject();
  w.Key("id");
  WriteString(w, m.id);
  w.Key("role");
  WriteString(w, m.role);
  w.Key("content");
  WriteString(w, m.content);
  WriteToolFields(w, m.tool_calls_json, m.tool_call_id);
  w.Key("status");
  WriteString(w, m.status);
  w.Key("language");
  WriteString(w, m.language);
  w.Key("sources");
  w.RawValue(m.sources_json.data(), m.sources_json.size(), rapidjson::kArrayType);
  if (m.role == "assistant") {
    w.Key("finish_reason");
    WriteString(w, m.finish_reason);
    w.Key("usage");
    WriteUsageOrNull(w, m.usage);
    if (!m.error_code.empty()) {
      w.Key("error");
      w.StartObject();
      w.Key("code");
      WriteString(w, m.error_code);
      w.Key("message");
      WriteString(w, m.error_message);
      w.EndObject();
    }
  }
  w.Key("created_at");
  w.Int64(m.created_at);
  w.Key("updated_at");
  w.Int64(m.updated_at);
  w.EndObject();
}

Status ValidId(const std::string& id) {
  return IsWellFormedId(id, "conv_") ? Status::Ok()
                                     : Status::NotFound("conversation " + id + " not found");
}

std::string ConversationJson(const store::Conversation& c) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteConversationFields(w, c);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace

void HandleListConversations(const AppContext& app, const std::string& tenant,
                             const HttpRequest& req, HttpResponse& res) {
  size_t limit = kDefaultLimit;
  if (req.HasQueryParam("limit")) {
    std::string text = req.QueryParam("limit");
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    if (ec != std::errc() || p != text.data() + text.size() || limit < 1 || limit > kMaxLimit) {
      WriteError(res,
                 Status::InvalidArgument("invalid_limit", "limit must be an integer from 1 to " +
                                                              std::to_string(kMaxLimit)));
      return;
    }
  }
  auto page = app.conversations->ListConversations(tenant, limit, req.QueryParam("cursor"));
  if (!page.ok()) {
    WriteError(res, page.status());
    return;
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("conversations");
  w.StartArray();
  for (const auto& c : page->conversations) {
    w.StartObject();
    WriteConversationFields(w, c);
    w.EndObject();
  }
  w.EndArray();
  w.Key("next_cursor");
  if (page->next_cursor.empty()) {
    w.Null();
  } else {
    WriteString(w, page->next_cursor);
  }
  w.EndObject();
  WriteJson(res, 200, {buf.GetString(), buf.GetSize()});
}

void HandleGetConversation(const AppContext& app, const std::string& tenant, const std::string& id,
                           HttpResponse& res) {
  if (Status s = ValidId(id); !s.ok()) return WriteError(res, s);
  auto conv = app.conversations->GetConversation(tenant, id);
  if (!conv.ok()) return WriteError(res, conv.status());
  auto messages = app.conversations->ListMessages(tenant, id);
  if (!messages.ok()) return WriteError(res, messages.status());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteConversationFields(w, *conv);
  w.Key("messages");
  w.StartArray();
  for (const auto& m : *messages) WriteMessage(w, m);
  w.EndArray();
  w.EndObject();
  WriteJson(res, 200, {buf.GetString(), buf.GetSize()});
}

void HandlePatchConversation(const AppContext& app, const std::string& tenant,
                             const HttpRequest& req, const std::string& id, HttpResponse& res) {
  rapidjson::Document doc;
  if (Status s = ParseJsonRequest(req, doc); !s.ok()) return WriteError(res, s);
  Status field_error;
  auto title = GetString(doc, "title", field_error);
  if (!field_error.ok()) return WriteError(res, field_error);
  if (!title || title->empty()) {
    return WriteError(res, Status::InvalidArgument("missing_field", "field 'title' is required"));
  }
  if (Utf8Length(*title) > kMaxTitleChars) {
    return WriteError(
        res, Status(ErrorKind::kUnprocessable, "title_too_long",
                    "title is limited to " + std::to_string(kMaxTitleChars) + " characters"));
  }
  if (Status s = ValidId(id); !s.ok()) return WriteError(res, s);
  auto conv = app.conversations->RenameConversation(tenant, id, std::string(*title));
  if (!conv.ok()) return WriteError(res, conv.status());
  WriteJson(res, 200, ConversationJson(*conv));
}

void HandleDeleteConversation(const AppContext& app, const std::string& tenant,
                              const std::string& id, HttpResponse& res) {
  if (Status s = ValidId(id); !s.ok()) return WriteError(res, s);
  if (Status s = app.conversations->DeleteConversation(tenant, id); !s.ok())
    return WriteError(res, s);
  WriteJson(res, 200, "{\"id\":\"" + id + "\",\"deleted\":true}");
}

}  // namespace ragstream::handlers
