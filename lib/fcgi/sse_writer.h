// Server-Sent Events framing over an HttpResponse, for both of the API's streams: the
// headers, then one event per call, each flushed at once; and the `: ping` comments sent
// while nothing else is. The ragstream stream opens with a `retry:` hint and numbers its
// events (`id:`, for Last-Event-ID); the OpenAI-compatible one sends bare `data:` events, as
// OpenAI does. Every method returns false once the client is gone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/core/http.h"

namespace ragstream::fcgi {

class SseWriter {
 public:
  enum class Framing { kNumbered, kOpenAi };
  explicit SseWriter(HttpResponse& res, int retry_ms = 3000, Framing framing = Framing::kNumbered)
      : res_(res), retry_ms_(retry_ms), framing_(framing) {}

  // Status 200, the event-stream headers and (numbered framing) the retry hint.
  bool Begin();
  // `data` is one line of JSON (no newlines). A numbered event's id is its sequence number.
  bool Event(std::string_view data);
  // An event with a name (`event:`), as OpenAI's Responses stream sends them.
  bool Event(std::string_view name, std::string_view data);
  // A comment line; keeps proxies from timing out and reveals a departed client.
  bool Ping();
  // A ping if nothing was sent for `interval_ms`; false once the client is gone.
  bool PingIfIdle(int interval_ms);

  uint64_t next_id() const { return next_id_; }
  // The id the next Event gets (a resumed stream continues the original numbering).
  void set_next_id(uint64_t id) { next_id_ = id; }

 private:
  bool Sent(bool ok);

  HttpResponse& res_;
  int retry_ms_;
  Framing framing_;
  int64_t last_sent_ms_ = 0;
  uint64_t next_id_ = 0;
  std::string frame_;
};

}  // namespace ragstream::fcgi
