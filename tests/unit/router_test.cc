// Router::Match and Router::Dispatch (404, 405 + Allow, params), with a fake response.
#include "handlers/router.h"
#include "lib/core/metrics.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "handlers/routes.h"
#include "lib/core/json.h"
#include "tests/unit/fake_http.h"

namespace ragstream::handlers {
namespace {

using ragstream::testing::FakeHttpResponse;

bool M(std::string_view pattern, std::string_view path, RouteParams* out = nullptr) {
  RouteParams params{"stale"};
  bool ok = Router::Match(pattern, path, params);
  if (out) *out = params;
  return ok;
}

HttpRequest Req(std::string method, std::string path) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  return r;
}

std::string ErrorCode(const std::string& body) {
  rapidjson::Document doc;
  if (!ParseUntrustedJson(body, doc).ok() || !doc.IsObject() || !doc.HasMember("error")) {
    return "(not an error JSON: " + body + ")";
  }
  return doc["error"]["code"].GetString();
}

struct Calls {
  std::vector<std::string> names;
  std::vector<RouteParams> params;
};

Router TestRouter(Calls& calls) {
  Router r;
  auto h = [&calls](std::string name) {
    return [&calls, name](const HttpRequest&, HttpResponse& res, const RouteParams& p,
                          RequestRecord&) {
      calls.names.push_back(name);
      calls.params.push_back(p);
      WriteJson(res, 200, "{}");
    };
  };
  r.Add("GET", "/api/conversations", h("list"));
  r.Add("GET", "/api/conversations/{id}", h("get"));
  r.Add("PATCH", "/api/conversations/{id}", h("patch"));
  r.Add("DELETE", "/api/conversations/{id}", h("delete"));
  r.Add("GET", "/api/conversations/{id}/messages/{mid}", h("message"));
  r.Add("POST", "/api/chat/message", h("chat"));
  r.Add("POST", "/api/chat/message/stream", h("stream"));
  return r;
}

BOOST_AUTO_TEST_SUITE(router_test)

BOOST_AUTO_TEST_CASE(match_literals) {
  RouteParams p;
  BOOST_TEST(M("/api/health", "/api/health", &p));
  BOOST_TEST(p.empty());  // cleared, not appended to
  BOOST_TEST(M("/", "/"));
  BOOST_TEST(!M("/api/health", "/api/healthz"));
  BOOST_TEST(!M("/api/health", "/api/healt"));
  BOOST_TEST(!M("/api/health", "/API/health"));
  BOOST_TEST(!M("/api/health", "api/health"));
  BOOST_TEST(!M("/api/health", ""));
  BOOST_TEST(!M("", "/api/health"));
}

BOOST_AUTO_TEST_CASE(match_placeholders_capture_in_order) {
  RouteParams p;
  BOOST_TEST(M("/api/conversations/{id}", "/api/conversations/conv_123", &p));
  BOOST_TEST(p == RouteParams({"conv_123"}), boost::test_tools::per_element());
  BOOST_TEST(M("/a/{x}/b/{y}", "/a/1/b/2", &p));
  BOOST_TEST(p == RouteParams({"1", "2"}), boost::test_tools::per_element());
  BOOST_TEST(!M("/a/{x}/b/{y}", "/a/1/c/2", &p));
  // "{}" is not a placeholder: it is matched literally.
  BOOST_TEST(M("/a/{}", "/a/{}"));
  BOOST_TEST(!M("/a/{}", "/a/x"));
}

BOOST_AUTO_TEST_CASE(empty_segments_do_not_match) {
  BOOST_TEST(!M("/api/conversations/{id}", "/api/conversations/"));
  BOOST_TEST(!M("/api/conversations/{id}", "/api/conversations//"));
  BOOST_TEST(!M("/api/conversations", "/api//conversations"));
  BOOST_TEST(!M("/api/conversations/{id}", "/api//conversations/x"));
  BOOST_TEST(!M("/a/{x}/b", "/a//b"));
  BOOST_TEST(!M("/api/conversations", "//api/conversations"));
}

BOOST_AUTO_TEST_CASE(trailing_slash_does_not_match) {
  BOOST_TEST(!M("/api/health", "/api/health/"));
  BOOST_TEST(!M("/api/conversations", "/api/conversations/"));
  BOOST_TEST(!M("/api/conversations/{id}", "/api/conversations/conv_1/"));
}

BOOST_AUTO_TEST_CASE(extra_or_missing_segments_do_not_match) {
  BOOST_TEST(!M("/api/conversations/{id}", "/api/conversations/conv_1/extra"));
  BOOST_TEST(!M("/api/conversations/{id}", "/api/conversations"));
  BOOST_TEST(!M("/api/conversations", "/api/conversations/conv_1"));
  BOOST_TEST(!M("/api/chat/message", "/api/chat/message/stream"));
  BOOST_TEST(!M("/api/chat/message/stream", "/api/chat/message"));
}

BOOST_AUTO_TEST_CASE(dispatch_unknown_path_is_404_json) {
  Calls calls;
  Router r = TestRouter(calls);
  FakeHttpResponse res;
  RequestRecord rec;
  r.Dispatch(Req("GET", "/api/nothing"), res, rec);
  BOOST_TEST(res.status() == 404);
  BOOST_TEST(res.Header("Content-Type") == "application/json");
  BOOST_TEST(ErrorCode(res.body()) == "not_found");
  BOOST_TEST(res.HeaderCount("Allow") == 0u);
  BOOST_TEST(calls.names.empty());
  BOOST_TEST(rec.route == "(unmatched)");
}

BOOST_AUTO_TEST_CASE(dispatch_wrong_method_is_405_with_allow) {
  Calls calls;
  Router r = TestRouter(calls);
  FakeHttpResponse res;
  RequestRecord rec;
  r.Dispatch(Req("POST", "/api/conversations/conv_1"), res, rec);
  BOOST_TEST(res.status() == 405);
  BOOST_TEST(res.HeaderCount("Allow") == 1u);
  BOOST_TEST(res.Header("Allow") == "GET, PATCH, DELETE");
  BOOST_TEST(ErrorCode(res.body()) == "method_not_allowed");
  BOOST_TEST(calls.names.empty());

  FakeHttpResponse res2;
  r.Dispatch(Req("GET", "/api/chat/message"), res2, rec);
  BOOST_TEST(res2.status() == 405);
  BOOST_TEST(res2.Header("Allow") == "POST");
  BOOST_TEST(calls.names.empty());
}

BOOST_AUTO_TEST_CASE(dispatch_calls_the_right_handler_with_params) {
  Calls calls;
  Router r = TestRouter(calls);
  struct Case {
    const char* method;
    const char* path;
    const char* handler;
    RouteParams params;
  };
  const Case cases[] = {
      {"GET", "/api/conversations", "list", {}},
      {"GET", "/api/conversations/conv_a", "get", {"conv_a"}},
      {"PATCH", "/api/conversations/conv_b", "patch", {"conv_b"}},
      {"DELETE", "/api/conversations/conv_c", "delete", {"conv_c"}},
      {"GET", "/api/conversations/c1/messages/m2", "message", {"c1", "m2"}},
      {"POST", "/api/chat/message", "chat", {}},
      {"POST", "/api/chat/message/stream", "stream", {}},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.method << " " << c.path) {
      calls = {};
      FakeHttpResponse res;
      RequestRecord rec;
      r.Dispatch(Req(c.method, c.path), res, rec);
      BOOST_TEST(res.status() == 200);
      BOOST_REQUIRE(calls.names.size() == 1u);
      BOOST_TEST(calls.names[0] == c.handler);
      BOOST_TEST(calls.params[0] == c.params, boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(dispatch_records_the_route_pattern) {
  Calls calls;
  Router r = TestRouter(calls);
  FakeHttpResponse res;
  RequestRecord rec;
  r.Dispatch(Req("PATCH", "/api/conversations/conv_z"), res, rec);
  BOOST_TEST(rec.route == "/api/conversations/{id}");
}

BOOST_AUTO_TEST_CASE(real_route_table_405_and_404) {
  AppContext app;  // no handler is reached, so no services are needed
  Router r = BuildRouter(app);
  FakeHttpResponse res;
  RequestRecord rec;
  r.Dispatch(Req("PUT", "/api/conversations/conv_000000000000000000000000"), res, rec);
  BOOST_TEST(res.status() == 405);
  BOOST_TEST(res.Header("Allow") == "GET, PATCH, DELETE");

  FakeHttpResponse res2;
  r.Dispatch(Req("GET", "/api/chat/message/stream"), res2, rec);
  BOOST_TEST(res2.status() == 405);
  BOOST_TEST(res2.Header("Allow") == "POST");

  // A literal path is its own resource, not an {id} of the pattern beside it.
  FakeHttpResponse batch;
  r.Dispatch(Req("GET", "/api/documents/batch"), batch, rec);
  BOOST_TEST(batch.status() == 405);
  BOOST_TEST(batch.Header("Allow") == "POST");
  BOOST_TEST(rec.route == "/api/documents/batch");
  FakeHttpResponse doc;
  r.Dispatch(Req("PUT", "/api/documents/doc_000000000000000000000000"), doc, rec);
  BOOST_TEST(doc.status() == 405);
  BOOST_TEST(doc.Header("Allow") == "GET, DELETE");

  FakeHttpResponse res3;
  r.Dispatch(Req("GET", "/api/nope"), res3, rec);
  BOOST_TEST(res3.status() == 404);
  BOOST_TEST(ErrorCode(res3.body()) == "not_found");
}

// /metrics counts every route by its pattern: a route missing from the metrics list would be
// counted as "other" (as /v1, resume and cancel once were).
BOOST_AUTO_TEST_CASE(every_route_has_its_own_metrics_counters) {
  handlers::AppContext app;
  const Router router = BuildRouter(app);
  BOOST_REQUIRE(!router.routes().empty());
  for (const auto& route : router.routes()) {
    BOOST_TEST(Metrics::CountsRoute(route.pattern), route.method << " " << route.pattern);
  }
  BOOST_TEST(!Metrics::CountsRoute("/api/nope"));
  BOOST_TEST(!Metrics::CountsRoute("other"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::handlers
