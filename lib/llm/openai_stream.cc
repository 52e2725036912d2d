#include "lib/llm/openai_stream.h"

#include "lib/core/json.h"

namespace ragstream::llm {
namespace {

// Upstream JSON is not fully trusted either: the same pre-scan, a more generous shape, and
// no encoding validation here because a delta may carry raw bytes of a split character
// (the UTF-8 hold-back downstream deals with that).
bool ParseUpstream(std::string_view text, rapidjson::Document& doc) {
  JsonLimits limits;
  limits.max_depth = 64;
  limits.max_number_chars = 40;
  if (!PrescanJson(text, limits).ok()) return false;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  return !doc.HasParseError() && doc.IsObject();
}

std::string StringOr(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return std::string(AsView(it->value));
}

bool ExtractError(const rapidjson::Value& err, std::string& code, std::string& message) {
  if (err.IsString()) {
    message = AsView(err);
    code = "upstream_error";
    return true;
  }
  if (!err.IsObject()) return false;
  message = StringOr(err, "message");
  code = StringOr(err, "code");
  if (code.empty()) code = StringOr(err, "type");
  if (code.empty()) code = "upstream_error";
  return true;
}

void DecodeToolCalls(const rapidjson::Value& delta, std::vector<ToolCallDelta>& out) {
  if (!delta.IsObject()) return;
  auto calls = delta.FindMember("tool_calls");
  if (calls == delta.MemberEnd() || !calls->value.IsArray()) return;
  for (const auto& c : calls->value.GetArray()) {
    if (!c.IsObject()) continue;
    ToolCallDelta d;
    auto index = c.FindMember("index");
    d.index = index != c.MemberEnd() && index->value.IsInt() ? index->value.GetInt() : 0;
    if (d.index < 0 || d.index > 127) continue;  // a sane bound on parallel calls
    d.id = StringOr(c, "id");
    if (auto fn = c.FindMember("function"); fn != c.MemberEnd()) {
      d.name = StringOr(fn->value, "name");
      d.arguments = StringOr(fn->value, "arguments");
    }
    out.push_back(std::move(d));
  }
}

}  // namespace

ChunkInfo DecodeChunk(std::string_view data) {
  ChunkInfo info;
  if (data == "[DONE]") {
    info.kind = ChunkInfo::Kind::kDone;
    return info;
  }
  rapidjson::Document doc;
  if (!ParseUpstream(data, doc)) return info;
  if (auto err = doc.FindMember("error"); err != doc.MemberEnd() && !err->value.IsNull()) {
    if (ExtractError(err->value, info.error_code, info.error_message)) {
      info.kind = ChunkInfo::Kind::kError;
    }
    return info;
  }
  info.kind = ChunkInfo::Kind::kChunk;
  if (auto choices = doc.FindMember("choices");
      choices != doc.MemberEnd() && choices->value.IsArray() && !choices->value.Empty()) {
    const rapidjson::Value& choice = choices->value[0];
    if (choice.IsObject()) {
      if (auto delta = choice.FindMember("delta"); delta != choice.MemberEnd()) {
        info.content = StringOr(delta->value, "content");
        DecodeToolCalls(delta->value, info.tool_calls);
      }
      info.finish_reason = StringOr(choice, "finish_reason");
    }
  }
  if (auto usage = doc.FindMember("usage"); usage != doc.MemberEnd() && usage->value.IsObject()) {
    const rapidjson::Value& u = usage->value;
    auto get = [&u](const char* name) -> int64_t {
      auto it = u.FindMember(name);
      return it != u.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
    };
    info.usage.present = true;
    info.usage.prompt_tokens = get("prompt_tokens");
    info.usage.completion_tokens = get("completion_tokens");
    info.usage.total_tokens = get("total_tokens");
  }
  return info;
}

bool DecodeErrorBody(std::string_view body, std::string& code, std::string& message) {
  rapidjson::Document doc;
  if (!ParseUpstream(body, doc)) return false;
  auto err = doc.FindMember("error");
  if (err == doc.MemberEnd()) return false;
  return ExtractError(err->value, code, message);
}

std::string Scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  static constexpr std::string_view kMask = "[redacted]";
  // Search on after each replacement, so a key that occurs in the mask cannot loop forever.
  for (size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + kMask.size())) {
    text.replace(at, secret.size(), kMask);
  }
  return text;
}

Status ClientFacingUpstreamError(long http_status, const std::string& upstream_code) {
  if (upstream_code == "insufficient_quota") {
    return Status::Upstream("upstream_quota_exceeded",
                            "the model's service reports that its quota is used up");
  }
  if (http_status == 429) {
    return Status::Upstream("upstream_rate_limited",
                            "the model's service is limiting requests; try again shortly");
  }
  if (http_status == 401 || http_status == 403) {
    return Status::Upstream("upstream_auth", "the model's service refused ragstream's credentials");
  }
  // A fixed code per class of failure, so the API's list of codes is finite; the number is
  // in the message (and the upstream's own words only in the worker's log).
  return Status::Upstream(http_status >= 500 ? "upstream_server_error" : "upstream_rejected",
                          "the model's service answered HTTP " + std::to_string(http_status));
}

std::string ToolCallsJson(const std::vector<ToolCall>& calls) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartArray();
  for (const auto& c : calls) {
    w.StartObject();
    w.Key("id");
    WriteString(w, c.id);
    w.Key("type");
    w.String("function");
    w.Key("function");
    w.StartObject();
    w.Key("name");
    WriteString(w, c.name);
    w.Key("arguments");
    WriteString(w, c.arguments);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace ragstream::llm
