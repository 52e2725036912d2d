#include "handlers/routes.h"

#include "handlers/chat_handler.h"
#include "handlers/conversations_handler.h"
#include "handlers/documents_handler.h"
#include "handlers/health_handler.h"
#include "handlers/metrics_handler.h"
#include "handlers/openai_handler.h"

namespace ragstream::handlers {

Router BuildRouter(const AppContext& app) {
  const AppContext* a = &app;
  Router r;
  r.Add("POST", "/api/chat/message/stream",
        [a](auto& req, auto& res, auto&, auto& rec) { HandleChatStream(*a, req, res, rec); });
  r.Add("POST", "/api/chat/message",
        [a](auto& req, auto& res, auto&, auto& rec) { HandleChatMessage(*a, req, res, rec); });
  r.Add("GET", "/api/chat/messages/{id}/stream",
        [a](auto& req, auto& res, auto& p, auto&) { HandleResume(*a, req, p[0], res); });
  r.Add("POST", "/api/chat/messages/{id}/cancel",
        [a](auto&, auto& res, auto& p, auto&) { HandleCancel(*a, p[0], res); });
  r.Add("GET", "/api/conversations",
        [a](auto& req, auto& res, auto&, auto&) { HandleListConversations(*a, req, res); });
  r.Add("GET", "/api/conversations/{id}",
        [a](auto&, auto& res, auto& p, auto&) { HandleGetConversation(*a, p[0], res); });
  r.Add("PATCH", "/api/conversations/{id}",
        [a](auto& req, auto& res, auto& p, auto&) { HandlePatchConversation(*a, req, p[0], res); });
  r.Add("DELETE", "/api/conversations/{id}",
        [a](auto&, auto& res, auto& p, auto&) { HandleDeleteConversation(*a, p[0], res); });
  r.Add("POST", "/api/documents",
        [a](auto& req, auto& res, auto&, auto& rec) { HandleAddDocument(*a, req, res, rec); });
  r.Add("GET", "/api/documents",
        [a](auto&, auto& res, auto&, auto&) { HandleListDocuments(*a, res); });
  r.Add("GET", "/api/documents/{id}",
        [a](auto&, auto& res, auto& p, auto&) { HandleGetDocument(*a, p[0], res); });
  r.Add("DELETE", "/api/documents/{id}",
        [a](auto&, auto& res, auto& p, auto&) { HandleDeleteDocument(*a, p[0], res); });
  r.Add("POST", "/api/search",
        [a](auto& req, auto& res, auto&, auto&) { HandleSearch(*a, req, res); });
  r.Add("GET", "/api/health", [a](auto&, auto& res, auto&, auto&) { HandleHealth(*a, res); });
  r.Add("POST", "/v1/chat/completions",
        [a](auto& req, auto& res, auto&, auto& rec) { HandleChatCompletions(*a, req, res, rec); });
  r.Add("GET", "/v1/models", [a](auto&, auto& res, auto&, auto&) { HandleModels(*a, res); });
  r.Add("GET", "/metrics", [a](auto&, auto& res, auto&, auto&) { HandleMetrics(*a, res); });
  return r;
}

}  // namespace ragstream::handlers
