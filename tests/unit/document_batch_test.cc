// ParseDocumentBatch: the body of POST /api/documents/batch, NDJSON or a JSON array.
#include "handlers/document_batch.h"

#include <boost/test/unit_test.hpp>

#include <string>

namespace ragstream::handlers {
namespace {

constexpr const char* kNdjson = "application/x-ndjson";
constexpr const char* kJson = "application/json";

void ExpectError(const Result<std::vector<rag::IngestInput>>& r, ErrorKind kind,
                 const std::string& code, const std::string& names = "") {
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(static_cast<int>(r.status().kind()) == static_cast<int>(kind), r.status().ToString());
  BOOST_TEST(r.status().code() == code, r.status().ToString());
  if (!names.empty()) {
    BOOST_TEST(r.status().message().rfind(names + ":", 0) == 0, r.status().message());
  }
}

BOOST_AUTO_TEST_SUITE(document_batch_test)

BOOST_AUTO_TEST_CASE(ndjson_lines_in_order_blank_lines_ignored) {
  auto r = ParseDocumentBatch(kNdjson,
                              "{\"title\":\"A\",\"text\":\"one\"}\r\n\n   \n{\"text\":\"two\"}\n");
  BOOST_REQUIRE(r.ok());
  BOOST_REQUIRE(r->size() == 2u);
  BOOST_TEST((*r)[0].title == "A");
  BOOST_TEST((*r)[0].text == "one");
  BOOST_TEST((*r)[1].title == "");
  BOOST_TEST((*r)[1].text == "two");
  // The last line needs no newline.
  auto last = ParseDocumentBatch(kNdjson, "{\"text\":\"x\"}");
  BOOST_REQUIRE(last.ok());
  BOOST_TEST(last->size() == 1u);
}

BOOST_AUTO_TEST_CASE(json_array) {
  auto r = ParseDocumentBatch(kJson, "[{\"text\":\"one\"},{\"title\":\"T\",\"text\":\"two\"}]");
  BOOST_REQUIRE(r.ok());
  BOOST_REQUIRE(r->size() == 2u);
  BOOST_TEST((*r)[1].title == "T");
  BOOST_TEST((*r)[1].text == "two");
}

BOOST_AUTO_TEST_CASE(a_malformed_line_names_its_number) {
  const std::string good = "{\"text\":\"ok\"}\n";
  ExpectError(ParseDocumentBatch(kNdjson, good + "\n{not json\n"), ErrorKind::kInvalidArgument,
              "invalid_json", "line 3");
  ExpectError(ParseDocumentBatch(kNdjson, good + "[1,2]\n"), ErrorKind::kInvalidArgument,
              "invalid_json", "line 2");
  ExpectError(ParseDocumentBatch(kNdjson, good + "{\"title\":\"t\"}\n"),
              ErrorKind::kInvalidArgument, "missing_field", "line 2");
  ExpectError(ParseDocumentBatch(kNdjson, good + good + "{\"text\":5}\n"),
              ErrorKind::kInvalidArgument, "invalid_field", "line 3");
  ExpectError(ParseDocumentBatch(kNdjson, "{\"text\":\"a\",\"title\":[]}\n"),
              ErrorKind::kInvalidArgument, "invalid_field", "line 1");
}

BOOST_AUTO_TEST_CASE(a_malformed_element_names_its_index) {
  ExpectError(ParseDocumentBatch(kJson, "[{\"text\":\"a\"}, 7]"), ErrorKind::kInvalidArgument,
              "invalid_json", "index 1");
  ExpectError(ParseDocumentBatch(kJson, "[{\"text\":\"a\"}, {\"text\":\"b\"}, {}]"),
              ErrorKind::kInvalidArgument, "missing_field", "index 2");
  ExpectError(ParseDocumentBatch(kJson, "[{\"text\":\"a\", \"title\": 1}]"),
              ErrorKind::kInvalidArgument, "invalid_field", "index 0");
  ExpectError(ParseDocumentBatch(kJson, "{\"text\":\"a\"}"), ErrorKind::kInvalidArgument,
              "invalid_json");
  ExpectError(ParseDocumentBatch(kJson, "[{\"text\":\"a\"}"), ErrorKind::kInvalidArgument,
              "invalid_json");
}

BOOST_AUTO_TEST_CASE(empty_and_oversized_batches) {
  ExpectError(ParseDocumentBatch(kNdjson, ""), ErrorKind::kInvalidArgument, "empty_batch");
  ExpectError(ParseDocumentBatch(kNdjson, "\n \r\n"), ErrorKind::kInvalidArgument, "empty_batch");
  ExpectError(ParseDocumentBatch(kJson, "[]"), ErrorKind::kInvalidArgument, "empty_batch");
  std::string three;
  for (int i = 0; i < 3; ++i) three += "{\"text\":\"t\"}\n";
  BOOST_TEST(ParseDocumentBatch(kNdjson, three, 3).ok());
  ExpectError(ParseDocumentBatch(kNdjson, three, 2), ErrorKind::kTooLarge, "too_many_documents");
  ExpectError(ParseDocumentBatch(kJson, "[{\"text\":\"a\"},{\"text\":\"b\"}]", 1),
              ErrorKind::kTooLarge, "too_many_documents");
  BOOST_TEST(kMaxBatchDocuments == 1000u);
}

BOOST_AUTO_TEST_CASE(other_media_types_are_415) {
  for (const char* type : {"text/plain", "", "application/jsonl", "text/markdown"}) {
    ExpectError(ParseDocumentBatch(type, "{\"text\":\"a\"}\n"), ErrorKind::kUnsupportedMediaType,
                "unsupported_media_type");
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::handlers
