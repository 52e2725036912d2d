// Configuration: every setting comes from the environment, has a documented default, and is
// checked once at start. A bad value is a clear error naming the variable; the process does
// not start with it. The API key is held here and nowhere else is it printed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/log.h"
#include "lib/core/status.h"

namespace ragstream {

enum class DisconnectPolicy { kCancel, kFinish };

struct Config {
  // Storage.
  std::string data_dir = "./ragstream-data";  // RAGSTREAM_DATA_DIR
  uint64_t map_size_mb = 1024;                // RAGSTREAM_MAP_SIZE_MB: the LMDB map's size at start
  uint64_t map_grow_mb = 1024;  // RAGSTREAM_MAP_GROW_MB: online growth step; 0: never grows
  uint64_t map_max_mb = 0;      // RAGSTREAM_MAP_MAX_MB: largest map; 0: free disk less 1 GiB
  // Worker.
  int threads = 256;          // RAGSTREAM_THREADS: concurrent requests per process
  int thread_stack_kb = 256;  // RAGSTREAM_THREAD_STACK_KB
  int queue_wait_ms = 100;    // RAGSTREAM_QUEUE_WAIT_MS: wait for a free thread before 503; -1: off
  int grace_s = 30;           // RAGSTREAM_GRACE_S: drain time for running streams on SIGTERM
  LogLevel log_level = LogLevel::kInfo;  // RAGSTREAM_LOG_LEVEL
  // Access: with no key file only loopback clients are served (as the default tenant).
  std::string api_keys_file;
  bool trust_loopback = false;  // RAGSTREAM_TRUST_LOOPBACK: without keys, serve local clients  //
                                // RAGSTREAM_API_KEYS_FILE: tenant:sha256(key) lines
  // Request and tenant limits (0: no limit for the per-tenant ones).
  uint64_t max_body_bytes = 8 << 20;    // RAGSTREAM_MAX_BODY_BYTES (but the batch route)
  uint64_t max_batch_bytes = 64 << 20;  // RAGSTREAM_MAX_BATCH_BYTES: POST /api/documents/batch
  int max_message_chars = 16000;        // RAGSTREAM_MAX_MESSAGE_CHARS
  int max_streams_per_tenant = 256;     // RAGSTREAM_MAX_STREAMS_PER_TENANT (all workers)
  uint64_t max_documents_per_tenant = 100000;  // RAGSTREAM_MAX_DOCUMENTS_PER_TENANT
  // Upstream chat model.
  std::string openai_base_url;         // OPENAI_BASE_URL, e.g. https://api.openai.com/v1
  std::string openai_api_key;          // OPENAI_API_KEY (secret: never logged)
  std::string chat_model;              // RAGSTREAM_CHAT_MODEL
  int connect_timeout_ms = 5000;       // RAGSTREAM_CONNECT_TIMEOUT_MS
  int first_token_timeout_ms = 60000;  // RAGSTREAM_FIRST_TOKEN_TIMEOUT_MS
  int idle_timeout_ms = 60000;         // RAGSTREAM_IDLE_TIMEOUT_MS: max gap between tokens
  int max_retries = 2;                 // RAGSTREAM_MAX_RETRIES: before the first token only
  int max_retry_wait_ms = 20000;       // RAGSTREAM_MAX_RETRY_WAIT_MS: cap on Retry-After
  int max_tokens = 2048;               // RAGSTREAM_MAX_TOKENS: per answer upstream; 0: none sent
  // Pipeline.
  int history_budget_chars = 8000;                             // RAGSTREAM_HISTORY_BUDGET_CHARS
  int persist_interval_ms = 500;                               // RAGSTREAM_PERSIST_INTERVAL_MS
  int ping_interval_ms = 5000;                                 // RAGSTREAM_PING_INTERVAL_MS
  DisconnectPolicy on_disconnect = DisconnectPolicy::kCancel;  // RAGSTREAM_ON_DISCONNECT
  int extractive_word_delay_ms = 15;                           // RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS
  int idempotency_ttl_s = 86400;  // RAGSTREAM_IDEMPOTENCY_TTL_S: how long a client_message_id binds
  int early_model_call =
      1;  // RAGSTREAM_EARLY_MODEL_CALL: call the model beside the question's write
  int orphan_timeout_s = 15;  // RAGSTREAM_ORPHAN_TIMEOUT_S: heartbeat age that means a dead worker
  // Documents and retrieval.
  uint64_t max_document_bytes = 4 << 20;  // RAGSTREAM_MAX_DOCUMENT_BYTES
  int top_k = 5;                          // RAGSTREAM_TOP_K: passages per answer
  int chunk_chars = 700;                  // RAGSTREAM_CHUNK_CHARS
  int chunk_overlap_chars = 100;          // RAGSTREAM_CHUNK_OVERLAP_CHARS
  int vector_shards = 4;                  // RAGSTREAM_VECTOR_SHARDS (fixed when the index is made)
  std::string vector_format = "float";    // RAGSTREAM_VECTOR_FORMAT: float | int8 (fixed too)
  // The approximate vector index (IVF, lib/store/ivf_index.h).
  uint64_t ivf_min_chunks =
      20000;           // RAGSTREAM_IVF_MIN_CHUNKS: a tenant gets one from here; 0: never
  int ivf_nprobe = 0;  // RAGSTREAM_IVF_NPROBE: lists a search probes; 0: the default
  int ivf_nlist = 0;   // RAGSTREAM_IVF_NLIST: lists of a new index; 0: 2 x sqrt(chunks)
  // RAGSTREAM_IVF_RECALL: the recall@10 a build tunes the default probe for, 0..1 (0: no
  // tuning, a fixed share of the lists); unset: 0.95.
  std::optional<double> ivf_recall;
  int ivf_check_every = 16;          // RAGSTREAM_IVF_CHECK_EVERY: 1 in N questions checked; 0: none
  int ivf_check_interval_ms = 1000;  // RAGSTREAM_IVF_CHECK_INTERVAL_MS: at most one check per ms
  std::string embedder = "hash";     // RAGSTREAM_EMBEDDER: hash | openai
  std::string embed_model = "text-embedding-3-small";  // RAGSTREAM_EMBED_MODEL (openai)
  int embed_dimensions = 0;  // RAGSTREAM_EMBED_DIMENSIONS (openai; 0: the model's own)
  // Retrieval tuning; unset: the embedder's defaults (rag::RetrieverOptions::ForEmbedder).
  std::optional<double> min_relevance;  // RAGSTREAM_MIN_RELEVANCE: the citation floor, 0..10
  std::optional<double> vector_weight;  // RAGSTREAM_VECTOR_WEIGHT: hybrid fusion, 0..10
  std::optional<double> min_cosine;     // RAGSTREAM_MIN_COSINE: a cosine that vouches, -1..2

  // Cluster mode (lib/cluster/replicator.h); unset role: a single host, no NATS.
  std::string cluster_role;                        // RAGSTREAM_CLUSTER_ROLE: "" | primary | standby
  std::string shard;                               // RAGSTREAM_SHARD: this host's shard
  std::string nats_url = "nats://127.0.0.1:4222";  // RAGSTREAM_NATS_URL: the log's servers
  int log_replicas = 3;                            // RAGSTREAM_LOG_REPLICAS: copies of the log
  std::string node;     // RAGSTREAM_NODE: this host in the shard's lease; unset: the host name
  int lease_ms = 6000;  // RAGSTREAM_LEASE_MS: a primary's lease lapses this long after renewal

  bool upstream_configured() const { return !openai_base_url.empty() && !chat_model.empty(); }
};

using EnvLookup = std::function<const char*(const char*)>;

// Reads and checks every variable. `lookup` defaults to getenv (tests pass their own).
Result<Config> LoadConfig(const EnvLookup& lookup = nullptr);

// One line per setting, "NAME=value", with the API key shown only as set/unset and any
// credentials in OPENAI_BASE_URL masked.
std::vector<std::string> DescribeConfig(const Config& config);

// The help text listing every variable with its default.
std::string ConfigHelp();

// The items of a comma-separated setting (RAGSTREAM_NATS_URL), empty items dropped.
std::vector<std::string> SplitList(std::string_view list);
// A comma-separated list of URLs with any user:password@ replaced by ***@, for logs and
// errors.
std::string UrlsWithoutCredentials(std::string_view urls);

}  // namespace ragstream
