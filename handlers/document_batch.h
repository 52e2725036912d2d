// The body of POST /api/documents/batch: NDJSON (one {"title"?, "text"} object a line, blank
// lines ignored) or a JSON array of such objects. Any malformed line or element fails the
// whole request, naming it, so that nothing of a half-understood batch is stored.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/rag/ingester.h"

namespace ragstream::handlers {

// The most documents one batch may hold (413 too_many_documents above).
inline constexpr size_t kMaxBatchDocuments = 1000;

// `media_type` is MediaType() of the request's Content-Type: "application/x-ndjson" or
// "application/json"; anything else is 415 unsupported_media_type. Errors: 400 invalid_json
// (a line or element that is not JSON, or not an object; an array body that is not an array),
// missing_field / invalid_field (`text` absent or not a string, `title` not a string), each
// message naming the line (1-based) or index (0-based); 400 empty_batch; 413
// too_many_documents.
Result<std::vector<rag::IngestInput>> ParseDocumentBatch(std::string_view media_type,
                                                         std::string_view body,
                                                         size_t max_documents = kMaxBatchDocuments);

}  // namespace ragstream::handlers
