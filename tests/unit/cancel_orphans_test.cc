// Cancel requests and orphaned answers in the conversation store.
#include <boost/test/unit_test.hpp>
#include <thread>

#include "lib/core/ids.h"
#include "tests/unit/temp_store.h"

using namespace ragstream;
using ragstream::testing::TempStore;

namespace {
store::Exchange Begin(TempStore& ts) {
  auto ex = ts.store->BeginExchange("acme", {std::nullopt, "question", "en", 8000});
  BOOST_REQUIRE(ex.ok());
  return std::move(*ex);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cancel_orphans_test)

BOOST_AUTO_TEST_CASE(cancel_sets_a_flag_only_for_a_running_answer) {
  TempStore ts;
  store::Exchange ex = Begin(ts);
  const std::string id = ex.assistant_message.id;
  BOOST_TEST(!ts.store->CancelRequested("acme", id).value());
  auto m = ts.store->RequestCancel("acme", id);
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->status == store::kStatusStreaming);
  BOOST_TEST(ts.store->CancelRequested("acme", id).value());
  // Finishing clears the flag; a later cancel reports the final status and sets nothing.
  store::Message done = ex.assistant_message;
  done.status = store::kStatusCancelled;
  BOOST_REQUIRE(ts.store->FinishMessage(done).ok());
  BOOST_TEST(!ts.store->CancelRequested("acme", id).value());
  auto again = ts.store->RequestCancel("acme", id);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->status == store::kStatusCancelled);
  BOOST_TEST(!ts.store->CancelRequested("acme", id).value());
  BOOST_TEST((ts.store->RequestCancel("acme", "msg_" + std::string(24, '0')).status().kind() ==
              ErrorKind::kNotFound));
}

BOOST_AUTO_TEST_CASE(only_stale_streaming_answers_become_interrupted) {
  TempStore ts;
  store::Exchange stale = Begin(ts), fresh = Begin(ts), finished = Begin(ts);
  store::Message f = finished.assistant_message;
  f.status = store::kStatusComplete;
  f.content = "done";
  BOOST_REQUIRE(ts.store->FinishMessage(f).ok());
  store::Message s = stale.assistant_message;
  s.content = "partial";
  s.updated_at = NowMillis() - 60000;  // its worker stopped saving a minute ago
  BOOST_REQUIRE(ts.store->SavePartial(s).ok());
  store::Message h = fresh.assistant_message;
  h.content = "alive";
  h.updated_at = NowMillis();
  BOOST_REQUIRE(ts.store->SavePartial(h).ok());

  auto marked = ts.store->MarkOrphans(10000);
  BOOST_REQUIRE(marked.ok());
  BOOST_TEST(*marked == 1);
  auto got = ts.store->GetMessage("acme", s.id);
  BOOST_TEST(got->status == store::kStatusInterrupted);
  BOOST_TEST(got->content == "partial");
  BOOST_TEST(got->error_code == "interrupted");
  BOOST_TEST(ts.store->GetMessage("acme", h.id)->status == store::kStatusStreaming);
  BOOST_TEST(ts.store->GetMessage("acme", f.id)->status == store::kStatusComplete);
  // Nothing left to mark; a late partial cannot revive the interrupted answer.
  BOOST_TEST(ts.store->MarkOrphans(10000).value() == 0);
  s.content = "partial and more";
  BOOST_REQUIRE(ts.store->SavePartial(s).ok());
  BOOST_TEST(ts.store->GetMessage("acme", s.id)->content == "partial");
}

// The store keeps the first final state it records, whoever comes later: a stream that
// finishes after an orphan sweep, or a second finish.
BOOST_AUTO_TEST_CASE(a_final_state_is_never_overwritten) {
  TempStore ts;
  store::Exchange ex = Begin(ts);
  store::Message late = ex.assistant_message;
  late.content = "partial";
  late.updated_at = NowMillis() - 60000;
  BOOST_REQUIRE(ts.store->SavePartial(late).ok());
  BOOST_REQUIRE_EQUAL(ts.store->MarkOrphans(10000).value(), 1);
  late.status = store::kStatusComplete;
  late.content = "the whole answer";
  Status s = ts.store->FinishMessage(late);
  BOOST_TEST((s.kind() == ErrorKind::kConflict), s.ToString());
  BOOST_TEST(s.code() == "already_final");
  auto got = ts.store->GetMessage("acme", late.id);
  BOOST_REQUIRE(got.ok());
  BOOST_TEST(got->status == store::kStatusInterrupted);
  BOOST_TEST(got->content == "partial");
  // Every final state holds against every other.
  for (const char* first : {store::kStatusComplete, store::kStatusError, store::kStatusCancelled}) {
    store::Exchange e = Begin(ts);
    store::Message m = e.assistant_message;
    m.status = first;
    BOOST_REQUIRE(ts.store->FinishMessage(m).ok());
    for (const char* second : {store::kStatusComplete, store::kStatusError, store::kStatusCancelled,
                               store::kStatusInterrupted}) {
      m.status = second;
      m.content = "changed";
      BOOST_TEST((ts.store->FinishMessage(m).kind() == ErrorKind::kConflict), first << second);
    }
    BOOST_TEST(ts.store->GetMessage("acme", m.id)->status == first);
    BOOST_TEST(ts.store->GetMessage("acme", m.id)->content.empty());
  }
}

// A partial save appends what arrived since the last one and touches a small state record;
// the message record is not rewritten until the answer ends (so saving an answer is linear in
// its length), and readers see the content so far.
BOOST_AUTO_TEST_CASE(partial_saves_append_deltas_and_the_end_writes_the_record_once) {
  TempStore ts;
  store::Exchange ex = Begin(ts);
  store::Message m = ex.assistant_message;
  auto raw_record = [&] {
    auto txn = store::Txn::BeginRead(*ts.env);
    BOOST_REQUIRE(txn.ok());
    auto key = txn->Get(ts.env->Dbi("message_ids"), "acme/" + m.id);
    BOOST_REQUIRE(key.ok() && key->has_value());
    auto v = txn->Get(ts.env->Dbi("messages"), **key);
    BOOST_REQUIRE(v.ok() && v->has_value());
    return std::string(**v);
  };
  auto entries = [&](const char* db) {
    auto txn = store::Txn::BeginRead(*ts.env);
    MDB_stat st;
    BOOST_REQUIRE_EQUAL(mdb_stat(txn->raw(), ts.env->Dbi(db), &st), 0);
    return st.ms_entries;
  };
  const size_t record_size = raw_record().size();
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    const std::string piece = "token" + std::to_string(i) + " ";
    m.content += piece;
    m.token_ends.push_back(static_cast<uint32_t>(m.content.size()));
    m.updated_at = NowMillis();
    BOOST_REQUIRE(ts.store->SavePartial(m).ok());
    expected = m.content;
  }
  BOOST_TEST(raw_record().size() == record_size);  // never rewritten while streaming
  BOOST_TEST(entries("msg_deltas") == 50u);
  // A follower polls the small record: where the answer stands, without its content.
  auto progress = ts.store->Progress("acme", m.id);
  BOOST_REQUIRE(progress.ok());
  BOOST_TEST(progress->status == store::kStatusStreaming);
  BOOST_TEST(progress->length == m.content.size());
  BOOST_TEST(progress->tokens == m.token_ends.size());
  BOOST_TEST(progress->updated_at == m.updated_at);
  auto seen = ts.store->GetMessage("acme", m.id);
  BOOST_REQUIRE(seen.ok());
  BOOST_TEST(seen->content == expected);
  BOOST_TEST(seen->token_ends == m.token_ends);
  BOOST_TEST(seen->status == store::kStatusStreaming);
  // A stale copy (shorter than what is saved) changes nothing.
  store::Message old = m;
  old.content.resize(10);
  old.token_ends.resize(1);
  BOOST_REQUIRE(ts.store->SavePartial(old).ok());
  BOOST_TEST(ts.store->GetMessage("acme", m.id)->content == expected);
  // The end writes the record once and drops the state and the deltas.
  m.status = store::kStatusComplete;
  BOOST_REQUIRE(ts.store->FinishMessage(m).ok());
  BOOST_TEST(entries("msg_deltas") == 0u);
  BOOST_TEST(entries("msg_state") == 0u);
  auto done = ts.store->GetMessage("acme", m.id);
  BOOST_TEST(done->content == expected);
  BOOST_TEST(done->status == store::kStatusComplete);
  auto ended = ts.store->Progress("acme", m.id);
  BOOST_REQUIRE(ended.ok());
  BOOST_TEST(ended->status == store::kStatusComplete);
  BOOST_TEST(ended->length == expected.size());
  BOOST_TEST((ts.store->Progress("acme", "msg_" + std::string(24, '0')).status().kind() ==
              ErrorKind::kNotFound));
  // Deleting a conversation drops a streaming answer's state and deltas too.
  store::Exchange other = Begin(ts);
  store::Message o = other.assistant_message;
  o.content = "partial";
  o.token_ends = {7};
  BOOST_REQUIRE(ts.store->SavePartial(o).ok());
  BOOST_TEST(entries("msg_deltas") == 1u);
  BOOST_REQUIRE(ts.store->DeleteConversation("acme", other.conversation.id).ok());
  BOOST_TEST(entries("msg_deltas") == 0u);
  BOOST_TEST(entries("msg_state") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
