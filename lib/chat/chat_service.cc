#include "lib/chat/chat_service.h"

#include <algorithm>
#include <chrono>
#include <future>

#include "lib/chat/partial_writer.h"
#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/core/log.h"
#include "lib/core/utf8.h"
#include "lib/llm/openai_stream.h"
#include "lib/rag/language.h"
#include "lib/rag/prompt.h"

namespace ragstream::chat {

ChatService::ChatService(store::ConversationStore& store, std::shared_ptr<llm::ChatModel> model,
                         ChatServiceOptions options, const rag::Retriever* retriever,
                         const store::DocumentStore* documents)
    : store_(store),
      model_(std::move(model)),
      options_(options),
      retriever_(retriever),
      documents_(documents) {}

namespace {

constexpr int64_t kCancelPollMs = 250;

// The state of one answer while it streams.
class AnswerStream {
 public:
  AnswerStream(store::ConversationStore& store, store::Message& message, StreamObserver& observer,
               const SendRequest& request, const ChatServiceOptions& options, int64_t started_ms,
               SendPhases& phases)
      : store_(store),
        message_(message),
        observer_(observer),
        request_(request),
        options_(options),
        started_ms_(started_ms),
        phases_(phases),
        last_persist_ms_(SteadyMillis()) {}

  // When the model was called (SteadyMicros): the upstream's time to first token counts from it.
  void ModelCalledAt(int64_t us) { model_called_us_ = us; }

  bool OnDelta(std::string_view delta) {
    if (phases_.upstream_ttft_us < 0 && model_called_us_ >= 0) {
      phases_.upstream_ttft_us = SteadyMicros() - model_called_us_;
    }
    if (Aborted()) return false;
    std::string text = SanitizeUtf8(hold_back_.Push(delta));
    if (text.empty()) return true;
    if (message_.ttft_ms < 0) message_.ttft_ms = SteadyMillis() - started_ms_;
    message_.content += text;
    message_.token_ends.push_back(static_cast<uint32_t>(message_.content.size()));
    ++tokens_;
    if (!client_gone_ && !observer_.OnToken(text)) client_gone_ = true;
    if (phases_.first_token_us < 0) {
      phases_.first_token_us = SteadyMicros() - phases_.send_started_us;
    }
    MaybePersist();
    return KeepGoing();
  }

  bool OnToolCall(const llm::ToolCallDelta& delta) {
    if (Aborted()) return false;
    if (message_.ttft_ms < 0) message_.ttft_ms = SteadyMillis() - started_ms_;
    ++tokens_;
    if (!client_gone_ && !observer_.OnToolCall(delta)) client_gone_ = true;
    if (phases_.first_token_us < 0) {
      phases_.first_token_us = SteadyMicros() - phases_.send_started_us;
    }
    MaybePersist();
    return KeepGoing();
  }

  bool OnTick() {
    if (Aborted()) return false;
    if (!client_gone_ && !observer_.OnIdle()) client_gone_ = true;
    MaybePersist();
    return KeepGoing();
  }

  // Sends what the hold-back still has (an incomplete character at the very end).
  void FlushTail() {
    std::string tail = hold_back_.Flush();
    if (tail.empty()) return;
    std::string text = SanitizeUtf8(tail);
    message_.content += text;
    message_.token_ends.push_back(static_cast<uint32_t>(message_.content.size()));
    if (!client_gone_ && !observer_.OnToken(text)) client_gone_ = true;
    if (phases_.first_token_us < 0) {
      phases_.first_token_us = SteadyMicros() - phases_.send_started_us;
    }
  }

  bool client_gone() const { return client_gone_; }
  bool cancel_requested() const { return cancel_requested_; }
  bool aborted_by_shutdown() const { return aborted_; }
  int64_t tokens() const { return tokens_; }

 private:
  bool Aborted() {
    if (options_.abort_streams && options_.abort_streams->load()) aborted_ = true;
    return aborted_ || CancelRequested();
  }
  // Another request (on any worker) asked to stop this answer: a flag in the store, read at
  // most every kCancelPollMs so a stop lands within a second.
  bool CancelRequested() {
    if (cancel_requested_) return true;
    int64_t now = SteadyMillis();
    if (now - last_cancel_check_ms_ < kCancelPollMs) return false;
    last_cancel_check_ms_ = now;
    auto flag = store_.CancelRequested(message_.tenant, message_.id);
    cancel_requested_ = flag.ok() && *flag;
    return cancel_requested_;
  }
  bool KeepGoing() const {
    return !client_gone_ || request_.on_disconnect == DisconnectPolicy::kFinish;
  }
  void MaybePersist() {
    int64_t now = SteadyMillis();
    PartialWriter* writer = options_.partial_writer;
    int interval = writer ? options_.persist_interval_ms / 2 : options_.persist_interval_ms;
    if (now - last_persist_ms_ < interval) return;
    last_persist_ms_ = now;
    message_.updated_at = NowMillis();
    if (writer) {
      writer->Submit(message_);
      return;
    }
    if (Status s = store_.SavePartial(message_); !s.ok()) {
      LogWarn("chat", "could not save partial answer",
              {{"request_id", request_.request_id}, {"error", s.ToString()}});
    }
  }

  store::ConversationStore& store_;
  store::Message& message_;
  StreamObserver& observer_;
  const SendRequest& request_;
  const ChatServiceOptions& options_;
  const int64_t started_ms_;
  SendPhases& phases_;
  int64_t model_called_us_ = -1;
  int64_t last_persist_ms_;
  Utf8HoldBack hold_back_;
  bool client_gone_ = false;
  bool aborted_ = false;
  bool cancel_requested_ = false;
  int64_t last_cancel_check_ms_ = SteadyMillis();
  int64_t tokens_ = 0;
};

// Whether two histories hold the same messages (the prompt's guess against the write's).
bool SameHistory(const std::vector<store::Message>& a, const std::vector<store::Message>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const store::Message& x, const store::Message& y) {
                      return x.id == y.id && x.content == y.content;
                    });
}

store::Message StoredTurn(const llm::ChatMessage& turn) {
  store::Message m;
  m.role = turn.role;
  m.content = turn.content;
  m.tool_calls_json = turn.tool_calls_json;
  m.tool_call_id = turn.tool_call_id;
  return m;
}

}  // namespace

SendResult ChatService::Send(const SendRequest& request, StreamObserver& observer) {
  const int64_t started_ms = SteadyMillis();
  SendResult result;
  SendPhases& phases = result.phases;
  phases.send_started_us = SteadyMicros();
  // Adds the time since `since` to `phase` (which may be -1: not run yet) and returns now.
  auto lap = [](int64_t& phase, int64_t since) {
    const int64_t now = SteadyMicros();
    phase = std::max<int64_t>(phase, 0) + (now - since);
    return now;
  };
  int64_t mark = phases.send_started_us;
  if (!model_) {
    result.status = Status::Unavailable(
        "model_not_configured",
        "no chat model is configured: set OPENAI_BASE_URL and RAGSTREAM_CHAT_MODEL");
    return result;
  }

  if (request.tenant.empty()) {
    result.status = Status::Internal("a send without a tenant");
    return result;
  }
  // 1. Conversation, language, and the user's message on disk.
  std::string fallback_language;
  if (request.conversation_id) {
    auto conv = store_.GetConversation(request.tenant, *request.conversation_id);
    if (!conv.ok()) {
      result.status = conv.status();
      return result;
    }
    fallback_language = conv->language;
  }
  mark = lap(phases.store_us, mark);
  if (!request.document_ids.empty() && documents_) {
    auto missing = documents_->Missing(request.tenant, request.document_ids);
    if (!missing.ok()) {
      result.status = missing.status();
      return result;
    }
    if (!missing->empty()) {
      result.status = Status(ErrorKind::kUnprocessable, "unknown_document",
                             "unknown document id " + missing->front() + " in document_ids");
      return result;
    }
  }
  mark = lap(phases.store_us, mark);
  rag::DetectedLanguage language = rag::DetectLanguage(request.message, fallback_language);
  mark = lap(phases.language_us, mark);
  // Retrieval reads only the question and the documents, so it runs beside the exchange's
  // write instead of after it: the first token waits for the slower of the two, not their
  // sum (the write waits for LMDB's one write lock, behind an ingest's commit, and in cluster
  // mode for the log's quorum). A send the write refuses (a limit, an unknown conversation)
  // still waits for its retrieval to end before returning.
  std::optional<rag::RetrievalRequest> retrieval;
  std::atomic<int64_t> retrieval_took_us{-1};
  std::future<Result<std::vector<rag::Passage>>> retrieving;
  if (retriever_) {
    retrieval.emplace(rag::RetrievalRequest{request.tenant, request.message,
                                            request.top_k.value_or(options_.default_top_k),
                                            request.mode, request.document_ids});
    retrieving = std::async(std::launch::async, [this, &retrieval, &retrieval_took_us] {
      const int64_t from = SteadyMicros();
      auto passages = retriever_->Retrieve(*retrieval);
      retrieval_took_us = SteadyMicros() - from;
      return passages;
    });
  }
  store::BeginExchangeInput begin;
  begin.conversation_id = request.conversation_id;
  begin.user_text = request.message;
  for (const auto& turn : request.tool_turns) begin.tool_turns.push_back(StoredTurn(turn));
  begin.language = language.code;
  begin.history_budget_chars = options_.history_budget_chars;
  begin.max_concurrent_streams = options_.max_streams_per_tenant;
  if (!request.client_message_id.empty()) {
    // What makes two sends "the same request" for an idempotency key.
    std::string documents;
    for (const auto& d : request.document_ids) documents += d + ",";
    std::string history;
    if (request.history) {
      for (const auto& turn : *request.history) history += turn.role + ":" + turn.content + "\n";
    }
    for (const auto& turn : request.tool_turns) {
      history += turn.role + ":" + turn.content + turn.tool_calls_json + turn.tool_call_id + "\n";
    }
    begin.fingerprint =
        store::RequestFingerprint({request.conversation_id.value_or(""), request.message,
                                   std::to_string(request.top_k.value_or(0)),
                                   rag::RetrievalModeName(request.mode), documents, history});
    begin.idempotency_ttl_ms = options_.idempotency_ttl_ms;
  }

  // The early model call: when a read says the write will most likely make a new exchange,
  // the write (and the stream's first event) runs on its own thread while this one retrieves,
  // builds the prompt and calls the model, so the model's time to first token hides the
  // write's wait for the lock and its fsync. Nothing reaches the client before the question is
  // on disk: the model's first delta waits for the write, and a write that fails or replays
  // stops the call. The prompt's history is then the read's; if the write saw another (a
  // message landed in between), the call is dropped and made again with the write's.
  std::optional<std::vector<store::Message>> guessed_history;
  if (options_.early_model_call) {
    auto preview = store_.PreviewExchange(request.tenant, begin, request.client_message_id);
    if (preview.ok() && preview->new_exchange) guessed_history = std::move(preview->history);
  }
  const bool early = guessed_history.has_value();
  mark = lap(phases.store_us, mark);
  struct Begun {
    Result<store::Exchange> exchange = Status::Internal("the exchange was not written");
    bool client_left = false;
    int64_t store_us = 0;
    int64_t start_us = -1;
  };
  auto write_exchange = [&] {
    Begun b;
    const int64_t from = SteadyMicros();
    b.exchange = store_.BeginExchange(request.tenant, begin, request.client_message_id);
    const int64_t written = SteadyMicros();
    b.store_us = written - from;
    if (b.exchange.ok() && !b.exchange->replayed) {
      b.client_left =
          !observer.OnStart(b.exchange->conversation.id, b.exchange->assistant_message.id);
      b.start_us = SteadyMicros() - written;
    }
    return b;
  };
  std::future<Begun> writing;
  std::optional<Begun> begun;
  if (early) {
    writing = std::async(std::launch::async, write_exchange);
  } else {
    begun = write_exchange();
  }
  // The write's outcome, waiting for it if `wait`; null while it is still running.
  auto written = [&](bool wait) -> Begun* {
    if (!begun &&
        (wait || writing.wait_for(std::chrono::seconds(0)) == std::future_status::ready)) {
      begun = writing.get();
    }
    return begun ? &*begun : nullptr;
  };
  auto is_new = [](const Begun* b) {
    return b && b->exchange.ok() && !b->exchange->replayed && !b->client_left;
  };
  // Records the write's outcome; true when the send ends here (refused, or replayed).
  auto ends_at_write = [&](Begun& b) -> bool {
    phases.store_us = std::max<int64_t>(phases.store_us, 0) + b.store_us;
    phases.start_us = b.start_us;
    if (!b.exchange.ok()) {
      result.status = b.exchange.status();
      return true;
    }
    result.started = true;
    result.conversation_id = b.exchange->conversation.id;
    result.language = language.code;
    if (b.exchange->replayed) {
      result.replayed = true;
      result.message = std::move(b.exchange->assistant_message);
      result.language = result.message.language;
      return true;
    }
    return false;
  };
  if (!early) {
    if (ends_at_write(*begun)) return result;
    mark = SteadyMicros();
  }

  // 2. Retrieval and the prompt.
  rag::PromptInput prompt;
  prompt.question = request.message;
  prompt.language = language.code;
  prompt.history_budget_chars = options_.history_budget_chars;
  prompt.after_question = request.tool_turns;
  prompt.tools = request.tools;
  if (retriever_) {
    // It may wait seconds on a remote embeddings call; once the answer exists in the store
    // (`streaming`), it keeps beating (saving its heartbeat every half persist interval) so that
    // no worker takes it for an orphan.
    const auto beat = std::chrono::milliseconds(std::max(50, options_.persist_interval_ms / 2));
    while (retrieving.wait_for(beat) != std::future_status::ready) {
      Begun* b = written(false);
      if (!is_new(b)) continue;
      store::Message& answer = b->exchange->assistant_message;
      answer.updated_at = NowMillis();
      if (options_.partial_writer) {
        options_.partial_writer->Submit(answer);
      } else if (Status s = store_.SavePartial(answer); !s.ok()) {
        LogWarn("chat", "could not save the heartbeat during retrieval", {{"error", s.ToString()}});
      }
    }
    auto passages = retrieving.get();
    mark = lap(phases.retrieval_us, mark);
    result.retrieval_seconds = static_cast<double>(retrieval_took_us.load()) / 1e6;
    if (passages.ok()) {
      result.sources = std::move(*passages);
    } else {
      LogWarn("chat", "retrieval failed; answering without sources",
              {{"request_id", request.request_id}, {"error", passages.status().ToString()}});
    }
    for (const auto& p : result.sources) prompt.passages.push_back({p.title, p.text});
    prompt.grounding = llm::Grounding::kPassages;
    if (result.sources.empty() && passages.ok()) {
      auto held = retriever_->DocumentCount(request.tenant);
      prompt.grounding =
          held.ok() && *held == 0 ? llm::Grounding::kNoDocuments : llm::Grounding::kNothingFits;
    }
  }
  // The history the prompt was built with: the request's own, the write's, or the read's guess.
  bool guessed = false;
  auto set_history = [&] {
    if (request.history) {
      prompt.history.clear();
      for (const auto& turn : *request.history) prompt.history.push_back(StoredTurn(turn));
      return;
    }
    if (Begun* b = written(false); b && b->exchange.ok()) {
      prompt.history = b->exchange->history;
      guessed = false;
      return;
    }
    prompt.history = guessed_history.value_or(std::vector<store::Message>());
    guessed = true;
  };
  set_history();
  llm::ChatRequest model_request = rag::BuildPrompt(prompt);
  mark = lap(phases.prompt_us, mark);

  // 3. Stream. The answer's state exists once the write has (the first callback after it).
  std::optional<AnswerStream> stream;
  bool stale_prompt = false;
  int64_t model_called_us = -1;
  auto make_stream = [&](Begun& b) {
    store::Message& message = b.exchange->assistant_message;
    if (retriever_) message.sources_json = rag::SourcesJson(result.sources);
    stream.emplace(store_, message, observer, request, options_, started_ms, phases);
    stream->ModelCalledAt(model_called_us);
  };
  // 1: stream on; 0: the write is still running (only when !wait); -1: stop the call.
  auto ready = [&](bool wait) -> int {
    if (stream) return 1;
    Begun* b = written(wait);
    if (!b) return 0;
    if (!is_new(b)) return -1;
    if (guessed && !SameHistory(prompt.history, b->exchange->history)) {
      stale_prompt = true;
      return -1;
    }
    make_stream(*b);
    return 1;
  };
  // The model's first delta (or tool call) waits here for the write, if it is still running.
  auto first_output = [&] {
    if (stream) return 1;
    const int64_t now = SteadyMicros();
    if (phases.upstream_ttft_us < 0) phases.upstream_ttft_us = now - model_called_us;
    const int r = ready(true);
    if (phases.store_wait_us < 0) phases.store_wait_us = SteadyMicros() - now;
    return r;
  };
  llm::StreamCallbacks callbacks{
      [&](std::string_view d) { return first_output() > 0 && stream->OnDelta(d); },
      [&] {
        const int r = ready(false);
        return r == 0 || (r > 0 && stream->OnTick());
      },
      [&](const llm::ToolCallDelta& d) { return first_output() > 0 && stream->OnToolCall(d); }};
  llm::ChatOutcome outcome;
  model_called_us = SteadyMicros();
  if (!early && begun->client_left) {
    outcome.status = Status::Cancelled("the client left before the answer started");
  } else {
    outcome = model_->Stream(model_request, callbacks);
  }
  if (early) {
    if (ends_at_write(*written(true))) {
      result.model_calls_dropped = 1;
      LogInfo("chat", "a model call made beside the question's write was dropped",
              {{"request_id", request.request_id},
               {"reason", result.replayed ? "replayed" : result.status.code()}});
      return result;
    }
    if (begun->client_left) {
      outcome.status = Status::Cancelled("the client left before the answer started");
      result.model_calls_dropped = 1;
    } else if (stale_prompt) {
      result.model_calls_dropped = 1;
      LogInfo("chat", "the conversation changed before the question was saved: asking again",
              {{"request_id", request.request_id}});
      guessed = false;
      set_history();
      model_request = rag::BuildPrompt(prompt);
      phases.upstream_ttft_us = -1;
      phases.store_wait_us = -1;
      model_called_us = SteadyMicros();
      outcome = model_->Stream(model_request, callbacks);
    }
  }
  // The model may have ended (an error, an empty answer) without a callback after the write.
  if (!stream) make_stream(*begun);
  store::Message& message = begun->exchange->assistant_message;
  stream->FlushTail();

  // 4. The final state, durable before the caller sends its done event.
  message.finish_reason = outcome.finish_reason;
  message.usage = outcome.usage;
  if (!outcome.tool_calls.empty()) message.tool_calls_json = llm::ToolCallsJson(outcome.tool_calls);
  message.updated_at = NowMillis();
  if (outcome.status.ok()) {
    message.status = store::kStatusComplete;
  } else if (stream->cancel_requested()) {
    message.status = store::kStatusCancelled;
    outcome.status = Status::Cancelled("the answer was stopped by a cancel request");
  } else if (stream->aborted_by_shutdown()) {
    message.status = store::kStatusError;
    outcome.status = Status::Unavailable("shutting_down",
                                         "the worker is shutting down; the answer was cut short");
  } else if (outcome.status.kind() == ErrorKind::kCancelled) {
    message.status = store::kStatusCancelled;
  } else {
    message.status = store::kStatusError;
  }
  if (!outcome.status.ok()) {
    message.error_code = outcome.status.code();
    message.error_message = outcome.status.message();
  }
  result.client_gone = stream->client_gone() || (outcome.status.kind() == ErrorKind::kCancelled &&
                                                 !stream->cancel_requested());
  result.tokens = stream->tokens();
  result.upstream_http_status = outcome.http_status;
  result.status = outcome.status;
  if (options_.partial_writer) options_.partial_writer->Forget(message.id);
  if (Status s = store_.FinishMessage(message); s.kind() == ErrorKind::kConflict) {
    // Another party recorded a final state first (say, an orphan sweep that misjudged this
    // answer); the stored one is the truth every client sees, so report that.
    LogError(
        "chat", "the answer already had a final state; keeping it",
        {{"request_id", request.request_id}, {"message_id", message.id}, {"error", s.ToString()}});
    auto stored = store_.GetMessage(request.tenant, message.id);
    if (stored.ok()) message = std::move(*stored);
    if (result.status.ok()) {
      result.status =
          message.status == store::kStatusComplete
              ? Status::Ok()
              : Status(ErrorKind::kUnavailable,
                       message.error_code.empty() ? "already_final" : message.error_code,
                       message.error_message.empty() ? s.message() : message.error_message);
    }
  } else if (!s.ok()) {
    LogError(
        "chat", "could not save the final answer",
        {{"request_id", request.request_id}, {"message_id", message.id}, {"error", s.ToString()}});
    if (result.status.ok()) result.status = s;
    message.status = store::kStatusError;
    message.error_code = s.code();
    message.error_message = s.message();
  }
  result.message = message;
  if (request.discard_if_failed_early && !request.conversation_id && result.tokens == 0 &&
      !result.status.ok() && result.status.kind() != ErrorKind::kCancelled) {
    if (Status s = store_.DeleteConversation(request.tenant, result.conversation_id); s.ok()) {
      result.discarded = true;
    } else {
      LogWarn("chat", "could not discard an exchange that failed before its first token",
              {{"request_id", request.request_id}, {"error", s.ToString()}});
    }
  }
  return result;
}

}  // namespace ragstream::chat
