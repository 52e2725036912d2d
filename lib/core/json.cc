#include "lib/core/json.h"

#include <rapidjson/error/en.h>

#include "lib/core/utf8.h"

namespace ragstream {
namespace {

Status Invalid(std::string message) {
  return Status::InvalidArgument("invalid_json", std::move(message));
}

// RapidJSON 1.1.0 decodes an escaped lone surrogate ("\udc00") into bytes that are not UTF-8
// without reporting an error, so every decoded string and key is checked. Depth is bounded by
// the pre-scan, so the recursion is too.
bool AllStringsValid(const rapidjson::Value& v) {
  if (v.IsString()) return IsValidUtf8(AsView(v));
  if (v.IsArray()) {
    for (const auto& item : v.GetArray()) {
      if (!AllStringsValid(item)) return false;
    }
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      if (!IsValidUtf8(AsView(m.name)) || !AllStringsValid(m.value)) return false;
    }
  }
  return true;
}

}  // namespace

Status PrescanJson(std::string_view text, const JsonLimits& limits) {
  int depth = 0;
  size_t i = 0, n = text.size();
  while (i < n) {
    char c = text[i];
    if (c == '"') {  // skip a string, honouring escapes
      ++i;
      while (i < n && text[i] != '"') i += (text[i] == '\\') ? 2 : 1;
      if (i >= n) return Invalid("unterminated string");
      ++i;
    } else if (c == '{' || c == '[') {
      if (++depth > limits.max_depth) return Invalid("JSON nested too deeply");
      ++i;
    } else if (c == '}' || c == ']') {
      --depth;
      ++i;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i, exp_digits = 0;
      bool in_exp = false;
      while (i < n) {
        char d = text[i];
        if (d == 'e' || d == 'E') {
          in_exp = true;
        } else if (d >= '0' && d <= '9') {
          exp_digits += in_exp;
        } else if (d != '-' && d != '+' && d != '.') {
          break;
        }
        ++i;
      }
      if (i - start > limits.max_number_chars) return Invalid("number too long");
      if (exp_digits > limits.max_exponent_digits) return Invalid("number exponent too large");
    } else {
      ++i;
    }
  }
  return Status::Ok();
}

Status ParseUntrustedJson(std::string_view text, rapidjson::Document& doc,
                          const JsonLimits& limits) {
  if (Status s = PrescanJson(text, limits); !s.ok()) return s;
  // Checked here rather than left to kParseValidateEncodingFlag alone: RapidJSON 1.1.0's
  // error path for a bad encoding does arithmetic on a null stack pointer (found by the
  // fuzzer under UBSan).
  if (!IsValidUtf8(text)) return Invalid("the body is not valid UTF-8");
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  doc.Parse<kFlags>(text.data(), text.size());
  if (doc.HasParseError()) {
    return Invalid(std::string("malformed JSON at offset ") + std::to_string(doc.GetErrorOffset()) +
                   ": " + rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!AllStringsValid(doc)) return Invalid("a string is not valid Unicode (lone surrogate)");
  return Status::Ok();
}

namespace {
Status FieldError(const char* name, const char* expected) {
  return Status::InvalidArgument("invalid_field",
                                 std::string("field '") + name + "' must be " + expected);
}
const rapidjson::Value* Find(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}
}  // namespace

std::optional<std::string_view> GetString(const rapidjson::Value& obj, const char* name,
                                          Status& error) {
  const rapidjson::Value* v = Find(obj, name);
  if (!v) return std::nullopt;
  if (!v->IsString()) {
    error = FieldError(name, "a string");
    return std::nullopt;
  }
  // Also checked here for values that did not come through ParseUntrustedJson.
  if (!IsValidUtf8(AsView(*v))) {
    error = FieldError(name, "valid Unicode text (no lone surrogates)");
    return std::nullopt;
  }
  return AsView(*v);
}

std::optional<int64_t> GetInt(const rapidjson::Value& obj, const char* name, Status& error) {
  const rapidjson::Value* v = Find(obj, name);
  if (!v) return std::nullopt;
  if (!v->IsInt64()) {
    error = FieldError(name, "an integer");
    return std::nullopt;
  }
  return v->GetInt64();
}

std::optional<bool> GetBool(const rapidjson::Value& obj, const char* name, Status& error) {
  const rapidjson::Value* v = Find(obj, name);
  if (!v) return std::nullopt;
  if (!v->IsBool()) {
    error = FieldError(name, "a boolean");
    return std::nullopt;
  }
  return v->GetBool();
}

std::string ErrorJson(const Status& status) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  WriteString(w, status.code());
  w.Key("message");
  WriteString(w, status.message());
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

void WriteToolFields(JsonWriter& w, std::string_view tool_calls_json,
                     std::string_view tool_call_id) {
  if (!tool_calls_json.empty()) {
    w.Key("tool_calls");
    w.RawValue(tool_calls_json.data(), tool_calls_json.size(), rapidjson::kArrayType);
  }
  if (!tool_call_id.empty()) {
    w.Key("tool_call_id");
    WriteString(w, tool_call_id);
  }
}

}  // namespace ragstream
