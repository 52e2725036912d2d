// ChatService: the send-message pipeline (DESIGN.md, "The send-message pipeline").
//
//   1. load the conversation (404 if unknown), detect the question's language (falling back to
//      the conversation's), save the user message and a `streaming` assistant message in one
//      transaction: the question is on disk before anything downstream can fail;
//   2. retrieve passages (hybrid by default; started beside step 1's write, which it does not
//      need) and build the prompt: instructions in the
//      answer language, the passages numbered as quoted material, history within a budget;
//   3. stream the model's deltas to the observer, never splitting a UTF-8 character, saving
//      the partial answer at least every persist interval. When a read says step 1 will make a
//      new exchange, step 1 runs on its own thread and the model is called without waiting for
//      it (ChatServiceOptions::early_model_call): its first delta waits for the write instead,
//      and a write that fails or replays drops the call;
//   4. save the final state -- `complete`, `error` (what arrived is kept) or `cancelled` --
//      durably, and only then return, so the caller's done event follows a durable write.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/config.h"
#include "lib/core/status.h"
#include "lib/llm/chat_model.h"
#include "lib/rag/retriever.h"
#include "lib/store/conversation_store.h"

namespace ragstream::chat {

struct SendRequest {
  std::string tenant;  // whose conversation, documents and limits (required)
  std::string message;
  std::optional<std::string> conversation_id;
  // Retrieval: how many passages, how, and from which documents (empty: all).
  std::optional<size_t> top_k;  // default ChatServiceOptions::default_top_k
  rag::RetrievalMode mode = rag::RetrievalMode::kHybrid;
  std::vector<std::string> document_ids;
  DisconnectPolicy on_disconnect = DisconnectPolicy::kCancel;
  std::string request_id;  // for logs
  // The earlier turns to put in the prompt instead of the stored conversation's (an
  // OpenAI-style request carries its own history). Still within the history budget.
  std::optional<std::vector<llm::ChatMessage>> history;
  // The client's tools, relayed to the model; and its tool round trip since `message` (the
  // calls the model asked for and their results), stored with the exchange and sent after
  // the question. Retrieval runs on `message` alone.
  llm::ToolOptions tools;
  std::vector<llm::ChatMessage> tool_turns;
  // Makes the send idempotent (see ConversationStore::BeginExchange); "" for none.
  std::string client_message_id;
  // The caller holds its response until the first token (the OpenAI-compatible API), so a
  // failure before it reaches the client as a plain HTTP error. The conversation this send
  // created is then deleted again instead of kept as a failed exchange nobody saw: a
  // client's retry stores the question once. (A send into an existing conversation keeps
  // its failed exchange, as every send does.)
  bool discard_if_failed_early = false;
};

// Where the answer goes while it streams. Every method returns false once the client is
// gone. Called one at a time, in order: OnStart on the thread that writes the exchange (Send's
// own, or with the early model call a helper thread), the rest on Send's thread after it.
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  // The exchange is saved; its ids are known.
  virtual bool OnStart(const std::string& conversation_id, const std::string& message_id) = 0;
  // A piece of the answer (whole UTF-8 characters only).
  virtual bool OnToken(std::string_view text) = 0;
  // Nothing arrived for a while (called every ~100 ms while waiting).
  virtual bool OnIdle() = 0;
  // A piece of a tool call the model asks for (only when the request carried tools).
  virtual bool OnToolCall(const llm::ToolCallDelta&) { return true; }
};

// Where the time before the first token went, in microseconds of the steady clock; -1 where a
// phase did not run. Without the early model call the phases are disjoint parts of
// `first_token_us`, in pipeline order (the rest of it is bookkeeping between them). With it,
// the exchange's write (in `store_us`) and the stream's first event (`start_us`) run beside
// retrieval, the prompt and the model's first token; `store_wait_us` is what the write added.
struct SendPhases {
  int64_t store_us = -1;     // conversation load, document check, the exchange's write txn
  int64_t language_us = -1;  // detecting the question's language
  // Retrieval (embedding, vector + lexical search, fusion, chunk loads) starts beside the
  // exchange's write txn: this is what it took after that write ended, its share of the wait.
  int64_t retrieval_us = -1;
  int64_t prompt_us = -1;  // building the prompt (passages, history)
  int64_t start_us = -1;   // the observer's OnStart (a stream's first event)
  // From calling the model to its first delta: the upstream's own time to first token plus
  // the client's (connection, request, first chunk parsed).
  int64_t upstream_ttft_us = -1;
  // How long the model's first delta waited for the exchange's write (near 0 when the write
  // had ended first, as it always has without the early model call).
  int64_t store_wait_us = -1;
  // From Send's start to the first token written to the observer (OnToken returned).
  int64_t first_token_us = -1;
  // The steady clock (microseconds since its epoch) at Send's start, so that a caller can
  // relate the phases to its own clock (e.g. when the request arrived).
  int64_t send_started_us = -1;
};

struct SendResult {
  // Ok, or why the request failed. If `started` is false nothing was streamed and the status
  // is a plain HTTP error; if true the exchange exists and `message` holds the final
  // assistant message (status complete, error or cancelled).
  Status status;
  bool started = false;
  bool client_gone = false;
  store::Message message;
  std::string conversation_id;
  std::string language;
  int64_t tokens = 0;                 // deltas relayed
  std::vector<rag::Passage> sources;  // the passages given to the model, in prompt order
  double retrieval_seconds = -1;      // -1: no retrieval
  // The send repeated an earlier client_message_id: nothing ran; `message` is the earlier
  // answer as stored now (it may still be streaming on some worker).
  bool replayed = false;
  // discard_if_failed_early applied: the exchange failed before its first token and the
  // conversation it created is gone.
  bool discarded = false;
  int upstream_http_status = 0;  // the model's HTTP status on its last attempt
  // Early model calls stopped before any of their answer was used (see early_model_call).
  int model_calls_dropped = 0;
  SendPhases phases;  // where the time before the first token went
};

class PartialWriter;

struct ChatServiceOptions {
  size_t history_budget_chars = 8000;
  // A streaming answer is on disk at most this old. With a PartialWriter, streams submit
  // every half interval and the writer commits every half interval.
  int persist_interval_ms = 500;
  // Batches partial saves across streams; null saves each stream's partial synchronously.
  PartialWriter* partial_writer = nullptr;
  // When set and true, running streams end now with an error `shutting_down` (worker drain).
  const std::atomic<bool>* abort_streams = nullptr;
  size_t default_top_k = 5;
  // Answers one tenant may have streaming at once, on all workers (0: no limit).
  size_t max_streams_per_tenant = 0;
  // How long a client_message_id stays bound to its request (RAGSTREAM_IDEMPOTENCY_TTL_S).
  int64_t idempotency_ttl_ms = 24 * 3600 * 1000;
  // Call the model while the question's write is still running, when a read says the write
  // will make a new exchange (RAGSTREAM_EARLY_MODEL_CALL). The model's time to first token then
  // hides the write's (its fsync, a wait behind an ingest's commit, a cluster log's quorum); a
  // write that fails after all costs the model call it started.
  bool early_model_call = true;
};

class ChatService {
 public:
  // `model` may be null: chat then answers 503 model_not_configured. `retriever` and
  // `documents` may be null: answers then come without sources.
  ChatService(store::ConversationStore& store, std::shared_ptr<llm::ChatModel> model,
              ChatServiceOptions options, const rag::Retriever* retriever = nullptr,
              const store::DocumentStore* documents = nullptr);

  SendResult Send(const SendRequest& request, StreamObserver& observer);

  bool model_configured() const { return model_ != nullptr; }
  std::string model_name() const { return model_ ? model_->name() : std::string(); }

 private:
  store::ConversationStore& store_;
  std::shared_ptr<llm::ChatModel> model_;
  ChatServiceOptions options_;
  const rag::Retriever* retriever_;
  const store::DocumentStore* documents_;
};

}  // namespace ragstream::chat
