// Tenants at the store and retrieval level: every read, write, search and limit is scoped
// by the tenant passed in, and another tenant's ids behave exactly like unknown ones.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "lib/rag/analyzer.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/ingester.h"
#include "lib/rag/retriever.h"
#include "lib/store/conversation_store.h"
#include "lib/store/document_store.h"
#include "tests/unit/temp_store.h"

namespace ragstream {
namespace {

using store::BeginExchangeInput;
using testing::TempDir;

constexpr int kShards = 2;
const std::string kCanary = "zanzibar quokka canary marmalade";

struct Stores {
  Stores() {
    store::Env::Options options;
    options.path = dir.path();
    options.map_size_bytes = 64ull << 20;
    options.max_readers = 126;
    options.databases = store::ConversationStore::Databases();
    for (auto& n : store::DocumentStore::Databases(kShards)) options.databases.push_back(n);
    auto opened = store::Env::Open(options);
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    env = std::move(opened).value();
    conversations = std::make_unique<store::ConversationStore>(*env);
    documents = std::make_unique<store::DocumentStore>(*env, kShards, store::VectorFormat::kFloat,
                                                       rag::AnalyzeDocumentChunks);
    ingester = std::make_unique<rag::Ingester>(*documents, embedder, rag::IngestOptions{});
    retriever = std::make_unique<rag::Retriever>(*documents, embedder);
  }
  std::string Ingest(const std::string& tenant, const std::string& text) {
    auto r = ingester->Ingest(tenant, "", text);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return r->record.id;
  }
  std::vector<rag::Passage> Search(const std::string& tenant, const std::string& query,
                                   rag::RetrievalMode mode, std::vector<std::string> filter = {}) {
    auto r = retriever->Retrieve({tenant, query, 10, mode, std::move(filter)});
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return *r;
  }
  Result<store::Exchange> Begin(const std::string& tenant, std::optional<std::string> conv,
                                size_t max_streams = 0, std::string_view client_id = {}) {
    BeginExchangeInput in;
    in.conversation_id = std::move(conv);
    in.user_text = "what about " + kCanary + "?";
    in.language = "en";
    in.max_concurrent_streams = max_streams;
    return conversations->BeginExchange(tenant, in, client_id);
  }

  TempDir dir;
  std::unique_ptr<store::Env> env;
  std::unique_ptr<store::ConversationStore> conversations;
  std::unique_ptr<store::DocumentStore> documents;
  rag::HashEmbedder embedder;
  std::unique_ptr<rag::Ingester> ingester;
  std::unique_ptr<rag::Retriever> retriever;
};

bool IsNotFound(const Status& s) {
  return s.kind() == ErrorKind::kNotFound;
}

const rag::RetrievalMode kModes[] = {rag::RetrievalMode::kVector, rag::RetrievalMode::kLexical,
                                     rag::RetrievalMode::kHybrid};

BOOST_AUTO_TEST_SUITE(tenant_isolation_test)

BOOST_AUTO_TEST_CASE(another_tenants_document_is_not_found_listed_searched_or_deleted) {
  Stores s;
  const std::string doc = s.Ingest("alpha", "The " + kCanary + " recipe.\n\nIt is secret.");
  s.Ingest("bravo", "Bravo keeps notes about tide tables and harbour charts.");

  BOOST_TEST(IsNotFound(s.documents->Get("bravo", doc).status()));
  BOOST_TEST(IsNotFound(s.documents->GetText("bravo", doc).status()));
  BOOST_TEST(IsNotFound(s.documents->GetChunk("bravo", doc, 0).status()));
  BOOST_TEST(IsNotFound(s.documents->Delete("bravo", doc)));
  BOOST_TEST(s.documents->Missing("bravo", {doc}).value() == std::vector<std::string>{doc});
  auto listed = s.documents->List("bravo").value();
  BOOST_REQUIRE(listed.size() == 1u);
  BOOST_TEST(listed[0].id != doc);
  BOOST_TEST(s.documents->Count("bravo").value() == 1u);
  BOOST_TEST(s.documents->Count("alpha").value() == 1u);
  BOOST_TEST(s.documents->CountAll().value() == 2u);

  for (auto mode : kModes) {
    for (const auto& p : s.Search("bravo", kCanary, mode)) {
      BOOST_TEST(p.document_id != doc);
      BOOST_TEST(p.text.find("quokka") == std::string::npos);
    }
    // Naming the other tenant's document as a filter finds nothing either.
    BOOST_TEST(s.Search("bravo", kCanary, mode, {doc}).empty());
    auto own = s.Search("alpha", kCanary, mode);
    BOOST_REQUIRE(!own.empty());
    BOOST_TEST(own[0].document_id == doc);
  }
  // Bravo's failed delete changed nothing for alpha.
  BOOST_TEST(s.documents->Get("alpha", doc).ok());
  BOOST_TEST(s.documents->GetText("alpha", doc).value().find("quokka") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(identical_content_is_deduplicated_within_a_tenant_only) {
  Stores s;
  const std::string text = "Shared text about " + kCanary + ".";
  const std::string a = s.Ingest("alpha", text);
  BOOST_TEST(s.Ingest("alpha", text) == a);  // same tenant: the stored one
  const std::string b = s.Ingest("bravo", text);
  BOOST_TEST(b != a);  // not "already stored": that would tell bravo what alpha holds
  BOOST_REQUIRE(s.documents->Delete("bravo", b).ok());
  BOOST_TEST(s.documents->Get("alpha", a).ok());
  for (auto mode : kModes) BOOST_TEST(!s.Search("alpha", kCanary, mode).empty());
}

BOOST_AUTO_TEST_CASE(lexical_scores_do_not_depend_on_other_tenants) {
  Stores s;
  s.Ingest("alpha", "Lighthouse keepers trim the lamp wick each evening.");
  s.Ingest("alpha", "Harbour pilots guide ships past the breakwater.");
  auto before = s.Search("alpha", "lamp wick", rag::RetrievalMode::kLexical);
  for (int i = 0; i < 20; ++i) {
    s.Ingest("bravo", "Lamp wick lamp wick number " + std::to_string(i) + " of bravo's list.");
  }
  auto after = s.Search("alpha", "lamp wick", rag::RetrievalMode::kLexical);
  BOOST_REQUIRE(before.size() == after.size());
  BOOST_REQUIRE(!before.empty());
  for (size_t i = 0; i < before.size(); ++i) {
    BOOST_TEST(before[i].chunk_id == after[i].chunk_id);
    BOOST_TEST(before[i].score == after[i].score);
  }
}

BOOST_AUTO_TEST_CASE(another_tenants_conversation_and_messages_are_not_found) {
  Stores s;
  auto ex = s.Begin("alpha", std::nullopt);
  BOOST_REQUIRE(ex.ok());
  const std::string conv = ex->conversation.id;
  const std::string answer = ex->assistant_message.id;
  const std::string question = ex->user_message.id;

  auto& c = *s.conversations;
  BOOST_TEST(IsNotFound(c.GetConversation("bravo", conv).status()));
  BOOST_TEST(IsNotFound(c.ListMessages("bravo", conv).status()));
  BOOST_TEST(IsNotFound(c.GetMessage("bravo", answer).status()));
  BOOST_TEST(IsNotFound(c.GetMessage("bravo", question).status()));
  BOOST_TEST(IsNotFound(c.RequestCancel("bravo", answer).status()));
  BOOST_TEST(!c.CancelRequested("alpha", answer).value());  // bravo's try set nothing
  BOOST_TEST(IsNotFound(c.RenameConversation("bravo", conv, "mine now").status()));
  BOOST_TEST(IsNotFound(c.DeleteConversation("bravo", conv)));
  BOOST_TEST(IsNotFound(s.Begin("bravo", conv).status()));  // no appending to it either
  BOOST_TEST(c.ListConversations("bravo", 100, "").value().conversations.empty());
  BOOST_TEST(c.StreamingCount("bravo").value() == 0u);

  // Alpha's data is untouched by all of that.
  BOOST_TEST(c.GetConversation("alpha", conv).value().title.find("quokka") != std::string::npos);
  BOOST_TEST(c.ListMessages("alpha", conv).value().size() == 2u);
  BOOST_TEST(c.ListConversations("alpha", 100, "").value().conversations.size() == 1u);
  BOOST_TEST(c.StreamingCount("alpha").value() == 1u);
  BOOST_TEST(c.RequestCancel("alpha", answer).ok());
  BOOST_TEST(c.CancelRequested("alpha", answer).value());
  BOOST_TEST(!c.CancelRequested("bravo", answer).value());
}

BOOST_AUTO_TEST_CASE(listing_pages_stay_inside_the_tenant) {
  Stores s;
  for (int i = 0; i < 5; ++i) {
    BOOST_REQUIRE(s.Begin("alpha", std::nullopt).ok());
    BOOST_REQUIRE(s.Begin("alpha.b", std::nullopt).ok());  // shares a prefix with "alpha"
    BOOST_REQUIRE(s.Begin("bravo", std::nullopt).ok());
  }
  for (const char* tenant : {"alpha", "alpha.b", "bravo"}) {
    std::vector<std::string> seen;
    std::string cursor;
    do {
      auto page = s.conversations->ListConversations(tenant, 2, cursor).value();
      for (const auto& conv : page.conversations) {
        BOOST_TEST(s.conversations->GetConversation(tenant, conv.id).ok());
        seen.push_back(conv.id);
      }
      cursor = page.next_cursor;
    } while (!cursor.empty());
    BOOST_TEST(seen.size() == 5u, tenant);
  }
}

BOOST_AUTO_TEST_CASE(client_message_ids_are_scoped_per_tenant) {
  Stores s;
  auto a1 = s.Begin("alpha", std::nullopt, 0, "send-1");
  auto a2 = s.Begin("alpha", std::nullopt, 0, "send-1");
  auto b1 = s.Begin("bravo", std::nullopt, 0, "send-1");
  BOOST_REQUIRE(a1.ok() && a2.ok() && b1.ok());
  BOOST_TEST(a2->replayed);
  BOOST_TEST(a2->assistant_message.id == a1->assistant_message.id);
  BOOST_TEST(!b1->replayed);  // the same id from another tenant is another send
  BOOST_TEST(b1->assistant_message.id != a1->assistant_message.id);
}

BOOST_AUTO_TEST_CASE(concurrent_streams_are_limited_per_tenant) {
  Stores s;
  auto first = s.Begin("alpha", std::nullopt, 2);
  auto second = s.Begin("alpha", std::nullopt, 2);
  BOOST_REQUIRE(first.ok() && second.ok());
  auto third = s.Begin("alpha", std::nullopt, 2);
  BOOST_REQUIRE(!third.ok());
  BOOST_TEST((third.status().kind() == ErrorKind::kRateLimited));
  BOOST_TEST(third.status().code() == "too_many_streams");
  BOOST_TEST(s.conversations->ListConversations("alpha", 100, "").value().conversations.size() ==
             2u);                                      // the refused send wrote nothing
  BOOST_TEST(s.Begin("bravo", std::nullopt, 2).ok());  // other tenants are not affected
  store::Message done = first->assistant_message;
  done.status = store::kStatusComplete;
  BOOST_REQUIRE(s.conversations->FinishMessage(done).ok());
  BOOST_TEST(s.Begin("alpha", std::nullopt, 2).ok());  // a slot came free
}

BOOST_AUTO_TEST_CASE(documents_are_limited_per_tenant) {
  Stores s;
  rag::IngestOptions options;
  options.max_documents_per_tenant = 2;
  rag::Ingester limited(*s.documents, s.embedder, options);
  auto one = limited.Ingest("alpha", "", "First document about herons.");
  auto two = limited.Ingest("alpha", "", "Second document about egrets.");
  BOOST_REQUIRE(one.ok() && two.ok());
  auto three = limited.Ingest("alpha", "", "Third document about " + kCanary + ".");
  BOOST_REQUIRE(!three.ok());
  BOOST_TEST((three.status().kind() == ErrorKind::kForbidden));
  BOOST_TEST(three.status().code() == "document_limit");
  BOOST_TEST(s.documents->Count("alpha").value() == 2u);
  for (auto mode : kModes) {
    for (const auto& p : s.Search("alpha", kCanary, mode)) {
      BOOST_TEST(p.text.find("quokka") == std::string::npos);  // the refused one is not there
    }
  }
  // Re-sending stored content is not a new document; another tenant has its own quota.
  BOOST_TEST(limited.Ingest("alpha", "", "First document about herons.").ok());
  BOOST_TEST(limited.Ingest("bravo", "", "Third document about " + kCanary + ".").ok());
  BOOST_REQUIRE(s.documents->Delete("alpha", one->record.id).ok());
  BOOST_TEST(s.documents->Count("alpha").value() == 1u);
  BOOST_TEST(limited.Ingest("alpha", "", "Third document about " + kCanary + ".").ok());
}

BOOST_AUTO_TEST_CASE(retrieval_without_a_tenant_is_refused) {
  Stores s;
  s.Ingest("alpha", "Some text about " + kCanary + ".");
  auto r = s.retriever->Retrieve({"", kCanary, 5, rag::RetrievalMode::kHybrid, {}});
  BOOST_TEST(!r.ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream
