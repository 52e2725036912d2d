#include "lib/fcgi/fcgi_exchange.h"

#include <poll.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace ragstream::fcgi {
namespace {

std::string Param(FCGX_Request& req, const char* name) {
  const char* v = FCGX_GetParam(name, req.envp);
  return v ? std::string(v) : std::string();
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 403:
      return "Forbidden";
    case 409:
      return "Conflict";
    case 507:
      return "Insufficient Storage";
    default:
      return "";
  }
}

}  // namespace

Status ReadRequest(FCGX_Request& req, uint64_t max_body_bytes, HttpRequest& out) {
  return ReadRequest(
      req, [max_body_bytes](const HttpRequest&) { return max_body_bytes; }, out);
}

Status ReadRequest(FCGX_Request& req, const std::function<uint64_t(const HttpRequest&)>& limit_for,
                   HttpRequest& out) {
  out.method = Param(req, "REQUEST_METHOD");
  out.path = Param(req, "DOCUMENT_URI");
  if (out.path.empty()) {
    out.path = Param(req, "REQUEST_URI");
    out.path = out.path.substr(0, out.path.find('?'));
  }
  out.query = Param(req, "QUERY_STRING");
  out.content_type = Param(req, "CONTENT_TYPE");
  out.remote_addr = Param(req, "REMOTE_ADDR");
  out.request_id = Param(req, "REQUEST_ID");
  for (char** p = req.envp; p && *p; ++p) {
    std::string_view kv(*p);
    if (kv.substr(0, 5) != "HTTP_") continue;
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(kv.substr(5, eq - 5));
    for (char& c : name) c = c == '_' ? '-' : static_cast<char>(std::tolower(c));
    out.headers[name] = std::string(kv.substr(eq + 1));
  }

  const uint64_t max_body_bytes = limit_for(out);
  std::string length_text = Param(req, "CONTENT_LENGTH");
  uint64_t length = 0;
  if (!length_text.empty()) {
    auto [ptr, ec] =
        std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
    if (ec != std::errc()) {
      return Status::InvalidArgument("invalid_request", "bad Content-Length");
    }
  }
  if (length > max_body_bytes) {
    return {ErrorKind::kTooLarge, "body_too_large",
            "request body is " + std::to_string(length) + " bytes; the limit is " +
                std::to_string(max_body_bytes)};
  }
  // Read in pieces rather than allocating Content-Length up front: memory follows the bytes
  // that actually arrive, not what a header claims. Straight into the string: a 16 KiB stack
  // buffer here stayed resident in every one of the pool's threads.
  constexpr uint64_t kPiece = 16384;
  while (out.body.size() < length) {
    const size_t have = out.body.size();
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kPiece, length - have));
    out.body.resize(have + want);
    int n = FCGX_GetStr(out.body.data() + have, static_cast<int>(want), req.in);
    out.body.resize(have + static_cast<size_t>(std::max(n, 0)));
    if (n <= 0) break;
  }
  if (out.body.size() != length) {
    return Status::InvalidArgument("invalid_request", "request body shorter than Content-Length");
  }
  return Status::Ok();
}

void FcgiResponse::AddHeader(std::string_view name, std::string_view value) {
  if (headers_sent_) return;
  headers_.append(name).append(": ").append(value).append("\r\n");
}

bool FcgiResponse::SendHeaders() {
  headers_sent_ = true;
  std::string head = "Status: " + std::to_string(status_) + " " + Reason(status_) + "\r\n";
  head += headers_;
  head += "\r\n";
  headers_.clear();
  if (FCGX_PutStr(head.data(), static_cast<int>(head.size()), req_.out) < 0) failed_ = true;
  return !failed_;
}

bool FcgiResponse::Write(std::string_view bytes) {
  if (failed_) return false;
  if (!headers_sent_ && !SendHeaders()) return false;
  if (!bytes.empty() && FCGX_PutStr(bytes.data(), static_cast<int>(bytes.size()), req_.out) < 0) {
    failed_ = true;
  }
  bytes_written_ += bytes.size();
  return !failed_;
}

bool FcgiResponse::Flush() {
  if (failed_) return false;
  if (!headers_sent_ && !SendHeaders()) return false;
  // A failed flush is how a worker learns that nginx (so the client) has gone.
  if (FCGX_FFlush(req_.out) < 0) failed_ = true;
  return !failed_;
}

bool FcgiResponse::ClientGone() {
  if (failed_) return true;
  // nginx closes the FastCGI connection when its client leaves (fastcgi_keep_conn off and
  // fastcgi_ignore_client_abort off): notice it without writing.
  pollfd p{req_.ipcFd, POLLRDHUP, 0};
  if (req_.ipcFd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
    failed_ = true;
  }
  return failed_;
}

}  // namespace ragstream::fcgi
