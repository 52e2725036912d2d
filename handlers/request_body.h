// Reading request bodies: the media type, and a JSON object body parsed with the guards of
// lib/core/json.h. Shared by every handler that takes a body.
#pragma once

#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "lib/core/http.h"
#include "lib/core/status.h"

namespace ragstream::handlers {

// The lower-case media type without parameters ("Application/JSON; charset=utf-8" ->
// "application/json").
std::string MediaType(std::string_view content_type);

// True if the Content-Type names JSON (parameters such as charset are allowed).
bool IsJsonContentType(std::string_view content_type);

// 400 invalid_json unless `body` is a JSON object (guarded parse).
Status ParseJsonObject(std::string_view body, rapidjson::Document& doc);

// 415 unless the request says it is JSON, then ParseJsonObject of its body.
Status ParseJsonRequest(const HttpRequest& req, rapidjson::Document& doc);

}  // namespace ragstream::handlers
