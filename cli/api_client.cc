#include "cli/api_client.h"

#include <algorithm>

#include "cli/format.h"
#include "lib/core/json.h"

namespace ragstream::cli {
namespace {

constexpr long kConnectTimeoutS = 10;
constexpr long kRequestTimeoutS = 300;
constexpr long kStreamSilenceS = 60;
constexpr size_t kMaxBodyBytes = 64 << 20;

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};

struct HeaderList {
  curl_slist* list = nullptr;
  ~HeaderList() { curl_slist_free_all(list); }
  void Add(const std::string& h) { list = curl_slist_append(list, h.c_str()); }
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The text of an HTML error page from a proxy ("<h1>502 Bad Gateway</h1>" -> "502 Bad
// Gateway"); other bodies unchanged.
std::string WithoutTags(std::string_view body) {
  size_t start = body.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos || body[start] != '<') return std::string(body);
  std::string out;
  bool in_tag = false;
  for (char c : body) {
    if (c == '<') {
      in_tag = true;
      out += ' ';
    } else if (c == '>') {
      in_tag = false;
    } else if (!in_tag) {
      out += c;
    }
  }
  return out;
}

}  // namespace

struct ApiClient::Transfer {
  CURL* curl = nullptr;
  const ChunkHandler* on_chunk = nullptr;
  ApiResponse response;
  bool checked_type = false;
  bool streaming = false;
  bool stopped = false;  // on_chunk returned false
};

ApiClient::ApiClient(std::string base_url, std::string api_key)
    : base_url_(std::move(base_url)), api_key_(std::move(api_key)) {
  static CurlGlobal global;
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  curl_ = curl_easy_init();
}

ApiClient::~ApiClient() {
  if (curl_) curl_easy_cleanup(curl_);
}

std::string ApiClient::DisplayUrl() const {
  std::string url = base_url_;
  size_t scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at != std::string::npos && at >= start) url.erase(start, at + 1 - start);
  return url;
}

size_t ApiClient::OnWrite(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!t->checked_type) {
    t->checked_type = true;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->response.status);
    const char* type = nullptr;
    curl_easy_getinfo(t->curl, CURLINFO_CONTENT_TYPE, &type);
    if (type) t->response.content_type = type;
    t->streaming = t->on_chunk && t->response.ok() &&
                   StartsWith(AsciiLower(t->response.content_type), "text/event-stream");
  }
  if (t->streaming) {
    if (!(*t->on_chunk)({data, n})) {
      t->stopped = true;
      return 0;  // aborts the transfer
    }
    return n;
  }
  if (t->response.body.size() + n > kMaxBodyBytes) return 0;
  t->response.body.append(data, n);
  return n;
}

Result<ApiResponse> ApiClient::Send(std::string_view method, std::string_view path,
                                    std::string_view body, std::string_view content_type) {
  return Perform(method, path, body, content_type, nullptr);
}

Result<ApiResponse> ApiClient::Stream(std::string_view path, std::string_view body,
                                      std::string_view content_type, const ChunkHandler& on_chunk) {
  return Perform("POST", path, body, content_type, &on_chunk);
}

Result<ApiResponse> ApiClient::Perform(std::string_view method, std::string_view path,
                                       std::string_view body, std::string_view content_type,
                                       const ChunkHandler* on_chunk) {
  if (!curl_) return Status::Internal("curl_easy_init failed");
  curl_easy_reset(curl_);
  Transfer t;
  t.curl = curl_;
  t.on_chunk = on_chunk;
  char error[CURL_ERROR_SIZE] = {};
  const std::string url = base_url_ + std::string(path);
  const std::string method_s(method);
  HeaderList headers;
  if (!api_key_.empty()) headers.Add("Authorization: Bearer " + api_key_);
  if (!content_type.empty()) headers.Add("Content-Type: " + std::string(content_type));
  headers.Add(on_chunk ? "Accept: text/event-stream" : "Accept: application/json");
  headers.Add("Expect:");  // no 100-continue round trip for large documents

  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl_, CURLOPT_USERAGENT, "ragstream-cli/" RAGSTREAM_VERSION);
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutS);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &ApiClient::OnWrite);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &t);
  if (on_chunk) {
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, kStreamSilenceS);
    curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
  } else {
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, kRequestTimeoutS);
  }
  if (method == "GET") {
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
  } else {
    if (method != "POST") curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method_s.c_str());
    if (method == "POST" || !body.empty()) {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
  }

  CURLcode rc = curl_easy_perform(curl_);
  if (t.response.status == 0) {
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &t.response.status);
  }
  if (!t.checked_type) {
    const char* type = nullptr;
    curl_easy_getinfo(curl_, CURLINFO_CONTENT_TYPE, &type);
    if (type) t.response.content_type = type;
  }
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, nullptr);
  std::string reason = error[0] ? error : curl_easy_strerror(rc);
  if (rc != CURLE_OK && !t.stopped) {
    if (t.response.status == 0) {
      return Status(ErrorKind::kUnavailable, "unreachable",
                    "cannot reach " + DisplayUrl() + " (" + reason + ")");
    }
    if (!t.streaming) {
      return Status(ErrorKind::kUnavailable, "transfer_failed",
                    "the response from " + DisplayUrl() + " was cut (" + reason + ")");
    }
    t.response.transfer_error = reason;
  }
  return std::move(t.response);
}

std::string UrlEscape(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Status ErrorFromResponse(const ApiResponse& response) {
  rapidjson::Document doc;
  if (ParseUntrustedJson(response.body, doc).ok() && doc.IsObject()) {
    auto it = doc.FindMember("error");
    if (it != doc.MemberEnd() && it->value.IsObject()) {
      std::string code(JsonStr(it->value, "code"));
      std::string message(JsonStr(it->value, "message"));
      if (!code.empty()) {
        return Status(ErrorKind::kInternal, Clean(code, 100), Clean(message, 2000));
      }
    }
  }
  std::string excerpt = Clean(WithoutTags(response.body), 200);
  return Status(
      ErrorKind::kInternal, "http_" + std::to_string(response.status),
      excerpt.empty() ? "the server answered HTTP " + std::to_string(response.status) : excerpt);
}

Status JsonFromResponse(const Result<ApiResponse>& response, rapidjson::Document& doc) {
  if (!response.ok()) return response.status();
  if (!response->ok()) return ErrorFromResponse(response.value());
  if (Status s = ParseUntrustedJson(response->body, doc); !s.ok() || !doc.IsObject()) {
    return Status(ErrorKind::kInternal, "invalid_response",
                  "the server's answer is not the JSON object expected (HTTP " +
                      std::to_string(response->status) + ")");
  }
  return Status::Ok();
}

}  // namespace ragstream::cli
