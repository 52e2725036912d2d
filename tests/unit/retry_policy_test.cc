// The one retry policy of the upstream clients (chat and embeddings).
#include "lib/llm/retry_policy.h"

#include <boost/test/unit_test.hpp>

namespace ragstream::llm {
namespace {

BOOST_AUTO_TEST_SUITE(retry_policy_test)

BOOST_AUTO_TEST_CASE(what_is_worth_another_attempt) {
  BOOST_TEST(RetryPolicy::RetryableStatus(429, "rate_limit_exceeded"));
  BOOST_TEST(!RetryPolicy::RetryableStatus(429, "insufficient_quota"));  // waiting won't help
  BOOST_TEST(RetryPolicy::RetryableStatus(500, ""));
  BOOST_TEST(RetryPolicy::RetryableStatus(503, "server_error"));
  for (long status : {400L, 401L, 403L, 404L, 422L}) {
    BOOST_TEST(!RetryPolicy::RetryableStatus(status, ""), status);
  }
  for (CURLcode rc : {CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT,
                      CURLE_RECV_ERROR, CURLE_GOT_NOTHING}) {
    BOOST_TEST(RetryPolicy::RetryableTransport(rc), curl_easy_strerror(rc));
  }
  BOOST_TEST(!RetryPolicy::RetryableTransport(CURLE_URL_MALFORMAT));
  BOOST_TEST(!RetryPolicy::RetryableTransport(CURLE_ABORTED_BY_CALLBACK));
}

BOOST_AUTO_TEST_CASE(waits_follow_retry_after_then_back_off_within_the_cap) {
  const RetryPolicy p{3, 100, 1000};
  BOOST_TEST(p.BackoffMs(0, 0) == 0);
  BOOST_TEST(p.BackoffMs(2, 750) == 750);
  BOOST_TEST(p.BackoffMs(0, 5000) == 1000);  // capped
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int w = p.BackoffMs(attempt, -1);
    BOOST_TEST(w >= 100 * (1 << attempt));
    BOOST_TEST(w < 100 * (1 << attempt) + 100);
  }
  BOOST_TEST(p.BackoffMs(30, -1) == 1000);  // no overflow, capped
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::llm
