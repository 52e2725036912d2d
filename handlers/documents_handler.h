// POST|GET /api/documents, POST /api/documents/batch, GET|DELETE /api/documents/{id},
// POST /api/search.
#pragma once

#include "handlers/app.h"

namespace ragstream::handlers {

void HandleAddDocument(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                       HttpResponse& res, RequestRecord& record);
// A batch (handlers/document_batch.h): 200 with one result per document, in order, each the
// single POST's document fields or its own error; a malformed batch stores nothing.
void HandleAddDocuments(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                        HttpResponse& res, RequestRecord& record);
void HandleListDocuments(const AppContext& app, const std::string& tenant, HttpResponse& res);
void HandleGetDocument(const AppContext& app, const std::string& tenant, const std::string& id,
                       HttpResponse& res);
void HandleDeleteDocument(const AppContext& app, const std::string& tenant, const std::string& id,
                          HttpResponse& res);
void HandleSearch(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                  HttpResponse& res);

}  // namespace ragstream::handlers
