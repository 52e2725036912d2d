// DoneEventJson shapes, and the chat handlers end to end over a fake response, a fake model
// and a temp store.
#include "handlers/chat_handler.h"

#include <boost/test/unit_test.hpp>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lib/core/json.h"
#include "tests/unit/fake_http.h"
#include "tests/unit/temp_store.h"

namespace ragstream::handlers {
namespace {

using ragstream::testing::FakeHttpResponse;
using ragstream::testing::TempStore;

std::set<std::string> Keys(const rapidjson::Value& obj) {
  std::set<std::string> keys;
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) keys.insert(it->name.GetString());
  return keys;
}

rapidjson::Document ParseOrFail(const std::string& json) {
  rapidjson::Document doc;
  Status s = ParseUntrustedJson(json, doc);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString() << " in " << json);
  BOOST_REQUIRE(doc.IsObject());
  return doc;
}

chat::SendResult CompleteResult() {
  chat::SendResult r;
  r.started = true;
  r.conversation_id = "conv_0123456789abcdef01234567";
  r.language = "he";
  r.tokens = 3;
  r.message.id = "msg_0123456789abcdef01234567";
  r.message.status = store::kStatusComplete;
  r.message.content = "answer";
  r.message.finish_reason = "stop";
  r.message.usage = {true, 10, 3, 13};
  r.message.ttft_ms = 42;
  return r;
}

class ScriptedModel : public llm::ChatModel {
 public:
  std::vector<std::string> deltas;
  int fail_after = -1;
  std::string name() const override { return "scripted"; }
  llm::ChatOutcome Stream(const llm::ChatRequest&, const llm::StreamCallbacks& cb) override {
    llm::ChatOutcome out;
    for (int i = 0; i < static_cast<int>(deltas.size()); ++i) {
      if (i == fail_after) {
        out.status = Status::Upstream("server_error", "upstream failed");
        return out;
      }
      if (!cb.on_delta(deltas[i])) {
        out.status = Status::Cancelled("stopped");
        return out;
      }
    }
    out.finish_reason = "stop";
    out.usage = {true, 5, 2, 7};
    return out;
  }
};

struct App {
  App() {
    chat = std::make_unique<chat::ChatService>(*ts.store, model, chat::ChatServiceOptions{});
    ctx.env = ts.env.get();
    ctx.conversations = ts.store.get();
    ctx.chat = chat.get();
  }
  HttpRequest Post(const std::string& path, const std::string& body,
                   const std::string& content_type = "application/json") {
    HttpRequest r;
    r.method = "POST";
    r.path = path;
    r.content_type = content_type;
    r.body = body;
    r.request_id = "req-1";
    return r;
  }

  TempStore ts;
  std::shared_ptr<ScriptedModel> model = std::make_shared<ScriptedModel>();
  std::unique_ptr<chat::ChatService> chat;
  AppContext ctx;
};

// The data lines of an event stream body, in order.
std::vector<std::string> DataLines(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    size_t end = body.find('\n', pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

BOOST_AUTO_TEST_SUITE(chat_handler_test)

BOOST_AUTO_TEST_CASE(done_event_for_a_complete_answer_has_the_documented_fields) {
  chat::SendResult r = CompleteResult();
  rapidjson::Document doc = ParseOrFail(DoneEventJson(r));
  BOOST_TEST((Keys(doc) == std::set<std::string>{"token", "done", "message_id", "conversation_id",
                                                 "status", "retryable", "sources", "language",
                                                 "usage", "ttft_ms", "finish_reason"}));
  BOOST_TEST(doc["retryable"].IsFalse());
  BOOST_TEST(doc["token"].IsNull());
  BOOST_TEST(doc["done"].IsTrue());
  BOOST_TEST(std::string(doc["message_id"].GetString()) == r.message.id);
  BOOST_TEST(std::string(doc["conversation_id"].GetString()) == r.conversation_id);
  BOOST_TEST(std::string(doc["status"].GetString()) == "complete");
  BOOST_TEST(doc["sources"].IsArray());
  BOOST_TEST(std::string(doc["language"].GetString()) == "he");
  BOOST_REQUIRE(doc["usage"].IsObject());
  BOOST_TEST((Keys(doc["usage"]) ==
              std::set<std::string>{"prompt_tokens", "completion_tokens", "total_tokens"}));
  BOOST_TEST(doc["usage"]["total_tokens"].GetInt64() == 13);
  BOOST_TEST(doc["ttft_ms"].GetInt64() == 42);
  BOOST_TEST(std::string(doc["finish_reason"].GetString()) == "stop");
  BOOST_TEST(!doc.HasMember("error"));
}

BOOST_AUTO_TEST_CASE(done_event_without_usage_or_ttft_uses_null) {
  chat::SendResult r = CompleteResult();
  r.message.usage = {};
  r.message.ttft_ms = -1;
  rapidjson::Document doc = ParseOrFail(DoneEventJson(r));
  BOOST_TEST(doc["usage"].IsNull());
  BOOST_TEST(doc["ttft_ms"].IsNull());
}

BOOST_AUTO_TEST_CASE(done_event_for_an_error_has_the_documented_fields) {
  chat::SendResult r = CompleteResult();
  r.status = Status::Upstream("server_error", "the upstream \"failed\"");
  r.message.status = store::kStatusError;
  rapidjson::Document doc = ParseOrFail(DoneEventJson(r));
  BOOST_TEST((Keys(doc) == std::set<std::string>{"token", "done", "message_id", "conversation_id",
                                                 "status", "retryable", "error"}));
  BOOST_TEST(doc["retryable"].IsFalse());  // not a code worth retrying
  BOOST_TEST(doc["token"].IsNull());
  BOOST_TEST(doc["done"].IsTrue());
  BOOST_TEST(std::string(doc["status"].GetString()) == "error");
  BOOST_REQUIRE(doc["error"].IsObject());
  BOOST_TEST((Keys(doc["error"]) == std::set<std::string>{"code", "message"}));
  BOOST_TEST(std::string(doc["error"]["code"].GetString()) == "server_error");
  BOOST_TEST(std::string(doc["error"]["message"].GetString()) == "the upstream \"failed\"");
}

BOOST_AUTO_TEST_CASE(done_event_says_which_failures_are_worth_retrying) {
  chat::SendResult r = CompleteResult();
  r.message.status = store::kStatusError;
  for (const char* code : {"upstream_rate_limited", "upstream_server_error", "shutting_down"}) {
    r.status = Status::Upstream(code, "m");
    BOOST_TEST(ParseOrFail(DoneEventJson(r))["retryable"].IsTrue(), code);
  }
  for (const char* code : {"upstream_quota_exceeded", "upstream_auth", "store_full"}) {
    r.status = Status::Upstream(code, "m");
    BOOST_TEST(ParseOrFail(DoneEventJson(r))["retryable"].IsFalse(), code);
  }
}

BOOST_AUTO_TEST_CASE(done_event_carries_the_tool_calls_it_asked_for) {
  chat::SendResult r = CompleteResult();
  r.message.finish_reason = "tool_calls";
  r.message.tool_calls_json =
      R"([{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}])";
  rapidjson::Document doc = ParseOrFail(DoneEventJson(r));
  BOOST_REQUIRE(doc["tool_calls"].IsArray());
  BOOST_TEST(std::string(doc["tool_calls"][0]["id"].GetString()) == "call_1");
  BOOST_TEST(!ParseOrFail(DoneEventJson(CompleteResult())).HasMember("tool_calls"));
}

BOOST_AUTO_TEST_CASE(done_event_is_one_line) {
  chat::SendResult r = CompleteResult();
  r.status = Status::Upstream("x", "line one\nline two");
  BOOST_TEST(DoneEventJson(r).find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(stream_handler_relays_tokens_and_ends_with_done) {
  App app;
  app.model->deltas = {"Hel", "lo \xD7", "\xA9"};
  FakeHttpResponse res;
  RequestRecord rec;
  HandleChatStream(app.ctx, "acme",
                   app.Post("/api/chat/message/stream",
                            R"({"message":"Say hello to me in a friendly way, please"})"),
                   res, rec);
  BOOST_TEST(res.status() == 200);
  BOOST_TEST(res.Header("Content-Type").rfind("text/event-stream", 0) == 0u);
  BOOST_TEST(res.body().rfind("retry: ", 0) == 0u);
  std::vector<std::string> data = DataLines(res.body());
  // start, "Hel", "lo " (the split "ש" held back), "ש", done
  BOOST_REQUIRE_MESSAGE(data.size() == 5u, res.body());
  rapidjson::Document start = ParseOrFail(data[0]);
  BOOST_TEST(std::string(start["token"].GetString()).empty());
  BOOST_TEST(start["done"].IsFalse());
  std::string conv = start["conversation_id"].GetString();
  std::string msg = start["message_id"].GetString();
  BOOST_TEST(std::string(ParseOrFail(data[1])["token"].GetString()) == "Hel");
  BOOST_TEST(std::string(ParseOrFail(data[2])["token"].GetString()) == "lo ");
  BOOST_TEST(std::string(ParseOrFail(data[3])["token"].GetString()) == "\xD7\xA9");
  rapidjson::Document done = ParseOrFail(data[4]);
  BOOST_TEST(done["done"].IsTrue());
  BOOST_TEST(std::string(done["status"].GetString()) == "complete");
  BOOST_TEST(std::string(done["message_id"].GetString()) == msg);
  BOOST_TEST(std::string(done["conversation_id"].GetString()) == conv);
  BOOST_TEST(res.body().find("id: 4\n") != std::string::npos);
  BOOST_TEST(res.body().find("id: 5\n") == std::string::npos);
  BOOST_TEST(rec.outcome == "complete");
  BOOST_TEST(rec.message_id == msg);
  auto stored = app.ts.store->GetMessage("acme", msg);
  BOOST_REQUIRE(stored.ok());
  BOOST_TEST(stored->content == "Hello \xD7\xA9");
}

BOOST_AUTO_TEST_CASE(stream_handler_error_after_start_ends_with_error_done_event) {
  App app;
  app.model->deltas = {"a", "b", "c"};
  app.model->fail_after = 1;
  FakeHttpResponse res;
  RequestRecord rec;
  HandleChatStream(app.ctx, "acme",
                   app.Post("/api/chat/message/stream",
                            R"({"message":"Say something and then fail in the middle"})"),
                   res, rec);
  BOOST_TEST(res.status() == 200);
  std::vector<std::string> data = DataLines(res.body());
  BOOST_REQUIRE(data.size() == 3u);  // start, "a", done
  rapidjson::Document done = ParseOrFail(data.back());
  BOOST_TEST(done["done"].IsTrue());
  BOOST_TEST(std::string(done["status"].GetString()) == "error");
  BOOST_TEST(std::string(done["error"]["code"].GetString()) == "server_error");
  BOOST_TEST(rec.outcome == "error");
}

BOOST_AUTO_TEST_CASE(stream_handler_rejects_bad_requests_with_plain_json) {
  App app;
  struct Case {
    std::string body, content_type;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {R"({"message":"hi"})", "text/plain", 415, "unsupported_media_type"},
      {"{", "application/json", 400, "invalid_json"},
      {R"({"message":"   "})", "application/json", 400, "empty_message"},
      {R"({"message":"hi","conversation_id":"conv_0123456789abcdef01234567"})", "application/json",
       404, "not_found"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.body << " as " << c.content_type) {
      FakeHttpResponse res;
      RequestRecord rec;
      HandleChatStream(app.ctx, "acme",
                       app.Post("/api/chat/message/stream", c.body, c.content_type), res, rec);
      BOOST_TEST(res.status() == c.status);
      BOOST_TEST(res.Header("Content-Type") == "application/json");
      BOOST_TEST(res.body().find("data: ") == std::string::npos);
      rapidjson::Document doc = ParseOrFail(res.body());
      BOOST_TEST(std::string(doc["error"]["code"].GetString()) == c.code);
    }
  }
  auto page = app.ts.store->ListConversations("acme", 10, "");
  BOOST_REQUIRE(page.ok());
  BOOST_TEST(page->conversations.empty());
}

BOOST_AUTO_TEST_CASE(message_handler_returns_the_whole_answer) {
  App app;
  app.model->deltas = {"The ", "answer."};
  FakeHttpResponse res;
  RequestRecord rec;
  HandleChatMessage(app.ctx, "acme",
                    app.Post("/api/chat/message", R"({"message":"What is the answer, please?"})"),
                    res, rec);
  BOOST_TEST(res.status() == 200);
  rapidjson::Document doc = ParseOrFail(res.body());
  BOOST_TEST(
      (Keys(doc) == std::set<std::string>{"message_id", "conversation_id", "response", "sources",
                                          "language", "usage", "status", "finish_reason"}));
  BOOST_TEST(std::string(doc["response"].GetString()) == "The answer.");
  BOOST_TEST(std::string(doc["status"].GetString()) == "complete");
  BOOST_TEST(doc["usage"]["total_tokens"].GetInt64() == 7);
}

BOOST_AUTO_TEST_CASE(message_handler_upstream_error_is_502_with_partial_response) {
  App app;
  app.model->deltas = {"part", "never"};
  app.model->fail_after = 1;
  FakeHttpResponse res;
  RequestRecord rec;
  HandleChatMessage(app.ctx, "acme",
                    app.Post("/api/chat/message", R"({"message":"Answer me, even if partly"})"),
                    res, rec);
  BOOST_TEST(res.status() == 502);
  rapidjson::Document doc = ParseOrFail(res.body());
  BOOST_TEST(std::string(doc["status"].GetString()) == "error");
  BOOST_TEST(std::string(doc["response"].GetString()) == "part");
  BOOST_TEST(std::string(doc["error"]["code"].GetString()) == "server_error");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::handlers
