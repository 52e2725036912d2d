// Server-Sent Events framing over an HttpResponse: the headers, a `retry:` hint, then one
// `id:` + `data:` event per call, each flushed at once. Every method returns false once the
// client is gone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/core/http.h"

namespace ragstream::fcgi {

class SseWriter {
 public:
  explicit SseWriter(HttpResponse& res, int retry_ms = 3000) : res_(res), retry_ms_(retry_ms) {}

  // Status 200, the event-stream headers and the retry hint.
  bool Begin();
  // `data` is one line of JSON (no newlines). The event's id is its sequence number.
  bool Event(std::string_view data);
  // A comment line; keeps proxies from timing out and reveals a departed client.
  bool Ping();

  uint64_t next_id() const { return next_id_; }
  // The id the next Event gets (a resumed stream continues the original numbering).
  void set_next_id(uint64_t id) { next_id_ = id; }

 private:
  HttpResponse& res_;
  int retry_ms_;
  uint64_t next_id_ = 0;
  std::string frame_;
};

}  // namespace ragstream::fcgi
