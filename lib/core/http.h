// Transport-neutral HTTP request and response. Handlers read an HttpRequest and write to an
// HttpResponse, so they can be driven by a fake in unit tests; lib/fcgi implements them.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ragstream {

struct HttpRequest {
  std::string method;        // "GET", "POST", ...
  std::string path;          // without the query string
  std::string query;         // raw, without '?'
  std::string content_type;  // as sent, may include "; charset=..."
  std::string body;
  std::string request_id;   // from nginx ($request_id), or generated
  std::string remote_addr;  // REMOTE_ADDR as the FastCGI peer sent it: only as good as the peer
  // Whether the FastCGI peer itself is on this machine and trusted: a unix-socket peer running
  // as this process's user or root (SO_PEERCRED), or a TCP peer on a loopback address. Set by
  // the transport, never from anything the peer sends.
  bool peer_is_local = false;
  std::map<std::string, std::string> headers;  // lower-case names, e.g. "last-event-id"

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  // The decoded value of query parameter `name`, or "" if absent.
  std::string QueryParam(std::string_view name) const;
  bool HasQueryParam(std::string_view name) const;
};

// Decodes %XX and '+' in a query component.
std::string UrlDecode(std::string_view s);

class HttpResponse {
 public:
  virtual ~HttpResponse() = default;
  // Status and headers may be set until the first Write; they are sent with it.
  virtual void SetStatus(int status) = 0;
  virtual void AddHeader(std::string_view name, std::string_view value) = 0;
  // False once the client is gone (a failed write); further writes are ignored.
  virtual bool Write(std::string_view bytes) = 0;
  // Pushes buffered bytes to the client now. False once the client is gone.
  virtual bool Flush() = 0;
  // True if the client has gone, noticed without writing (peer closed the connection).
  virtual bool ClientGone() = 0;
  virtual bool HeadersSent() const = 0;
};

// Writes a complete JSON response.
void WriteJson(HttpResponse& res, int status, std::string_view json);

}  // namespace ragstream
