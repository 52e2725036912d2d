#include "cli/conversation_view.h"

#include "cli/format.h"
#include "lib/core/utf8.h"

namespace ragstream::cli {
namespace {

std::string Title(const rapidjson::Value& c) {
  std::string title = Clean(JsonStr(c, "title"), 200);
  return title.empty() ? "Untitled conversation" : title;
}

// One line per source: "N. title — excerpt".
std::string SourceLines(const rapidjson::Value& message, const std::string& indent, bool markdown) {
  const rapidjson::Value* sources = JsonArray(message, "sources");
  if (!sources || sources->Empty()) return "";
  std::string out;
  int n = 0;
  for (const auto& s : sources->GetArray()) {
    std::string title = Clean(JsonStr(s, "title"), 120);
    if (title.empty()) title = "(untitled)";
    std::string excerpt = Clean(JsonStr(s, "text"), 160);
    std::string num = std::to_string(++n);
    if (markdown) {
      out += indent + num + ". **" + title + "** — " + excerpt + " (`" +
             Clean(JsonStr(s, "document_id"), 64) + "`)\n";
    } else {
      out += indent + "[" + num + "] " + title + " — " + excerpt + "\n";
    }
  }
  return out;
}

std::string ErrorLine(const rapidjson::Value& message) {
  if (!message.IsObject()) return "";
  auto err = message.FindMember("error");
  if (err == message.MemberEnd() || !err->value.IsObject()) return "";
  return Clean(JsonStr(err->value, "code"), 100) + ": " +
         Clean(JsonStr(err->value, "message"), 500);
}

}  // namespace

Status FetchConversation(ApiClient& client, const std::string& id, rapidjson::Document& doc,
                         std::string* raw) {
  if (id.empty() || !IsValidUtf8(id)) {
    return Status::InvalidArgument("invalid_id", "not a conversation id");
  }
  auto response = client.Send("GET", "/api/conversations/" + UrlEscape(id));
  if (Status s = JsonFromResponse(response, doc); !s.ok()) return s;
  if (raw) *raw = std::move(response->body);
  return Status::Ok();
}

std::string ConversationText(const rapidjson::Value& c) {
  std::string out = Title(c) + "\n";
  out += Clean(JsonStr(c, "id"), 64) + " · " + std::to_string(JsonInt(c, "message_count")) +
         " messages · created " + LocalTime(JsonInt(c, "created_at")) + " · updated " +
         LocalTime(JsonInt(c, "updated_at")) + "\n";
  const rapidjson::Value* messages = JsonArray(c, "messages");
  if (!messages) return out;
  for (const auto& m : messages->GetArray()) {
    out += "\n[" + Clean(JsonStr(m, "role"), 20) + "] " + Clean(JsonStr(m, "status"), 20) + " · " +
           LocalTime(JsonInt(m, "created_at")) + "\n";
    std::string text = CleanBlock(JsonStr(m, "content"));
    out += text.empty() ? "(empty)\n" : text + (text.back() == '\n' ? "" : "\n");
    if (std::string sources = SourceLines(m, "  ", false); !sources.empty()) {
      out += "\nSources:\n" + sources;
    }
    if (std::string err = ErrorLine(m); !err.empty()) out += "error: " + err + "\n";
  }
  return out;
}

std::string ConversationMarkdown(const rapidjson::Value& c) {
  std::string out = "# " + Title(c) + "\n\n";
  out += "_Conversation `" + Clean(JsonStr(c, "id"), 64) + "`, created " +
         LocalTime(JsonInt(c, "created_at")) + ", updated " + LocalTime(JsonInt(c, "updated_at")) +
         "._\n";
  const rapidjson::Value* messages = JsonArray(c, "messages");
  if (!messages) return out;
  for (const auto& m : messages->GetArray()) {
    const bool user = JsonStr(m, "role") == "user";
    std::string content(SanitizeUtf8(JsonStr(m, "content")));
    while (!content.empty() && (content.back() == '\n' || content.back() == ' ')) {
      content.pop_back();
    }
    out += std::string("\n") + (user ? "**User:** " : "**Assistant:** ") + content + "\n";
    std::string_view status = JsonStr(m, "status");
    if (!user && !status.empty() && status != "complete") {
      std::string err = ErrorLine(m);
      out += "\n_(answer " + Clean(status, 20) + (err.empty() ? "" : ": " + err) + ")_\n";
    }
    if (std::string sources = SourceLines(m, "", true); !sources.empty()) {
      out += "\nSources:\n\n" + sources;
    }
  }
  return out;
}

}  // namespace ragstream::cli
