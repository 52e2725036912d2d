// `ragstream migrate`: a store written in the previous layout (written here key by key, as
// the previous DocumentStore wrote it) is converted in place, and then answers every search
// exactly as a store that ingested the same documents with the current code.
#include "lib/rag/store_migration.h"

#include <boost/test/unit_test.hpp>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/json.h"
#include "lib/core/sha256.h"
#include "lib/core/utf8.h"
#include "lib/rag/analyzer.h"
#include "lib/rag/chunker.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/ingester.h"
#include "lib/rag/retriever.h"
#include "lib/store/tenant_key.h"
#include "tests/unit/temp_store.h"

namespace ragstream::rag {
namespace {

using ragstream::testing::TempDir;
constexpr int kShards = 2;

const std::vector<std::pair<std::string, std::string>> kDocs = {
    {"Lease",
     "The tenant must give ninety days notice to extend the lease. Rent is due on the "
     "first of each month, and a late payment costs a fee of fifty euros.\n\nPets need "
     "the landlord's written consent."},
    {"Bread",
     "Sourdough rises with a starter of wild yeast. Feed the starter with flour and "
     "water, let the dough ferment overnight, then bake it in a hot Dutch oven."},
    {"ים המלח",
     "ים המלח הוא אגם מלוח בבקעת הירדן. העומק המרבי של האגם הוא כ־300 מטרים, "
     "ומפלס המים יורד בכל שנה."},
    {"Whales",
     "Humpback whales migrate between polar feeding grounds and tropical breeding "
     "grounds. Blue whales feed on krill.\n\nSperm whales dive deeper than a "
     "kilometre to hunt squid."},
};

IngestOptions SmallChunks() {
  IngestOptions io;
  io.chunker.target_chars = 90;
  io.chunker.overlap_chars = 15;
  io.chunker.max_chars = 140;
  return io;
}

std::unique_ptr<store::Env> OpenEnv(const std::string& path) {
  store::Env::Options options;
  options.path = path;
  options.map_size_bytes = 64ull << 20;
  options.max_readers = 126;
  options.databases = store::DocumentStore::Databases(kShards);
  for (auto& n : PreviousLayoutDatabases(kShards)) options.databases.push_back(n);
  auto env = store::Env::Open(options);
  BOOST_REQUIRE_MESSAGE(env.ok(), env.status().ToString());
  return std::move(env).value();
}

std::string U32(uint32_t v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

// The previous DocumentStore's Add, key by key: a JSON record without dense ids, the text,
// the hash entry, chunk records with a copy of their text and their terms, one posting key
// per term and chunk, document frequencies and totals, and the vectors keyed by document id.
void WriteOldDocument(store::Txn& txn, const store::Env& env, const std::string& tenant,
                      const std::string& id, const std::string& title, const std::string& text,
                      int64_t created_at) {
  HashEmbedder embedder;
  std::vector<Chunk> chunks = ChunkText(text, SmallChunks().chunker);
  store::DocumentRecord r;
  r.id = id;
  r.title = title;
  r.content_hash = Sha256Hex(text);
  r.bytes = text.size();
  r.chars = Utf8Length(text);
  r.chunk_count = static_cast<uint32_t>(chunks.size());
  r.created_at = created_at;
  const std::string key = store::TenantKey(tenant, id);
  BOOST_REQUIRE(txn.Put(env.Dbi("documents"), key,
                        "{\"id\":\"" + id + "\",\"title\":\"" + title + "\",\"content_hash\":\"" +
                            r.content_hash + "\",\"bytes\":" + std::to_string(r.bytes) +
                            ",\"chars\":" + std::to_string(r.chars) +
                            ",\"chunk_count\":" + std::to_string(r.chunk_count) +
                            ",\"created_at\":" + std::to_string(created_at) + "}")
                    .ok());
  BOOST_REQUIRE(txn.Put(env.Dbi("doc_text"), key, text).ok());
  BOOST_REQUIRE(txn.Put(env.Dbi("doc_by_hash"), store::TenantKey(tenant, r.content_hash), id).ok());
  BOOST_REQUIRE(store::AddToCounter(txn, env.Dbi("index_meta"), "doc_count/" + tenant, 1).ok());
  std::string vectors(16, '\0');
  const uint32_t dim = static_cast<uint32_t>(embedder.dimension());
  const uint32_t header[4] = {0x31565352, r.chunk_count, dim, 0};
  std::memcpy(vectors.data(), header, sizeof header);
  const std::vector<std::string> title_terms = TitleTerms(title);
  for (uint32_t i = 0; i < chunks.size(); ++i) {
    ChunkTerms terms = AnalyzeChunk(chunks[i].text, title_terms, "");
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    w.Key("index");
    w.Uint(i);
    w.Key("start_char");
    w.Uint64(chunks[i].start_char);
    w.Key("end_char");
    w.Uint64(chunks[i].end_char);
    w.Key("text");
    WriteString(w, chunks[i].text);
    w.Key("terms");
    w.StartArray();
    for (const auto& t : terms.terms) WriteString(w, t);
    w.EndArray();
    w.Key("length");
    w.Uint(terms.length);
    w.EndObject();
    BOOST_REQUIRE(txn.Put(env.Dbi("chunks"), key + store::ChunkKeyPart(i),
                          std::string(buf.GetString(), buf.GetSize()))
                      .ok());
    for (const auto& t : terms.terms) {
      BOOST_REQUIRE(txn.Put(env.Dbi("lex_postings"),
                            store::TenantKey(tenant, t) + '\0' + id + store::ChunkKeyPart(i),
                            U32(1) + U32(terms.length))
                        .ok());
      BOOST_REQUIRE(txn.Put(env.Dbi("lex_df"), store::TenantKey(tenant, t), U32(1)).ok());
    }
    std::vector<float> v(dim);
    embedder.EmbedOne(chunks[i].text, v.data());
    vectors.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  }
  BOOST_REQUIRE(txn.Put(env.Dbi("vec." + std::to_string(created_at % kShards)), key, vectors).ok());
  BOOST_REQUIRE(
      store::AddToCounter(txn, env.Dbi("index_meta"), "lex_chunks/" + tenant, r.chunk_count).ok());
}

size_t Entries(const store::Env& env, const char* db) {
  auto txn = store::Txn::BeginRead(env);
  BOOST_REQUIRE(txn.ok());
  MDB_stat stat;
  BOOST_REQUIRE_EQUAL(mdb_stat(txn->raw(), env.Dbi(db), &stat), 0);
  return stat.ms_entries;
}

// Every search's passages as "title#chunk score" lines, in order.
std::vector<std::string> Answers(const store::DocumentStore& documents, const std::string& tenant) {
  HashEmbedder embedder;
  Retriever retriever(documents, embedder);
  std::vector<std::string> out;
  for (const char* q : {"notice to extend the lease", "how deep is the sea", "מה עומק ים המלח?",
                        "what do blue whales eat", "bake bread overnight", "pets"}) {
    for (RetrievalMode mode :
         {RetrievalMode::kHybrid, RetrievalMode::kLexical, RetrievalMode::kVector}) {
      auto passages = retriever.Retrieve({tenant, q, 5, mode, {}});
      BOOST_REQUIRE_MESSAGE(passages.ok(), passages.status().ToString());
      for (const auto& p : *passages) {
        char score[32];
        std::snprintf(score, sizeof score, "%.9f", p.score);
        out.push_back(std::string(q) + " " + RetrievalModeName(mode) + ": " + p.title + "#" +
                      std::to_string(p.chunk_index) + " " + score + " [" + p.text + "]");
      }
    }
  }
  return out;
}

BOOST_AUTO_TEST_SUITE(store_migration_test)

BOOST_AUTO_TEST_CASE(a_previous_layout_store_migrates_to_the_same_answers) {
  TempDir old_dir, new_dir;
  auto old_env = OpenEnv(old_dir.path());
  {
    auto txn = store::Txn::BeginWrite(*old_env);
    BOOST_REQUIRE(txn.ok());
    const MDB_dbi meta = old_env->Dbi("index_meta");
    for (auto [k, v] : std::map<std::string, std::string>{{"layout", "tenant-keys-v1"},
                                                          {"embedder", "hash-v1"},
                                                          {"dimension", "384"},
                                                          {"shards", std::to_string(kShards)},
                                                          {"vector_format", "float"},
                                                          {"analyzer", kAnalyzerVersion},
                                                          {"reindex_cursor", "acme/doc_x"}}) {
      BOOST_REQUIRE(txn->Put(meta, k, v).ok());
    }
    for (size_t i = 0; i < kDocs.size(); ++i) {
      WriteOldDocument(*txn, *old_env, "acme", "doc_old" + std::to_string(i), kDocs[i].first,
                       kDocs[i].second, static_cast<int64_t>(i + 1));
    }
    WriteOldDocument(*txn, *old_env, "bravo", "doc_b0", "Other", "Bravo's own words.", 7);
    BOOST_REQUIRE(txn->Commit().ok());
  }
  store::DocumentStore migrated(
      *old_env, kShards, store::VectorFormat::kFloat,
      store::DocumentStore::Analyzer(AnalyzeDocumentChunks, AnalyzerVersion()));
  Status refused = migrated.CheckIndexIdentity("hash-v1", 384);
  BOOST_TEST(refused.code() == "old_store_layout");
  BOOST_TEST(refused.message().find("ragstream migrate") != std::string::npos);

  uint64_t calls = 0;
  auto report = MigrateStore(*old_env, migrated, kShards, [&](uint64_t, uint64_t) { ++calls; });
  BOOST_REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  BOOST_TEST(report->migrated);
  BOOST_TEST(report->documents == kDocs.size() + 1);
  BOOST_TEST(calls == 2u);  // one transaction per tenant here
  BOOST_TEST(StoreLayout(*old_env).value() == "dense-ids-v4");
  BOOST_TEST(migrated.CheckIndexIdentity("hash-v1", 384).ok());

  // The same documents through today's ingester, in the same order.
  auto new_env = OpenEnv(new_dir.path());
  store::DocumentStore fresh(*new_env, kShards, store::VectorFormat::kFloat, AnalyzeDocumentChunks);
  HashEmbedder embedder;
  Ingester ingester(fresh, embedder, SmallChunks());
  for (const auto& [title, text] : kDocs) BOOST_REQUIRE(ingester.Ingest("acme", title, text).ok());

  const auto want = Answers(fresh, "acme");
  const auto got = Answers(migrated, "acme");
  BOOST_TEST(want.size() > 20u);
  BOOST_TEST(got == want, boost::test_tools::per_element());
  // Ids, titles and creation times are kept; the other tenant is still its own.
  auto doc = migrated.Get("acme", "doc_old2");
  BOOST_REQUIRE(doc.ok());
  BOOST_TEST(doc->title == "ים המלח");
  BOOST_TEST(doc->created_at == 3);
  BOOST_TEST(migrated.Count("acme").value() == kDocs.size());
  BOOST_TEST(migrated.Count("bravo").value() == 1u);
  BOOST_TEST(!migrated.Get("bravo", "doc_old0").ok());
  // A second run has nothing to do; deleting a migrated document leaves nothing behind.
  auto again = MigrateStore(*old_env, migrated, kShards);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(!again->migrated);
  for (size_t i = 0; i < kDocs.size(); ++i) {
    BOOST_REQUIRE(migrated.Delete("acme", "doc_old" + std::to_string(i)).ok());
  }
  BOOST_REQUIRE(migrated.Delete("bravo", "doc_b0").ok());
  for (const char* db : {"chunk_spans", "lex_blocks", "lex_doc_freq", "doc_by_num", "documents",
                         "vectors.0", "vectors.1"}) {
    BOOST_TEST(Entries(*old_env, db) == 0u, db);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
