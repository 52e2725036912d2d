// ragstream documents list | delete ID...
#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "lib/core/utf8.h"

namespace ragstream::cli {

int RunDocumentsList(const Context& ctx) {
  ApiClient client(ctx.url, ctx.api_key);
  rapidjson::Document doc;
  if (Status s = JsonFromResponse(client.Send("GET", "/api/documents"), doc); !s.ok()) {
    return PrintFailure(s);
  }
  const rapidjson::Value* list = JsonArray(doc, "documents");
  if (!list) {
    return PrintFailure(Status(ErrorKind::kInternal, "invalid_response",
                               "no 'documents' array in the server's answer"));
  }
  if (list->Empty()) {
    std::printf("no documents\n");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  uint64_t bytes = 0;
  for (const auto& d : list->GetArray()) {
    bytes += static_cast<uint64_t>(JsonInt(d, "bytes"));
    rows.push_back({Clean(JsonStr(d, "id"), 64), LocalTime(JsonInt(d, "created_at")),
                    std::to_string(JsonInt(d, "chunks")), std::to_string(JsonInt(d, "bytes")),
                    Clean(JsonStr(d, "title"), 80)});
  }
  PrintTable(stdout, {"ID", "CREATED", "CHUNKS", "BYTES", "TITLE"}, rows);
  std::printf("%zu documents, %s\n", rows.size(), HumanBytes(bytes).c_str());
  return kExitOk;
}

int RunDocumentsDelete(const Context& ctx) {
  ApiClient client(ctx.url, ctx.api_key);
  int rc = kExitOk;
  for (const auto& id : ctx.args.positional) {
    if (id.empty() || !IsValidUtf8(id)) {
      rc = PrintFailure(Status::InvalidArgument("invalid_id", "not a document id"));
      continue;
    }
    rapidjson::Document doc;
    auto response = client.Send("DELETE", "/api/documents/" + UrlEscape(id));
    if (Status s = JsonFromResponse(response, doc); !s.ok()) {
      rc = PrintFailure(s);
      if (s.code() == "unreachable") break;
      continue;
    }
    std::printf("deleted %s\n", Clean(id, 64).c_str());
  }
  return rc;
}

}  // namespace ragstream::cli
