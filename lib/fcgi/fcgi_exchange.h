// One FastCGI request/response, adapted to the transport-neutral HttpRequest/HttpResponse.
//
// libfcgi frees the request's params at the next FCGX_Accept_r, so ReadRequest copies every
// value it keeps. The body is read only up to a limit: a larger CONTENT_LENGTH is reported
// as too large without reading it.
#pragma once

#include <fcgiapp.h>

#include <functional>
#include <string>

#include "lib/core/http.h"
#include "lib/core/status.h"

namespace ragstream::fcgi {

// Fills `out` from `req` (params copied, body read). Returns TooLarge (413) when the body
// exceeds `max_body_bytes`, InvalidArgument when it is shorter than CONTENT_LENGTH.
Status ReadRequest(FCGX_Request& req, uint64_t max_body_bytes, HttpRequest& out);
// The same, with the body limit chosen per request from its method and path (read first).
Status ReadRequest(FCGX_Request& req,
                   const std::function<uint64_t(const HttpRequest&)>& max_body_bytes,
                   HttpRequest& out);

class FcgiResponse : public HttpResponse {
 public:
  explicit FcgiResponse(FCGX_Request& req) : req_(req) {}
  void SetStatus(int status) override { status_ = status; }
  void AddHeader(std::string_view name, std::string_view value) override;
  bool Write(std::string_view bytes) override;
  bool Flush() override;
  bool ClientGone() override;
  bool HeadersSent() const override { return headers_sent_; }

  int status() const { return status_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  bool SendHeaders();

  FCGX_Request& req_;
  int status_ = 200;
  std::string headers_;
  bool headers_sent_ = false;
  bool failed_ = false;
  uint64_t bytes_written_ = 0;
};

}  // namespace ragstream::fcgi
