// SseWriter: event-stream framing over a fake HttpResponse.
#include "lib/fcgi/sse_writer.h"

#include <boost/test/unit_test.hpp>

#include <string>

#include "tests/unit/fake_http.h"

namespace ragstream::fcgi {
namespace {

using ragstream::testing::FakeHttpResponse;

BOOST_AUTO_TEST_SUITE(sse_writer_test)

BOOST_AUTO_TEST_CASE(begin_sets_status_headers_and_retry_hint) {
  FakeHttpResponse res;
  SseWriter sse(res);
  BOOST_TEST(sse.Begin());
  BOOST_TEST(res.status() == 200);
  BOOST_TEST(res.Header("Content-Type").rfind("text/event-stream", 0) == 0u,
             res.Header("Content-Type"));
  BOOST_TEST(res.Header("Cache-Control") == "no-cache");
  BOOST_TEST(res.Header("X-Accel-Buffering") == "no");
  BOOST_TEST(res.HeaderCount("Content-Type") == 1u);
  BOOST_TEST(res.body() == "retry: 3000\n\n");
  BOOST_TEST(res.flushes() == 1);
}

BOOST_AUTO_TEST_CASE(retry_hint_uses_the_given_value) {
  FakeHttpResponse res;
  SseWriter sse(res, 1500);
  BOOST_TEST(sse.Begin());
  BOOST_TEST(res.body().rfind("retry: 1500\n\n", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(events_are_numbered_and_each_is_flushed) {
  FakeHttpResponse res;
  SseWriter sse(res);
  BOOST_TEST(sse.Begin());
  int after_begin = res.flushes();
  BOOST_TEST(sse.next_id() == 0u);
  BOOST_TEST(sse.Event(R"({"token":"a"})"));
  BOOST_TEST(res.flushes() == after_begin + 1);
  BOOST_TEST(sse.Event(R"({"token":"\u05e9"})"));
  BOOST_TEST(res.flushes() == after_begin + 2);
  BOOST_TEST(sse.Event(R"({"done":true})"));
  BOOST_TEST(res.flushes() == after_begin + 3);
  BOOST_TEST(sse.next_id() == 3u);
  BOOST_TEST(res.body() ==
             "retry: 3000\n\n"
             "id: 0\ndata: {\"token\":\"a\"}\n\n"
             "id: 1\ndata: {\"token\":\"\\u05e9\"}\n\n"
             "id: 2\ndata: {\"done\":true}\n\n");
}

BOOST_AUTO_TEST_CASE(ping_is_a_comment_and_does_not_consume_an_id) {
  FakeHttpResponse res;
  SseWriter sse(res);
  BOOST_TEST(sse.Begin());
  int before = res.flushes();
  BOOST_TEST(sse.Ping());
  BOOST_TEST(res.flushes() == before + 1);
  BOOST_TEST(sse.Event("{}"));
  BOOST_TEST(res.body() == "retry: 3000\n\n: ping\n\nid: 0\ndata: {}\n\n");
}

BOOST_AUTO_TEST_CASE(failed_write_makes_event_and_ping_return_false) {
  FakeHttpResponse res;
  SseWriter sse(res);
  BOOST_TEST(sse.Begin());
  BOOST_TEST(sse.Event("{}"));
  res.set_fail_writes(true);
  BOOST_TEST(!sse.Event("{\"token\":\"x\"}"));
  BOOST_TEST(!sse.Ping());
  BOOST_TEST(res.body().find("\"x\"") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(failed_write_makes_begin_return_false) {
  FakeHttpResponse res;
  res.set_fail_writes(true);
  SseWriter sse(res);
  BOOST_TEST(!sse.Begin());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::fcgi
