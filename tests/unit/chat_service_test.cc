// ChatService::Send over a real temp LMDB store, with a scripted fake ChatModel and a
// recording StreamObserver.
#include "lib/chat/chat_service.h"
#include "lib/rag/analyzer.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lib/chat/partial_writer.h"
#include "lib/core/ids.h"
#include "lib/core/utf8.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/ingester.h"
#include "lib/rag/retriever.h"
#include "lib/store/document_store.h"
#include "tests/unit/temp_store.h"

namespace ragstream::chat {
namespace {

using ragstream::testing::TempDir;
using ragstream::testing::TempStore;
using Clock = std::chrono::steady_clock;

// Emits scripted deltas through the callbacks, like the OpenAI client would.
class FakeModel : public llm::ChatModel {
 public:
  std::vector<std::string> deltas;
  int fail_after = -1;  // after this many deltas: an upstream error
  std::string error_code = "server_error";
  int block_after = -1;  // after this many deltas: call on_tick until `release` (or stopped)
  std::atomic<bool> release{false};
  int tick_for_ms_after_first = 0;  // after the first delta: call on_tick for this long
  int tick_interval_ms = 10;
  int first_delta_delay_ms = 0;     // sleep this long before the first delta (a slow upstream)
  std::function<void()> tick_hook;  // runs inside every tick loop iteration
  std::string finish_reason = "stop";
  store::Usage usage{true, 21, 4, 25};

  // What happened.
  std::vector<llm::ChatRequest> requests;
  std::atomic<int> calls{0};  // Stream calls begun (readable from another thread)
  int on_delta_calls = 0;
  bool stopped_by_callback = false;

  std::string name() const override { return "fake-model"; }

  llm::ChatOutcome Stream(const llm::ChatRequest& request,
                          const llm::StreamCallbacks& cb) override {
    requests.push_back(request);
    ++calls;
    llm::ChatOutcome out;
    out.attempts = 1;
    auto stopped = [&] {
      stopped_by_callback = true;
      out.status = Status::Cancelled("a callback asked to stop");
      return out;
    };
    if (!cb.on_tick()) return stopped();  // waiting for the first token
    if (first_delta_delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(first_delta_delay_ms));
    }
    for (int i = 0; i <= static_cast<int>(deltas.size()); ++i) {
      if (i == fail_after) {
        out.status = Status::Upstream(error_code, "The server had an error");
        return out;
      }
      if (i == static_cast<int>(deltas.size())) break;
      if (i == block_after) {
        auto give_up = Clock::now() + std::chrono::seconds(10);  // never hang the suite
        while (!release.load() && Clock::now() < give_up) {
          if (!Tick(cb)) return stopped();
        }
      }
      ++on_delta_calls;
      if (!cb.on_delta(deltas[i])) return stopped();
      out.got_first_token = true;
      if (i == 0 && tick_for_ms_after_first > 0) {
        auto until = Clock::now() + std::chrono::milliseconds(tick_for_ms_after_first);
        while (Clock::now() < until) {
          if (!Tick(cb)) return stopped();
        }
      }
    }
    out.finish_reason = finish_reason;
    out.usage = usage;
    return out;
  }

 private:
  bool Tick(const llm::StreamCallbacks& cb) {
    std::this_thread::sleep_for(std::chrono::milliseconds(tick_interval_ms));
    if (tick_hook) tick_hook();
    return cb.on_tick();
  }
};

class FakeObserver : public StreamObserver {
 public:
  int accept_tokens = -1;  // >= 0: the client is gone after this many tokens
  bool start_ok = true;

  int starts = 0;
  std::string conversation_id, message_id;
  std::vector<std::string> tokens;
  int idles = 0;

  bool OnStart(const std::string& conv, const std::string& msg) override {
    ++starts;
    conversation_id = conv;
    message_id = msg;
    return start_ok;
  }
  bool OnToken(std::string_view text) override {
    tokens.emplace_back(text);
    return Here();
  }
  bool OnIdle() override {
    ++idles;
    return Here();
  }
  std::string Joined() const {
    std::string s;
    for (const auto& t : tokens) s += t;
    return s;
  }

 private:
  bool Here() const {
    return accept_tokens < 0 || static_cast<int>(tokens.size()) <= accept_tokens;
  }
};

struct Harness {
  explicit Harness(ChatServiceOptions options = {}) : opts(options) {}
  SendResult Send(const std::string& message,
                  std::optional<std::string> conversation_id = std::nullopt,
                  DisconnectPolicy policy = DisconnectPolicy::kCancel) {
    ChatService service(*ts.store, model, opts);
    SendRequest req;
    req.tenant = "acme";
    req.message = message;
    req.conversation_id = std::move(conversation_id);
    req.on_disconnect = policy;
    req.request_id = "req-test";
    return service.Send(req, observer);
  }
  store::Message Stored(const std::string& id) {
    auto m = ts.store->GetMessage("acme", id);
    BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    return m.value();
  }
  size_t ConversationCount() {
    auto page = ts.store->ListConversations("acme", 100, "");
    BOOST_REQUIRE(page.ok());
    return page->conversations.size();
  }

  TempStore ts;
  std::shared_ptr<FakeModel> model = std::make_shared<FakeModel>();
  FakeObserver observer;
  ChatServiceOptions opts;
};

int K(const Status& s) {
  return static_cast<int>(s.kind());
}
int K(ErrorKind k) {
  return static_cast<int>(k);
}

BOOST_AUTO_TEST_SUITE(chat_service_test)

BOOST_AUTO_TEST_CASE(happy_path_streams_and_persists) {
  Harness h;
  h.model->deltas = {"LMDB ", "is a ", "memory-mapped ", "key-value store."};
  SendResult r = h.Send("What is LMDB, and why is it so fast for reads?");
  BOOST_TEST(r.status.ok(), r.status.ToString());
  BOOST_TEST(r.started);
  BOOST_TEST(!r.client_gone);
  BOOST_TEST(r.language == "en");
  BOOST_TEST(r.tokens == 4);

  BOOST_TEST(h.observer.starts == 1);
  BOOST_TEST(h.observer.conversation_id == r.conversation_id);
  BOOST_TEST(h.observer.message_id == r.message.id);
  BOOST_TEST(h.observer.tokens == h.model->deltas, boost::test_tools::per_element());

  BOOST_TEST(r.message.status == store::kStatusComplete);
  BOOST_TEST(r.message.content == "LMDB is a memory-mapped key-value store.");
  BOOST_TEST(r.message.finish_reason == "stop");
  BOOST_TEST(r.message.usage.present);
  BOOST_TEST(r.message.usage.total_tokens == 25);
  BOOST_TEST(r.message.ttft_ms >= 0);

  auto msgs = h.ts.store->ListMessages("acme", r.conversation_id);
  BOOST_REQUIRE(msgs.ok());
  BOOST_REQUIRE(msgs->size() == 2u);
  BOOST_TEST(msgs->at(0).role == "user");
  BOOST_TEST(msgs->at(0).content == "What is LMDB, and why is it so fast for reads?");
  BOOST_TEST(msgs->at(0).status == store::kStatusComplete);
  BOOST_TEST(msgs->at(1).id == h.observer.message_id);
  BOOST_TEST(msgs->at(1).status == store::kStatusComplete);
  BOOST_TEST(msgs->at(1).content == "LMDB is a memory-mapped key-value store.");
  BOOST_TEST(msgs->at(1).finish_reason == "stop");
  BOOST_TEST(msgs->at(1).usage.present);
  BOOST_TEST(msgs->at(1).usage.prompt_tokens == 21);
  BOOST_TEST(msgs->at(1).usage.completion_tokens == 4);
  BOOST_TEST(msgs->at(1).usage.total_tokens == 25);

  // The prompt: system first, the question last.
  BOOST_REQUIRE(h.model->requests.size() == 1u);
  const auto& sent = h.model->requests[0].messages;
  BOOST_REQUIRE(sent.size() == 2u);
  BOOST_TEST(sent.front().role == "system");
  BOOST_TEST(sent.back().role == "user");
  BOOST_TEST(sent.back().content == "What is LMDB, and why is it so fast for reads?");
}

BOOST_AUTO_TEST_CASE(follow_up_sends_history_to_the_model) {
  Harness h;
  h.model->deltas = {"first answer"};
  SendResult r1 = h.Send("What is the first thing you can tell me about storage?");
  BOOST_REQUIRE(r1.status.ok());
  h.model->deltas = {"second answer"};
  SendResult r2 = h.Send("And the second thing about storage engines?", r1.conversation_id);
  BOOST_REQUIRE(r2.status.ok());
  BOOST_TEST(r2.conversation_id == r1.conversation_id);
  BOOST_REQUIRE(h.model->requests.size() == 2u);
  const auto& sent = h.model->requests[1].messages;
  BOOST_REQUIRE(sent.size() == 4u);
  BOOST_TEST(sent[1].content == "What is the first thing you can tell me about storage?");
  BOOST_TEST(sent[2].role == "assistant");
  BOOST_TEST(sent[2].content == "first answer");
  BOOST_TEST(sent[3].content == "And the second thing about storage engines?");
  auto msgs = h.ts.store->ListMessages("acme", r1.conversation_id);
  BOOST_REQUIRE(msgs.ok());
  BOOST_TEST(msgs->size() == 4u);
}

BOOST_AUTO_TEST_CASE(split_multibyte_characters_are_relayed_whole) {
  Harness h;
  // "ש" split over two deltas, "😀" over three.
  h.model->deltas = {"a",
                     "\xD7",
                     "\xA9"
                     "b",
                     "\xF0\x9F",
                     "\x98",
                     "\x80",
                     "!"};
  SendResult r = h.Send("Please answer with some Hebrew letters and an emoji for me");
  BOOST_REQUIRE(r.status.ok());
  for (const auto& t : h.observer.tokens) {
    BOOST_TEST(!t.empty());
    BOOST_TEST(IsValidUtf8(t), "token is not whole UTF-8 characters");
  }
  BOOST_TEST(h.observer.tokens == std::vector<std::string>({"a",
                                                            "\xD7\xA9"
                                                            "b",
                                                            "\xF0\x9F\x98\x80", "!"}),
             boost::test_tools::per_element());
  BOOST_TEST(r.message.content ==
             "a\xD7\xA9"
             "b\xF0\x9F\x98\x80!");
  BOOST_TEST(h.Stored(r.message.id).content ==
             "a\xD7\xA9"
             "b\xF0\x9F\x98\x80!");
  BOOST_TEST(r.tokens == 4);
}

BOOST_AUTO_TEST_CASE(incomplete_character_at_the_end_is_sanitized) {
  Harness h;
  h.model->deltas = {"ok ", "\xF0\x9F"};
  SendResult r = h.Send("Tell me something that ends in a broken emoji please");
  BOOST_REQUIRE(r.status.ok());
  BOOST_TEST(IsValidUtf8(r.message.content));
  BOOST_TEST(r.message.content.rfind("ok ", 0) == 0u);
  BOOST_TEST(r.message.content.find("\xEF\xBF\xBD") != std::string::npos);
  for (const auto& t : h.observer.tokens) BOOST_TEST(IsValidUtf8(t));
  BOOST_TEST(h.observer.Joined() == r.message.content);
}

BOOST_AUTO_TEST_CASE(upstream_error_after_two_deltas_keeps_what_arrived) {
  Harness h;
  h.model->deltas = {"Hello ", "there ", "never sent"};
  h.model->fail_after = 2;
  SendResult r = h.Send("Say hello to me in a complete English sentence please");
  BOOST_TEST(r.started);
  BOOST_TEST(K(r.status) == K(ErrorKind::kUpstream));
  BOOST_TEST(r.status.code() == "server_error");
  BOOST_TEST(r.message.status == store::kStatusError);
  store::Message stored = h.Stored(r.message.id);
  BOOST_TEST(stored.status == store::kStatusError);
  BOOST_TEST(stored.content == "Hello there ");
  BOOST_TEST(stored.error_code == "server_error");
  BOOST_TEST(h.observer.tokens == std::vector<std::string>({"Hello ", "there "}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(client_gone_with_cancel_policy_stops_the_model) {
  Harness h;
  h.model->deltas = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  h.observer.accept_tokens = 3;
  SendResult r = h.Send("Count from zero to nine for me, one number at a time", std::nullopt,
                        DisconnectPolicy::kCancel);
  BOOST_TEST(h.model->stopped_by_callback, "on_delta never returned false");
  BOOST_TEST(h.model->on_delta_calls == 4);  // the 4th token found the client gone
  BOOST_TEST(r.client_gone);
  BOOST_TEST(K(r.status) == K(ErrorKind::kCancelled));
  BOOST_TEST(r.message.status == store::kStatusCancelled);
  store::Message stored = h.Stored(r.message.id);
  BOOST_TEST(stored.status == store::kStatusCancelled);
  BOOST_TEST(stored.content == "0123");
}

BOOST_AUTO_TEST_CASE(client_gone_with_finish_policy_completes_the_answer) {
  Harness h;
  h.model->deltas = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  h.observer.accept_tokens = 3;
  SendResult r = h.Send("Count from zero to nine for me, one number at a time", std::nullopt,
                        DisconnectPolicy::kFinish);
  BOOST_TEST(!h.model->stopped_by_callback);
  BOOST_TEST(h.model->on_delta_calls == 10);
  BOOST_TEST(r.status.ok(), r.status.ToString());
  BOOST_TEST(r.client_gone);
  BOOST_TEST(h.observer.tokens.size() == 4u);  // nothing is sent after the client left
  store::Message stored = h.Stored(r.message.id);
  BOOST_TEST(stored.status == store::kStatusComplete);
  BOOST_TEST(stored.content == "0123456789");
}

BOOST_AUTO_TEST_CASE(client_gone_before_start_is_cancelled_without_calling_the_model) {
  ChatServiceOptions opts;
  opts.early_model_call = false;
  Harness h(opts);
  h.model->deltas = {"x"};
  h.observer.start_ok = false;
  SendResult r = h.Send("Will anybody read this answer at all, I wonder?");
  BOOST_TEST(r.started);
  BOOST_TEST(K(r.status) == K(ErrorKind::kCancelled));
  BOOST_TEST(h.model->requests.empty());
  BOOST_TEST(h.Stored(r.message.id).status == store::kStatusCancelled);
}

// With the early model call the model was already asked; its stream is stopped and nothing
// of it is relayed or kept.
BOOST_AUTO_TEST_CASE(client_gone_before_start_stops_the_early_model_call) {
  Harness h;
  h.model->deltas = {"x", "y"};
  h.observer.start_ok = false;
  SendResult r = h.Send("Will anybody read this answer at all, I wonder?");
  BOOST_TEST(r.started);
  BOOST_TEST(K(r.status) == K(ErrorKind::kCancelled));
  BOOST_TEST(h.model->stopped_by_callback);
  BOOST_TEST(r.model_calls_dropped == 1);
  BOOST_TEST(h.observer.tokens.empty());
  store::Message stored = h.Stored(r.message.id);
  BOOST_TEST(stored.status == store::kStatusCancelled);
  BOOST_TEST(stored.content.empty());
}

// A standby (or a primary that lost its place in the log) refuses every write: the preview
// says so, and the model is never asked for an answer nobody could store.
BOOST_AUTO_TEST_CASE(a_store_that_refuses_writes_gets_no_early_model_call) {
  Harness h;
  h.model->deltas = {"x"};
  h.ts.env->RefuseWrites(Status::Unavailable("standby", "this host is a standby"));
  SendResult r = h.Send("Is anybody able to write anything down here?");
  BOOST_TEST(!r.started);
  BOOST_TEST(K(r.status) == K(ErrorKind::kUnavailable));
  BOOST_TEST(h.model->requests.empty());
  BOOST_TEST(r.model_calls_dropped == 0);
}

// Waits (up to 10 s) until `done` says so.
template <typename F>
bool Eventually(F done) {
  for (auto give_up = Clock::now() + std::chrono::seconds(10); Clock::now() < give_up;) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

// The model is asked while the question's write waits for LMDB's write lock (held here, as an
// ingest's commit would hold it); nothing reaches the client until the question is on disk.
BOOST_AUTO_TEST_CASE(early_model_call_runs_while_the_write_waits_for_the_lock) {
  Harness h;
  h.model->deltas = {"Held ", "back."};
  std::optional<store::Txn> lock;
  {
    auto txn = store::Txn::BeginWrite(*h.ts.env);
    BOOST_REQUIRE(txn.ok());
    lock.emplace(std::move(*txn));
  }
  auto sending = std::async(std::launch::async,
                            [&] { return h.Send("Does the model wait for the disk, or not?"); });
  BOOST_REQUIRE(Eventually([&] { return h.model->calls.load() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  BOOST_TEST(h.observer.starts == 0);  // the write has not happened: no start event
  BOOST_TEST(h.observer.tokens.empty());
  lock.reset();  // the lock is free: the write, then the answer
  SendResult r = sending.get();
  BOOST_TEST(r.status.ok(), r.status.ToString());
  BOOST_TEST(h.model->calls.load() == 1);
  BOOST_TEST(h.observer.starts == 1);
  BOOST_TEST(h.observer.Joined() == "Held back.");
  BOOST_TEST(r.phases.store_wait_us >= 20000);  // the first delta waited for the write
  BOOST_TEST(r.model_calls_dropped == 0);
  BOOST_TEST(h.Stored(r.message.id).status == store::kStatusComplete);
}

// Two questions into one conversation while the lock is held: both models were asked with
// the history a read gave them; the second write sees the first question in its history, so
// that answer's call is dropped and made again with it.
BOOST_AUTO_TEST_CASE(early_model_call_is_made_again_when_the_history_changed) {
  Harness h;
  h.model->deltas = {"First answer."};
  SendResult first = h.Send("What was there before the two questions?");
  BOOST_REQUIRE(first.status.ok());
  auto model_a = std::make_shared<FakeModel>(), model_b = std::make_shared<FakeModel>();
  model_a->deltas = {"A."};
  model_b->deltas = {"B."};
  FakeObserver observer_a, observer_b;
  std::optional<store::Txn> lock;
  {
    auto txn = store::Txn::BeginWrite(*h.ts.env);
    BOOST_REQUIRE(txn.ok());
    lock.emplace(std::move(*txn));
  }
  auto send = [&](std::shared_ptr<FakeModel> model, FakeObserver& observer, const char* text) {
    ChatService service(*h.ts.store, model, {});
    SendRequest req;
    req.tenant = "acme";
    req.message = text;
    req.conversation_id = first.conversation_id;
    return service.Send(req, observer);
  };
  auto a = std::async(std::launch::async, [&] { return send(model_a, observer_a, "Question A?"); });
  auto b = std::async(std::launch::async, [&] { return send(model_b, observer_b, "Question B?"); });
  BOOST_REQUIRE(
      Eventually([&] { return model_a->calls.load() == 1 && model_b->calls.load() == 1; }));
  lock.reset();
  SendResult ra = a.get(), rb = b.get();
  BOOST_TEST(ra.status.ok(), ra.status.ToString());
  BOOST_TEST(rb.status.ok(), rb.status.ToString());
  auto holds = [](const llm::ChatRequest& r, const std::string& text) {
    for (const auto& m : r.messages) {
      if (m.content.find(text) != std::string::npos) return true;
    }
    return false;
  };
  // Exactly one was asked again, the second time with the other's question in its history.
  BOOST_REQUIRE(model_a->calls.load() + model_b->calls.load() == 3);
  FakeModel& again = model_a->calls.load() == 2 ? *model_a : *model_b;
  const std::string other = &again == model_a.get() ? "Question B?" : "Question A?";
  BOOST_TEST(!holds(again.requests[0], other));
  BOOST_TEST(holds(again.requests[1], other));
  BOOST_TEST(again.stopped_by_callback);
  BOOST_TEST(ra.model_calls_dropped + rb.model_calls_dropped == 1);
  BOOST_TEST(observer_a.Joined() == "A.");
  BOOST_TEST(observer_b.Joined() == "B.");
  BOOST_TEST(h.Stored(ra.message.id).content == "A.");
  BOOST_TEST(h.Stored(rb.message.id).content == "B.");
}

BOOST_AUTO_TEST_CASE(unknown_conversation_is_not_found_and_writes_nothing) {
  Harness h;
  h.model->deltas = {"x"};
  SendResult r = h.Send("Continue our earlier conversation about databases", NewId("conv_"));
  BOOST_TEST(K(r.status) == K(ErrorKind::kNotFound));
  BOOST_TEST(!r.started);
  BOOST_TEST(h.observer.starts == 0);
  BOOST_TEST(h.model->requests.empty());
  BOOST_TEST(h.ConversationCount() == 0u);
}

BOOST_AUTO_TEST_CASE(no_model_is_unavailable_and_writes_nothing) {
  Harness h;
  ChatService service(*h.ts.store, nullptr, {});
  BOOST_TEST(!service.model_configured());
  SendRequest req;
  req.tenant = "acme";
  req.message = "Is anybody there to answer this question?";
  SendResult r = service.Send(req, h.observer);
  BOOST_TEST(K(r.status) == K(ErrorKind::kUnavailable));
  BOOST_TEST(r.status.code() == "model_not_configured");
  BOOST_TEST(!r.started);
  BOOST_TEST(h.observer.starts == 0);
  BOOST_TEST(h.ConversationCount() == 0u);
}

BOOST_AUTO_TEST_CASE(partial_answer_is_persisted_while_streaming) {
  ChatServiceOptions opts;
  opts.persist_interval_ms = 100;
  Harness h(opts);
  h.model->deltas = {"partial ", "rest"};
  h.model->tick_for_ms_after_first = 700;
  h.model->tick_interval_ms = 20;
  struct Seen {
    std::string status, content;
    int64_t updated_at;
  };
  std::vector<Seen> seen;
  h.model->tick_hook = [&] {
    if (h.observer.message_id.empty()) return;
    auto m = h.ts.store->GetMessage("acme", h.observer.message_id);
    if (m.ok()) seen.push_back({m->status, m->content, m->updated_at});
  };
  SendResult r = h.Send("Write a long answer slowly so that it gets saved as it streams");
  BOOST_REQUIRE(r.status.ok());
  BOOST_REQUIRE(!seen.empty());
  size_t partial = 0;
  std::set<int64_t> heartbeats;
  for (const auto& s : seen) {
    BOOST_TEST(s.status == store::kStatusStreaming);
    if (s.content == "partial ") {
      ++partial;
      heartbeats.insert(s.updated_at);
    }
  }
  BOOST_TEST(partial > 0u, "the reader never saw the partial content while streaming");
  // Saved repeatedly (every ~100 ms over ~700 ms), each save refreshing the heartbeat.
  BOOST_TEST(heartbeats.size() >= 3u);
  BOOST_TEST(h.Stored(r.message.id).content == "partial rest");
  BOOST_TEST(h.Stored(r.message.id).status == store::kStatusComplete);
}

BOOST_AUTO_TEST_CASE(partial_answer_is_persisted_through_a_partial_writer) {
  ChatServiceOptions opts;
  opts.persist_interval_ms = 100;
  Harness h(opts);
  {
    PartialWriter writer(*h.ts.store, 50);
    h.opts.partial_writer = &writer;
    h.model->deltas = {"batched ", "tail"};
    h.model->tick_for_ms_after_first = 500;
    h.model->tick_interval_ms = 20;
    size_t partial_seen = 0;
    h.model->tick_hook = [&] {
      if (h.observer.message_id.empty()) return;
      auto m = h.ts.store->GetMessage("acme", h.observer.message_id);
      if (m.ok() && m->status == store::kStatusStreaming && m->content == "batched ") {
        ++partial_seen;
      }
    };
    SendResult r = h.Send("Write an answer slowly so the batch writer saves it as it streams");
    BOOST_REQUIRE(r.status.ok());
    BOOST_TEST(partial_seen > 0u, "the batched partial never reached the store");
    // A batch still in flight must not overwrite the final state.
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    BOOST_TEST(writer.Flush().ok());
    store::Message stored = h.Stored(r.message.id);
    BOOST_TEST(stored.status == store::kStatusComplete);
    BOOST_TEST(stored.content == "batched tail");
    h.opts.partial_writer = nullptr;
  }
}

BOOST_AUTO_TEST_CASE(abort_streams_mid_stream_is_shutting_down) {
  std::atomic<bool> abort{false};
  ChatServiceOptions opts;
  opts.abort_streams = &abort;
  Harness h(opts);
  h.model->deltas = {"one ", "two ", "three"};
  h.model->block_after = 2;  // two deltas, then wait
  std::thread drain([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    abort.store(true);
  });
  SendResult r = h.Send("Tell me a story that takes a long time to finish please");
  drain.join();
  BOOST_TEST(h.model->stopped_by_callback, "the model was not told to stop");
  BOOST_TEST(r.started);
  BOOST_TEST(K(r.status) == K(ErrorKind::kUnavailable));
  BOOST_TEST(r.status.code() == "shutting_down");
  store::Message stored = h.Stored(r.message.id);
  BOOST_TEST(stored.status == store::kStatusError);
  BOOST_TEST(stored.error_code == "shutting_down");
  BOOST_TEST(stored.content == "one two ");
}

BOOST_AUTO_TEST_CASE(hebrew_question_is_answered_in_hebrew) {
  Harness h;
  h.model->deltas = {"\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D"};
  // "What is the capital of Israel and how many people live there?"
  const std::string question =
      "\xD7\x9E\xD7\x94 \xD7\x94\xD7\x91\xD7\x99\xD7\xA8\xD7\x94 \xD7\xA9\xD7\x9C "
      "\xD7\x99\xD7\xA9\xD7\xA8\xD7\x90\xD7\x9C \xD7\x95\xD7\x9B\xD7\x9E\xD7\x94 "
      "\xD7\x90\xD7\xA0\xD7\xA9\xD7\x99\xD7\x9D \xD7\x92\xD7\xA8\xD7\x99\xD7\x9D "
      "\xD7\x91\xD7\x94\xD7\x9D?";
  SendResult r = h.Send(question);
  BOOST_REQUIRE(r.status.ok());
  BOOST_TEST(r.language == "he");
  BOOST_REQUIRE(h.model->requests.size() == 1u);
  const auto& system = h.model->requests[0].messages.front();
  BOOST_TEST(system.role == "system");
  BOOST_TEST(system.content.find("Hebrew") != std::string::npos, system.content);
  BOOST_TEST(h.Stored(r.message.id).language == "he");
  auto conv = h.ts.store->GetConversation("acme", r.conversation_id);
  BOOST_REQUIRE(conv.ok());
  BOOST_TEST(conv->language == "he");
}

BOOST_AUTO_TEST_CASE(short_follow_up_keeps_the_conversation_language) {
  Harness h;
  h.model->deltas = {"x"};
  const std::string question =
      "\xD7\x9E\xD7\x94 \xD7\x94\xD7\x91\xD7\x99\xD7\xA8\xD7\x94 \xD7\xA9\xD7\x9C "
      "\xD7\x99\xD7\xA9\xD7\xA8\xD7\x90\xD7\x9C \xD7\x95\xD7\x9B\xD7\x9E\xD7\x94 "
      "\xD7\x90\xD7\xA0\xD7\xA9\xD7\x99\xD7\x9D \xD7\x92\xD7\xA8\xD7\x99\xD7\x9D?";
  SendResult r1 = h.Send(question);
  BOOST_REQUIRE(r1.status.ok());
  BOOST_REQUIRE(r1.language == "he");
  SendResult r2 = h.Send("ok", r1.conversation_id);  // too short to detect
  BOOST_REQUIRE(r2.status.ok());
  BOOST_TEST(r2.language == "he");
}

// The phases before the first token: every one that ran is filled, they fit inside the time
// to the first token, and the model's own delay shows up in upstream_ttft_us. No timings are
// asserted beyond what a sleep guarantees.
// With the early model call (the default) the exchange's write and start event run beside the
// rest: the phases on the send's own thread fit the total, and so do the write's.
void CheckPhasesFitTheTotal(const SendPhases& p) {
  BOOST_TEST(p.send_started_us > 0);
  BOOST_TEST(p.store_us >= 0);
  BOOST_TEST(p.language_us >= 0);
  BOOST_TEST(p.prompt_us >= 0);
  BOOST_TEST(p.start_us >= 0);
  BOOST_TEST(p.upstream_ttft_us >= 0);
  BOOST_TEST(p.first_token_us >= 0);
  BOOST_TEST(p.store_wait_us >= 0);
  const int64_t own = p.language_us + std::max<int64_t>(p.retrieval_us, 0) + p.prompt_us +
                      p.upstream_ttft_us + p.store_wait_us;
  BOOST_TEST(own <= p.first_token_us);
  BOOST_TEST(p.store_us + p.start_us <= p.first_token_us);
}

BOOST_AUTO_TEST_CASE(phases_before_the_first_token_are_measured) {
  Harness h;
  h.model->deltas = {"one ", "two"};
  h.model->first_delta_delay_ms = 30;
  SendResult r = h.Send("How long does each step take before the first word arrives?");
  BOOST_REQUIRE(r.status.ok());
  const SendPhases& p = r.phases;
  CheckPhasesFitTheTotal(p);
  BOOST_TEST(p.retrieval_us == -1);  // no retriever
  BOOST_TEST(p.upstream_ttft_us >= 30000);
  BOOST_TEST(p.first_token_us >= p.upstream_ttft_us);
  // ttft_ms counts from the same start, on a millisecond clock (so up to 1 ms apart).
  BOOST_TEST(r.message.ttft_ms * 1000 <= p.first_token_us + 1000);
}

BOOST_AUTO_TEST_CASE(retrieval_is_a_phase_of_its_own) {
  TempDir dir;
  store::Env::Options options;
  options.path = dir.path();
  options.map_size_bytes = 64ull << 20;
  options.max_readers = 126;
  options.databases = store::ConversationStore::Databases();
  for (auto& name : store::DocumentStore::Databases(2)) {
    if (std::find(options.databases.begin(), options.databases.end(), name) ==
        options.databases.end()) {
      options.databases.push_back(name);
    }
  }
  auto env = store::Env::Open(options);
  BOOST_REQUIRE(env.ok());
  store::ConversationStore conversations(**env);
  store::DocumentStore documents(**env, 2, store::VectorFormat::kFloat, rag::AnalyzeDocumentChunks);
  rag::HashEmbedder embedder;
  rag::Ingester ingester(documents, embedder, {});
  BOOST_REQUIRE(ingester
                    .Ingest("acme", "LMDB",
                            "LMDB is a memory-mapped key-value store. Readers never block "
                            "writers, and every process shares the page cache.")
                    .ok());
  rag::Retriever retriever(documents, embedder);
  auto model = std::make_shared<FakeModel>();
  model->deltas = {"It ", "is fast."};
  model->first_delta_delay_ms = 20;
  ChatService service(conversations, model, {}, &retriever, &documents);
  FakeObserver observer;
  SendRequest req;
  req.tenant = "acme";
  req.message = "Why do LMDB readers never block writers?";
  SendResult r = service.Send(req, observer);
  BOOST_REQUIRE(r.status.ok());
  BOOST_TEST(r.sources.size() == 1u);
  CheckPhasesFitTheTotal(r.phases);
  BOOST_TEST(r.phases.retrieval_us >= 0);
  BOOST_TEST(r.phases.upstream_ttft_us >= 20000);
  BOOST_TEST(r.retrieval_seconds >= 0);
}

BOOST_AUTO_TEST_CASE(phases_that_did_not_run_stay_unset) {
  {
    Harness h;  // an upstream error before any token
    h.model->deltas = {"never"};
    h.model->fail_after = 0;
    SendResult r = h.Send("Will this answer ever arrive at all, do you think?");
    BOOST_TEST(r.started);
    BOOST_TEST(!r.status.ok());
    BOOST_TEST(r.phases.store_us >= 0);
    BOOST_TEST(r.phases.prompt_us >= 0);
    BOOST_TEST(r.phases.upstream_ttft_us == -1);
    BOOST_TEST(r.phases.first_token_us == -1);
  }
  {
    Harness h;  // refused before the exchange: no prompt, no model
    SendResult r =
        h.Send("Hello again, is anyone there in this conversation?", std::string("conv_unknown"));
    BOOST_TEST(!r.started);
    BOOST_TEST(r.phases.send_started_us > 0);
    BOOST_TEST(r.phases.prompt_us == -1);
    BOOST_TEST(r.phases.upstream_ttft_us == -1);
    BOOST_TEST(r.phases.first_token_us == -1);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::chat
