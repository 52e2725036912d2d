#include "handlers/request_body.h"

#include <algorithm>

#include "lib/core/json.h"

namespace ragstream::handlers {

std::string MediaType(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  std::transform(type.begin(), type.end(), type.begin(), ::tolower);
  return type;
}

bool IsJsonContentType(std::string_view content_type) {
  return MediaType(content_type) == "application/json";
}

Status ParseJsonObject(std::string_view body, rapidjson::Document& doc) {
  if (Status s = ParseUntrustedJson(body, doc); !s.ok()) return s;
  if (!doc.IsObject()) {
    return Status::InvalidArgument("invalid_json", "the body must be a JSON object");
  }
  return Status::Ok();
}

Status ParseJsonRequest(const HttpRequest& req, rapidjson::Document& doc) {
  if (!IsJsonContentType(req.content_type)) {
    return {ErrorKind::kUnsupportedMediaType, "unsupported_media_type",
            "send the request as Content-Type: application/json"};
  }
  return ParseJsonObject(req.body, doc);
}

}  // namespace ragstream::handlers
