// Retriever: reciprocal rank fusion by hand, mode names, and retrieval in each
// mode over a real DocumentStore filled through the Ingester with the hash
// embedder.
#include "lib/rag/retriever.h"
#include "lib/rag/analyzer.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "lib/core/utf8.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/ingester.h"
#include "lib/store/document_store.h"
#include "lib/store/lmdb.h"
#include "tests/unit/temp_store.h"

namespace ragstream::rag {
namespace {

using ragstream::testing::TempDir;

constexpr double kTol = 1e-12;

BOOST_AUTO_TEST_SUITE(retriever_test)

// Fusion: lexical relevance is taken as it is; cosines are min-max normalised over the
// candidates and weighted.
BOOST_AUTO_TEST_CASE(fusion_scores_by_hand) {
  // cosines 0.2 .. 0.6: a -> 0.5, b -> 1.0, c -> 0.0; d has no cosine.
  auto fused =
      RelativeScoreFusion({{"a", 0.8, 0.4}, {"b", 0.5, 0.6}, {"c", -1, 0.2}, {"d", 0.3}}, 1.0, 0.5);
  BOOST_REQUIRE_EQUAL(fused.size(), 4u);
  BOOST_TEST(fused[0].id == "a");
  BOOST_TEST(fused[0].score == 0.8 + 0.5 * 0.5, boost::test_tools::tolerance(kTol));
  BOOST_TEST(fused[1].id == "b");
  BOOST_TEST(fused[1].score == 0.5 + 0.5 * 1.0, boost::test_tools::tolerance(kTol));
  BOOST_TEST(fused[2].id == "d");
  BOOST_TEST(fused[2].score == 0.3, boost::test_tools::tolerance(kTol));
  BOOST_TEST(fused[3].id == "c");  // only a cosine, the lowest: 0
  BOOST_TEST(fused[3].score == 0.0, boost::test_tools::tolerance(kTol));
  BOOST_TEST(fused[3].lexical_relevance == 0.0);
  BOOST_TEST(fused[0].lexical_relevance == 0.8);
}

BOOST_AUTO_TEST_CASE(fusion_never_lets_the_hash_side_outvote_a_clear_lexical_winner) {
  // The lease example of the issue: BM25 13.8 against 8.5 (relevance 0.9 against 0.55), and
  // the winner last in the vector list while the others are first.
  const RetrieverOptions hash = RetrieverOptions::ForEmbedder("hash-v3");
  std::vector<FusionCandidate> c = {{"lease", 0.90, 0.10},
                                    {"nginx", 0.55, 0.40},
                                    {"fibonacci", 0.50, 0.39},
                                    {"aqueduct", 0.45, 0.38}};
  auto fused = RelativeScoreFusion(c, hash.lexical_weight, hash.vector_weight);
  BOOST_REQUIRE(!fused.empty());
  BOOST_TEST(fused[0].id == "lease");
  // A semantic embedder counts fully: the same lists with equal weights put the vector
  // side's favourite first when lexical relevance is close.
  const RetrieverOptions semantic = RetrieverOptions::ForEmbedder("openai:text-embedding-3-small");
  BOOST_TEST(semantic.vector_weight == semantic.lexical_weight);
  BOOST_TEST(semantic.vector_vouches_in_hybrid);
  BOOST_TEST(!hash.vector_vouches_in_hybrid);
  auto close = RelativeScoreFusion({{"x", 0.60, 0.10}, {"y", 0.55, 0.50}}, semantic.lexical_weight,
                                   semantic.vector_weight);
  BOOST_TEST(close[0].id == "y");
}

BOOST_AUTO_TEST_CASE(fusion_ties_are_broken_by_id) {
  // Equal scores come out in id order whatever order they went in: the same store gives the
  // same ranking.
  auto one = RelativeScoreFusion({{"b", 0.5}, {"a", 0.5}, {"c", 0.5}}, 1.0, 0.0);
  auto two = RelativeScoreFusion({{"c", 0.5}, {"a", 0.5}, {"b", 0.5}}, 1.0, 0.0);
  BOOST_REQUIRE_EQUAL(one.size(), 3u);
  for (size_t i = 0; i < 3; ++i) BOOST_TEST(one[i].id == two[i].id);
  BOOST_TEST(one[0].id == "a");
  BOOST_TEST(one[2].id == "c");
}

BOOST_AUTO_TEST_CASE(fusion_edge_cases) {
  BOOST_TEST(RelativeScoreFusion({}, 1.0, 1.0).empty());
  // One cosine, or all equal: each counts as the best.
  auto single = RelativeScoreFusion({{"a", -1, 0.3}}, 1.0, 0.5);
  BOOST_REQUIRE_EQUAL(single.size(), 1u);
  BOOST_TEST(single[0].score == 0.5, boost::test_tools::tolerance(kTol));
  auto flat = RelativeScoreFusion({{"a", 0.1, 0.3}, {"b", 0.2, 0.3}}, 1.0, 0.5);
  BOOST_TEST(flat[0].id == "b");
  BOOST_TEST(flat[0].score == 0.7, boost::test_tools::tolerance(kTol));
  // A zero weight drops a side's influence but keeps its items.
  auto zero = RelativeScoreFusion({{"a", 0.2, 0.9}, {"b", 0.3, 0.1}}, 1.0, 0.0);
  BOOST_TEST(zero[0].id == "b");
  BOOST_TEST(zero.size() == 2u);
}

BOOST_AUTO_TEST_CASE(mode_names_round_trip) {
  for (RetrievalMode m :
       {RetrievalMode::kHybrid, RetrievalMode::kVector, RetrievalMode::kLexical}) {
    RetrievalMode parsed =
        m == RetrievalMode::kHybrid ? RetrievalMode::kVector : RetrievalMode::kHybrid;
    BOOST_REQUIRE(ParseRetrievalMode(RetrievalModeName(m), parsed));
    BOOST_TEST((parsed == m));
  }
  BOOST_TEST(std::string(RetrievalModeName(RetrievalMode::kHybrid)) == "hybrid");
  BOOST_TEST(std::string(RetrievalModeName(RetrievalMode::kVector)) == "vector");
  BOOST_TEST(std::string(RetrievalModeName(RetrievalMode::kLexical)) == "lexical");
  RetrievalMode untouched = RetrievalMode::kLexical;
  for (const char* bad : {"", "Hybrid", "VECTOR", "lexical ", "bm25", "semantic"}) {
    BOOST_TEST(!ParseRetrievalMode(bad, untouched), bad);
  }
  BOOST_TEST((untouched == RetrievalMode::kLexical));
}

// A store with a few unrelated documents, ingested for real.
struct Library {
  explicit Library(RetrieverOptions retriever_options = {}) {
    auto opened = testing::OpenDocumentEnv(dir.path(), 3);
    if (!opened.ok()) throw std::runtime_error("Env::Open: " + opened.status().ToString());
    env = std::move(opened).value();
    documents = std::make_unique<store::DocumentStore>(*env, 3, store::VectorFormat::kFloat,
                                                       rag::AnalyzeDocumentChunks);
    IngestOptions io;
    io.chunker.target_chars = 120;
    io.chunker.overlap_chars = 20;
    io.chunker.max_chars = 200;
    ingester = std::make_unique<Ingester>(*documents, embedder, io);
    retriever = std::make_unique<Retriever>(*documents, embedder, retriever_options);

    Add("lmdb",
        "LMDB is a memory-mapped key-value database. Readers never "
        "block writers, and a "
        "write transaction is serialized by a single writer lock. The "
        "memory map lets every "
        "process share the page cache.");
    Add("bread",
        "Sourdough bread rises with a starter of wild yeast and "
        "lactobacilli. Feed the "
        "starter with flour and water, let the dough ferment "
        "overnight, then bake it in a "
        "hot Dutch oven.");
    Add("volcano",
        "A volcano erupts when magma rises through the crust. "
        "Basalt lava flows are runny, "
        "while andesite and rhyolite magmas are sticky and explode "
        "violently, throwing ash "
        "high into the stratosphere.");
    Add("chess",
        "The Sicilian Defence answers 1.e4 with c5. White often plays "
        "the Open Sicilian with "
        "Nf3 and d4, and Black chooses between the Najdorf, the "
        "Dragon and the Sveshnikov.");
    Add("whales",
        "Humpback whales migrate thousands of kilometres between "
        "feeding grounds in polar "
        "waters and breeding grounds in the tropics. Males sing "
        "long, complex songs.\n\n"
        "Blue whales are the largest animals ever known. They feed "
        "almost only on krill, "
        "filtering tons of it each day through baleen plates.\n\n"
        "Sperm whales dive deeper than a kilometre to hunt giant "
        "squid, holding their breath "
        "for more than an hour.");
  }
  ~Library() {
    retriever.reset();
    ingester.reset();
    documents.reset();
    env.reset();
  }

  void Add(const std::string& key, const std::string& text) {
    auto r = ingester->Ingest("acme", key + " title", text);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    ids[key] = r->record.id;
    texts[key] = text;
  }

  std::vector<Passage> Retrieve(const std::string& query, RetrievalMode mode, size_t top_k = 5,
                                std::vector<std::string> filter = {}) const {
    RetrievalRequest req;
    req.tenant = "acme";
    req.query = query;
    req.mode = mode;
    req.top_k = top_k;
    req.document_ids = std::move(filter);
    auto r = retriever->Retrieve(req);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return std::move(r).value();
  }

  TempDir dir;
  std::unique_ptr<store::Env> env;
  std::unique_ptr<store::DocumentStore> documents;
  HashEmbedder embedder;
  std::unique_ptr<Ingester> ingester;
  std::unique_ptr<Retriever> retriever;
  std::map<std::string, std::string> ids, texts;
};

const RetrievalMode kModes[] = {RetrievalMode::kVector, RetrievalMode::kLexical,
                                RetrievalMode::kHybrid};

// Every passage is consistent with the store: its chunk, its document's title,
// its text at its offsets (the documents are ASCII, so code points are bytes).
void CheckPassages(const Library& lib, const std::vector<Passage>& passages) {
  for (const auto& p : passages) {
    BOOST_TEST(p.chunk_id == p.document_id + ":" + std::to_string(p.chunk_index));
    auto chunk = lib.documents->GetChunk("acme", p.document_id, p.chunk_index);
    BOOST_REQUIRE(chunk.ok());
    BOOST_TEST(p.text == chunk->text);
    BOOST_TEST(p.start_char == chunk->start_char);
    BOOST_TEST(p.end_char == chunk->end_char);
    auto text = lib.documents->GetText("acme", p.document_id);
    BOOST_REQUIRE(text.ok());
    BOOST_REQUIRE(p.end_char <= text->size());
    BOOST_TEST(text->substr(p.start_char, p.end_char - p.start_char) == p.text);
    auto doc = lib.documents->Get("acme", p.document_id);
    BOOST_REQUIRE(doc.ok());
    BOOST_TEST(p.title == doc->title);
  }
  std::set<std::string> seen;
  for (const auto& p : passages) BOOST_TEST(seen.insert(p.chunk_id).second, "duplicate");
  for (size_t i = 1; i < passages.size(); ++i) {
    BOOST_TEST(passages[i - 1].score >= passages[i].score);
  }
}

BOOST_AUTO_TEST_CASE(each_mode_finds_the_relevant_document_first) {
  Library lib;
  const std::vector<std::pair<std::string, std::string>> queries = {
      {"lmdb", "how do LMDB readers and the writer lock share the memory map?"},
      {"bread", "how long should sourdough dough ferment before I bake the bread"},
      {"volcano", "why does sticky rhyolite magma make a volcano explode"},
      {"chess", "what does black play against the Open Sicilian: Najdorf or Dragon"},
      {"whales", "how deep do sperm whales dive to hunt squid"},
  };
  for (const auto& [want, query] : queries) {
    for (RetrievalMode mode : kModes) {
      BOOST_TEST_CONTEXT(RetrievalModeName(mode) << ": " << query) {
        auto passages = lib.Retrieve(query, mode);
        BOOST_REQUIRE(!passages.empty());
        BOOST_TEST(passages[0].document_id == lib.ids.at(want));
        BOOST_TEST(passages[0].title == want + " title");
        BOOST_TEST(passages.size() <= 5u);
        CheckPassages(lib, passages);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(the_relevant_chunk_of_a_long_document_comes_first) {
  Library lib;
  auto whales = lib.documents->Get("acme", lib.ids.at("whales"));
  BOOST_REQUIRE(whales.ok());
  BOOST_REQUIRE_MESSAGE(whales->chunk_count >= 3u,
                        "the whale document should have 3 chunks, not " << whales->chunk_count);
  for (RetrievalMode mode : kModes) {
    BOOST_TEST_CONTEXT(RetrievalModeName(mode)) {
      auto passages = lib.Retrieve("blue whales krill baleen", mode);
      BOOST_REQUIRE(!passages.empty());
      BOOST_TEST(passages[0].document_id == lib.ids.at("whales"));
      BOOST_TEST(passages[0].text.find("krill") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(scores_are_what_each_mode_says) {
  Library lib;
  const std::string query = "sourdough starter flour";
  auto vector = lib.Retrieve(query, RetrievalMode::kVector);
  BOOST_REQUIRE(!vector.empty());
  BOOST_TEST(vector[0].score > 0.0);
  BOOST_TEST(vector[0].score <= 1.0 + 1e-6);  // a cosine
  auto lexical = lib.Retrieve(query, RetrievalMode::kLexical);
  BOOST_REQUIRE(!lexical.empty());
  // BM25 of the very chunk, recomputed from the index.
  auto bm25 = lib.documents->lexical().Search("acme", AnalyzeQuery(query), 1, {});
  BOOST_REQUIRE(bm25.ok() && !bm25->hits.empty());
  BOOST_TEST(lexical[0].score == bm25->hits[0].score, boost::test_tools::tolerance(kTol));
  // Its relevance: BM25 over the question's mass.
  BOOST_TEST(lexical[0].relevance == bm25->hits[0].score / bm25->query_mass,
             boost::test_tools::tolerance(kTol));
  auto hybrid = lib.Retrieve(query, RetrievalMode::kHybrid);
  BOOST_REQUIRE(!hybrid.empty());
  // Relevance plus the weighted, normalised cosine: at most relevance + vector_weight.
  const RetrieverOptions o;
  for (const auto& p : hybrid) {
    BOOST_TEST(p.score >= o.lexical_weight * p.relevance - kTol);
    BOOST_TEST(p.score <= o.lexical_weight * p.relevance + o.vector_weight + kTol);
  }
}

BOOST_AUTO_TEST_CASE(top_k_is_respected) {
  // No relevance floor, and a query sharing a word with every document.
  RetrieverOptions no_floor;
  no_floor.min_relevance = 0;
  no_floor.min_cosine = -1;
  Library lib(no_floor);
  const std::string query = "lmdb bread volcano chess whales";
  for (RetrievalMode mode : kModes) {
    for (size_t k : {1u, 2u, 3u, 7u}) {
      BOOST_TEST_CONTEXT(RetrievalModeName(mode) << " k=" << k) {
        auto passages = lib.Retrieve(query, mode, k);
        BOOST_TEST(passages.size() <= k);
        BOOST_TEST(!passages.empty());
        CheckPassages(lib, passages);
      }
    }
    // Asking for more than there is returns every matching chunk once, at most
    // max_chunks_per_document of each document.
    auto all = lib.Retrieve(query, mode, 1000);
    uint64_t chunks = 0;
    auto list = lib.documents->List("acme");
    BOOST_REQUIRE(list.ok());
    const uint64_t cap = RetrieverOptions().max_chunks_per_document;
    for (const auto& d : *list) chunks += std::min<uint64_t>(d.chunk_count, cap);
    BOOST_TEST(all.size() <= chunks);
    if (mode != RetrievalMode::kLexical) BOOST_TEST(all.size() == chunks);
    CheckPassages(lib, all);
  }
}

BOOST_AUTO_TEST_CASE(document_ids_filter_restricts_every_mode) {
  Library lib;
  const std::string query = "how do LMDB readers and the writer lock share the memory map?";
  const std::vector<std::string> filter = {lib.ids.at("bread"), lib.ids.at("whales")};
  for (RetrievalMode mode : kModes) {
    BOOST_TEST_CONTEXT(RetrievalModeName(mode)) {
      auto passages = lib.Retrieve(query, mode, 10, filter);
      for (const auto& p : passages) {
        BOOST_TEST((p.document_id == filter[0] || p.document_id == filter[1]), p.document_id);
      }
      auto only = lib.Retrieve(query, mode, 10, {lib.ids.at("lmdb")});
      BOOST_REQUIRE(!only.empty());
      for (const auto& p : only) BOOST_TEST(p.document_id == lib.ids.at("lmdb"));
      BOOST_TEST(lib.Retrieve(query, mode, 10, {"doc_000000000000000000000000"}).empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(chunks_per_document_are_capped) {
  const std::string query = "whales migrate krill squid dive songs";
  for (size_t cap : {1u, 2u, 10u}) {
    RetrieverOptions o;
    o.max_chunks_per_document = cap;
    Library lib(o);
    auto whales = lib.documents->Get("acme", lib.ids.at("whales"));
    BOOST_REQUIRE(whales.ok());
    for (RetrievalMode mode : kModes) {
      BOOST_TEST_CONTEXT(RetrievalModeName(mode) << " cap " << cap) {
        auto passages = lib.Retrieve(query, mode, 10);
        std::map<std::string, size_t> per_doc;
        for (const auto& p : passages) ++per_doc[p.document_id];
        for (const auto& [doc, n] : per_doc) BOOST_TEST(n <= cap, doc);
        BOOST_REQUIRE(!passages.empty());
        BOOST_TEST(passages[0].document_id == lib.ids.at("whales"));
        // The cap is what limits the whale chunks, not their relevance.
        BOOST_TEST(per_doc[lib.ids.at("whales")] == std::min<size_t>(cap, whales->chunk_count));
        CheckPassages(lib, passages);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_deleted_document_is_not_retrieved) {
  Library lib;
  const std::string query = "why does sticky rhyolite magma make a volcano explode";
  BOOST_REQUIRE(lib.documents->Delete("acme", lib.ids.at("volcano")).ok());
  for (RetrievalMode mode : kModes) {
    for (const auto& p : lib.Retrieve(query, mode, 10)) {
      BOOST_TEST(p.document_id != lib.ids.at("volcano"));
    }
  }
}

BOOST_AUTO_TEST_CASE(lexical_with_no_shared_terms_finds_nothing) {
  Library lib;
  BOOST_TEST(lib.Retrieve("zzyzx quux", RetrievalMode::kLexical).empty());
  BOOST_TEST(lib.Retrieve("?!...", RetrievalMode::kLexical).empty());
}

BOOST_AUTO_TEST_CASE(an_empty_store_returns_nothing) {
  TempDir dir;
  auto env = testing::OpenDocumentEnv(dir.path(), 2, 16ull << 20);
  BOOST_REQUIRE(env.ok());
  store::DocumentStore documents(**env, 2, store::VectorFormat::kFloat, rag::AnalyzeDocumentChunks);
  HashEmbedder embedder;
  Retriever retriever(documents, embedder);
  for (RetrievalMode mode : kModes) {
    auto r = retriever.Retrieve({"acme", "anything at all", 5, mode, {}});
    BOOST_REQUIRE(r.ok());
    BOOST_TEST(r->empty());
  }
}

BOOST_AUTO_TEST_CASE(sources_json_shape) {
  std::vector<Passage> passages(2);
  passages[0].document_id = "doc_a";
  passages[0].title = "Quote \" and שלום";
  passages[0].chunk_index = 3;
  passages[0].chunk_id = "doc_a:3";
  passages[0].score = 0.25;
  passages[0].text = "line one\nline \"two\"";
  passages[0].start_char = 10;
  passages[0].end_char = 29;
  passages[1].document_id = "doc_b";
  passages[1].chunk_id = "doc_b:0";
  passages[1].score = 0.0325;

  const std::string json = SourcesJson(passages);
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  BOOST_REQUIRE(!doc.HasParseError());
  BOOST_REQUIRE(doc.IsArray());
  BOOST_REQUIRE_EQUAL(doc.Size(), 2u);
  const std::set<std::string> want_keys = {"document_id", "title", "chunk_id",   "score",
                                           "relevance",   "text",  "start_char", "end_char"};
  for (const auto& item : doc.GetArray()) {
    BOOST_REQUIRE(item.IsObject());
    std::set<std::string> keys;
    for (const auto& m : item.GetObject()) keys.insert(m.name.GetString());
    BOOST_TEST((keys == want_keys));
    BOOST_TEST(item["document_id"].IsString());
    BOOST_TEST(item["title"].IsString());
    BOOST_TEST(item["chunk_id"].IsString());
    BOOST_TEST(item["score"].IsNumber());
    BOOST_TEST(item["text"].IsString());
    BOOST_TEST(item["start_char"].IsUint64());
    BOOST_TEST(item["end_char"].IsUint64());
  }
  const auto& first = doc[0];
  BOOST_TEST(std::string(first["document_id"].GetString()) == "doc_a");
  BOOST_TEST(std::string(first["title"].GetString()) == "Quote \" and שלום");
  BOOST_TEST(std::string(first["chunk_id"].GetString()) == "doc_a:3");
  BOOST_TEST(first["score"].GetDouble() == 0.25);
  BOOST_TEST(std::string(first["text"].GetString()) == "line one\nline \"two\"");
  BOOST_TEST(first["start_char"].GetUint64() == 10u);
  BOOST_TEST(first["end_char"].GetUint64() == 29u);
  BOOST_TEST(doc[1]["score"].GetDouble() == 0.0325, boost::test_tools::tolerance(1e-15));

  BOOST_TEST(SourcesJson({}) == "[]");
}

BOOST_AUTO_TEST_CASE(sources_json_of_real_passages_parses) {
  Library lib;
  auto passages = lib.Retrieve("whales krill", RetrievalMode::kHybrid);
  BOOST_REQUIRE(!passages.empty());
  const std::string json = SourcesJson(passages);
  BOOST_TEST(IsValidUtf8(json));
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  BOOST_REQUIRE(!doc.HasParseError());
  BOOST_REQUIRE(doc.IsArray());
  BOOST_REQUIRE_EQUAL(doc.Size(), passages.size());
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    BOOST_TEST(std::string(doc[i]["chunk_id"].GetString()) == passages[i].chunk_id);
    BOOST_TEST(std::string(doc[i]["text"].GetString()) == passages[i].text);
    BOOST_TEST(doc[i]["score"].GetDouble() == passages[i].score,
               boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(below_the_relevance_floor_nothing_is_cited) {
  Library lib;
  for (RetrievalMode mode : {RetrievalMode::kHybrid, RetrievalMode::kLexical}) {
    BOOST_TEST_CONTEXT(RetrievalModeName(mode)) {
      // Nothing in the library is about this; nor is a question of stop words alone.
      BOOST_TEST(
          lib.Retrieve("What is the airspeed velocity of an unladen swallow?", mode).empty());
      BOOST_TEST(lib.Retrieve("what is it and how", mode).empty());
      BOOST_TEST(lib.Retrieve("מה זה?", mode).empty());
      // A question the library answers still is.
      auto found = lib.Retrieve("Which whales eat krill?", mode);
      BOOST_REQUIRE(!found.empty());
      BOOST_TEST(found[0].document_id == lib.ids.at("whales"));
      for (const auto& p : found) BOOST_TEST(p.relevance >= RetrieverOptions().min_relevance);
    }
  }
}

BOOST_AUTO_TEST_CASE(an_exact_form_and_a_title_win_ties_over_other_forms) {
  Library lib;
  lib.Add("renew", "Tenants renewing leases must give written notice before the term ends.");
  lib.Add("renewal", "A tenant renews the lease by giving written notice before the term ends.");
  // Same stems in both; the exact forms "renewing" and "leases" are only in the first.
  auto exact = lib.Retrieve("renewing leases notice", RetrievalMode::kLexical);
  BOOST_REQUIRE(exact.size() >= 2u);
  BOOST_TEST(exact[0].document_id == lib.ids.at("renew"));
  auto other = lib.Retrieve("renews lease notice", RetrievalMode::kLexical);
  BOOST_REQUIRE(!other.empty());
  BOOST_TEST(other[0].document_id == lib.ids.at("renewal"));
  // Library titles are "<key> title": the title word decides between equal bodies.
  lib.Add("harbour", "Opening hours are nine to five on weekdays.");
  lib.Add("museum", "Opening hours are nine to five on weekdays!");
  for (const char* place : {"harbour", "museum"}) {
    auto titled = lib.Retrieve(std::string(place) + " opening hours", RetrievalMode::kLexical);
    BOOST_REQUIRE(!titled.empty());
    BOOST_TEST(titled[0].document_id == lib.ids.at(place));
  }
}

BOOST_AUTO_TEST_CASE(the_same_store_gives_the_same_order) {
  Library lib;
  lib.Add("twin1", "Identical twin passage about granite quarries.");
  lib.Add("twin2", "Identical twin passage about granite quarries!");
  for (RetrievalMode mode : kModes) {
    auto a = lib.Retrieve("granite quarries", mode);
    auto b = lib.Retrieve("granite quarries", mode);
    BOOST_REQUIRE_EQUAL(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) BOOST_TEST(a[i].chunk_id == b[i].chunk_id);
  }
}

// With the hash embedder's defaults (no vector weight), hybrid retrieval is BM25 alone: the
// lexical mode's passages in the lexical mode's order, with no vector work. Given a weight
// (RAGSTREAM_VECTOR_WEIGHT), it scores the vectors of BM25's candidates only (no vector
// search): the cosine reorders what BM25 found above the floor and adds nothing.
BOOST_AUTO_TEST_CASE(hybrid_with_the_hash_embedder_searches_no_vectors) {
  Library lib;
  const std::string query = "how do whales feed on krill in polar waters";
  RetrievalRequest req{"acme", query, 5, RetrievalMode::kHybrid, {}};
  RetrievalInfo info;
  auto hybrid = lib.retriever->Retrieve(req, &info);
  BOOST_REQUIRE(hybrid.ok());
  BOOST_TEST(!info.vector_searched);
  BOOST_TEST(!info.vector_rescored);
  auto lexical = lib.Retrieve(query, RetrievalMode::kLexical);
  BOOST_REQUIRE(!hybrid->empty());
  BOOST_REQUIRE_EQUAL(hybrid->size(), lexical.size());
  for (size_t i = 0; i < lexical.size(); ++i) {
    BOOST_TEST((*hybrid)[i].chunk_id == lexical[i].chunk_id);
    BOOST_TEST((*hybrid)[i].score == (*hybrid)[i].relevance);
  }

  RetrieverOptions weighted = RetrieverOptions::ForEmbedder("hash-v3");
  weighted.vector_weight = 0.5;
  Retriever rescoring(*lib.documents, lib.embedder, weighted);
  RetrievalInfo rescored;
  auto reordered = rescoring.Retrieve(req, &rescored);
  BOOST_REQUIRE(reordered.ok());
  BOOST_TEST(!rescored.vector_searched);
  BOOST_TEST(rescored.vector_rescored);
  auto bm25 = lib.documents->lexical().Search("acme", AnalyzeQuery(query), 20, {});
  BOOST_REQUIRE(bm25.ok());
  BOOST_TEST(rescored.rows_scored == bm25->hits.size());
  std::set<std::string> candidates;
  for (const auto& p : lib.Retrieve(query, RetrievalMode::kLexical, 20)) {
    candidates.insert(p.chunk_id);
  }
  BOOST_REQUIRE(!reordered->empty());
  bool any_cosine = false;
  for (const auto& p : *reordered) {
    BOOST_TEST(candidates.count(p.chunk_id) == 1u, p.chunk_id << " is not a BM25 candidate");
    BOOST_TEST(p.relevance >= weighted.min_relevance);
    BOOST_TEST(p.score <= p.relevance + weighted.vector_weight + kTol);
    any_cosine = any_cosine || p.score > p.relevance + kTol;
  }
  BOOST_TEST(any_cosine, "the rescoring added no cosine to any passage");

  // A semantic embedder's options search the vectors, and say so.
  Retriever semantic(*lib.documents, lib.embedder, RetrieverOptions::ForEmbedder("openai"));
  RetrievalInfo searched;
  BOOST_REQUIRE(semantic.Retrieve(req, &searched).ok());
  BOOST_TEST(searched.vector_searched);
  BOOST_TEST(!searched.vector_rescored);
}

// ScoreChunks scores the bits the exact scan scores, and has nothing for a deleted chunk.
BOOST_AUTO_TEST_CASE(score_chunks_agrees_with_the_exact_scan) {
  Library lib;
  auto q = lib.embedder.Embed({"sperm whales dive to hunt squid"});
  BOOST_REQUIRE(q.ok());
  const uint32_t dim = static_cast<uint32_t>(q->front().size());
  store::VectorSearchOptions exact;
  exact.exact = true;
  auto hits = lib.documents->SearchVectors("acme", q->front().data(), dim, 50, {}, exact);
  BOOST_REQUIRE(hits.ok());
  BOOST_REQUIRE(hits->size() >= 5u);
  std::vector<uint32_t> chunks;
  for (const auto& h : *hits) chunks.push_back(h.chunk);
  auto scores = lib.documents->ScoreChunks("acme", q->front().data(), dim, chunks);
  BOOST_REQUIRE(scores.ok());
  BOOST_REQUIRE_EQUAL(scores->size(), chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    BOOST_REQUIRE((*scores)[i].has_value());
    BOOST_TEST(*(*scores)[i] == (*hits)[i].score);
  }
  // Another tenant's, or a deleted document's, chunks have no vector to score.
  auto other = lib.documents->ScoreChunks("globex", q->front().data(), dim, chunks);
  BOOST_REQUIRE(other.ok());
  for (const auto& s : *other) BOOST_TEST(!s.has_value());
  auto refs = lib.documents->Resolve("acme", chunks);
  BOOST_REQUIRE(refs.ok());
  BOOST_REQUIRE(lib.documents->Delete("acme", lib.ids.at("whales")).ok());
  auto after = lib.documents->ScoreChunks("acme", q->front().data(), dim, chunks);
  BOOST_REQUIRE(after.ok());
  size_t whale_chunks = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    BOOST_REQUIRE((*refs)[i].has_value());
    const bool whale = (*refs)[i]->document_id == lib.ids.at("whales");
    whale_chunks += whale;
    BOOST_TEST((*after)[i].has_value() == !whale);
  }
  BOOST_TEST(whale_chunks >= 3u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
