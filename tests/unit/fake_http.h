// A recording HttpResponse for unit tests: keeps the status, headers and body, counts
// flushes, and can be told to fail writes (a departed client).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/core/http.h"

namespace ragstream::testing {

class FakeHttpResponse : public HttpResponse {
 public:
  void SetStatus(int status) override { status_ = status; }
  void AddHeader(std::string_view name, std::string_view value) override {
    headers_.emplace_back(std::string(name), std::string(value));
  }
  bool Write(std::string_view bytes) override {
    ++writes_;
    if (fail_writes_) return false;
    headers_sent_ = true;
    body_.append(bytes);
    return true;
  }
  bool Flush() override {
    ++flushes_;
    return !fail_writes_;
  }
  bool ClientGone() override { return client_gone_; }
  bool HeadersSent() const override { return headers_sent_; }

  // The value of the first header named `name` (case-insensitive), "" if absent.
  std::string Header(std::string_view name) const {
    for (const auto& [n, v] : headers_) {
      if (EqualsIgnoreCase(n, name)) return v;
    }
    return {};
  }
  size_t HeaderCount(std::string_view name) const {
    size_t count = 0;
    for (const auto& [n, v] : headers_) count += EqualsIgnoreCase(n, name);
    return count;
  }

  int status() const { return status_; }
  const std::string& body() const { return body_; }
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }
  int flushes() const { return flushes_; }
  int writes() const { return writes_; }

  void set_fail_writes(bool fail) { fail_writes_ = fail; }
  void set_client_gone(bool gone) { client_gone_ = gone; }

 private:
  static bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      char x = a[i], y = b[i];
      if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
      if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
      if (x != y) return false;
    }
    return true;
  }

  int status_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string body_;
  int flushes_ = 0;
  int writes_ = 0;
  bool fail_writes_ = false;
  bool client_gone_ = false;
  bool headers_sent_ = false;
};

}  // namespace ragstream::testing
