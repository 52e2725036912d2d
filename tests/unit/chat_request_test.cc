// ParseChatRequest / IsJsonContentType: validation of a send-message body.
#include "handlers/chat_request.h"

#include <boost/test/unit_test.hpp>

#include <string>

#include "lib/core/ids.h"

namespace ragstream::handlers {
namespace {

HttpRequest Post(const std::string& body, const std::string& content_type = "application/json") {
  HttpRequest r;
  r.method = "POST";
  r.path = "/api/chat/message/stream";
  r.content_type = content_type;
  r.body = body;
  return r;
}

Config SmallConfig(int max_chars = 10) {
  Config c;
  c.max_message_chars = max_chars;
  return c;
}

void ExpectError(const Result<ChatRequestBody>& r, ErrorKind kind, const std::string& code) {
  BOOST_TEST(!r.ok());
  BOOST_TEST(static_cast<int>(r.status().kind()) == static_cast<int>(kind),
             "got " << r.status().ToString());
  BOOST_TEST(r.status().code() == code, "got " << r.status().ToString());
}

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

BOOST_AUTO_TEST_SUITE(chat_request_test)

BOOST_AUTO_TEST_CASE(json_content_types) {
  BOOST_TEST(IsJsonContentType("application/json"));
  BOOST_TEST(IsJsonContentType("application/json; charset=utf-8"));
  BOOST_TEST(IsJsonContentType("application/json;charset=UTF-8"));
  BOOST_TEST(IsJsonContentType("Application/JSON"));
  BOOST_TEST(IsJsonContentType("application/json ; charset=utf-8"));
  BOOST_TEST(!IsJsonContentType("text/plain"));
  BOOST_TEST(!IsJsonContentType(""));
  BOOST_TEST(!IsJsonContentType("application/jsonp"));
  BOOST_TEST(!IsJsonContentType("application/x-www-form-urlencoded"));
  BOOST_TEST(!IsJsonContentType("multipart/form-data; boundary=application/json"));
}

BOOST_AUTO_TEST_CASE(non_json_content_type_is_415) {
  for (const char* ct : {"text/plain", "", "application/xml", "text/json"}) {
    BOOST_TEST_CONTEXT(ct) {
      ExpectError(ParseChatRequest(Post(R"({"message":"hi"})", ct), Config()),
                  ErrorKind::kUnsupportedMediaType, "unsupported_media_type");
    }
  }
  for (const char* ct : {"application/json; charset=utf-8", "Application/JSON"}) {
    BOOST_TEST_CONTEXT(ct) {
      BOOST_TEST(ParseChatRequest(Post(R"({"message":"hi"})", ct), Config()).ok());
    }
  }
}

BOOST_AUTO_TEST_CASE(malformed_json_is_400_invalid_json) {
  for (const char* body : {"", "{", "not json", R"({"message":"hi"} extra)", "[1,2]", "\"hi\""}) {
    BOOST_TEST_CONTEXT(body) {
      ExpectError(ParseChatRequest(Post(body), Config()), ErrorKind::kInvalidArgument,
                  "invalid_json");
    }
  }
}

BOOST_AUTO_TEST_CASE(missing_message_is_400) {
  ExpectError(ParseChatRequest(Post("{}"), Config()), ErrorKind::kInvalidArgument, "missing_field");
  ExpectError(ParseChatRequest(Post(R"({"message":null})"), Config()), ErrorKind::kInvalidArgument,
              "missing_field");
  ExpectError(ParseChatRequest(Post(R"({"msg":"hi"})"), Config()), ErrorKind::kInvalidArgument,
              "missing_field");
}

BOOST_AUTO_TEST_CASE(empty_or_whitespace_message_is_400) {
  for (const char* body :
       {R"({"message":""})", R"({"message":"   "})", R"({"message":" \n\t\r "})"}) {
    BOOST_TEST_CONTEXT(body) {
      ExpectError(ParseChatRequest(Post(body), Config()), ErrorKind::kInvalidArgument,
                  "empty_message");
    }
  }
}

BOOST_AUTO_TEST_CASE(wrong_types_are_400_invalid_field) {
  for (const char* body :
       {R"({"message":42})", R"({"message":["hi"]})", R"({"message":{"text":"hi"}})",
        R"({"message":true})", R"({"message":"hi","conversation_id":12})",
        R"({"message":"hi","on_disconnect":1})", R"({"message":"hi","on_disconnect":"later"})",
        R"({"message":"hi","on_disconnect":"Cancel"})"}) {
    BOOST_TEST_CONTEXT(body) {
      ExpectError(ParseChatRequest(Post(body), Config()), ErrorKind::kInvalidArgument,
                  "invalid_field");
    }
  }
}

BOOST_AUTO_TEST_CASE(message_limit_counts_characters_not_bytes) {
  // 10 Hebrew letters: 20 bytes, 10 characters.
  const std::string ten = Repeat("\xD7\xA9", 10);
  auto ok = ParseChatRequest(Post(R"({"message":")" + ten + R"("})"), SmallConfig(10));
  BOOST_REQUIRE(ok.ok());
  BOOST_TEST(ok->message == ten);
  // Emoji: 4 bytes each.
  BOOST_TEST(ParseChatRequest(Post(R"({"message":")" + Repeat("\xF0\x9F\x98\x80", 10) + R"("})"),
                              SmallConfig(10))
                 .ok());
  // Escaped characters count once too.
  BOOST_TEST(
      ParseChatRequest(Post(R"({"message":")" + Repeat("\\u05e9", 10) + R"("})"), SmallConfig(10))
          .ok());
  ExpectError(ParseChatRequest(Post(R"({"message":")" + ten +
                                    "\xD7\xA9"
                                    R"("})"),
                               SmallConfig(10)),
              ErrorKind::kTooLarge, "message_too_long");
  ExpectError(ParseChatRequest(Post(R"({"message":"12345678901"})"), SmallConfig(10)),
              ErrorKind::kTooLarge, "message_too_long");
  BOOST_TEST(ParseChatRequest(Post(R"({"message":"1234567890"})"), SmallConfig(10)).ok());
}

BOOST_AUTO_TEST_CASE(malformed_conversation_id_is_not_found) {
  for (const char* id :
       {"conv_123", "abc", "", "conv_ZZZZZZZZZZZZZZZZZZZZZZZZ", "msg_0123456789abcdef01234567",
        "conv_0123456789abcdef012345678", "../../etc/passwd"}) {
    BOOST_TEST_CONTEXT(id) {
      ExpectError(
          ParseChatRequest(Post(std::string(R"({"message":"hi","conversation_id":")") + id + "\"}"),
                           Config()),
          ErrorKind::kNotFound, "not_found");
    }
  }
}

BOOST_AUTO_TEST_CASE(valid_request_is_parsed) {
  const std::string id = NewId("conv_");
  auto r = ParseChatRequest(Post(R"({"message":"  What is LMDB?  ","conversation_id":")" + id +
                                 R"(","on_disconnect":"finish","extra":"ignored"})"),
                            Config());
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(r->message == "  What is LMDB?  ");
  BOOST_REQUIRE(r->conversation_id.has_value());
  BOOST_TEST(*r->conversation_id == id);
  BOOST_REQUIRE(r->on_disconnect.has_value());
  BOOST_TEST(static_cast<int>(*r->on_disconnect) == static_cast<int>(DisconnectPolicy::kFinish));

  auto cancel = ParseChatRequest(Post(R"({"message":"x","on_disconnect":"cancel"})"), Config());
  BOOST_REQUIRE(cancel.ok());
  BOOST_TEST(static_cast<int>(*cancel->on_disconnect) ==
             static_cast<int>(DisconnectPolicy::kCancel));

  auto minimal = ParseChatRequest(Post(R"({"message":"x","conversation_id":null})"), Config());
  BOOST_REQUIRE(minimal.ok());
  BOOST_TEST(!minimal->conversation_id.has_value());
  BOOST_TEST(!minimal->on_disconnect.has_value());
}

BOOST_AUTO_TEST_CASE(lone_surrogate_escape_in_message_is_rejected) {
  // "\udc00" decodes to bytes that are not UTF-8; such a message must not get through.
  auto r = ParseChatRequest(Post(R"({"message":"hi \udc00 there"})"), Config());
  BOOST_TEST(!r.ok(), "a message with a lone low surrogate escape was accepted");
}

BOOST_AUTO_TEST_CASE(deeply_nested_body_is_400_not_a_crash) {
  std::string body =
      R"({"message":"hi","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  ExpectError(ParseChatRequest(Post(body), Config()), ErrorKind::kInvalidArgument, "invalid_json");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::handlers
