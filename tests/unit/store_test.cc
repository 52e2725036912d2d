// ConversationStore over a real LMDB environment in a temp directory.
#include "lib/store/conversation_store.h"

#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/ids.h"
#include "lib/core/utf8.h"
#include "lib/store/lmdb.h"
#include "tests/unit/temp_store.h"

namespace ragstream::store {
namespace {

using ragstream::testing::OpenStoreEnv;
using ragstream::testing::TempDir;
using ragstream::testing::TempStore;

Exchange Begin(ConversationStore& store, const std::string& text,
               std::optional<std::string> conversation_id = std::nullopt, size_t budget = 8000) {
  BeginExchangeInput in;
  in.conversation_id = std::move(conversation_id);
  in.user_text = text;
  in.language = "en";
  in.history_budget_chars = budget;
  auto ex = store.BeginExchange("acme", in);
  BOOST_REQUIRE_MESSAGE(ex.ok(), ex.status().ToString());
  return std::move(ex).value();
}

void Finish(ConversationStore& store, Message m, const std::string& content) {
  m.content = content;
  m.status = kStatusComplete;
  m.finish_reason = "stop";
  Status s = store.FinishMessage(m);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
}

std::vector<std::string> Contents(const std::vector<Message>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.content);
  return out;
}

// Every conversation, page by page.
std::vector<Conversation> ListAll(const ConversationStore& store, size_t limit, int* pages) {
  std::vector<Conversation> all;
  std::string cursor;
  *pages = 0;
  do {
    auto page = store.ListConversations("acme", limit, cursor);
    BOOST_REQUIRE_MESSAGE(page.ok(), page.status().ToString());
    BOOST_REQUIRE(page->conversations.size() <= limit);
    ++*pages;
    BOOST_REQUIRE(*pages < 10000);
    for (auto& c : page->conversations) all.push_back(c);
    if (!page->next_cursor.empty()) BOOST_REQUIRE(page->conversations.size() == limit);
    cursor = page->next_cursor;
  } while (!cursor.empty());
  return all;
}

// Keys in a database that start with `prefix`.
size_t CountKeysWithPrefix(const Env& env, const char* db, const std::string& prefix) {
  auto txn = Txn::BeginRead(env);
  BOOST_REQUIRE(txn.ok());
  auto cur = Cursor::Open(*txn, env.Dbi(db));
  BOOST_REQUIRE(cur.ok());
  size_t n = 0;
  for (bool have = cur->SeekAtLeast(prefix); have && cur->key().substr(0, prefix.size()) == prefix;
       have = cur->Next()) {
    ++n;
  }
  return n;
}

BOOST_AUTO_TEST_SUITE(store_test)

BOOST_AUTO_TEST_CASE(begin_exchange_creates_user_and_streaming_assistant) {
  TempStore ts;
  int64_t before = NowMillis();
  Exchange ex = Begin(*ts.store, "What is LMDB?\nTell me\tbriefly.");
  BOOST_TEST(IsWellFormedId(ex.conversation.id, "conv_"));
  BOOST_TEST(IsWellFormedId(ex.user_message.id, "msg_"));
  BOOST_TEST(IsWellFormedId(ex.assistant_message.id, "msg_"));
  BOOST_TEST(ex.user_message.id != ex.assistant_message.id);
  BOOST_TEST(ex.history.empty());

  BOOST_TEST(ex.user_message.seq == 0u);
  BOOST_TEST(ex.user_message.role == "user");
  BOOST_TEST(ex.user_message.status == kStatusComplete);
  BOOST_TEST(ex.user_message.content == "What is LMDB?\nTell me\tbriefly.");
  BOOST_TEST(ex.user_message.conversation_id == ex.conversation.id);
  BOOST_TEST(ex.assistant_message.seq == 1u);
  BOOST_TEST(ex.assistant_message.role == "assistant");
  BOOST_TEST(ex.assistant_message.status == kStatusStreaming);
  BOOST_TEST(ex.assistant_message.content.empty());
  BOOST_TEST(ex.assistant_message.conversation_id == ex.conversation.id);

  auto conv = ts.store->GetConversation("acme", ex.conversation.id);
  BOOST_REQUIRE(conv.ok());
  BOOST_TEST(conv->title == "What is LMDB? Tell me briefly.");
  BOOST_TEST(conv->language == "en");
  BOOST_TEST(conv->message_count == 2u);
  BOOST_TEST(conv->next_seq == 2u);
  BOOST_TEST(conv->created_at >= before);
  BOOST_TEST(conv->updated_at >= conv->created_at);

  auto msgs = ts.store->ListMessages("acme", ex.conversation.id);
  BOOST_REQUIRE(msgs.ok());
  BOOST_REQUIRE(msgs->size() == 2u);
  BOOST_TEST(msgs->at(0).id == ex.user_message.id);
  BOOST_TEST(msgs->at(1).id == ex.assistant_message.id);
  BOOST_TEST(msgs->at(1).status == kStatusStreaming);
}

BOOST_AUTO_TEST_CASE(long_title_is_cut_on_a_character_boundary) {
  TempStore ts;
  std::string question;
  for (int i = 0; i < 300; ++i) question += "\xD7\xA9";  // 300 Hebrew letters
  Exchange ex = Begin(*ts.store, question);
  const std::string& title = ex.conversation.title;
  BOOST_TEST(!title.empty());
  BOOST_TEST(title.size() < question.size());
  BOOST_TEST(IsValidUtf8(title));
  BOOST_TEST(question.compare(0, title.size(), title) == 0);
  BOOST_TEST(Utf8Length(title) <= 200u);  // the API's own title limit
}

BOOST_AUTO_TEST_CASE(second_exchange_returns_history_oldest_first) {
  TempStore ts;
  Exchange first = Begin(*ts.store, "question one");
  Finish(*ts.store, first.assistant_message, "answer one");
  Exchange second = Begin(*ts.store, "question two", first.conversation.id);
  BOOST_TEST(second.conversation.id == first.conversation.id);
  BOOST_TEST(second.user_message.seq == 2u);
  BOOST_TEST(second.assistant_message.seq == 3u);
  BOOST_TEST(Contents(second.history) == std::vector<std::string>({"question one", "answer one"}),
             boost::test_tools::per_element());
  BOOST_TEST(second.conversation.message_count == 4u);
}

BOOST_AUTO_TEST_CASE(history_skips_empty_assistant_messages) {
  TempStore ts;
  Exchange first = Begin(*ts.store, "q1");  // assistant never answered: empty
  Exchange second = Begin(*ts.store, "q2", first.conversation.id);
  BOOST_TEST(Contents(second.history) == std::vector<std::string>({"q1"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(small_history_budget_drops_the_oldest) {
  TempStore ts;
  Exchange e1 = Begin(*ts.store, "aaaaaaaaaa");  // 10
  Finish(*ts.store, e1.assistant_message, "bbbbbbbbbb");
  Exchange e2 = Begin(*ts.store, "cccccccccc", e1.conversation.id);
  Finish(*ts.store, e2.assistant_message, "dddddddddd");
  // 25 characters hold the two newest messages (20) but not a third (30).
  Exchange e3 = Begin(*ts.store, "next", e1.conversation.id, 25);
  BOOST_TEST(Contents(e3.history) == std::vector<std::string>({"cccccccccc", "dddddddddd"}),
             boost::test_tools::per_element());
  Exchange e4 = Begin(*ts.store, "again", e1.conversation.id, 0);
  BOOST_TEST(e4.history.empty());
  // The stored messages are untouched by the budget.
  auto msgs = ts.store->ListMessages("acme", e1.conversation.id);
  BOOST_REQUIRE(msgs.ok());
  BOOST_TEST(msgs->size() == 8u);
}

BOOST_AUTO_TEST_CASE(history_budget_counts_characters_not_bytes) {
  TempStore ts;
  const std::string hebrew = "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D";  // 4 characters, 8 bytes
  Exchange e1 = Begin(*ts.store, hebrew);
  Finish(*ts.store, e1.assistant_message, hebrew);
  // A budget of 8 characters holds both 4-character messages.
  Exchange e2 = Begin(*ts.store, "next", e1.conversation.id, 8);
  BOOST_TEST(e2.history.size() == 2u, "history_budget_chars counted bytes: only "
                                          << e2.history.size() << " of 2 messages kept");
}

BOOST_AUTO_TEST_CASE(history_does_not_leak_across_conversations) {
  TempStore ts;
  Exchange a = Begin(*ts.store, "in conversation a");
  Finish(*ts.store, a.assistant_message, "answer a");
  Exchange b = Begin(*ts.store, "in conversation b");
  Finish(*ts.store, b.assistant_message, "answer b");
  Exchange a2 = Begin(*ts.store, "a again", a.conversation.id);
  BOOST_TEST(Contents(a2.history) == std::vector<std::string>({"in conversation a", "answer a"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(save_partial_then_finish) {
  TempStore ts;
  Exchange ex = Begin(*ts.store, "q");
  Message m = ex.assistant_message;
  m.content = "partial ans";
  m.updated_at = NowMillis();
  BOOST_REQUIRE(ts.store->SavePartial(m).ok());
  auto got = ts.store->GetMessage("acme", m.id);
  BOOST_REQUIRE(got.ok());
  BOOST_TEST(got->status == kStatusStreaming);
  BOOST_TEST(got->content == "partial ans");

  m.content = "partial answer, finished";
  m.status = kStatusComplete;
  m.finish_reason = "stop";
  m.usage = {true, 11, 22, 33};
  m.ttft_ms = 123;
  BOOST_REQUIRE(ts.store->FinishMessage(m).ok());
  got = ts.store->GetMessage("acme", m.id);
  BOOST_REQUIRE(got.ok());
  BOOST_TEST(got->status == kStatusComplete);
  BOOST_TEST(got->content == "partial answer, finished");
  BOOST_TEST(got->finish_reason == "stop");
  BOOST_TEST(got->usage.present);
  BOOST_TEST(got->usage.prompt_tokens == 11);
  BOOST_TEST(got->usage.completion_tokens == 22);
  BOOST_TEST(got->usage.total_tokens == 33);
  BOOST_TEST(got->ttft_ms == 123);
  BOOST_TEST(got->seq == 1u);
  BOOST_TEST(got->conversation_id == ex.conversation.id);
}

BOOST_AUTO_TEST_CASE(list_messages_in_order_and_get_by_id) {
  TempStore ts;
  Exchange e1 = Begin(*ts.store, "q1");
  Finish(*ts.store, e1.assistant_message, "a1");
  Exchange e2 = Begin(*ts.store, "q2", e1.conversation.id);
  Finish(*ts.store, e2.assistant_message, "a2");
  Exchange e3 = Begin(*ts.store, "q3", e1.conversation.id);
  auto msgs = ts.store->ListMessages("acme", e1.conversation.id);
  BOOST_REQUIRE(msgs.ok());
  BOOST_TEST(Contents(*msgs) == std::vector<std::string>({"q1", "a1", "q2", "a2", "q3", ""}),
             boost::test_tools::per_element());
  for (size_t i = 0; i < msgs->size(); ++i) {
    BOOST_TEST(msgs->at(i).seq == i);
    BOOST_TEST(msgs->at(i).role == (i % 2 == 0 ? "user" : "assistant"));
    auto one = ts.store->GetMessage("acme", msgs->at(i).id);
    BOOST_REQUIRE(one.ok());
    BOOST_TEST(one->content == msgs->at(i).content);
    BOOST_TEST(one->seq == i);
  }
  BOOST_TEST(msgs->back().id == e3.assistant_message.id);
}

BOOST_AUTO_TEST_CASE(unknown_ids_are_not_found) {
  TempStore ts;
  Begin(*ts.store, "something to make the databases non-empty");
  const std::string conv = NewId("conv_"), msg = NewId("msg_");
  auto kind = [](const Status& s) { return static_cast<int>(s.kind()); };
  const int not_found = static_cast<int>(ErrorKind::kNotFound);
  BOOST_TEST(kind(ts.store->GetConversation("acme", conv).status()) == not_found);
  BOOST_TEST(kind(ts.store->ListMessages("acme", conv).status()) == not_found);
  BOOST_TEST(kind(ts.store->GetMessage("acme", msg).status()) == not_found);
  BOOST_TEST(ts.store->GetMessage("acme", msg).status().code() == "not_found");
  BOOST_TEST(kind(ts.store->RenameConversation("acme", conv, "t").status()) == not_found);
  BOOST_TEST(kind(ts.store->DeleteConversation("acme", conv)) == not_found);
  BeginExchangeInput in;
  in.conversation_id = conv;
  in.user_text = "hi";
  BOOST_TEST(kind(ts.store->BeginExchange("acme", in).status()) == not_found);
}

BOOST_AUTO_TEST_CASE(list_conversations_newest_first_with_paging) {
  TempStore ts;
  std::set<std::string> created;
  for (int i = 0; i < 5; ++i) {
    created.insert(Begin(*ts.store, "conversation " + std::to_string(i)).conversation.id);
  }
  for (size_t limit : {1, 2, 3, 4, 5, 6, 100}) {
    BOOST_TEST_CONTEXT("limit " << limit) {
      int pages = 0;
      std::vector<Conversation> all = ListAll(*ts.store, limit, &pages);
      std::vector<std::string> ids;
      for (const auto& c : all) ids.push_back(c.id);
      std::set<std::string> unique(ids.begin(), ids.end());
      BOOST_TEST(ids.size() == 5u);     // nothing repeated
      BOOST_TEST((unique == created));  // nothing skipped
      BOOST_TEST(pages == static_cast<int>((5 + limit - 1) / limit));
      for (size_t i = 1; i < all.size(); ++i) {
        BOOST_TEST(all[i - 1].updated_at >= all[i].updated_at);  // newest first
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(paging_with_many_same_millisecond_ties_is_total) {
  TempStore ts;
  std::set<std::string> created;
  for (int i = 0; i < 40; ++i)
    created.insert(Begin(*ts.store, "tie " + std::to_string(i)).conversation.id);
  int pages = 0;
  std::vector<Conversation> all = ListAll(*ts.store, 3, &pages);
  std::vector<std::string> ids;
  for (const auto& c : all) ids.push_back(c.id);
  BOOST_TEST(ids.size() == 40u);
  BOOST_TEST((std::set<std::string>(ids.begin(), ids.end()) == created));
  // The same order as one big page.
  auto one = ts.store->ListConversations("acme", 100, "");
  BOOST_REQUIRE(one.ok());
  BOOST_REQUIRE(one->conversations.size() == 40u);
  BOOST_TEST(one->next_cursor.empty());
  for (size_t i = 0; i < 40; ++i) BOOST_TEST(one->conversations[i].id == ids[i]);
}

BOOST_AUTO_TEST_CASE(finishing_an_answer_moves_the_conversation_to_the_front) {
  TempStore ts;
  Exchange old = Begin(*ts.store, "old");
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  Exchange recent = Begin(*ts.store, "recent");
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  Finish(*ts.store, old.assistant_message, "late answer");
  auto page = ts.store->ListConversations("acme", 10, "");
  BOOST_REQUIRE(page.ok());
  BOOST_REQUIRE(page->conversations.size() == 2u);
  BOOST_TEST(page->conversations[0].id == old.conversation.id);
  BOOST_TEST(page->conversations[1].id == recent.conversation.id);
}

BOOST_AUTO_TEST_CASE(invalid_cursor_is_invalid_argument) {
  TempStore ts;
  Begin(*ts.store, "x");
  for (const char* bad : {"zz", "abc", "not-a-cursor", "ABCDEF0123"}) {
    BOOST_TEST_CONTEXT(bad) {
      auto page = ts.store->ListConversations("acme", 10, bad);
      BOOST_TEST(!page.ok());
      BOOST_TEST(static_cast<int>(page.status().kind()) ==
                 static_cast<int>(ErrorKind::kInvalidArgument));
      BOOST_TEST(page.status().code() == "invalid_cursor");
    }
  }
}

BOOST_AUTO_TEST_CASE(rename_changes_title_and_moves_to_front) {
  TempStore ts;
  Exchange a = Begin(*ts.store, "first");
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  Exchange b = Begin(*ts.store, "second");
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  auto page = ts.store->ListConversations("acme", 10, "");
  BOOST_REQUIRE(page.ok());
  BOOST_REQUIRE(page->conversations.size() == 2u);
  BOOST_TEST(page->conversations[0].id == b.conversation.id);

  auto renamed = ts.store->RenameConversation("acme", a.conversation.id, "Renamed \xD7\xA9");
  BOOST_REQUIRE(renamed.ok());
  BOOST_TEST(renamed->title == "Renamed \xD7\xA9");
  BOOST_TEST(renamed->updated_at > a.conversation.updated_at);
  page = ts.store->ListConversations("acme", 10, "");
  BOOST_REQUIRE(page.ok());
  BOOST_REQUIRE(page->conversations.size() == 2u);  // moved, not duplicated
  BOOST_TEST(page->conversations[0].id == a.conversation.id);
  BOOST_TEST(page->conversations[0].title == "Renamed \xD7\xA9");
  BOOST_TEST(page->conversations[1].id == b.conversation.id);
  auto got = ts.store->GetConversation("acme", a.conversation.id);
  BOOST_REQUIRE(got.ok());
  BOOST_TEST(got->title == "Renamed \xD7\xA9");
  BOOST_TEST(got->message_count == 2u);
}

BOOST_AUTO_TEST_CASE(delete_removes_messages_ids_and_listing) {
  TempStore ts;
  Exchange keep = Begin(*ts.store, "keep me");
  Exchange gone = Begin(*ts.store, "delete me");
  Finish(*ts.store, gone.assistant_message, "answer");
  Exchange gone2 = Begin(*ts.store, "more", gone.conversation.id);
  BOOST_REQUIRE(ts.store->DeleteConversation("acme", gone.conversation.id).ok());

  const int not_found = static_cast<int>(ErrorKind::kNotFound);
  for (const Message* m : {&gone.user_message, &gone.assistant_message, &gone2.user_message,
                           &gone2.assistant_message}) {
    BOOST_TEST(static_cast<int>(ts.store->GetMessage("acme", m->id).status().kind()) == not_found);
  }
  BOOST_TEST(
      static_cast<int>(ts.store->GetConversation("acme", gone.conversation.id).status().kind()) ==
      not_found);
  BOOST_TEST(
      static_cast<int>(ts.store->ListMessages("acme", gone.conversation.id).status().kind()) ==
      not_found);
  BOOST_TEST(CountKeysWithPrefix(*ts.env, "messages", gone.conversation.id + "/") == 0u);
  auto page = ts.store->ListConversations("acme", 10, "");
  BOOST_REQUIRE(page.ok());
  BOOST_REQUIRE(page->conversations.size() == 1u);
  BOOST_TEST(page->conversations[0].id == keep.conversation.id);
  // The other conversation is intact.
  auto msgs = ts.store->ListMessages("acme", keep.conversation.id);
  BOOST_REQUIRE(msgs.ok());
  BOOST_TEST(msgs->size() == 2u);
  BOOST_TEST(ts.store->GetMessage("acme", keep.user_message.id).ok());
  // Deleting again is NotFound.
  BOOST_TEST(static_cast<int>(ts.store->DeleteConversation("acme", gone.conversation.id).kind()) ==
             not_found);
}

BOOST_AUTO_TEST_CASE(save_partial_after_delete_does_not_resurrect_the_message) {
  // An answer still streaming when its conversation is deleted keeps calling SavePartial.
  TempStore ts;
  Exchange ex = Begin(*ts.store, "question");
  BOOST_REQUIRE(ts.store->DeleteConversation("acme", ex.conversation.id).ok());
  Message m = ex.assistant_message;
  m.content = "late partial";
  Status s = ts.store->SavePartial(m);
  BOOST_TEST(CountKeysWithPrefix(*ts.env, "messages", ex.conversation.id + "/") == 0u,
             "SavePartial wrote an orphan message record into a deleted conversation (returned "
                 << s.ToString() << ")");
}

BOOST_AUTO_TEST_CASE(save_partials_batch_skips_finished_and_deleted_messages) {
  TempStore ts;
  Exchange streaming1 = Begin(*ts.store, "one");
  Exchange streaming2 = Begin(*ts.store, "two");
  Exchange finished = Begin(*ts.store, "three");
  Finish(*ts.store, finished.assistant_message, "final answer");
  Exchange deleted = Begin(*ts.store, "four");
  BOOST_REQUIRE(ts.store->DeleteConversation("acme", deleted.conversation.id).ok());

  std::vector<Message> batch;
  for (const Exchange* ex : {&streaming1, &streaming2, &finished, &deleted}) {
    Message m = ex->assistant_message;
    m.content = "late partial of " + ex->user_message.content;
    batch.push_back(m);
  }
  BOOST_REQUIRE(ts.store->SavePartials(batch).ok());
  BOOST_TEST(ts.store->GetMessage("acme", streaming1.assistant_message.id)->content ==
             "late partial of one");
  BOOST_TEST(ts.store->GetMessage("acme", streaming2.assistant_message.id)->content ==
             "late partial of two");
  auto fin = ts.store->GetMessage("acme", finished.assistant_message.id);
  BOOST_REQUIRE(fin.ok());
  BOOST_TEST(fin->status == kStatusComplete);  // a late batch never overwrites a final state
  BOOST_TEST(fin->content == "final answer");
  BOOST_TEST(CountKeysWithPrefix(*ts.env, "messages", deleted.conversation.id + "/") == 0u);
  BOOST_TEST(ts.store->SavePartials({}).ok());
}

// SeekAfter resumes a scan after the key it stopped at: the next key, the first when the key
// is empty, a key in a gap, and nothing past the last.
BOOST_AUTO_TEST_CASE(cursor_seek_after_resumes_past_a_key) {
  TempDir dir;
  auto env = OpenStoreEnv(dir.path(), 16ull << 20);
  BOOST_REQUIRE(env.ok());
  const MDB_dbi dbi = (*env)->Dbi("conversations");
  {
    auto txn = Txn::BeginWrite(**env);
    BOOST_REQUIRE(txn.ok());
    for (const char* k : {"a", "b", "d"}) BOOST_REQUIRE(txn->Put(dbi, k, "v").ok());
    BOOST_REQUIRE(txn->Commit().ok());
  }
  auto txn = Txn::BeginRead(**env);
  BOOST_REQUIRE(txn.ok());
  auto cur = Cursor::Open(*txn, dbi);
  BOOST_REQUIRE(cur.ok());
  BOOST_REQUIRE(cur->SeekAfter(""));
  BOOST_TEST(cur->key() == "a");
  BOOST_REQUIRE(cur->SeekAfter("a"));
  BOOST_TEST(cur->key() == "b");
  BOOST_REQUIRE(cur->SeekAfter("c"));
  BOOST_TEST(cur->key() == "d");
  BOOST_TEST(!cur->SeekAfter("d"));
  BOOST_TEST(!cur->SeekAfter("e"));
}

// A process killed with a read transaction open leaves its reader slot behind; a live
// process frees it without restarting (the worker's sweeper does this every few seconds).
BOOST_AUTO_TEST_CASE(stale_readers_of_a_killed_process_are_cleared_while_running) {
  TempDir dir;
  auto env = OpenStoreEnv(dir.path(), 16ull << 20);
  BOOST_REQUIRE(env.ok());
  BOOST_TEST((*env)->ClearStaleReaders().value() == 0);
  pid_t child = fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    // A separate environment in the child (an MDB_env must never cross fork()).
    auto mine = OpenStoreEnv(dir.path(), 16ull << 20);
    if (!mine.ok()) _exit(2);
    auto txn = Txn::BeginRead(**mine);
    if (!txn.ok()) _exit(3);
    raise(SIGKILL);
    _exit(4);
  }
  int status = 0;
  BOOST_REQUIRE(waitpid(child, &status, 0) == child);
  BOOST_REQUIRE(WIFSIGNALED(status));
  auto cleared = (*env)->ClearStaleReaders();
  BOOST_REQUIRE(cleared.ok());
  BOOST_TEST(*cleared >= 1);
  BOOST_TEST((*env)->ClearStaleReaders().value() == 0);
}

BOOST_AUTO_TEST_CASE(reopening_the_environment_keeps_the_data) {
  TempDir dir;
  std::string conv, msg;
  {
    auto env = OpenStoreEnv(dir.path(), 16ull << 20);
    BOOST_REQUIRE(env.ok());
    ConversationStore store(**env);
    Exchange ex = Begin(store, "persist me");
    Finish(store, ex.assistant_message, "persisted");
    conv = ex.conversation.id;
    msg = ex.assistant_message.id;
  }
  auto env = OpenStoreEnv(dir.path(), 16ull << 20);
  BOOST_REQUIRE(env.ok());
  ConversationStore store(**env);
  auto m = store.GetMessage("acme", msg);
  BOOST_REQUIRE(m.ok());
  BOOST_TEST(m->content == "persisted");
  BOOST_TEST(m->status == kStatusComplete);
  BOOST_TEST(store.GetConversation("acme", conv).ok());
}

// Appends exchanges (new conversations and follow-ups, ~1.5 KB per message) until a write
// fails; checks the failure is StoreFull and that everything committed before it is intact.
void FillUntilFullAndCheck(uint64_t map_size, size_t min_committed) {
  TempDir dir;
  auto env = OpenStoreEnv(dir.path(), map_size);
  BOOST_REQUIRE_MESSAGE(env.ok(), env.status().ToString());
  ConversationStore store(**env);

  struct Committed {
    std::string conversation_id, user_id, assistant_id, user_text, answer;
    bool finished = false;
  };
  std::vector<Committed> committed;
  Status failure;
  std::vector<std::string> conversations;
  for (int i = 0; i < 100000 && failure.ok(); ++i) {
    BeginExchangeInput in;
    if (i % 3 != 0 && !conversations.empty()) in.conversation_id = conversations.back();
    in.user_text = "question " + std::to_string(i) + " " + std::string(1500, 'q');
    in.language = "en";
    in.history_budget_chars = 4000;
    auto ex = store.BeginExchange("acme", in);
    if (!ex.ok()) {
      failure = ex.status();
      break;
    }
    if (!in.conversation_id) conversations.push_back(ex->conversation.id);
    Committed c{ex->conversation.id, ex->user_message.id, ex->assistant_message.id, in.user_text,
                "answer " + std::to_string(i) + " " + std::string(1500, 'a')};
    Message m = ex->assistant_message;
    m.content = c.answer;
    m.status = kStatusComplete;
    failure = store.FinishMessage(m);
    c.finished = failure.ok();
    committed.push_back(c);
  }
  BOOST_TEST_MESSAGE("map " << map_size << " bytes: " << committed.size()
                            << " exchanges before it filled; failure: " << failure.ToString());
  BOOST_TEST(committed.size() >= min_committed);
  BOOST_REQUIRE(!failure.ok());
  BOOST_TEST(static_cast<int>(failure.kind()) == static_cast<int>(ErrorKind::kStoreFull),
             failure.ToString());
  BOOST_TEST(failure.code() == "store_full");

  // A further write either fails the same clean way or, since LMDB reuses pages freed by
  // earlier transactions, fits; it is then just one more committed exchange.
  BeginExchangeInput more;
  more.user_text = std::string(3000, 'z');
  more.language = "en";
  auto again = store.BeginExchange("acme", more);
  if (again.ok()) {
    conversations.push_back(again->conversation.id);
    committed.push_back({again->conversation.id, again->user_message.id,
                         again->assistant_message.id, more.user_text, "", false});
  } else {
    BOOST_TEST(static_cast<int>(again.status().kind()) == static_cast<int>(ErrorKind::kStoreFull),
               again.status().ToString());
  }

  for (const auto& c : committed) {
    auto u = store.GetMessage("acme", c.user_id);
    BOOST_REQUIRE_MESSAGE(u.ok(), u.status().ToString());
    BOOST_TEST(u->content == c.user_text);
    BOOST_TEST(u->status == kStatusComplete);
    auto a = store.GetMessage("acme", c.assistant_id);
    BOOST_REQUIRE_MESSAGE(a.ok(), a.status().ToString());
    if (c.finished) {
      BOOST_TEST(a->status == kStatusComplete);
      BOOST_TEST(a->content == c.answer);
    } else {
      BOOST_TEST(a->status == kStatusStreaming);
      BOOST_TEST(a->content.empty());
    }
  }
  int pages = 0;
  std::vector<Conversation> listed = ListAll(store, 100, &pages);
  BOOST_TEST(listed.size() == conversations.size());
  size_t total = 0;
  for (const auto& conv : listed) {
    auto msgs = store.ListMessages("acme", conv.id);
    BOOST_REQUIRE(msgs.ok());
    BOOST_TEST(msgs->size() % 2 == 0u, "odd message count: a half-written exchange");
    BOOST_TEST(msgs->size() == conv.message_count);
    for (size_t i = 0; i < msgs->size(); ++i) {
      BOOST_TEST(msgs->at(i).seq == i);
      BOOST_TEST(msgs->at(i).role == (i % 2 == 0 ? "user" : "assistant"));
    }
    total += msgs->size();
  }
  BOOST_TEST(total == 2 * committed.size());
}

BOOST_AUTO_TEST_CASE(map_full_at_the_smallest_map_is_store_full) {
  // The smallest map LMDB opens with our databases.
  uint64_t map_size = 0;
  for (uint64_t size = 4096; size <= (1u << 20); size += 4096) {
    TempDir probe;
    if (OpenStoreEnv(probe.path(), size).ok()) {
      map_size = size;
      break;
    }
  }
  BOOST_REQUIRE(map_size > 0);
  BOOST_TEST_MESSAGE("smallest map that opens: " << map_size << " bytes");
  FillUntilFullAndCheck(map_size, 0);
}

BOOST_AUTO_TEST_CASE(map_full_after_many_exchanges_leaves_committed_data_intact) {
  FillUntilFullAndCheck(256 * 1024, 10);
}

BOOST_AUTO_TEST_CASE(concurrent_exchanges_from_eight_threads) {
  TempStore ts;
  constexpr int kThreads = 8, kPerThread = 50;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        BeginExchangeInput in;
        in.user_text = "thread " + std::to_string(t) + " question " + std::to_string(i);
        in.language = "en";
        auto ex = ts.store->BeginExchange("acme", in);
        if (!ex.ok()) {
          errors[t] = ex.status().ToString();
          return;
        }
        Message m = ex->assistant_message;
        m.content = "answer " + std::to_string(t) + "/" + std::to_string(i);
        m.status = kStatusComplete;
        if (Status s = ts.store->FinishMessage(m); !s.ok()) {
          errors[t] = s.ToString();
          return;
        }
        ids[t].push_back(ex->conversation.id);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> expected;
  for (int t = 0; t < kThreads; ++t) {
    BOOST_TEST(errors[t].empty(), errors[t]);
    expected.insert(ids[t].begin(), ids[t].end());
  }
  BOOST_REQUIRE(expected.size() == static_cast<size_t>(kThreads * kPerThread));

  int pages = 0;
  std::vector<Conversation> listed = ListAll(*ts.store, 37, &pages);
  std::vector<std::string> listed_ids;
  for (const auto& c : listed) listed_ids.push_back(c.id);
  BOOST_TEST(listed_ids.size() == expected.size());
  BOOST_TEST((std::set<std::string>(listed_ids.begin(), listed_ids.end()) == expected));
  size_t bad = 0;
  for (const auto& c : listed) {
    auto msgs = ts.store->ListMessages("acme", c.id);
    if (!msgs.ok() || msgs->size() != 2u || msgs->at(1).status != kStatusComplete ||
        msgs->at(0).role != "user") {
      ++bad;
    }
  }
  BOOST_TEST(bad == 0u);
}

BOOST_AUTO_TEST_CASE(message_encoding_round_trips) {
  Message m;
  m.id = "msg_1";
  m.conversation_id = "conv_1";
  m.seq = 7;
  m.role = "assistant";
  m.content = "quote \" backslash \\ newline \n \xF0\x9F\x98\x80";
  m.status = kStatusError;
  m.error_code = "upstream_error";
  m.error_message = "boom";
  m.sources_json = R"([{"title":"t","score":0.5}])";
  m.usage = {true, 1, 2, 3};
  m.ttft_ms = 55;
  Message back;
  BOOST_REQUIRE(DecodeMessage(EncodeMessage(m), back));
  BOOST_TEST(back.content == m.content);
  BOOST_TEST(back.seq == 7u);
  BOOST_TEST(back.status == kStatusError);
  BOOST_TEST(back.error_code == "upstream_error");
  BOOST_TEST(back.sources_json == m.sources_json);
  BOOST_TEST(back.usage.total_tokens == 3);
  BOOST_TEST(back.ttft_ms == 55);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::store
