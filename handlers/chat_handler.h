// POST /api/chat/message and POST /api/chat/message/stream.
#pragma once

#include "handlers/app.h"

namespace ragstream::handlers {

// For answers returned whole (non-streaming routes): sends nothing while the answer is made
// (the content is in the result), and notices a departed client.
class SilentObserver : public chat::StreamObserver {
 public:
  explicit SilentObserver(HttpResponse& res) : res_(res) {}
  bool OnStart(const std::string&, const std::string&) override { return true; }
  bool OnToken(std::string_view) override { return true; }
  bool OnIdle() override { return !res_.ClientGone(); }

 private:
  HttpResponse& res_;
};

void HandleChatStream(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                      HttpResponse& res, RequestRecord& record);
void HandleChatMessage(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                       HttpResponse& res, RequestRecord& record);

// GET /api/chat/messages/{id}/stream with Last-Event-ID (header or ?last_event_id=): replays
// the events after that id from the store, then follows the answer as its worker (any
// worker) saves it, until its final event. Served by any worker.
void HandleResume(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                  const std::string& message_id, HttpResponse& res);

// Streams a stored answer: the events after `after` (-1: all, the first event included) with
// their original ids, then follows it in the store until its final event. (Resume, and a
// retried send with the same client_message_id.)
void FollowAnswer(const AppContext& app, store::Message message, int64_t after, HttpResponse& res);

// POST /api/chat/messages/{id}/cancel: asks whichever worker streams the answer to stop it
// (202 with cancel_requested true), or reports that it already finished (200).
void HandleCancel(const AppContext& app, const std::string& tenant, const std::string& message_id,
                  HttpResponse& res);

// Metrics and the request log fields of a finished exchange (any chat route).
void RecordChatResult(const AppContext& app, RequestRecord& record, const chat::SendResult& result);

// The final event of a stream, from the stored message (exposed for tests).
std::string DoneEventJson(const store::Message& message);
// The final event of a live stream.
std::string DoneEventJson(const chat::SendResult& result);

}  // namespace ragstream::handlers
