#include "handlers/document_batch.h"

#include <string>

#include "lib/core/json.h"

namespace ragstream::handlers {
namespace {

Status TooMany(size_t max_documents) {
  return {ErrorKind::kTooLarge, "too_many_documents",
          "a batch holds at most " + std::to_string(max_documents) +
              " documents; send the rest in another request"};
}

// One {"title"?, "text"} object; `where` ("line 3", "index 2") prefixes any error.
Status ReadDocument(const rapidjson::Value& v, const std::string& where, rag::IngestInput& out) {
  if (!v.IsObject()) {
    return Status::InvalidArgument("invalid_json", where +
                                                       ": each document must be a JSON object "
                                                       "{\"title\"?: string, \"text\": string}");
  }
  Status field_error;
  auto title = GetString(v, "title", field_error);
  auto text = GetString(v, "text", field_error);
  if (!field_error.ok()) {
    return Status(field_error.kind(), field_error.code(), where + ": " + field_error.message());
  }
  if (!text) return Status::InvalidArgument("missing_field", where + ": field 'text' is required");
  out.title = title ? std::string(*title) : std::string();
  out.text = std::string(*text);
  return Status::Ok();
}

Result<std::vector<rag::IngestInput>> ParseNdjson(std::string_view body, size_t max_documents) {
  std::vector<rag::IngestInput> docs;
  size_t line_number = 0;
  while (!body.empty()) {
    const size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (docs.size() == max_documents) return TooMany(max_documents);
    const std::string where = "line " + std::to_string(line_number);
    rapidjson::Document doc;
    if (Status s = ParseUntrustedJson(line, doc); !s.ok()) {
      return Status(s.kind(), s.code(), where + ": " + s.message());
    }
    rag::IngestInput in;
    if (Status s = ReadDocument(doc, where, in); !s.ok()) return s;
    docs.push_back(std::move(in));
  }
  return docs;
}

Result<std::vector<rag::IngestInput>> ParseArray(std::string_view body, size_t max_documents) {
  rapidjson::Document doc;
  if (Status s = ParseUntrustedJson(body, doc); !s.ok()) return s;
  if (!doc.IsArray()) {
    return Status::InvalidArgument(
        "invalid_json",
        "the body must be a JSON array of {\"title\"?, \"text\"} objects (or NDJSON, one a line, "
        "as application/x-ndjson)");
  }
  if (doc.Size() > max_documents) return TooMany(max_documents);
  std::vector<rag::IngestInput> docs;
  docs.reserve(doc.Size());
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    rag::IngestInput in;
    if (Status s = ReadDocument(doc[i], "index " + std::to_string(i), in); !s.ok()) return s;
    docs.push_back(std::move(in));
  }
  return docs;
}

}  // namespace

Result<std::vector<rag::IngestInput>> ParseDocumentBatch(std::string_view media_type,
                                                         std::string_view body,
                                                         size_t max_documents) {
  const bool ndjson = media_type == "application/x-ndjson";
  if (!ndjson && media_type != "application/json") {
    return Status(ErrorKind::kUnsupportedMediaType, "unsupported_media_type",
                  "send the batch as application/x-ndjson (one {\"title\"?, \"text\"} object a "
                  "line) or application/json (an array of them)");
  }
  auto docs = ndjson ? ParseNdjson(body, max_documents) : ParseArray(body, max_documents);
  if (docs.ok() && docs->empty()) {
    return Status::InvalidArgument("empty_batch", "the batch has no documents");
  }
  return docs;
}

}  // namespace ragstream::handlers
