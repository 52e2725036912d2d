#include "handlers/chat_handler.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <thread>

#include "handlers/chat_request.h"
#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/fcgi/sse_writer.h"

namespace ragstream::handlers {
namespace {

void WriteErrorObject(JsonWriter& w, const std::string& code, const std::string& message) {
  w.Key("error");
  w.StartObject();
  w.Key("code");
  WriteString(w, code);
  w.Key("message");
  WriteString(w, message);
  w.EndObject();
}

constexpr int kFollowPollMs = 100;

std::string FirstEventJson(const std::string& conversation_id, const std::string& message_id) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("token");
  w.String("");
  w.Key("done");
  w.Bool(false);
  w.Key("conversation_id");
  WriteString(w, conversation_id);
  w.Key("message_id");
  WriteString(w, message_id);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string TokenEventJson(std::string_view text) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("token");
  WriteString(w, text);
  w.Key("done");
  w.Bool(false);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// Relays the answer as SSE events; pings while nothing else is sent.
class SseObserver : public chat::StreamObserver {
 public:
  SseObserver(HttpResponse& res, int ping_interval_ms)
      : sse_(res), ping_interval_ms_(ping_interval_ms) {}

  bool OnStart(const std::string& conversation_id, const std::string& message_id) override {
    started_ = true;
    return sse_.Begin() && sse_.Event(FirstEventJson(conversation_id, message_id));
  }

  bool OnToken(std::string_view text) override { return sse_.Event(TokenEventJson(text)); }

  bool OnIdle() override { return sse_.PingIfIdle(ping_interval_ms_); }

  bool Final(const std::string& json) { return sse_.Event(json); }
  bool started() const { return started_; }

 private:
  fcgi::SseWriter sse_;
  int ping_interval_ms_;
  bool started_ = false;
};

// Last-Event-ID (the header, else ?last_event_id=): -1 when there is none.
Result<int64_t> LastEventId(const HttpRequest& req) {
  std::string last = req.Header("last-event-id");
  if (last.empty()) last = req.QueryParam("last_event_id");
  int64_t after = -1;
  if (last.empty()) return after;
  auto [p, ec] = std::from_chars(last.data(), last.data() + last.size(), after);
  if (ec != std::errc() || p != last.data() + last.size() || after < 0) {
    return Status::InvalidArgument("invalid_last_event_id",
                                   "Last-Event-ID must be an event id (0, 1, ...)");
  }
  return after;
}

chat::SendRequest ToSendRequest(const AppContext& app, const std::string& tenant,
                                const HttpRequest& req, ChatRequestBody body) {
  chat::SendRequest send;
  send.tenant = tenant;
  send.message = std::move(body.message);
  send.conversation_id = std::move(body.conversation_id);
  send.on_disconnect = body.on_disconnect.value_or(app.config.on_disconnect);
  send.top_k = body.retrieval.top_k;
  send.mode = body.retrieval.mode;
  send.document_ids = std::move(body.retrieval.document_ids);
  send.tools = std::move(body.tools);
  send.client_message_id = std::move(body.client_message_id);
  send.request_id = req.request_id;
  return send;
}

}  // namespace

void RecordChatResult(const AppContext& app, RequestRecord& record,
                      const chat::SendResult& result) {
  if (app.metrics && result.model_calls_dropped > 0) {
    app.metrics->ModelCallsDropped(static_cast<uint64_t>(result.model_calls_dropped));
  }
  if (Metrics* m = app.metrics; m && result.started) {
    if (result.message.ttft_ms >= 0) m->TimeToFirstToken(result.message.ttft_ms / 1000.0);
    if (result.retrieval_seconds >= 0) m->Retrieval(result.retrieval_seconds);
    m->TokensRelayed(static_cast<uint64_t>(result.tokens));
    if (result.status.kind() == ErrorKind::kUpstream) {
      m->UpstreamError(UpstreamErrorKind(result.status.code(), result.upstream_http_status));
    }
    if (result.message.status == store::kStatusCancelled && result.client_gone) {
      m->DisconnectCancel();
    }
  }
  record.tokens = result.tokens;
  record.ttft_ms = result.message.ttft_ms;
  record.outcome = result.message.status;
  record.conversation_id = result.conversation_id;
  record.message_id = result.message.id;
  record.phases = result.phases;
}

std::string DoneEventJson(const store::Message& m) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("token");
  w.Null();
  w.Key("done");
  w.Bool(true);
  w.Key("message_id");
  WriteString(w, m.id);
  w.Key("conversation_id");
  WriteString(w, m.conversation_id);
  w.Key("status");
  WriteString(w, m.status);
  // Whether sending the question again (with a new client_message_id) may well succeed.
  w.Key("retryable");
  w.Bool(m.status == store::kStatusInterrupted ||
         (m.status == store::kStatusError && RetryableCode(m.error_code)));
  if (m.status == store::kStatusComplete) {
    w.Key("sources");
    w.RawValue(m.sources_json.data(), m.sources_json.size(), rapidjson::kArrayType);
    w.Key("language");
    WriteString(w, m.language);
    w.Key("usage");
    WriteUsageOrNull(w, m.usage);
    w.Key("ttft_ms");
    if (m.ttft_ms >= 0) {
      w.Int64(m.ttft_ms);
    } else {
      w.Null();
    }
    w.Key("finish_reason");
    WriteString(w, m.finish_reason);
    if (!m.tool_calls_json.empty()) {
      w.Key("tool_calls");
      w.RawValue(m.tool_calls_json.data(), m.tool_calls_json.size(), rapidjson::kArrayType);
    }
  } else {
    WriteErrorObject(w, m.error_code.empty() ? std::string("error") : m.error_code,
                     m.error_message);
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string DoneEventJson(const chat::SendResult& result) {
  store::Message m = result.message;
  m.conversation_id = result.conversation_id;
  if (m.language.empty()) m.language = result.language;
  if (!result.status.ok()) {
    if (m.status == store::kStatusComplete) m.status = store::kStatusError;
    m.error_code = result.status.code();
    m.error_message = result.status.message();
  }
  return DoneEventJson(m);
}

void HandleChatStream(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                      HttpResponse& res, RequestRecord& record) {
  auto body = ParseChatRequest(req, app.config);
  // A client's own retry of this send (same client_message_id) resumes after the last event
  // it got, exactly as GET .../stream does.
  auto after = LastEventId(req);
  if (!body.ok() || !after.ok()) {
    record.outcome = "rejected";
    WriteError(res, body.ok() ? after.status() : body.status());
    return;
  }
  SseObserver observer(res, app.config.ping_interval_ms);
  const int64_t started = SteadyMillis();
  if (app.metrics) app.metrics->StreamStarted();
  chat::SendResult result =
      app.chat->Send(ToSendRequest(app, tenant, req, std::move(*body)), observer);
  if (app.metrics) app.metrics->StreamEnded((SteadyMillis() - started) / 1000.0);
  RecordChatResult(app, record, result);
  if (result.replayed) {
    // A retry of an earlier send: that answer's events, finished or still streaming.
    record.outcome = "replayed";
    return FollowAnswer(app, std::move(result.message), *after, res);
  }
  if (!result.started || !observer.started()) {
    // Nothing was streamed: a plain JSON error (validation, unknown id, store full, ...).
    if (!res.HeadersSent()) WriteError(res, result.status);
    return;
  }
  observer.Final(DoneEventJson(result));
}

namespace {

enum class Followed { kFinished, kStopped };

// The one poll-until-finished loop: re-reads an answer from the store every kFollowPollMs
// while it is `streaming`, marking it interrupted if its worker's heartbeat stopped. Before
// each wait `tick(m)` sees the current copy and may stop the follow (false). A draining
// worker stops too, so a follow never holds a drain. An answer that cannot be read any more
// ends the follow as `error` (message_deleted, resume_failed), never still `streaming`.
Followed FollowStored(const AppContext& app, store::Message& m,
                      const std::function<bool(const store::Message&)>& tick) {
  const int64_t orphan_ms = int64_t{app.config.orphan_timeout_s} * 1000;
  while (true) {
    if (!tick(m)) return Followed::kStopped;
    if (m.status != store::kStatusStreaming) return Followed::kFinished;
    if (app.draining && app.draining->load()) return Followed::kStopped;
    // Follow the answer as its worker saves it (at least every persist interval).
    std::this_thread::sleep_for(std::chrono::milliseconds(kFollowPollMs));
    if (NowMillis() - m.updated_at > orphan_ms) {
      (void)app.conversations->MarkOrphans(orphan_ms);  // its worker died: say so below
    }
    // The small state record first: while nothing new was saved, the content is not read.
    if (auto p = app.conversations->Progress(m.tenant, m.id); p.ok() && p->status == m.status &&
                                                              p->length == m.content.size() &&
                                                              p->tokens == m.token_ends.size()) {
      m.updated_at = p->updated_at;
      continue;
    }
    auto fresh = app.conversations->GetMessage(m.tenant, m.id);
    if (!fresh.ok()) {
      m.status = store::kStatusError;
      const bool gone = fresh.status().kind() == ErrorKind::kNotFound;
      m.error_code = gone ? "message_deleted" : "resume_failed";
      m.error_message = gone ? "the answer was deleted while it was being followed"
                             : "the answer could not be read: " + fresh.status().message();
      return Followed::kFinished;
    }
    m = std::move(*fresh);
  }
}

}  // namespace

void FollowAnswer(const AppContext& app, store::Message m, int64_t after, HttpResponse& res) {
  // The done event's id is one past the last token's. A client that already has it is told
  // there is nothing more the SSE way, with a 204, which ends an EventSource's reconnects.
  if (m.status != store::kStatusStreaming && after > static_cast<int64_t>(m.token_ends.size())) {
    res.SetStatus(204);
    res.AddHeader("Cache-Control", "no-store");
    res.Write("");
    return;
  }
  fcgi::SseWriter sse(res);
  if (!sse.Begin()) return;
  if (after < 0) {
    sse.set_next_id(0);
    if (!sse.Event(FirstEventJson(m.conversation_id, m.id))) return;
  }
  // Token event i (1-based) is the i-th piece recorded in token_ends.
  size_t sent = after <= 0 ? 0 : static_cast<size_t>(after);
  auto send_new_tokens = [&](const store::Message& now) {
    for (; sent < now.token_ends.size(); ++sent) {
      size_t begin = sent == 0 ? 0 : now.token_ends[sent - 1];
      std::string_view text =
          std::string_view(now.content).substr(begin, now.token_ends[sent] - begin);
      sse.set_next_id(sent + 1);
      if (!sse.Event(TokenEventJson(text))) return false;
    }
    return sse.PingIfIdle(app.config.ping_interval_ms);
  };
  // Stopped (the client left, or a drain): the stream ends without a done event -- a cut,
  // which a client answers by resuming, through nginx, on a worker that stays.
  if (FollowStored(app, m, send_new_tokens) == Followed::kStopped) return;
  if (!send_new_tokens(m)) return;
  // A client that claimed an id beyond the answer's end has nothing to be sent.
  if (after > static_cast<int64_t>(m.token_ends.size())) return;
  sse.set_next_id(m.token_ends.size() + 1);
  sse.Event(DoneEventJson(m));
}

void HandleResume(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                  const std::string& message_id, HttpResponse& res) {
  if (!IsWellFormedId(message_id, "msg_")) {
    return WriteError(res, Status::NotFound("message " + message_id + " not found"));
  }
  auto message = app.conversations->GetMessage(tenant, message_id);
  if (!message.ok()) return WriteError(res, message.status());
  if (message->role != "assistant") {
    return WriteError(res, Status::NotFound("message " + message_id + " is not an answer"));
  }
  auto after = LastEventId(req);  // -1: from the start, the first event included
  if (!after.ok()) return WriteError(res, after.status());
  FollowAnswer(app, std::move(*message), *after, res);
}

void HandleCancel(const AppContext& app, const std::string& tenant, const std::string& message_id,
                  HttpResponse& res) {
  if (!IsWellFormedId(message_id, "msg_")) {
    return WriteError(res, Status::NotFound("message " + message_id + " not found"));
  }
  auto message = app.conversations->RequestCancel(tenant, message_id);
  if (!message.ok()) return WriteError(res, message.status());
  const bool running = message->status == store::kStatusStreaming;
  if (running && message->role != "assistant") {
    return WriteError(res, Status::NotFound("message " + message_id + " is not an answer"));
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("message_id");
  WriteString(w, message_id);
  w.Key("conversation_id");
  WriteString(w, message->conversation_id);
  w.Key("cancel_requested");
  w.Bool(running);
  w.Key("status");
  WriteString(w, message->status);
  w.EndObject();
  // 202: the streaming worker stops it within a second; 200: it had already finished.
  WriteJson(res, running ? 202 : 200, {buf.GetString(), buf.GetSize()});
}

void HandleChatMessage(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                       HttpResponse& res, RequestRecord& record) {
  auto body = ParseChatRequest(req, app.config);
  if (!body.ok()) {
    record.outcome = "rejected";
    WriteError(res, body.status());
    return;
  }
  SilentObserver observer(res);
  chat::SendResult result =
      app.chat->Send(ToSendRequest(app, tenant, req, std::move(*body)), observer);
  RecordChatResult(app, record, result);
  if (!result.started) {
    WriteError(res, result.status);
    return;
  }
  if (result.replayed) {
    // A retry of an earlier send: wait (bounded) for that answer to finish, then return it.
    record.outcome = "replayed";
    const int64_t deadline =
        SteadyMillis() + app.config.first_token_timeout_ms + app.config.idle_timeout_ms;
    (void)FollowStored(app, result.message, [&](const store::Message&) {
      return SteadyMillis() < deadline && !res.ClientGone();
    });
    result.status =
        result.message.status == store::kStatusComplete
            ? Status::Ok()
            : Status(ErrorKind::kUpstream,
                     result.message.error_code.empty() ? "not_finished" : result.message.error_code,
                     result.message.error_message);
  }
  const store::Message& m = result.message;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("message_id");
  WriteString(w, m.id);
  w.Key("conversation_id");
  WriteString(w, result.conversation_id);
  w.Key("status");
  WriteString(w, m.status);
  w.Key("response");
  WriteString(w, m.content);
  w.Key("sources");
  w.RawValue(m.sources_json.data(), m.sources_json.size(), rapidjson::kArrayType);
  w.Key("language");
  WriteString(w, result.language);
  w.Key("usage");
  WriteUsageOrNull(w, m.usage);
  w.Key("finish_reason");
  WriteString(w, m.finish_reason);
  if (!result.status.ok()) WriteErrorObject(w, result.status.code(), result.status.message());
  w.EndObject();
  WriteJson(res, result.status.ok() ? 200 : HttpStatusFor(result.status),
            {buf.GetString(), buf.GetSize()});
}

}  // namespace ragstream::handlers
