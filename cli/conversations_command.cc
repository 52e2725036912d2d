// ragstream conversations list | show ID
#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/conversation_view.h"
#include "cli/format.h"
#include "cli/json_reformat.h"

namespace ragstream::cli {
namespace {

constexpr long long kPageMax = 100;  // the API's largest ?limit=

}  // namespace

int RunConversationsList(const Context& ctx) {
  const bool all = ctx.args.Has("--all");
  long long limit = 20;
  if (auto v = ctx.args.Get("--limit")) {
    if (all) return UsageError(ctx, "use --limit N or --all, not both");
    auto n = ParseInt(*v, 1, 1'000'000'000);
    if (!n) return UsageError(ctx, "--limit must be a positive integer");
    limit = *n;
  }
  ApiClient client(ctx.url, ctx.api_key);
  std::vector<std::vector<std::string>> rows;
  std::string cursor;
  bool more = false;
  while (all || static_cast<long long>(rows.size()) < limit) {
    long long want =
        all ? kPageMax : std::min(kPageMax, limit - static_cast<long long>(rows.size()));
    std::string path = "/api/conversations?limit=" + std::to_string(want);
    if (!cursor.empty()) path += "&cursor=" + UrlEscape(cursor);
    rapidjson::Document doc;
    if (Status s = JsonFromResponse(client.Send("GET", path), doc); !s.ok()) {
      return PrintFailure(s);
    }
    const rapidjson::Value* list = JsonArray(doc, "conversations");
    if (!list) {
      return PrintFailure(Status(ErrorKind::kInternal, "invalid_response",
                                 "no 'conversations' array in the server's answer"));
    }
    for (const auto& c : list->GetArray()) {
      rows.push_back({Clean(JsonStr(c, "id"), 64), LocalTime(JsonInt(c, "updated_at")),
                      std::to_string(JsonInt(c, "message_count")), Clean(JsonStr(c, "title"), 80)});
    }
    cursor = std::string(JsonStr(doc, "next_cursor"));
    more = !cursor.empty();
    if (!more || list->Empty()) break;
  }
  if (rows.empty()) {
    std::printf("no conversations\n");
    return kExitOk;
  }
  PrintTable(stdout, {"ID", "UPDATED", "MESSAGES", "TITLE"}, rows);
  if (more && !all) {
    std::fprintf(stderr, "(more conversations: use --limit N or --all)\n");
  }
  return kExitOk;
}

int RunConversationsShow(const Context& ctx) {
  ApiClient client(ctx.url, ctx.api_key);
  rapidjson::Document doc;
  if (Status s = FetchConversation(client, ctx.args.positional[0], doc); !s.ok()) {
    return PrintFailure(s);
  }
  std::string text = ConversationText(doc);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

int RunConversationsExport(const Context& ctx) {
  std::string format = ctx.args.Get("--format").value_or("markdown");
  if (format != "json" && format != "markdown") {
    return UsageError(ctx, "--format must be json or markdown");
  }
  ApiClient client(ctx.url, ctx.api_key);
  rapidjson::Document doc;
  std::string raw;
  if (Status s = FetchConversation(client, ctx.args.positional[0], doc, &raw); !s.ok()) {
    return PrintFailure(s);
  }
  std::string text;
  if (format == "json") {
    // The server's object exactly (numbers as sent), indented.
    auto json = ReformatJson(raw, 2);
    if (!json.ok()) return PrintFailure(json.status());
    text = *json + "\n";
  } else {
    text = ConversationMarkdown(doc);
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace ragstream::cli
