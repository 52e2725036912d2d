#include "lib/store/conversation_store.h"

#include <algorithm>

#include "lib/core/hex.h"
#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/core/utf8.h"
#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

constexpr const char* kConversations = "conversations";
constexpr const char* kMessages = "messages";
constexpr const char* kMessageIds = "message_ids";
constexpr const char* kByUpdated = "conv_by_updated";
constexpr const char* kClientIds = "client_ids";
constexpr size_t kTitleChars = 80;

std::string MessagePrefix(std::string_view tenant, std::string_view conversation_id) {
  return TenantKey(tenant, conversation_id) + "/";
}
std::string MessageKey(std::string_view tenant, std::string_view conversation_id, uint64_t seq) {
  return MessagePrefix(tenant, conversation_id) + EncodeBigEndian64(seq);
}
std::string MessageKey(const Message& m) {
  return MessageKey(m.tenant, m.conversation_id, m.seq);
}
std::string UpdatedKey(std::string_view tenant, int64_t updated_at, const std::string& id) {
  return TenantKey(tenant, EncodeBigEndian64(static_cast<uint64_t>(updated_at)) + id);
}

std::string TitleFrom(std::string_view text) {
  std::string title;
  for (char c : Utf8PrefixChars(text, kTitleChars)) {
    title.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  }
  return title;
}

std::string Str(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it != obj.MemberEnd() && it->value.IsString() ? std::string(AsView(it->value))
                                                       : std::string();
}
int64_t Int(const rapidjson::Value& obj, const char* name, int64_t fallback = 0) {
  auto it = obj.FindMember(name);
  return it != obj.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : fallback;
}

}  // namespace

std::string EncodeMessage(const Message& m) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("id");
  WriteString(w, m.id);
  w.Key("conversation_id");
  WriteString(w, m.conversation_id);
  w.Key("seq");
  w.Uint64(m.seq);
  w.Key("role");
  WriteString(w, m.role);
  w.Key("content");
  WriteString(w, m.content);
  WriteToolFields(w, m.tool_calls_json, m.tool_call_id);
  w.Key("status");
  WriteString(w, m.status);
  w.Key("language");
  WriteString(w, m.language);
  w.Key("finish_reason");
  WriteString(w, m.finish_reason);
  w.Key("error_code");
  WriteString(w, m.error_code);
  w.Key("error_message");
  WriteString(w, m.error_message);
  w.Key("sources");
  w.RawValue(m.sources_json.data(), m.sources_json.size(), rapidjson::kArrayType);
  w.Key("token_ends");
  w.StartArray();
  for (uint32_t end : m.token_ends) w.Uint(end);
  w.EndArray();
  w.Key("usage_present");
  w.Bool(m.usage.present);
  w.Key("prompt_tokens");
  w.Int64(m.usage.prompt_tokens);
  w.Key("completion_tokens");
  w.Int64(m.usage.completion_tokens);
  w.Key("total_tokens");
  w.Int64(m.usage.total_tokens);
  w.Key("ttft_ms");
  w.Int64(m.ttft_ms);
  w.Key("created_at");
  w.Int64(m.created_at);
  w.Key("updated_at");
  w.Int64(m.updated_at);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

bool DecodeMessage(std::string_view json, Message& m) {
  rapidjson::Document d;
  // Full precision so stored source scores read back exactly as they were sent (our own
  // records only: the full-precision path is not used on untrusted input).
  d.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  m.id = Str(d, "id");
  m.conversation_id = Str(d, "conversation_id");
  m.seq = static_cast<uint64_t>(Int(d, "seq"));
  m.role = Str(d, "role");
  m.content = Str(d, "content");
  m.tool_calls_json.clear();
  if (auto calls = d.FindMember("tool_calls"); calls != d.MemberEnd() && calls->value.IsArray()) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    calls->value.Accept(w);
    m.tool_calls_json.assign(buf.GetString(), buf.GetSize());
  }
  m.tool_call_id = Str(d, "tool_call_id");
  m.status = Str(d, "status");
  m.language = Str(d, "language");
  m.finish_reason = Str(d, "finish_reason");
  m.error_code = Str(d, "error_code");
  m.error_message = Str(d, "error_message");
  auto src = d.FindMember("sources");
  if (src != d.MemberEnd() && src->value.IsArray()) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    src->value.Accept(w);
    m.sources_json.assign(buf.GetString(), buf.GetSize());
  }
  m.token_ends.clear();
  if (auto ends = d.FindMember("token_ends"); ends != d.MemberEnd() && ends->value.IsArray()) {
    for (const auto& e : ends->value.GetArray()) {
      if (e.IsUint() && e.GetUint() <= m.content.size()) m.token_ends.push_back(e.GetUint());
    }
  }
  auto up = d.FindMember("usage_present");
  m.usage.present = up != d.MemberEnd() && up->value.IsBool() && up->value.GetBool();
  m.usage.prompt_tokens = Int(d, "prompt_tokens");
  m.usage.completion_tokens = Int(d, "completion_tokens");
  m.usage.total_tokens = Int(d, "total_tokens");
  m.ttft_ms = Int(d, "ttft_ms", -1);
  m.created_at = Int(d, "created_at");
  m.updated_at = Int(d, "updated_at");
  return true;
}

std::string EncodeConversation(const Conversation& c) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("id");
  WriteString(w, c.id);
  w.Key("title");
  WriteString(w, c.title);
  w.Key("language");
  WriteString(w, c.language);
  w.Key("created_at");
  w.Int64(c.created_at);
  w.Key("updated_at");
  w.Int64(c.updated_at);
  w.Key("message_count");
  w.Uint64(c.message_count);
  w.Key("next_seq");
  w.Uint64(c.next_seq);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

bool DecodeConversation(std::string_view json, Conversation& c) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  c.id = Str(d, "id");
  c.title = Str(d, "title");
  c.language = Str(d, "language");
  c.created_at = Int(d, "created_at");
  c.updated_at = Int(d, "updated_at");
  c.message_count = static_cast<uint64_t>(Int(d, "message_count"));
  c.next_seq = static_cast<uint64_t>(Int(d, "next_seq"));
  return true;
}

std::vector<std::string> ConversationStore::Databases() {
  std::vector<std::string> names = {kConversations, kMessages, kMessageIds, kByUpdated, kClientIds};
  for (auto& n : LiveAnswers::Databases()) names.push_back(n);
  for (auto& n : MessageStates::Databases()) names.push_back(n);
  return names;
}

ConversationStore::ConversationStore(const Env& env)
    : env_(env),
      conversations_(env.Dbi(kConversations)),
      messages_(env.Dbi(kMessages)),
      message_ids_(env.Dbi(kMessageIds)),
      by_updated_(env.Dbi(kByUpdated)),
      client_ids_(env.Dbi(kClientIds)),
      live_(env),
      idempotency_(client_ids_),
      states_(env) {}

Status ConversationStore::Materialize(const Txn& txn, Message& m) const {
  if (m.status != kStatusStreaming) return Status::Ok();
  auto state = states_.Get(txn, MessageKey(m));
  if (!state.ok()) return state.status();
  if (!state->has_value()) return Status::Ok();  // the old layout: the record is whole
  m.updated_at = (*state)->updated_at;
  return states_.Read(txn, MessageKey(m), m.content, m.token_ends);
}

namespace {
Result<Conversation> LoadConversation(const Txn& txn, MDB_dbi dbi, std::string_view tenant,
                                      const std::string& id) {
  auto raw = txn.Get(dbi, TenantKey(tenant, id));
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return Status::NotFound("conversation " + id + " not found");
  Conversation c;
  if (!DecodeConversation(**raw, c)) return Status::Internal("corrupt conversation record " + id);
  c.tenant = tenant;
  return c;
}

// The message a messages key points at, with its tenant set; nullopt if absent or corrupt.
Result<std::optional<Message>> LoadMessage(const Txn& txn, MDB_dbi dbi, std::string_view tenant,
                                           std::string_view key) {
  auto raw = txn.Get(dbi, key);
  if (!raw.ok()) return raw.status();
  Message m;
  if (!raw->has_value() || !DecodeMessage(**raw, m)) return std::optional<Message>();
  m.tenant = tenant;
  return std::optional<Message>(std::move(m));
}
}  // namespace

Status ConversationStore::PutConversation(Txn& txn, const Conversation& c, int64_t old_updated_at) {
  if (old_updated_at >= 0) {
    if (Status s = txn.Del(by_updated_, UpdatedKey(c.tenant, old_updated_at, c.id)); !s.ok()) {
      return s;
    }
  }
  if (Status s = txn.Put(by_updated_, UpdatedKey(c.tenant, c.updated_at, c.id), ""); !s.ok()) {
    return s;
  }
  return txn.Put(conversations_, TenantKey(c.tenant, c.id), EncodeConversation(c));
}

Status ConversationStore::PutMessage(Txn& txn, const Message& m) {
  return txn.Put(messages_, MessageKey(m), EncodeMessage(m));
}

namespace {}  // namespace

Result<std::vector<Message>> ConversationStore::LoadHistory(const Txn& txn,
                                                            const Conversation& conversation,
                                                            size_t budget_chars) const {
  // Earlier messages, newest backwards, until the budget is spent.
  std::vector<Message> history;
  auto cur = Cursor::Open(txn, messages_);
  if (!cur.ok()) return cur.status();
  const std::string& tenant = conversation.tenant;
  const std::string prefix = MessagePrefix(tenant, conversation.id);
  size_t used = 0;
  bool positioned = cur->SeekAtLeast(MessageKey(tenant, conversation.id, conversation.next_seq));
  bool have = positioned ? cur->Prev() : cur->Last();
  for (; have && HasPrefix(cur->key(), prefix); have = cur->Prev()) {
    Message m;
    if (!DecodeMessage(cur->value(), m)) continue;
    if (m.content.empty()) continue;
    m.tenant = tenant;
    const size_t chars = Utf8Length(m.content);
    if (used + chars > budget_chars) break;
    used += chars;
    history.push_back(std::move(m));
  }
  std::reverse(history.begin(), history.end());
  return history;
}

Result<ExchangePreview> ConversationStore::PreviewExchange(
    std::string_view tenant, const BeginExchangeInput& input,
    std::string_view client_message_id) const {
  ExchangePreview preview;
  // A standby, or a primary that lost its place in its shard's log, refuses every write.
  if (!env_.WritesRefused().ok()) return preview;
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  if (!client_message_id.empty()) {
    auto earlier =
        idempotency_.Find(*txn, tenant, client_message_id, NowMillis(), input.idempotency_ttl_ms);
    if (!earlier.ok()) return earlier.status();
    if (earlier->has_value()) return preview;
  }
  if (input.conversation_id) {
    auto c = LoadConversation(*txn, conversations_, tenant, *input.conversation_id);
    if (!c.ok()) return preview;
    auto history = LoadHistory(*txn, *c, input.history_budget_chars);
    if (!history.ok()) return history.status();
    preview.history = std::move(*history);
  }
  if (input.max_concurrent_streams > 0) {
    auto live = live_.Count(*txn, tenant);
    if (!live.ok()) return live.status();
    if (*live >= input.max_concurrent_streams) return preview;
  }
  preview.new_exchange = true;
  return preview;
}

Result<Exchange> ConversationStore::BeginExchange(std::string_view tenant,
                                                  const BeginExchangeInput& input,
                                                  std::string_view client_message_id) {
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  int64_t now = NowMillis();
  Exchange ex;
  // Checked inside the write transaction: two concurrent retries make one exchange.
  if (!client_message_id.empty()) {
    auto earlier =
        idempotency_.Find(*txn, tenant, client_message_id, now, input.idempotency_ttl_ms);
    if (!earlier.ok()) return earlier.status();
    if (earlier->has_value()) {
      const IdempotencyRecord& r = **earlier;
      if (r.fingerprint != input.fingerprint) {
        return Status(ErrorKind::kConflict, "idempotency_key_reused",
                      "client_message_id '" + std::string(client_message_id) +
                          "' was first used with a different request; use a new id for a new "
                          "message");
      }
      auto key = txn->Get(message_ids_, TenantKey(tenant, r.message_id));
      if (!key.ok()) return key.status();
      if (key->has_value()) {
        auto answer = LoadMessage(*txn, messages_, tenant, **key);
        if (!answer.ok()) return answer.status();
        if (answer->has_value()) {
          auto c = LoadConversation(*txn, conversations_, tenant, (*answer)->conversation_id);
          if (c.ok()) {
            ex.conversation = std::move(*c);
            ex.assistant_message = std::move(**answer);
            if (Status s = Materialize(*txn, ex.assistant_message); !s.ok()) return s;
            ex.replayed = true;
            return ex;
          }
        }
      }
      // The earlier exchange was deleted: this send is a new one.
    }
  }
  int64_t old_updated_at = -1;
  if (input.conversation_id) {
    auto c = LoadConversation(*txn, conversations_, tenant, *input.conversation_id);
    if (!c.ok()) return c.status();
    ex.conversation = std::move(*c);
    old_updated_at = ex.conversation.updated_at;
    auto history = LoadHistory(*txn, ex.conversation, input.history_budget_chars);
    if (!history.ok()) return history.status();
    ex.history = std::move(*history);
  } else {
    ex.conversation.tenant = tenant;
    ex.conversation.id = NewId("conv_");
    ex.conversation.title = TitleFrom(input.user_text);
    ex.conversation.created_at = now;
  }
  if (input.max_concurrent_streams > 0) {
    auto live = live_.Count(*txn, tenant);
    if (!live.ok()) return live.status();
    if (*live >= input.max_concurrent_streams) {
      return Status(ErrorKind::kRateLimited, "too_many_streams",
                    "this API key's tenant already has " +
                        std::to_string(input.max_concurrent_streams) +
                        " answers streaming (RAGSTREAM_MAX_STREAMS_PER_TENANT); retry when one "
                        "finishes");
    }
  }
  Conversation& c = ex.conversation;
  c.updated_at = std::max(now, c.updated_at);
  c.language = input.language;

  auto make = [&](const char* role, const char* status, std::string content) {
    Message m;
    m.tenant = tenant;
    m.id = NewId("msg_");
    m.conversation_id = c.id;
    m.seq = c.next_seq++;
    m.role = role;
    m.status = status;
    m.content = std::move(content);
    m.language = input.language;
    m.created_at = m.updated_at = now;
    c.message_count++;
    return m;
  };
  ex.user_message = make("user", kStatusComplete, input.user_text);
  std::vector<Message> turns;
  for (const Message& t : input.tool_turns) {
    Message m = make(t.role == "tool" ? "tool" : "assistant", kStatusComplete, t.content);
    m.tool_calls_json = t.tool_calls_json;
    m.tool_call_id = t.tool_call_id;
    turns.push_back(std::move(m));
  }
  ex.assistant_message = make("assistant", kStatusStreaming, "");
  std::vector<const Message*> written{&ex.user_message};
  for (const Message& t : turns) written.push_back(&t);
  written.push_back(&ex.assistant_message);
  for (const Message* m : written) {
    if (Status s = PutMessage(*txn, *m); !s.ok()) return s;
    if (Status s = txn->Put(message_ids_, TenantKey(tenant, m->id), MessageKey(*m)); !s.ok()) {
      return s;
    }
  }
  {
    StreamState fresh;
    fresh.updated_at = now;
    if (Status s = states_.Put(*txn, MessageKey(ex.assistant_message), fresh); !s.ok()) return s;
  }
  if (!client_message_id.empty()) {
    IdempotencyRecord r{ex.assistant_message.id, c.id, input.fingerprint, now};
    if (Status s = idempotency_.Put(*txn, tenant, client_message_id, r); !s.ok()) return s;
  }
  if (Status s = live_.Add(*txn, tenant, ex.assistant_message.id, MessageKey(ex.assistant_message));
      !s.ok()) {
    return s;
  }
  if (Status s = PutConversation(*txn, c, old_updated_at); !s.ok()) return s;
  if (Status s = txn->Commit(); !s.ok()) return s;
  return ex;
}

Status ConversationStore::SavePartial(const Message& message) {
  return SavePartials({message});
}

Status ConversationStore::SavePartials(const std::vector<Message>& messages) {
  Status s = SavePartialsOnce(messages);
  // An answer's saves are the last thing to fail: grow the map and try again.
  if (s.kind() == ErrorKind::kStoreFull && env_.Grow().ok()) s = SavePartialsOnce(messages);
  return s;
}

Status ConversationStore::SavePartialsOnce(const std::vector<Message>& messages) {
  if (messages.empty()) return Status::Ok();
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  for (const Message& m : messages) {
    const std::string key = MessageKey(m);
    auto state = states_.Get(*txn, key);
    if (!state.ok()) return state.status();
    if (state->has_value()) {
      // Only what arrived since the last save, and the small record.
      StreamState& st = **state;
      if (st.status != kStatusStreaming) continue;
      if (Status s = states_.Append(*txn, key, st, m.content, m.token_ends); !s.ok()) return s;
      st.updated_at = m.updated_at;
      if (Status s = states_.Put(*txn, key, st); !s.ok()) return s;
      continue;
    }
    // A message of the old layout (no stream state): saved whole, as before.
    auto current = txn->Get(messages_, key);
    if (!current.ok()) return current.status();
    Message stored;
    if (!current->has_value() || !DecodeMessage(**current, stored) ||
        stored.status != kStatusStreaming || stored.id != m.id) {
      continue;
    }
    if (Status s = PutMessage(*txn, m); !s.ok()) return s;
  }
  return txn->Commit();
}

Status ConversationStore::FinishMessage(const Message& message) {
  Status s = FinishMessageOnce(message);
  if (s.kind() == ErrorKind::kStoreFull && env_.Grow().ok()) s = FinishMessageOnce(message);
  return s;
}

Status ConversationStore::FinishMessageOnce(const Message& message) {
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  auto c = LoadConversation(*txn, conversations_, message.tenant, message.conversation_id);
  if (!c.ok()) {
    // The conversation was deleted while the answer streamed: nothing to save it into.
    return c.status();
  }
  // A terminal state is final, whoever tries to change it (a late stream after an orphan
  // sweep, a second finish): the first one recorded stays.
  auto current = txn->Get(messages_, MessageKey(message));
  if (!current.ok()) return current.status();
  Message stored;
  if (current->has_value() && DecodeMessage(**current, stored) &&
      stored.status != kStatusStreaming) {
    return Status(ErrorKind::kConflict, "already_final",
                  "message " + message.id + " already ended as " + stored.status +
                      "; a final state is never overwritten");
  }
  if (Status s = PutMessage(*txn, message); !s.ok()) return s;
  // The record now holds the whole answer: its stream state and deltas go.
  if (Status s = states_.Erase(*txn, MessageKey(message)); !s.ok()) return s;
  if (message.status != kStatusStreaming) {
    if (Status s = live_.Remove(*txn, TenantKey(message.tenant, message.id)); !s.ok()) return s;
  }
  int64_t old = c->updated_at;
  c->updated_at = std::max(NowMillis(), old);
  if (Status s = PutConversation(*txn, *c, old); !s.ok()) return s;
  return txn->Commit();
}

namespace {
Result<Message> FindMessage(const Txn& txn, MDB_dbi message_ids, MDB_dbi messages,
                            std::string_view tenant, const std::string& message_id) {
  auto key = txn.Get(message_ids, TenantKey(tenant, message_id));
  if (!key.ok()) return key.status();
  if (!key->has_value()) return Status::NotFound("message " + message_id + " not found");
  auto m = LoadMessage(txn, messages, tenant, **key);
  if (!m.ok()) return m.status();
  if (!m->has_value()) return Status::NotFound("message " + message_id + " not found");
  return std::move(**m);
}
}  // namespace

Result<Message> ConversationStore::RequestCancel(std::string_view tenant,
                                                 const std::string& message_id) {
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  auto m = FindMessage(*txn, message_ids_, messages_, tenant, message_id);
  if (!m.ok()) return m.status();
  // Whether it still runs is the small stream-state record's to say (the record's own status
  // for a finished answer or one of the old layout).
  auto state = states_.Get(*txn, MessageKey(*m));
  if (!state.ok()) return state.status();
  if (state->has_value()) m->status = (*state)->status;
  if (m->status != kStatusStreaming) return m;  // already finished: nothing to stop
  if (Status s = live_.AskToStop(*txn, tenant, message_id); !s.ok()) return s;
  if (Status s = txn->Commit(); !s.ok()) return s;
  return m;
}

Result<bool> ConversationStore::CancelRequested(std::string_view tenant,
                                                const std::string& message_id) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  return live_.StopAsked(*txn, tenant, message_id);
}

Result<size_t> ConversationStore::ExpireIdempotencyKeys(int64_t ttl_ms, size_t max_rows) {
  auto txn = Txn::BeginBulkWrite(env_);
  if (!txn.ok()) return txn.status();
  auto n = idempotency_.Expire(*txn, NowMillis(), ttl_ms, max_rows);
  if (!n.ok()) return n.status();
  if (*n == 0) return n;  // nothing written: the transaction aborts
  if (Status s = txn->Commit(); !s.ok()) return s;
  return n;
}

Result<size_t> ConversationStore::StreamingCount(std::string_view tenant) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  return live_.Count(*txn, tenant);
}

Result<int> ConversationStore::MarkOrphans(int64_t max_age_ms) {
  const int64_t cutoff = NowMillis() - max_age_ms;
  // First look without writing: most of the time nothing is stale.
  std::vector<std::string> stale;
  {
    auto txn = Txn::BeginRead(env_);
    if (!txn.ok()) return txn.status();
    auto live = live_.All(*txn);
    if (!live.ok()) return live.status();
    for (const auto& [id_key, message_key] : *live) {
      auto raw = txn->Get(messages_, message_key);
      if (!raw.ok()) return raw.status();
      Message m;
      if (!raw->has_value() || !DecodeMessage(**raw, m) || m.status != kStatusStreaming) {
        stale.push_back(id_key);
        continue;
      }
      // The heartbeat is in the stream state (the record's for the old layout).
      auto state = states_.Get(*txn, message_key);
      if (!state.ok()) return state.status();
      const int64_t beat = state->has_value() ? (*state)->updated_at : m.updated_at;
      if (beat < cutoff) stale.push_back(id_key);
    }
  }
  if (stale.empty()) return 0;
  auto txn = Txn::BeginBulkWrite(env_);
  if (!txn.ok()) return txn.status();
  int marked = 0;
  for (const std::string& id : stale) {
    auto key = live_.KeyOf(*txn, id);
    if (!key.ok()) return key.status();
    if (!key->has_value()) continue;  // finished meanwhile
    const std::string message_key = **key;
    auto raw = txn->Get(messages_, message_key);
    if (!raw.ok()) return raw.status();
    Message m;
    bool present = raw->has_value() && DecodeMessage(**raw, m);
    // Re-checked inside the write transaction: a heartbeat may have arrived since.
    if (present && m.status == kStatusStreaming) {
      m.tenant = id.substr(0, id.find('/'));
      if (Status s = Materialize(*txn, m); !s.ok()) return s;  // what was saved, whole
      if (m.updated_at >= cutoff) continue;
      if (Status s = states_.Erase(*txn, message_key); !s.ok()) return s;
      m.status = kStatusInterrupted;
      m.error_code = "interrupted";
      m.error_message = "the worker generating this answer stopped before finishing it";
      m.updated_at = NowMillis();
      if (Status s = txn->Put(messages_, message_key, EncodeMessage(m)); !s.ok()) return s;
      ++marked;
    }
    if (Status s = live_.Remove(*txn, id); !s.ok()) return s;
  }
  if (Status s = txn->Commit(); !s.ok()) return s;
  return marked;
}

Result<Conversation> ConversationStore::GetConversation(std::string_view tenant,
                                                        const std::string& id) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  return LoadConversation(*txn, conversations_, tenant, id);
}

Result<std::vector<Message>> ConversationStore::ListMessages(
    std::string_view tenant, const std::string& conversation_id) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto c = LoadConversation(*txn, conversations_, tenant, conversation_id);
  if (!c.ok()) return c.status();
  auto cur = Cursor::Open(*txn, messages_);
  if (!cur.ok()) return cur.status();
  std::vector<Message> out;
  const std::string prefix = MessagePrefix(tenant, conversation_id);
  for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
       have = cur->Next()) {
    Message m;
    if (DecodeMessage(cur->value(), m)) {
      m.tenant = tenant;
      out.push_back(std::move(m));
    }
  }
  for (Message& m : out) {
    if (Status s = Materialize(*txn, m); !s.ok()) return s;
  }
  return out;
}

Result<Message> ConversationStore::GetMessage(std::string_view tenant,
                                              const std::string& message_id) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto m = FindMessage(*txn, message_ids_, messages_, tenant, message_id);
  if (!m.ok()) return m;
  if (Status s = Materialize(*txn, *m); !s.ok()) return s;
  return m;
}

Result<StreamState> ConversationStore::Progress(std::string_view tenant,
                                                const std::string& message_id) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto key = txn->Get(message_ids_, TenantKey(tenant, message_id));
  if (!key.ok()) return key.status();
  if (!key->has_value()) return Status::NotFound("message " + message_id + " not found");
  auto state = states_.Get(*txn, **key);
  if (!state.ok()) return state.status();
  if (state->has_value()) return std::move(**state);
  auto m = LoadMessage(*txn, messages_, tenant, **key);
  if (!m.ok()) return m.status();
  if (!m->has_value()) return Status::NotFound("message " + message_id + " not found");
  StreamState st;
  st.status = (*m)->status;
  st.updated_at = (*m)->updated_at;
  st.length = static_cast<uint32_t>((*m)->content.size());
  st.tokens = static_cast<uint32_t>((*m)->token_ends.size());
  return st;
}

Result<ConversationPage> ConversationStore::ListConversations(std::string_view tenant, size_t limit,
                                                              const std::string& cursor) const {
  if (limit == 0) return ConversationPage{};
  std::string start;
  if (!cursor.empty() && !HexDecode(cursor, start)) {
    return Status::InvalidArgument("invalid_cursor", "cursor is not one this server returned");
  }
  // The tenant's range of conv_by_updated: [prefix, prefix + 0xff...).
  const std::string prefix = TenantPrefix(tenant);
  const std::string end = TenantKey(tenant, std::string(9, '\xff'));
  if (!start.empty()) start = prefix + start;
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto cur = Cursor::Open(*txn, by_updated_);
  if (!cur.ok()) return cur.status();
  ConversationPage page;
  // Entries strictly older than the cursor (or than the range's end): seek, then step back.
  const std::string& bound = start.empty() ? end : start;
  bool have = cur->SeekAtLeast(bound) ? cur->Prev() : cur->Last();
  while (have && cur->key() >= bound) have = cur->Prev();
  for (; have && HasPrefix(cur->key(), prefix); have = cur->Prev()) {
    if (page.conversations.size() == limit) {
      page.next_cursor =
          HexEncode(EncodeBigEndian64(static_cast<uint64_t>(page.conversations.back().updated_at)) +
                    page.conversations.back().id);
      break;
    }
    std::string id(cur->key().substr(prefix.size() + 8));
    auto c = LoadConversation(*txn, conversations_, tenant, id);
    if (c.ok()) page.conversations.push_back(std::move(*c));
  }
  return page;
}

Result<Conversation> ConversationStore::RenameConversation(std::string_view tenant,
                                                           const std::string& id,
                                                           const std::string& title) {
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  auto c = LoadConversation(*txn, conversations_, tenant, id);
  if (!c.ok()) return c.status();
  int64_t old = c->updated_at;
  c->title = title;
  c->updated_at = std::max(NowMillis(), old);
  if (Status s = PutConversation(*txn, *c, old); !s.ok()) return s;
  if (Status s = txn->Commit(); !s.ok()) return s;
  return c;
}

Status ConversationStore::DeleteConversation(std::string_view tenant, const std::string& id) {
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  auto c = LoadConversation(*txn, conversations_, tenant, id);
  if (!c.ok()) return c.status();
  {
    auto cur = Cursor::Open(*txn, messages_);
    if (!cur.ok()) return cur.status();
    const std::string prefix = MessagePrefix(tenant, id);
    std::vector<std::string> message_ids;
    for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
         have = cur->Next()) {
      Message m;
      if (DecodeMessage(cur->value(), m)) message_ids.push_back(m.id);
    }
    for (const auto& mid : message_ids) {
      const std::string id_key = TenantKey(tenant, mid);
      if (Status s = txn->Del(message_ids_, id_key); !s.ok()) return s;
      if (Status s = live_.Remove(*txn, id_key); !s.ok()) return s;
    }
    // Delete the message range; MDB_SET_RANGE after each delete keeps the cursor valid.
    while (cur->SeekAtLeast(prefix) && HasPrefix(cur->key(), prefix)) {
      if (Status s = cur->DelCurrent(); !s.ok()) return s;
    }
  }
  if (Status s = idempotency_.DeleteForConversation(*txn, tenant, id); !s.ok()) return s;
  if (Status s = states_.ErasePrefix(*txn, MessagePrefix(tenant, id)); !s.ok()) return s;
  if (Status s = txn->Del(by_updated_, UpdatedKey(tenant, c->updated_at, id)); !s.ok()) return s;
  if (Status s = txn->Del(conversations_, TenantKey(tenant, id)); !s.ok()) return s;
  return txn->Commit();
}

}  // namespace ragstream::store
