// DecodeChunk / DecodeErrorBody: the data of OpenAI chat-completions stream events.
#include "lib/llm/openai_stream.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace ragstream::llm {
namespace {

using Kind = ChunkInfo::Kind;

std::string Chunk(const std::string& delta, const std::string& finish = "null",
                  const std::string& extra = "") {
  return R"({"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1718000000,)"
         R"("model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_44709d6fcb",)"
         R"("choices":[{"index":0,"delta":)" +
         delta + R"(,"logprobs":null,"finish_reason":)" + finish + "}]" + extra + "}";
}

BOOST_AUTO_TEST_SUITE(openai_stream_test)

BOOST_AUTO_TEST_CASE(unicode_escapes_decode_to_hebrew_utf8) {
  ChunkInfo c = DecodeChunk(Chunk(R"({"content":"\u05e9\u05dc\u05d5\u05dd"})"));
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(c.content == "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D");  // שלום
  BOOST_TEST(c.finish_reason.empty());
  BOOST_TEST(!c.usage.present);
}

BOOST_AUTO_TEST_CASE(surrogate_pair_decodes_to_four_byte_emoji) {
  ChunkInfo c = DecodeChunk(Chunk(R"({"content":"hi \ud83d\ude00"})"));
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(c.content == "hi \xF0\x9F\x98\x80");
}

BOOST_AUTO_TEST_CASE(raw_utf8_and_escaped_quotes_pass_through) {
  ChunkInfo c = DecodeChunk(Chunk(R"({"content":"say \"\u05e9\" \\ ש"})"));
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(c.content == "say \"\xD7\xA9\" \\ \xD7\xA9");
}

BOOST_AUTO_TEST_CASE(role_only_first_chunk_has_empty_content) {
  ChunkInfo c = DecodeChunk(Chunk(R"({"role":"assistant","content":"","refusal":null})"));
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(c.content.empty());
  BOOST_TEST(c.finish_reason.empty());
  ChunkInfo no_content = DecodeChunk(Chunk(R"({"role":"assistant"})"));
  BOOST_TEST(static_cast<int>(no_content.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(no_content.content.empty());
}

BOOST_AUTO_TEST_CASE(tool_call_pieces_decode_with_their_index) {
  ChunkInfo first = DecodeChunk(Chunk(
      R"({"tool_calls":[{"index":1,"id":"call_9","type":"function","function":{"name":"get_weather","arguments":""}}]})"));
  BOOST_REQUIRE(first.tool_calls.size() == 1u);
  BOOST_TEST(first.tool_calls[0].index == 1);
  BOOST_TEST(first.tool_calls[0].id == "call_9");
  BOOST_TEST(first.tool_calls[0].name == "get_weather");
  ChunkInfo piece =
      DecodeChunk(Chunk(R"({"tool_calls":[{"index":1,"function":{"arguments":"{\"ci"}}]})"));
  BOOST_REQUIRE(piece.tool_calls.size() == 1u);
  BOOST_TEST(piece.tool_calls[0].id.empty());
  BOOST_TEST(piece.tool_calls[0].arguments == "{\"ci");
  // An absurd index is dropped rather than sized into a vector.
  BOOST_TEST(
      DecodeChunk(Chunk(R"({"tool_calls":[{"index":100000,"function":{}}]})")).tool_calls.empty());
}

BOOST_AUTO_TEST_CASE(finish_reason_chunk) {
  ChunkInfo c = DecodeChunk(Chunk("{}", R"("stop")"));
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(c.content.empty());
  BOOST_TEST(c.finish_reason == "stop");
  ChunkInfo len = DecodeChunk(Chunk(R"({"content":"x"})", R"("length")"));
  BOOST_TEST(len.finish_reason == "length");
  BOOST_TEST(len.content == "x");
}

BOOST_AUTO_TEST_CASE(usage_chunk_with_empty_choices) {
  ChunkInfo c = DecodeChunk(
      R"({"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1718000000,)"
      R"("model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":17,)"
      R"("completion_tokens":42,"total_tokens":59,"prompt_tokens_details":{"cached_tokens":0}}})");
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(c.content.empty());
  BOOST_TEST(c.finish_reason.empty());
  BOOST_TEST(c.usage.present);
  BOOST_TEST(c.usage.prompt_tokens == 17);
  BOOST_TEST(c.usage.completion_tokens == 42);
  BOOST_TEST(c.usage.total_tokens == 59);
}

BOOST_AUTO_TEST_CASE(usage_null_on_normal_chunks_is_ignored) {
  ChunkInfo c = DecodeChunk(Chunk(R"({"content":"Hello"})", "null", R"(,"usage":null)"));
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(c.content == "Hello");
  BOOST_TEST(!c.usage.present);
}

BOOST_AUTO_TEST_CASE(done_marker) {
  BOOST_TEST(static_cast<int>(DecodeChunk("[DONE]").kind) == static_cast<int>(Kind::kDone));
  BOOST_TEST(static_cast<int>(DecodeChunk("[DONE] ").kind) != static_cast<int>(Kind::kDone));
}

BOOST_AUTO_TEST_CASE(error_object_with_null_code_uses_type) {
  ChunkInfo c = DecodeChunk(
      R"({"error": {"message": "The server had an error while processing your request.",)"
      R"( "type": "server_error", "param": null, "code": null}})");
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kError));
  BOOST_TEST(c.error_code == "server_error");
  BOOST_TEST(c.error_message == "The server had an error while processing your request.");
  BOOST_TEST(c.content.empty());
}

BOOST_AUTO_TEST_CASE(error_object_with_code) {
  ChunkInfo c = DecodeChunk(R"({"error": {"message": "x", "code": "insufficient_quota"}})");
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kError));
  BOOST_TEST(c.error_code == "insufficient_quota");
  BOOST_TEST(c.error_message == "x");
}

BOOST_AUTO_TEST_CASE(error_code_is_preferred_over_type) {
  ChunkInfo c = DecodeChunk(
      R"({"error":{"message":"m","type":"invalid_request_error","code":"context_length_exceeded"}})");
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kError));
  BOOST_TEST(c.error_code == "context_length_exceeded");
}

BOOST_AUTO_TEST_CASE(error_without_code_or_type_gets_generic_code) {
  ChunkInfo c = DecodeChunk(R"({"error":{"message":"boom"}})");
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kError));
  BOOST_TEST(c.error_code == "upstream_error");
  BOOST_TEST(c.error_message == "boom");
  ChunkInfo s = DecodeChunk(R"({"error":"plain string"})");
  BOOST_TEST(static_cast<int>(s.kind) == static_cast<int>(Kind::kError));
  BOOST_TEST(s.error_message == "plain string");
}

BOOST_AUTO_TEST_CASE(error_null_is_a_normal_chunk) {
  ChunkInfo c = DecodeChunk(Chunk(R"({"content":"ok"})", "null", R"(,"error":null)"));
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(c.content == "ok");
}

BOOST_AUTO_TEST_CASE(garbage_is_invalid) {
  for (const char* bad : {"", "not json", "{", "{\"choices\":[", "[1,2,3]", "\"str\"", "42", "null",
                          "{\"a\":1} trailing", "{}{}", "data: {}"}) {
    BOOST_TEST_CONTEXT("input " << bad) {
      BOOST_TEST(static_cast<int>(DecodeChunk(bad).kind) == static_cast<int>(Kind::kInvalid));
    }
  }
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_invalid_not_a_crash) {
  std::string deep = "{\"choices\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  BOOST_TEST(static_cast<int>(DecodeChunk(deep).kind) == static_cast<int>(Kind::kInvalid));
  std::string objects;
  for (int i = 0; i < 5000; ++i) objects += "{\"a\":";
  objects += "1";
  objects += std::string(5000, '}');
  BOOST_TEST(static_cast<int>(DecodeChunk(objects).kind) == static_cast<int>(Kind::kInvalid));
}

BOOST_AUTO_TEST_CASE(huge_exponents_and_numbers_are_invalid_not_a_crash) {
  for (const std::string& num : std::vector<std::string>{
           "1e-2147483649", "1e2147483648", "1e99999", "0e-99999999999",
           "128.74836467836484838364836483643636483648e-336", std::string(10000, '9')}) {
    std::string data = Chunk(R"({"content":"x"})", "null", R"(,"n":)" + num);
    BOOST_TEST_CONTEXT("number " << num.substr(0, 40)) {
      BOOST_TEST(static_cast<int>(DecodeChunk(data).kind) == static_cast<int>(Kind::kInvalid));
    }
  }
}

BOOST_AUTO_TEST_CASE(ordinary_numbers_are_fine) {
  ChunkInfo c = DecodeChunk(Chunk(R"({"content":"x"})", "null", R"(,"n":-1.5e-10,"m":12345678)"));
  BOOST_TEST(static_cast<int>(c.kind) == static_cast<int>(Kind::kChunk));
  BOOST_TEST(c.content == "x");
}

BOOST_AUTO_TEST_CASE(decode_error_body) {
  std::string code, message;
  BOOST_TEST(DecodeErrorBody(
      R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota",)"
      R"("param":null,"code":"insufficient_quota"}})",
      code, message));
  BOOST_TEST(code == "insufficient_quota");
  BOOST_TEST(message == "You exceeded your current quota");

  code.clear();
  message.clear();
  BOOST_TEST(
      DecodeErrorBody(R"({"error":{"message":"Rate limit reached","type":"requests","code":null}})",
                      code, message));
  BOOST_TEST(code == "requests");
  BOOST_TEST(message == "Rate limit reached");
}

BOOST_AUTO_TEST_CASE(decode_error_body_rejects_non_errors) {
  std::string code = "unchanged", message = "unchanged";
  BOOST_TEST(!DecodeErrorBody("<html>502 Bad Gateway</html>", code, message));
  BOOST_TEST(!DecodeErrorBody(R"({"detail":"nope"})", code, message));
  BOOST_TEST(!DecodeErrorBody(R"({"error":42})", code, message));
  BOOST_TEST(!DecodeErrorBody("", code, message));
  BOOST_TEST(!DecodeErrorBody(std::string(100000, '[') + std::string(100000, ']'), code, message));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::llm
