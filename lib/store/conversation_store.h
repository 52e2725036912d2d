// Conversations and their messages in the LMDB environment.
//
// Databases (every key starts with the tenant's name and '/': see tenant_key.h):
//   conversations    T/conversation id -> Conversation (JSON)
//   messages         T/conversation id + '/' + big-endian seq -> Message (JSON)
//   message_ids      T/message id -> messages key (resume and cancel find a message by id)
//   conv_by_updated  T/big-endian updated_at ms + conversation id -> "" (newest first)
//   streaming        T/message id -> messages key, for every answer still `streaming`
//                    (orphans; and a tenant's concurrent streams are its range's size)
//   cancel_requests  T/message id -> "" when any worker was asked to stop that answer
//   client_ids       T/conversation id (or "" for a new one) + 0x1f + client_message_id ->
//                    the answer's message id (idempotent sends)
//
// Every method that takes an id takes the tenant too, and finds only that tenant's records:
// another tenant's id is NotFound exactly like an unknown one. Every method runs in its own
// short transaction and is safe to call from any thread of any worker process sharing the
// environment. Writes are durable when they return Ok.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/idempotency.h"
#include "lib/store/live_answers.h"
#include "lib/store/lmdb.h"
#include "lib/store/message_state.h"

namespace ragstream::store {

struct Usage {
  bool present = false;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total_tokens = 0;
};

// Message statuses. "streaming" is the only non-terminal one.
inline constexpr const char* kStatusStreaming = "streaming";
inline constexpr const char* kStatusComplete = "complete";
inline constexpr const char* kStatusError = "error";
inline constexpr const char* kStatusCancelled = "cancelled";
inline constexpr const char* kStatusInterrupted = "interrupted";  // its worker died

struct Message {
  std::string tenant;  // part of the key, not of the stored value
  std::string id;
  std::string conversation_id;
  uint64_t seq = 0;
  std::string role;  // "user" | "assistant" | "tool"
  std::string content;
  // An answer that asked for tools: OpenAI's `tool_calls` array, as JSON ("" for none).
  std::string tool_calls_json;
  std::string tool_call_id;  // a tool turn: the call it answers
  std::string status;
  std::string language;
  std::string finish_reason;
  std::string error_code;
  std::string error_message;
  std::string sources_json = "[]";  // a JSON array of sources, stored as given
  // Byte offset in `content` where each streamed token event ended: event i (1-based) is
  // content[token_ends[i-2] or 0, token_ends[i-1]), so a resumed stream replays the same
  // events with the same ids.
  std::vector<uint32_t> token_ends;
  Usage usage;
  int64_t ttft_ms = -1;
  int64_t created_at = 0;
  int64_t updated_at = 0;  // also the streaming heartbeat
};

struct Conversation {
  std::string tenant;  // part of the key, not of the stored value
  std::string id;
  std::string title;
  std::string language;  // language of the last question ("" before the first)
  int64_t created_at = 0;
  int64_t updated_at = 0;
  uint64_t message_count = 0;
  uint64_t next_seq = 0;
};

struct ConversationPage {
  std::vector<Conversation> conversations;
  std::string next_cursor;  // "" when there is no further page
};

struct BeginExchangeInput {
  std::optional<std::string> conversation_id;  // nullopt: create a new conversation
  std::string user_text;
  std::string language;
  size_t history_budget_chars = 8000;
  // The tenant's answers that may be streaming at once (0: no limit). Counted inside the
  // write transaction, so concurrent sends on any worker cannot overshoot it.
  size_t max_concurrent_streams = 0;
  // For an idempotent send: what identifies the request (store::RequestFingerprint of its
  // parts), and how long its key lasts.
  std::string fingerprint = {};
  int64_t idempotency_ttl_ms = 24 * 3600 * 1000;
  // The client's tool round trip since its question, stored between the question and the
  // answer (assistant turns with tool_calls_json, tool turns with tool_call_id).
  std::vector<Message> tool_turns = {};
};

// What BeginExchange would most likely do, read without the write lock: lets a send start
// work that needs the exchange's history (the model call) while the write waits for the lock.
// A guess: a write in between can change any of it; BeginExchange's own result is the truth.
struct ExchangePreview {
  // No reason seen to refuse or replay: the store takes writes (no standby), the conversation
  // exists (or is new), the tenant is below its stream limit, the client_message_id (if any)
  // is unknown.
  bool new_exchange = false;
  std::vector<Message> history;  // as BeginExchange would load it now
};

struct Exchange {
  Conversation conversation;
  Message user_message;
  Message assistant_message;     // status "streaming", empty content
  std::vector<Message> history;  // earlier messages within the budget, oldest first
  // True when client_message_id matched an earlier send: nothing was written, and
  // `assistant_message` is that send's answer as stored now (maybe still streaming).
  bool replayed = false;
};

class ConversationStore {
 public:
  // The database names this store needs in Env::Options::databases.
  static std::vector<std::string> Databases();

  explicit ConversationStore(const Env& env);

  // One transaction: creates or loads the conversation, appends the user message
  // (complete) and the assistant message (streaming). NotFound if the id is unknown;
  // RateLimited (too_many_streams) when the tenant already streams its maximum.
  // `client_message_id` (optional) makes the send idempotent (idempotency.h): a retry with
  // the same id and the same request (input.fingerprint) within the key's time to live
  // writes nothing and returns the earlier exchange with `replayed` set; the same id with a
  // different request is Conflict (idempotency_key_reused) and writes nothing.
  Result<Exchange> BeginExchange(std::string_view tenant, const BeginExchangeInput& input,
                                 std::string_view client_message_id = {});
  // BeginExchange's likely outcome and history, from one read transaction (see ExchangePreview).
  Result<ExchangePreview> PreviewExchange(std::string_view tenant, const BeginExchangeInput& input,
                                          std::string_view client_message_id = {}) const;

  // The methods taking a Message find it by its tenant, conversation and seq.
  // Saves partial content of a streaming message and refreshes its heartbeat; skipped (Ok)
  // when the stored message is no longer streaming or was deleted with its conversation.
  Status SavePartial(const Message& message);
  // Saves the partial content of many streaming messages in one transaction (one fsync).
  // A message whose stored status is no longer `streaming` (it finished meanwhile) or that
  // no longer exists is skipped, so a late batch never overwrites a final state.
  Status SavePartials(const std::vector<Message>& messages);
  // Saves the final state of a message (status, content, usage, ...) and touches the
  // conversation's updated_at. Durable when it returns Ok. A message already in a final
  // state (complete, error, cancelled, interrupted) is never overwritten: Conflict
  // ("already_final") and nothing is written.
  Status FinishMessage(const Message& message);

  // Asks whichever worker streams `message_id` to stop it (a flag it polls). Returns the
  // message as stored; its status says whether it was still running. NotFound if unknown.
  Result<Message> RequestCancel(std::string_view tenant, const std::string& message_id);
  // Whether RequestCancel was called for a message that is still streaming.
  Result<bool> CancelRequested(std::string_view tenant, const std::string& message_id) const;
  // Deletes up to `max_rows` idempotency keys older than `ttl_ms` (the sweeper calls it).
  Result<size_t> ExpireIdempotencyKeys(int64_t ttl_ms, size_t max_rows = 1000);
  // How many of the tenant's answers are streaming now (on any worker).
  Result<size_t> StreamingCount(std::string_view tenant) const;

  // Marks `interrupted` every answer still `streaming` whose heartbeat (updated_at, refreshed
  // by partial saves) is older than `max_age_ms`: its worker died. Returns how many. Cheap
  // when there is nothing to do (a read transaction). Covers every tenant.
  Result<int> MarkOrphans(int64_t max_age_ms);

  Result<Conversation> GetConversation(std::string_view tenant, const std::string& id) const;
  Result<std::vector<Message>> ListMessages(std::string_view tenant,
                                            const std::string& conversation_id) const;
  Result<Message> GetMessage(std::string_view tenant, const std::string& message_id) const;
  // Where an answer stands, from its small stream-state record alone (status, heartbeat,
  // bytes saved), without reading its content: what a follower polls. For a finished answer
  // (or one of the old layout) the record's status, time and length. NotFound if unknown.
  Result<StreamState> Progress(std::string_view tenant, const std::string& message_id) const;
  // The tenant's conversations, newest first. `cursor` is the next_cursor of the previous
  // page ("" for the first).
  Result<ConversationPage> ListConversations(std::string_view tenant, size_t limit,
                                             const std::string& cursor) const;
  Result<Conversation> RenameConversation(std::string_view tenant, const std::string& id,
                                          const std::string& title);
  // Deletes the conversation and all its messages. NotFound if unknown.
  Status DeleteConversation(std::string_view tenant, const std::string& id);

 private:
  // A streaming message read from its record gets its saved content and heartbeat from its
  // stream state (message_state.h); any other is returned as it is.
  Status Materialize(const Txn& txn, Message& m) const;
  // The conversation's latest messages with content, oldest first, within budget_chars.
  Result<std::vector<Message>> LoadHistory(const Txn& txn, const Conversation& conversation,
                                           size_t budget_chars) const;
  Status SavePartialsOnce(const std::vector<Message>& messages);
  Status FinishMessageOnce(const Message& message);
  Status PutConversation(Txn& txn, const Conversation& c, int64_t old_updated_at);
  Status PutMessage(Txn& txn, const Message& m);

  const Env& env_;
  MDB_dbi conversations_, messages_, message_ids_, by_updated_, client_ids_;
  LiveAnswers live_;
  IdempotencyKeys idempotency_;
  MessageStates states_;
};

// JSON encodings used for storage (exposed for tests and for the handlers' responses).
std::string EncodeMessage(const Message& m);
bool DecodeMessage(std::string_view json, Message& m);
std::string EncodeConversation(const Conversation& c);
bool DecodeConversation(std::string_view json, Conversation& c);

}  // namespace ragstream::store
