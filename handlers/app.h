// What every handler gets: the process-wide services, and a per-request record that ends up
// in the request's log line.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/chat/chat_service.h"
#include "lib/core/api_keys.h"
#include "lib/core/config.h"
#include "lib/core/http.h"
#include "lib/core/json.h"
#include "lib/core/metrics.h"
#include "lib/core/status.h"
#include "lib/rag/ingester.h"
#include "lib/rag/retriever.h"
#include "lib/store/conversation_store.h"
#include "lib/store/document_store.h"
#include "lib/store/lmdb.h"

namespace ragstream::handlers {

struct AppContext {
  Config config;
  store::Env* env = nullptr;
  store::ConversationStore* conversations = nullptr;
  chat::ChatService* chat = nullptr;
  store::DocumentStore* documents = nullptr;
  rag::Ingester* ingester = nullptr;
  const rag::Retriever* retriever = nullptr;
  std::string embedder_name;
  // Null: no RAGSTREAM_API_KEYS_FILE, so only loopback clients are served (default tenant).
  const ApiKeys* api_keys = nullptr;
  // Without API keys: serve clients on this machine as tenant "default" (RAGSTREAM_TRUST_LOOPBACK).
  bool trust_loopback = false;
  Metrics* metrics = nullptr;  // null: metrics disabled
  // Cluster mode: the replication gauges for /metrics (cluster::Replicator::MetricsText).
  std::function<std::string()> cluster_metrics;
  int64_t started_at_ms = 0;                    // steady clock, for uptime
  const std::atomic<bool>* draining = nullptr;  // set on SIGTERM
};

// Filled in by handlers, logged once per request.
struct RequestRecord {
  std::string route;   // the route pattern, e.g. "/api/conversations/{id}"
  std::string tenant;  // who the request's key proved it to be ("" before authentication)
  int64_t tokens = -1;
  int64_t ttft_ms = -1;
  std::string outcome;  // e.g. "complete", "error", "cancelled", "rejected"
  std::string conversation_id;
  std::string message_id;
  // A chat send: where the time before its first token went (all -1 for other requests).
  chat::SendPhases phases;
};

using RouteParams = std::vector<std::string>;

// HTTP status for an error kind.
int HttpStatusFor(const Status& status);

// Whether a request that failed with this error code is worth sending again as it was (after
// Retry-After, or a short backoff): a busy, restarting or failing upstream or worker. A
// refusal (quota, credentials, a rejected request, a full store) fails the same way again.
// docs/openapi.yaml's ErrorCode lists the same split.
bool RetryableCode(std::string_view code);

// {"prompt_tokens", "completion_tokens", "total_tokens"}; the OrNull form writes null when
// the model reported no usage.
void WriteUsage(JsonWriter& w, const store::Usage& usage);
void WriteUsageOrNull(JsonWriter& w, const store::Usage& usage);

// A JSON error response with the status that fits `status` (and Retry-After on a 429).
void WriteError(HttpResponse& res, const Status& status);
// The headers an error response carries besides its body (Retry-After on a 429).
void AddErrorHeaders(HttpResponse& res, const Status& status);

}  // namespace ragstream::handlers
