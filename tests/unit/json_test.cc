// ParseUntrustedJson (pre-scan + validating iterative parse), typed getters, ErrorJson.
#include "lib/core/json.h"

#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>

#include "lib/core/utf8.h"

namespace ragstream {
namespace {

Status Parse(const std::string& text) {
  rapidjson::Document doc;
  return ParseUntrustedJson(text, doc);
}

std::string Nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

void ExpectInvalidJson(const std::string& text) {
  Status s = Parse(text);
  BOOST_TEST(!s.ok());
  BOOST_TEST(static_cast<int>(s.kind()) == static_cast<int>(ErrorKind::kInvalidArgument));
  BOOST_TEST(s.code() == "invalid_json");
}

BOOST_AUTO_TEST_SUITE(json_test)

BOOST_AUTO_TEST_CASE(accepts_normal_objects) {
  rapidjson::Document doc;
  Status s = ParseUntrustedJson(
      R"({"message":"שלום, what's up?","conversation_id":null,"n":-12.5e-3,"b":true,)"
      R"("list":[1,2,{"x":[]}],"esc":"a\"b\\c\n\u00e9"})",
      doc);
  BOOST_TEST(s.ok(), s.ToString());
  BOOST_REQUIRE(doc.IsObject());
  BOOST_TEST(std::string(doc["message"].GetString()) == "שלום, what's up?");
  BOOST_TEST(std::string(doc["esc"].GetString()) == "a\"b\\c\n\xC3\xA9");
  BOOST_TEST(doc["list"].Size() == 3u);
}

BOOST_AUTO_TEST_CASE(depth_limit_is_32) {
  BOOST_TEST(Parse(Nested(32)).ok());
  ExpectInvalidJson(Nested(33));
  std::string objects;
  for (int i = 0; i < 33; ++i) objects += "{\"a\":";
  objects += "1" + std::string(33, '}');
  ExpectInvalidJson(objects);
  // Depth counts arrays and objects together.
  ExpectInvalidJson("{\"a\":" + Nested(32) + "}");
}

BOOST_AUTO_TEST_CASE(very_deep_nesting_is_rejected_without_crashing) {
  ExpectInvalidJson(Nested(100000));
  ExpectInvalidJson(std::string(100000, '['));  // unterminated
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  ExpectInvalidJson(objects);
}

BOOST_AUTO_TEST_CASE(hazardous_numbers_are_rejected) {
  for (const std::string& num :
       {std::string("1e-2147483649"),
        std::string("128.74836467836484838364836483643636483648e-336"), std::string(10000, '7'),
        std::string("1e99999"), std::string("-1E+2147483648"),
        "0." + std::string(5000, '0') + "1"}) {
    BOOST_TEST_CONTEXT("number " << num.substr(0, 50)) {
      ExpectInvalidJson(num);
      ExpectInvalidJson("{\"n\":" + num + "}");
      ExpectInvalidJson("[1," + num + "]");
    }
  }
}

BOOST_AUTO_TEST_CASE(ordinary_numbers_are_accepted) {
  rapidjson::Document doc;
  BOOST_TEST(ParseUntrustedJson(R"({"a":0,"b":-1,"c":3.25,"d":1e10,"e":2.5E-300})", doc).ok());
  BOOST_TEST(doc["d"].GetDouble() == 1e10);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_inside_strings_is_rejected) {
  ExpectInvalidJson("{\"m\":\"\xC0\x80\"}");          // overlong
  ExpectInvalidJson("{\"m\":\"\xED\xA0\x80\"}");      // encoded surrogate
  ExpectInvalidJson("{\"m\":\"\xF4\x90\x80\x80\"}");  // > U+10FFFF
  ExpectInvalidJson("{\"m\":\"abc\xFF\"}");
  ExpectInvalidJson("{\"m\":\"\xD7\"}");  // truncated
  ExpectInvalidJson("{\"\x80\":1}");      // in a key
}

BOOST_AUTO_TEST_CASE(escaped_lone_surrogates_never_reach_a_caller) {
  ExpectInvalidJson(R"({"m":"\ud800"})");  // lone high surrogate
  ExpectInvalidJson(R"({"m":"\ud800x"})");
  // A lone LOW surrogate escape decodes (in RapidJSON 1.1.0) to ED B0 80, which is not UTF-8.
  // Either the parse rejects it or GetString does: a caller must never get those bytes.
  for (const char* text : {R"({"m":"\udc00"})", R"({"m":"ok \udfff ok"})"}) {
    BOOST_TEST_CONTEXT(text) {
      rapidjson::Document doc;
      Status parsed = ParseUntrustedJson(text, doc);
      if (parsed.ok()) {
        Status field;
        auto m = GetString(doc, "m", field);
        BOOST_TEST(!m.has_value(), "GetString returned invalid UTF-8 from a lone surrogate");
        BOOST_TEST(field.code() == "invalid_field");
      } else {
        BOOST_TEST(parsed.code() == "invalid_json");
      }
    }
  }
  rapidjson::Document doc;
  BOOST_REQUIRE(ParseUntrustedJson(R"({"m":"\ud83d\ude00"})", doc).ok());  // a proper pair
  Status field;
  BOOST_TEST(GetString(doc, "m", field).value() == "\xF0\x9F\x98\x80");
  BOOST_TEST(field.ok());
}

BOOST_AUTO_TEST_CASE(trailing_garbage_and_two_documents_are_rejected) {
  ExpectInvalidJson(R"({"a":1} x)");
  ExpectInvalidJson("{}{}");
  ExpectInvalidJson("[] []");
  ExpectInvalidJson("");
  ExpectInvalidJson("   ");
  ExpectInvalidJson(R"({"a":1,})");
  ExpectInvalidJson(R"({"a":"unterminated)");
  BOOST_TEST(Parse("  {\"a\":1}  \n").ok());  // surrounding whitespace is fine
}

BOOST_AUTO_TEST_CASE(brackets_inside_strings_do_not_count_as_nesting) {
  rapidjson::Document doc;
  Status s = ParseUntrustedJson(R"({"m":"[[[[\"]]]"})", doc);
  BOOST_TEST(s.ok(), s.ToString());
  BOOST_TEST(std::string(doc["m"].GetString()) == "[[[[\"]]]");

  std::string many = "{\"m\":\"" + std::string(200, '[') + "\\\\" + std::string(200, '{') + "\"}";
  s = ParseUntrustedJson(many, doc);
  BOOST_TEST(s.ok(), s.ToString());
  BOOST_TEST(doc["m"].GetStringLength() == 401u);

  // An escaped backslash before the closing quote ends the string; the brackets after it
  // are real nesting again.
  std::string real = "{\"m\":\"x\\\\\",\"n\":" + Nested(40) + "}";
  ExpectInvalidJson(real);
}

BOOST_AUTO_TEST_CASE(long_numbers_inside_strings_are_fine) {
  BOOST_TEST(Parse("{\"m\":\"" + std::string(1000, '9') + "e99999\"}").ok());
}

BOOST_AUTO_TEST_CASE(typed_getters) {
  rapidjson::Document doc;
  BOOST_REQUIRE(
      ParseUntrustedJson(
          R"({"s":"text","i":42,"b":true,"n":null,"f":1.5,"big":18446744073709551615})", doc)
          .ok());
  Status err;
  BOOST_TEST(GetString(doc, "s", err).value() == "text");
  BOOST_TEST(GetInt(doc, "i", err).value() == 42);
  BOOST_TEST(GetBool(doc, "b", err).value() == true);
  BOOST_TEST(!GetString(doc, "missing", err).has_value());
  BOOST_TEST(!GetString(doc, "n", err).has_value());  // null reads as absent
  BOOST_TEST(!GetInt(doc, "n", err).has_value());
  BOOST_TEST(err.ok(), "absent and null fields are not errors");
}

BOOST_AUTO_TEST_CASE(typed_getter_type_errors_set_invalid_field) {
  rapidjson::Document doc;
  BOOST_REQUIRE(
      ParseUntrustedJson(R"({"s":"text","i":42,"b":true,"f":1.5,"big":18446744073709551615})", doc)
          .ok());
  struct Case {
    const char* what;
    std::function<bool(Status&)> call;  // true when a value came back
    const char* field;
  };
  const Case cases[] = {
      {"string from int", [&](Status& e) { return GetString(doc, "i", e).has_value(); }, "i"},
      {"int from string", [&](Status& e) { return GetInt(doc, "s", e).has_value(); }, "s"},
      {"int from double", [&](Status& e) { return GetInt(doc, "f", e).has_value(); }, "f"},
      {"int from uint64 max", [&](Status& e) { return GetInt(doc, "big", e).has_value(); }, "big"},
      {"bool from int", [&](Status& e) { return GetBool(doc, "i", e).has_value(); }, "i"},
      {"bool from string", [&](Status& e) { return GetBool(doc, "s", e).has_value(); }, "s"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      Status err;
      BOOST_TEST(!c.call(err));
      BOOST_TEST(!err.ok());
      BOOST_TEST(static_cast<int>(err.kind()) == static_cast<int>(ErrorKind::kInvalidArgument));
      BOOST_TEST(err.code() == "invalid_field");
      BOOST_TEST(err.message().find(std::string("'") + c.field + "'") != std::string::npos,
                 err.message());
    }
  }
}

BOOST_AUTO_TEST_CASE(getters_on_a_non_object_return_nothing) {
  rapidjson::Document doc;
  BOOST_REQUIRE(ParseUntrustedJson("[1,2]", doc).ok());
  Status err;
  BOOST_TEST(!GetString(doc, "a", err).has_value());
  BOOST_TEST(err.ok());
}

BOOST_AUTO_TEST_CASE(error_json_shape) {
  std::string json = ErrorJson(Status::InvalidArgument("invalid_json", "bad \"quote\" \xD7\xA9\n"));
  rapidjson::Document doc;
  BOOST_REQUIRE(ParseUntrustedJson(json, doc).ok());
  BOOST_REQUIRE(doc.IsObject());
  BOOST_TEST(doc.MemberCount() == 1u);
  BOOST_REQUIRE(doc.HasMember("error"));
  const rapidjson::Value& e = doc["error"];
  BOOST_REQUIRE(e.IsObject());
  BOOST_TEST(e.MemberCount() == 2u);
  BOOST_TEST(std::string(e["code"].GetString()) == "invalid_json");
  BOOST_TEST(std::string(e["message"].GetString()) == "bad \"quote\" \xD7\xA9\n");
  BOOST_TEST(json.find('\n') == std::string::npos, "the newline must be escaped");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream
