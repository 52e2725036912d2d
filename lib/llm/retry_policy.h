// When an upstream call (chat or embeddings) is worth another attempt, and how long to wait
// first: one policy for both clients.
#pragma once

#include <curl/curl.h>

#include <string_view>

namespace ragstream::llm {

struct RetryPolicy {
  int max_retries = 2;        // attempts after the first
  int base_backoff_ms = 250;  // doubled each attempt, plus up to one base of jitter
  int max_wait_ms = 20000;    // cap on any wait, Retry-After included

  // 429 (except an exhausted quota, which waiting does not fix) and 5xx.
  static bool RetryableStatus(long http_status, std::string_view upstream_code);
  // Failures before any response: connect, resolve, TLS, send/receive, an empty or cut
  // reply, and a timeout of the transfer.
  static bool RetryableTransport(CURLcode rc);
  // How long to wait before attempt `attempt + 1`: the upstream's Retry-After when it gave
  // one (>= 0), else exponential backoff with jitter; never above max_wait_ms.
  int BackoffMs(int attempt, int retry_after_ms) const;
};

}  // namespace ragstream::llm
