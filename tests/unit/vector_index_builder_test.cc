// VectorIndexBuilder's sampling of answered questions: 1 in check_every is checked (with an
// interval of 0), at most one per check_interval_ms, none with check_every 0; each check runs
// on the builder's thread and WaitIdle waits for it.
#include "lib/rag/vector_index_builder.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <vector>

#include "lib/rag/analyzer.h"
#include "lib/store/document_store.h"
#include "tests/unit/temp_store.h"

namespace ragstream::rag {
namespace {

struct Store {
  Store() {
    auto opened = testing::OpenDocumentEnv(dir.path(), 2);
    BOOST_REQUIRE(opened.ok());
    env = std::move(opened).value();
    documents = std::make_unique<store::DocumentStore>(*env, 2, store::VectorFormat::kFloat,
                                                       AnalyzeDocumentChunks);
  }
  testing::TempDir dir;
  std::unique_ptr<store::Env> env;
  std::unique_ptr<store::DocumentStore> documents;
};

uint64_t Checks(uint32_t every, int64_t interval_ms, int answered) {
  Store s;
  VectorIndexBuilderOptions o;
  o.min_chunks = 1000;
  o.dimension = 8;
  o.check_every = every;
  o.check_interval_ms = interval_ms;
  VectorIndexBuilder builder(*s.documents, o);
  const std::vector<float> q(8, 0.25f);
  for (int i = 0; i < answered; ++i) {
    builder.Answered("t", q.data(), 8);
    builder.WaitIdle();  // so the queue's cap of a few never drops one here
  }
  builder.WaitIdle();
  return builder.checks();
}

BOOST_AUTO_TEST_SUITE(vector_index_builder_test)

BOOST_AUTO_TEST_CASE(one_in_check_every_questions_is_checked) {
  BOOST_TEST(Checks(4, 0, 16) == 4u);
  BOOST_TEST(Checks(1, 0, 5) == 5u);
}

BOOST_AUTO_TEST_CASE(at_most_one_check_per_interval) {
  BOOST_TEST(Checks(1, 60000, 10) == 1u);
}

BOOST_AUTO_TEST_CASE(no_checks_when_turned_off) {
  BOOST_TEST(Checks(0, 0, 10) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
