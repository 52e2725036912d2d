#include "lib/llm/retry_policy.h"

#include <algorithm>

#include "lib/core/random.h"

namespace ragstream::llm {

bool RetryPolicy::RetryableStatus(long http_status, std::string_view upstream_code) {
  if (upstream_code == "insufficient_quota") return false;
  return http_status == 429 || http_status >= 500;
}

bool RetryPolicy::RetryableTransport(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
      return true;
    default:
      return false;
  }
}

int RetryPolicy::BackoffMs(int attempt, int retry_after_ms) const {
  const int base = std::max(1, base_backoff_ms);
  const int wait = retry_after_ms >= 0 ? retry_after_ms
                                       : base * (1 << std::min(attempt, 16)) +
                                             static_cast<int>(FastRandom() % base);
  return std::min(wait, max_wait_ms);
}

}  // namespace ragstream::llm
