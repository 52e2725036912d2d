// VectorIndexBuilder's sampling of answered questions: 1 in check_every is checked (with an
// interval of 0), at most one per check_interval_ms, none with check_every 0; each check runs
// on the builder's thread and WaitIdle waits for it. And its packing of a store written before
// vector blocks, with the approximate index turned off.
#include "lib/rag/vector_index_builder.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "lib/rag/analyzer.h"
#include "lib/store/chunk_catalog.h"
#include "lib/store/document_store.h"
#include "lib/store/tenant_key.h"
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

// A store of the per-document layout (one value per document, some crossing a 512-chunk range)
// is packed into blocks by the builder's check of the tenant, even with no approximate index.
BOOST_AUTO_TEST_CASE(a_tenants_per_document_vectors_are_packed_with_the_index_off) {
  Store s;
  constexpr uint32_t kDim = 8, kChunks = 1500, kPerDoc = 30;
  {
    auto txn = store::Txn::BeginWrite(*s.env);
    BOOST_REQUIRE(txn.ok());
    store::ChunkCatalog catalog(*s.env);
    BOOST_REQUIRE(catalog.NewChunkIds(*txn, "t", kChunks).ok());
    for (uint32_t first = 0; first < kChunks; first += kPerDoc) {
      std::string value(16 + sizeof(float) * kPerDoc * kDim, '\0');
      const uint32_t header[4] = {0x31565352, kPerDoc, kDim, 0};  // "RSV1"
      std::memcpy(value.data(), header, sizeof header);
      for (uint32_t r = 0; r < kPerDoc; ++r) {
        const float x = static_cast<float>(first + r);
        std::memcpy(value.data() + 16 + sizeof(float) * r * kDim, &x, sizeof x);
      }
      const std::string shard = std::to_string(s.documents->vectors().ShardOf(first));
      BOOST_REQUIRE(txn->Put(s.env->Dbi("vectors." + shard),
                             store::TenantKey("t", store::ChunkKeyPart(first)), value)
                        .ok());
    }
    BOOST_REQUIRE(txn->Commit().ok());
  }
  VectorIndexBuilderOptions o;
  o.min_chunks = 0;  // no approximate index
  o.dimension = kDim;
  VectorIndexBuilder builder(*s.documents, o);
  builder.Touched("t");
  builder.WaitIdle();
  auto layout = s.documents->vectors().Values("t");
  BOOST_REQUIRE(layout.ok());
  BOOST_TEST(layout->blocks == 2u);  // ranges [0, 512) and [512, 1024); 1024.. still filling
  BOOST_TEST(layout->block_rows == 1024u);
  BOOST_TEST(layout->piece_rows == kChunks - 1024u);
  BOOST_TEST(builder.builds() == 0u);
  // Every row is where it was, by its chunk id.
  auto txn = store::Txn::BeginRead(*s.env);
  BOOST_REQUIRE(txn.ok());
  std::vector<float> scratch;
  for (uint32_t chunk = 0; chunk < kChunks; ++chunk) {
    const float* row =
        s.documents->vectors().Row(*txn, "t", chunk - chunk % kPerDoc, chunk, kDim, scratch);
    BOOST_REQUIRE_MESSAGE(row != nullptr, "chunk " << chunk);
    BOOST_TEST(row[0] == static_cast<float>(chunk));
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
