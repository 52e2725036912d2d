#include "lib/core/http.h"

namespace ragstream {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <typename F>
void ForEachQueryPair(std::string_view query, F f) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (f(UrlDecode(key), value)) return;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

std::string UrlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string HttpRequest::QueryParam(std::string_view name) const {
  std::string result;
  ForEachQueryPair(query, [&](const std::string& key, std::string_view value) {
    if (key != name) return false;
    result = UrlDecode(value);
    return true;
  });
  return result;
}

bool HttpRequest::HasQueryParam(std::string_view name) const {
  bool found = false;
  ForEachQueryPair(query, [&](const std::string& key, std::string_view) {
    found = key == name;
    return found;
  });
  return found;
}

void WriteJson(HttpResponse& res, int status, std::string_view json) {
  res.SetStatus(status);
  res.AddHeader("Content-Type", "application/json");
  res.AddHeader("Cache-Control", "no-store");
  res.Write(json);
  res.Write("\n");
}

}  // namespace ragstream
