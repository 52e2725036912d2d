// A small HTTP client for the ragstream API on libcurl's easy interface: one handle, reused
// across requests (keep-alive), the API key sent as a bearer token and never printed.
// Not thread-safe: one ApiClient per thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <curl/curl.h>
#include <rapidjson/document.h>

#include "lib/core/status.h"

namespace ragstream::cli {

struct ApiResponse {
  long status = 0;             // HTTP status
  std::string content_type;    // as sent
  std::string body;            // the body (Stream(): only when it was not an event stream, capped)
  std::string transfer_error;  // Stream(): set when the body ended abnormally (reset, timeout)
  bool ok() const { return status >= 200 && status < 300; }
};

class ApiClient {
 public:
  // `base_url` without a trailing slash is joined with API paths ("/api/health"); it may
  // have a path prefix. An empty `api_key` sends no Authorization header.
  ApiClient(std::string base_url, std::string api_key);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // Sends one request and reads the whole response. Any HTTP status is a value; a failure to
  // get a response at all (connection refused, DNS, TLS, timeout) is an `unreachable` Status.
  Result<ApiResponse> Send(std::string_view method, std::string_view path,
                           std::string_view body = {}, std::string_view content_type = {});

  // POSTs `body` and, if the answer is a 2xx text/event-stream, hands each chunk of it to
  // `on_chunk` as it arrives (returning false stops the transfer, which is not an error).
  // Otherwise the body is collected into the response. Waits as long as bytes keep coming
  // (the server pings an idle stream); gives up after 60 s of silence.
  using ChunkHandler = std::function<bool(std::string_view)>;
  Result<ApiResponse> Stream(std::string_view path, std::string_view body,
                             std::string_view content_type, const ChunkHandler& on_chunk);

  // The base URL without any user:password@ part, for messages.
  std::string DisplayUrl() const;

 private:
  struct Transfer;
  static size_t OnWrite(char* data, size_t size, size_t count, void* user);
  Result<ApiResponse> Perform(std::string_view method, std::string_view path, std::string_view body,
                              std::string_view content_type, const ChunkHandler* on_chunk);

  std::string base_url_;
  std::string api_key_;
  CURL* curl_ = nullptr;
};

// Percent-encodes `s` for a query component (RFC 3986 unreserved characters stay).
std::string UrlEscape(std::string_view s);

// The Status of a non-2xx response: the server's {"error": {"code", "message"}} when it sent
// one, else http_<status> with a cleaned excerpt of the body (an HTML page from a proxy).
Status ErrorFromResponse(const ApiResponse& response);

// A 2xx response parsed as JSON (with the guards of ParseUntrustedJson) into `doc`; else the
// response's error, or invalid_response when the body is not the JSON object expected.
Status JsonFromResponse(const Result<ApiResponse>& response, rapidjson::Document& doc);

}  // namespace ragstream::cli
