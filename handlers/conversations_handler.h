// GET /api/conversations, GET|PATCH|DELETE /api/conversations/{id}.
#pragma once

#include "handlers/app.h"

namespace ragstream::handlers {

void HandleListConversations(const AppContext& app, const std::string& tenant,
                             const HttpRequest& req, HttpResponse& res);
void HandleGetConversation(const AppContext& app, const std::string& tenant, const std::string& id,
                           HttpResponse& res);
void HandlePatchConversation(const AppContext& app, const std::string& tenant,
                             const HttpRequest& req, const std::string& id, HttpResponse& res);
void HandleDeleteConversation(const AppContext& app, const std::string& tenant,
                              const std::string& id, HttpResponse& res);

}  // namespace ragstream::handlers
