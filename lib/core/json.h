// JSON in and out with RapidJSON.
//
// Debian's RapidJSON 1.1.0 has known, unpatched parser bugs: exponent overflow that reads out
// of bounds (CVE-2024-38517, CVE-2024-39684; e.g. "1e-2147483649"), very long numbers that
// overflow the cached-power index, and unbounded recursion on deep nesting. So an untrusted
// body first passes a linear pre-scan (nesting depth, number length, exponent digits, size),
// and only then is parsed, iteratively (no recursion) and with UTF-8 validation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "lib/core/status.h"

namespace ragstream {

struct JsonLimits {
  int max_depth = 32;
  size_t max_number_chars = 24;  // longer numbers are never needed by this API
  size_t max_exponent_digits = 3;
};

// Checks the shape hazards above without building anything. Ok or invalid_json.
Status PrescanJson(std::string_view text, const JsonLimits& limits = {});

// Pre-scan plus a validating, iterative parse into `doc`. Ok or invalid_json (400).
Status ParseUntrustedJson(std::string_view text, rapidjson::Document& doc,
                          const JsonLimits& limits = {});

// Typed field access for validation: each returns nullopt when absent (or null) and sets
// `error` to an invalid_field Status when present with the wrong type (for strings: or when
// the decoded text is not valid UTF-8).
std::optional<std::string_view> GetString(const rapidjson::Value& obj, const char* name,
                                          Status& error);
std::optional<int64_t> GetInt(const rapidjson::Value& obj, const char* name, Status& error);
std::optional<bool> GetBool(const rapidjson::Value& obj, const char* name, Status& error);

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

inline void WriteString(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline void WriteKey(JsonWriter& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline std::string_view AsView(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

// {"error": {"code": ..., "message": ...}}
std::string ErrorJson(const Status& status);

// An OpenAI chat message's tool fields, each only when set: "tool_calls" (the JSON array, as
// stored) and "tool_call_id". The stored record, the API's messages and the upstream request
// all write them so.
void WriteToolFields(JsonWriter& w, std::string_view tool_calls_json,
                     std::string_view tool_call_id);

}  // namespace ragstream
