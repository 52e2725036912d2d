#include "handlers/routes.h"

#include "handlers/auth.h"
#include "handlers/chat_handler.h"
#include "handlers/conversations_handler.h"
#include "handlers/documents_handler.h"
#include "handlers/health_handler.h"
#include "handlers/metrics_handler.h"
#include "handlers/openai_handler.h"
#include "handlers/responses_handler.h"

namespace ragstream::handlers {

namespace {

// The two kinds of route: public ones (health, metrics) and those that act on a tenant's
// data, which authenticate first and give the handler the tenant the key proved.
enum class ErrorShape { kApi, kOpenAi };

using TenantHandler = std::function<void(const std::string& tenant, const HttpRequest&,
                                         HttpResponse&, const RouteParams&, RequestRecord&)>;

Handler ForTenant(const AppContext* app, ErrorShape shape, TenantHandler handler) {
  return
      [app, shape, handler = std::move(handler)](const HttpRequest& req, HttpResponse& res,
                                                 const RouteParams& params, RequestRecord& record) {
        auto tenant = Authenticate(*app, req);
        if (!tenant.ok()) {
          record.outcome = "unauthorized";
          if (tenant.status().kind() == ErrorKind::kUnauthorized) {
            res.AddHeader("WWW-Authenticate", "Bearer realm=\"ragstream\"");
          }
          return shape == ErrorShape::kOpenAi ? WriteOpenAiError(res, tenant.status())
                                              : WriteError(res, tenant.status());
        }
        record.tenant = std::move(*tenant);
        handler(record.tenant, req, res, params, record);
      };
}

}  // namespace

Router BuildRouter(const AppContext& app) {
  const AppContext* a = &app;
  constexpr ErrorShape kApi = ErrorShape::kApi;
  Router r;
  r.Add("POST", "/api/chat/message/stream",
        ForTenant(a, kApi, [a](auto& t, auto& req, auto& res, auto&, auto& rec) {
          HandleChatStream(*a, t, req, res, rec);
        }));
  r.Add("POST", "/api/chat/message",
        ForTenant(a, kApi, [a](auto& t, auto& req, auto& res, auto&, auto& rec) {
          HandleChatMessage(*a, t, req, res, rec);
        }));
  r.Add("GET", "/api/chat/messages/{id}/stream",
        ForTenant(a, kApi, [a](auto& t, auto& req, auto& res, auto& p, auto&) {
          HandleResume(*a, t, req, p[0], res);
        }));
  r.Add("POST", "/api/chat/messages/{id}/cancel",
        ForTenant(a, kApi, [a](auto& t, auto&, auto& res, auto& p, auto&) {
          HandleCancel(*a, t, p[0], res);
        }));
  r.Add("GET", "/api/conversations",
        ForTenant(a, kApi, [a](auto& t, auto& req, auto& res, auto&, auto&) {
          HandleListConversations(*a, t, req, res);
        }));
  r.Add("GET", "/api/conversations/{id}",
        ForTenant(a, kApi, [a](auto& t, auto&, auto& res, auto& p, auto&) {
          HandleGetConversation(*a, t, p[0], res);
        }));
  r.Add("PATCH", "/api/conversations/{id}",
        ForTenant(a, kApi, [a](auto& t, auto& req, auto& res, auto& p, auto&) {
          HandlePatchConversation(*a, t, req, p[0], res);
        }));
  r.Add("DELETE", "/api/conversations/{id}",
        ForTenant(a, kApi, [a](auto& t, auto&, auto& res, auto& p, auto&) {
          HandleDeleteConversation(*a, t, p[0], res);
        }));
  r.Add("POST", "/api/documents",
        ForTenant(a, kApi, [a](auto& t, auto& req, auto& res, auto&, auto& rec) {
          HandleAddDocument(*a, t, req, res, rec);
        }));
  r.Add("POST", "/api/documents/batch",
        ForTenant(a, kApi, [a](auto& t, auto& req, auto& res, auto&, auto& rec) {
          HandleAddDocuments(*a, t, req, res, rec);
        }));
  r.Add("GET", "/api/documents", ForTenant(a, kApi, [a](auto& t, auto&, auto& res, auto&, auto&) {
          HandleListDocuments(*a, t, res);
        }));
  r.Add("GET", "/api/documents/{id}",
        ForTenant(a, kApi, [a](auto& t, auto&, auto& res, auto& p, auto&) {
          HandleGetDocument(*a, t, p[0], res);
        }));
  r.Add("DELETE", "/api/documents/{id}",
        ForTenant(a, kApi, [a](auto& t, auto&, auto& res, auto& p, auto&) {
          HandleDeleteDocument(*a, t, p[0], res);
        }));
  r.Add("POST", "/api/search", ForTenant(a, kApi, [a](auto& t, auto& req, auto& res, auto&, auto&) {
          HandleSearch(*a, t, req, res);
        }));
  r.Add("POST", "/v1/chat/completions",
        ForTenant(a, ErrorShape::kOpenAi, [a](auto& t, auto& req, auto& res, auto&, auto& rec) {
          HandleChatCompletions(*a, t, req, res, rec);
        }));
  r.Add("POST", "/v1/responses",
        ForTenant(a, ErrorShape::kOpenAi, [a](auto& t, auto& req, auto& res, auto&, auto& rec) {
          HandleResponses(*a, t, req, res, rec);
        }));
  r.Add("GET", "/v1/models",
        ForTenant(a, ErrorShape::kOpenAi,
                  [a](auto&, auto&, auto& res, auto&, auto&) { HandleModels(*a, res); }));
  // Public: probes and scrapes (nginx keeps /metrics to loopback).
  r.Add("GET", "/api/health", [a](auto&, auto& res, auto&, auto&) { HandleHealth(*a, res); });
  r.Add("GET", "/metrics", [a](auto&, auto& res, auto&, auto&) { HandleMetrics(*a, res); });
  return r;
}

}  // namespace ragstream::handlers
