#include "lib/core/config.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace ragstream {
namespace {

struct Reader {
  const EnvLookup& lookup;
  std::vector<std::string> errors;

  const char* Raw(const char* name) {
    const char* v = lookup(name);
    return (v && *v) ? v : nullptr;
  }
  void String(const char* name, std::string& out) {
    if (const char* v = Raw(name)) out = v;
  }
  template <typename T>
  void Number(const char* name, T& out, T min, T max) {
    const char* v = Raw(name);
    if (!v) return;
    std::string_view text(v);
    T value{};
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value < min || value > max) {
      errors.push_back(std::string(name) + "='" + std::string(text) + "' must be an integer in [" +
                       std::to_string(min) + ", " + std::to_string(max) + "]");
      return;
    }
    out = value;
  }
  void Decimal(const char* name, std::optional<double>& out, double min, double max) {
    const char* v = Raw(name);
    if (!v) return;
    std::string_view text(v);
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || !(value >= min && value <= max)) {
      errors.push_back(std::string(name) + "='" + std::string(text) + "' must be a number in [" +
                       Trim(min) + ", " + Trim(max) + "]");
      return;
    }
    out = value;
  }
  static std::string Trim(double x) {
    std::string s = std::to_string(x);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  }
};

}  // namespace

Result<Config> LoadConfig(const EnvLookup& lookup_in) {
  EnvLookup lookup = lookup_in ? lookup_in : [](const char* n) { return std::getenv(n); };
  Config c;
  Reader r{lookup, {}};
  r.String("RAGSTREAM_DATA_DIR", c.data_dir);
  r.Number<uint64_t>("RAGSTREAM_MAP_SIZE_MB", c.map_size_mb, 1, 1 << 24);
  r.Number<uint64_t>("RAGSTREAM_MAP_GROW_MB", c.map_grow_mb, 0, 1 << 24);
  r.Number<uint64_t>("RAGSTREAM_MAP_MAX_MB", c.map_max_mb, 0, 1 << 24);
  if (c.map_max_mb != 0 && c.map_max_mb < c.map_size_mb) {
    r.errors.push_back("RAGSTREAM_MAP_MAX_MB=" + std::to_string(c.map_max_mb) +
                       " is below RAGSTREAM_MAP_SIZE_MB=" + std::to_string(c.map_size_mb));
  }
  r.Number("RAGSTREAM_THREADS", c.threads, 1, 4096);
  r.Number("RAGSTREAM_THREAD_STACK_KB", c.thread_stack_kb, 64, 8192);
  r.Number("RAGSTREAM_GRACE_S", c.grace_s, 0, 3600);
  r.Number("RAGSTREAM_QUEUE_WAIT_MS", c.queue_wait_ms, -1, 10000);
  if (const char* v = r.Raw("RAGSTREAM_LOG_LEVEL"); v && !ParseLogLevel(v, c.log_level)) {
    r.errors.push_back(std::string("RAGSTREAM_LOG_LEVEL='") + v +
                       "' must be one of debug, info, warn, error");
  }
  r.String("RAGSTREAM_API_KEYS_FILE", c.api_keys_file);
  {
    int trust = 0;
    r.Number("RAGSTREAM_TRUST_LOOPBACK", trust, 0, 1);
    c.trust_loopback = trust == 1;
  }
  r.Number<uint64_t>("RAGSTREAM_MAX_BODY_BYTES", c.max_body_bytes, 1024, 1ull << 30);
  r.Number<uint64_t>("RAGSTREAM_MAX_BATCH_BYTES", c.max_batch_bytes, 1024, 1ull << 30);
  r.Number("RAGSTREAM_MAX_STREAMS_PER_TENANT", c.max_streams_per_tenant, 0, 1 << 20);
  r.Number<uint64_t>("RAGSTREAM_MAX_DOCUMENTS_PER_TENANT", c.max_documents_per_tenant, 0,
                     1ull << 40);
  r.Number<uint64_t>("RAGSTREAM_MAX_DOCUMENT_BYTES", c.max_document_bytes, 16, 1ull << 30);
  r.Number("RAGSTREAM_TOP_K", c.top_k, 1, 20);
  r.Number("RAGSTREAM_CHUNK_CHARS", c.chunk_chars, 100, 20000);
  r.Decimal("RAGSTREAM_MIN_RELEVANCE", c.min_relevance, 0, 10);
  r.Decimal("RAGSTREAM_VECTOR_WEIGHT", c.vector_weight, 0, 10);
  r.Decimal("RAGSTREAM_MIN_COSINE", c.min_cosine, -1, 2);
  r.Number("RAGSTREAM_CHUNK_OVERLAP_CHARS", c.chunk_overlap_chars, 0, 5000);
  if (c.chunk_overlap_chars * 2 > c.chunk_chars) {
    r.errors.push_back(
        "RAGSTREAM_CHUNK_OVERLAP_CHARS must be at most half of RAGSTREAM_CHUNK_CHARS");
  }
  r.Number("RAGSTREAM_VECTOR_SHARDS", c.vector_shards, 1, 64);
  r.String("RAGSTREAM_VECTOR_FORMAT", c.vector_format);
  if (c.vector_format != "float" && c.vector_format != "int8") {
    r.errors.push_back("RAGSTREAM_VECTOR_FORMAT='" + c.vector_format + "' must be float or int8");
  }
  r.Number<uint64_t>("RAGSTREAM_IVF_MIN_CHUNKS", c.ivf_min_chunks, 0, 1ull << 32);
  r.Number("RAGSTREAM_IVF_NPROBE", c.ivf_nprobe, 0, 65536);
  r.Number("RAGSTREAM_IVF_NLIST", c.ivf_nlist, 0, 65536);
  r.Decimal("RAGSTREAM_IVF_RECALL", c.ivf_recall, 0, 1);
  r.Number("RAGSTREAM_IVF_CHECK_EVERY", c.ivf_check_every, 0, 1 << 20);
  r.Number("RAGSTREAM_IVF_CHECK_INTERVAL_MS", c.ivf_check_interval_ms, 0, 3600 * 1000);
  r.String("RAGSTREAM_EMBEDDER", c.embedder);
  if (c.embedder != "hash" && c.embedder != "openai") {
    r.errors.push_back("RAGSTREAM_EMBEDDER='" + c.embedder + "' must be hash or openai");
  }
  r.String("RAGSTREAM_EMBED_MODEL", c.embed_model);
  r.Number("RAGSTREAM_EMBED_DIMENSIONS", c.embed_dimensions, 0, 16384);
  r.Number("RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS", c.extractive_word_delay_ms, 0, 1000);
  r.Number("RAGSTREAM_ORPHAN_TIMEOUT_S", c.orphan_timeout_s, 2, 3600);
  r.Number("RAGSTREAM_IDEMPOTENCY_TTL_S", c.idempotency_ttl_s, 1, 30 * 86400);
  r.Number("RAGSTREAM_EARLY_MODEL_CALL", c.early_model_call, 0, 1);
  r.Number("RAGSTREAM_MAX_MESSAGE_CHARS", c.max_message_chars, 1, 1 << 20);
  r.String("RAGSTREAM_CLUSTER_ROLE", c.cluster_role);
  r.String("RAGSTREAM_SHARD", c.shard);
  r.String("RAGSTREAM_NATS_URL", c.nats_url);
  r.Number("RAGSTREAM_LOG_REPLICAS", c.log_replicas, 1, 5);
  r.String("RAGSTREAM_NODE", c.node);
  r.Number("RAGSTREAM_LEASE_MS", c.lease_ms, 500, 600000);
  if (!c.cluster_role.empty()) {
    if (c.cluster_role != "primary" && c.cluster_role != "standby") {
      r.errors.push_back("RAGSTREAM_CLUSTER_ROLE='" + c.cluster_role +
                         "' must be primary or standby (or unset: a single host)");
    }
    const bool shard_ok = !c.shard.empty() && c.shard.size() <= 64 &&
                          std::all_of(c.shard.begin(), c.shard.end(), [](char ch) {
                            return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                                   (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
                          });
    if (!shard_ok) {
      r.errors.push_back(
          "RAGSTREAM_CLUSTER_ROLE needs RAGSTREAM_SHARD: 1-64 of A-Z a-z 0-9 _ - (it names the "
          "shard's log)");
    }
  }
  r.String("OPENAI_BASE_URL", c.openai_base_url);
  while (!c.openai_base_url.empty() && c.openai_base_url.back() == '/')
    c.openai_base_url.pop_back();
  if (!c.openai_base_url.empty() && c.openai_base_url.rfind("http://", 0) != 0 &&
      c.openai_base_url.rfind("https://", 0) != 0) {
    r.errors.push_back("OPENAI_BASE_URL must start with http:// or https://");
  }
  r.String("OPENAI_API_KEY", c.openai_api_key);
  r.String("RAGSTREAM_CHAT_MODEL", c.chat_model);
  if (!c.openai_base_url.empty() && c.chat_model.empty() && c.embedder != "openai") {
    r.errors.push_back("OPENAI_BASE_URL is set but RAGSTREAM_CHAT_MODEL is not");
  }
  if (c.embedder == "openai" && c.openai_base_url.empty()) {
    r.errors.push_back("RAGSTREAM_EMBEDDER=openai needs OPENAI_BASE_URL");
  }
  r.Number("RAGSTREAM_CONNECT_TIMEOUT_MS", c.connect_timeout_ms, 100, 600000);
  r.Number("RAGSTREAM_FIRST_TOKEN_TIMEOUT_MS", c.first_token_timeout_ms, 100, 3600000);
  r.Number("RAGSTREAM_IDLE_TIMEOUT_MS", c.idle_timeout_ms, 100, 3600000);
  r.Number("RAGSTREAM_MAX_RETRIES", c.max_retries, 0, 10);
  r.Number("RAGSTREAM_MAX_RETRY_WAIT_MS", c.max_retry_wait_ms, 0, 600000);
  r.Number("RAGSTREAM_MAX_TOKENS", c.max_tokens, 0, 1 << 20);
  r.Number("RAGSTREAM_HISTORY_BUDGET_CHARS", c.history_budget_chars, 0, 1 << 24);
  r.Number("RAGSTREAM_PERSIST_INTERVAL_MS", c.persist_interval_ms, 10, 500);
  r.Number("RAGSTREAM_PING_INTERVAL_MS", c.ping_interval_ms, 100, 600000);
  if (const char* v = r.Raw("RAGSTREAM_ON_DISCONNECT")) {
    std::string_view p(v);
    if (p == "cancel") {
      c.on_disconnect = DisconnectPolicy::kCancel;
    } else if (p == "finish") {
      c.on_disconnect = DisconnectPolicy::kFinish;
    } else {
      r.errors.push_back("RAGSTREAM_ON_DISCONNECT='" + std::string(p) +
                         "' must be cancel or finish");
    }
  }
  if (!r.errors.empty()) {
    std::string msg;
    for (const auto& e : r.errors) msg += (msg.empty() ? "" : "; ") + e;
    return Status::InvalidArgument("invalid_config", msg);
  }
  return c;
}

namespace {
// A URL with any user:password@ replaced, for printing.
std::string WithoutCredentials(const std::string& url) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t end = url.find('/', start);
  size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < start) return url;
  return url.substr(0, start) + "***@" + url.substr(at + 1);
}

}  // namespace

std::vector<std::string> DescribeConfig(const Config& c) {
  auto s = [](const char* n, const std::string& v) { return std::string(n) + "=" + v; };
  auto i = [](const char* n, int64_t v) { return std::string(n) + "=" + std::to_string(v); };
  return {
      s("RAGSTREAM_DATA_DIR", c.data_dir),
      i("RAGSTREAM_MAP_SIZE_MB", static_cast<int64_t>(c.map_size_mb)),
      i("RAGSTREAM_MAP_GROW_MB", static_cast<int64_t>(c.map_grow_mb)),
      i("RAGSTREAM_MAP_MAX_MB", static_cast<int64_t>(c.map_max_mb)),
      i("RAGSTREAM_THREADS", c.threads),
      i("RAGSTREAM_THREAD_STACK_KB", c.thread_stack_kb),
      i("RAGSTREAM_GRACE_S", c.grace_s),
      i("RAGSTREAM_QUEUE_WAIT_MS", c.queue_wait_ms),
      s("RAGSTREAM_LOG_LEVEL", LogLevelName(c.log_level)),
      s("RAGSTREAM_API_KEYS_FILE", c.api_keys_file.empty() ? "(unset)" : c.api_keys_file),
      i("RAGSTREAM_TRUST_LOOPBACK", c.trust_loopback ? 1 : 0),
      i("RAGSTREAM_MAX_BODY_BYTES", static_cast<int64_t>(c.max_body_bytes)),
      i("RAGSTREAM_MAX_BATCH_BYTES", static_cast<int64_t>(c.max_batch_bytes)),
      i("RAGSTREAM_MAX_MESSAGE_CHARS", c.max_message_chars),
      i("RAGSTREAM_MAX_STREAMS_PER_TENANT", c.max_streams_per_tenant),
      i("RAGSTREAM_MAX_DOCUMENTS_PER_TENANT", static_cast<int64_t>(c.max_documents_per_tenant)),
      s("OPENAI_BASE_URL",
        c.openai_base_url.empty() ? "(unset)" : WithoutCredentials(c.openai_base_url)),
      s("OPENAI_API_KEY", c.openai_api_key.empty() ? "(unset)" : "(set)"),
      s("RAGSTREAM_CHAT_MODEL", c.chat_model.empty() ? "(unset)" : c.chat_model),
      i("RAGSTREAM_CONNECT_TIMEOUT_MS", c.connect_timeout_ms),
      i("RAGSTREAM_FIRST_TOKEN_TIMEOUT_MS", c.first_token_timeout_ms),
      i("RAGSTREAM_IDLE_TIMEOUT_MS", c.idle_timeout_ms),
      i("RAGSTREAM_MAX_RETRIES", c.max_retries),
      i("RAGSTREAM_MAX_RETRY_WAIT_MS", c.max_retry_wait_ms),
      i("RAGSTREAM_MAX_TOKENS", c.max_tokens),
      i("RAGSTREAM_HISTORY_BUDGET_CHARS", c.history_budget_chars),
      i("RAGSTREAM_PERSIST_INTERVAL_MS", c.persist_interval_ms),
      i("RAGSTREAM_PING_INTERVAL_MS", c.ping_interval_ms),
      s("RAGSTREAM_ON_DISCONNECT",
        c.on_disconnect == DisconnectPolicy::kCancel ? "cancel" : "finish"),
      i("RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS", c.extractive_word_delay_ms),
      i("RAGSTREAM_ORPHAN_TIMEOUT_S", c.orphan_timeout_s),
      i("RAGSTREAM_IDEMPOTENCY_TTL_S", c.idempotency_ttl_s),
      i("RAGSTREAM_EARLY_MODEL_CALL", c.early_model_call),
      i("RAGSTREAM_MAX_DOCUMENT_BYTES", static_cast<int64_t>(c.max_document_bytes)),
      i("RAGSTREAM_TOP_K", c.top_k),
      i("RAGSTREAM_CHUNK_CHARS", c.chunk_chars),
      i("RAGSTREAM_CHUNK_OVERLAP_CHARS", c.chunk_overlap_chars),
      i("RAGSTREAM_VECTOR_SHARDS", c.vector_shards),
      s("RAGSTREAM_VECTOR_FORMAT", c.vector_format),
      i("RAGSTREAM_IVF_MIN_CHUNKS", static_cast<int64_t>(c.ivf_min_chunks)),
      i("RAGSTREAM_IVF_NPROBE", c.ivf_nprobe),
      i("RAGSTREAM_IVF_NLIST", c.ivf_nlist),
      s("RAGSTREAM_IVF_RECALL", Reader::Trim(c.ivf_recall.value_or(0.95))),
      i("RAGSTREAM_IVF_CHECK_EVERY", c.ivf_check_every),
      i("RAGSTREAM_IVF_CHECK_INTERVAL_MS", c.ivf_check_interval_ms),
      s("RAGSTREAM_EMBEDDER", c.embedder),
      s("RAGSTREAM_EMBED_MODEL", c.embed_model),
      i("RAGSTREAM_EMBED_DIMENSIONS", c.embed_dimensions),
      s("RAGSTREAM_MIN_RELEVANCE", c.min_relevance ? Reader::Trim(*c.min_relevance) : "(unset)"),
      s("RAGSTREAM_VECTOR_WEIGHT", c.vector_weight ? Reader::Trim(*c.vector_weight) : "(unset)"),
      s("RAGSTREAM_MIN_COSINE", c.min_cosine ? Reader::Trim(*c.min_cosine) : "(unset)"),
      s("RAGSTREAM_CLUSTER_ROLE", c.cluster_role.empty() ? "(unset)" : c.cluster_role),
      s("RAGSTREAM_SHARD", c.shard.empty() ? "(unset)" : c.shard),
      s("RAGSTREAM_NATS_URL", UrlsWithoutCredentials(c.nats_url)),
      i("RAGSTREAM_LOG_REPLICAS", c.log_replicas),
      s("RAGSTREAM_NODE", c.node.empty() ? "(unset)" : c.node),
      i("RAGSTREAM_LEASE_MS", c.lease_ms),
  };
}

std::vector<std::string> SplitList(std::string_view list) {
  std::vector<std::string> out;
  for (size_t from = 0; from <= list.size();) {
    size_t comma = list.find(',', from);
    if (comma == std::string_view::npos) comma = list.size();
    if (comma > from) out.emplace_back(list.substr(from, comma - from));
    from = comma + 1;
  }
  return out;
}

std::string UrlsWithoutCredentials(std::string_view urls) {
  std::string out;
  for (const std::string& url : SplitList(urls)) {
    out += (out.empty() ? "" : ",") + WithoutCredentials(url);
  }
  return out;
}

std::string ConfigHelp() {
  return R"(Environment (defaults in brackets):
  RAGSTREAM_DATA_DIR               LMDB environment directory [./ragstream-data]
  RAGSTREAM_MAP_SIZE_MB            LMDB map size at start [1024]
  RAGSTREAM_MAP_GROW_MB            the map grows online by this step when it fills; 0: never [1024]
  RAGSTREAM_MAP_MAX_MB             the largest the map may grow; 0: the disk's free space less 1 GiB [0]
  RAGSTREAM_THREADS                request threads per process (concurrent streams) [256]
  RAGSTREAM_THREAD_STACK_KB        stack size of each request thread [256]
  RAGSTREAM_GRACE_S                on SIGTERM, how long running streams may finish [30]
  RAGSTREAM_QUEUE_WAIT_MS          with every thread busy, ms a request waits before 503 overloaded; -1: off [100]
  RAGSTREAM_LOG_LEVEL              debug|info|warn|error [info]
  RAGSTREAM_API_KEYS_FILE          tenant:sha256(key) lines; unset: see RAGSTREAM_TRUST_LOOPBACK
  RAGSTREAM_TRUST_LOOPBACK         1: without a key file, serve clients on this machine as 'default' [0]
  RAGSTREAM_MAX_BODY_BYTES         largest request body accepted, but on the batch route (413 above) [8388608]
  RAGSTREAM_MAX_BATCH_BYTES        largest POST /api/documents/batch body (413 above) [67108864]
  RAGSTREAM_MAX_MESSAGE_CHARS      longest chat message in characters (413 above) [16000]
  RAGSTREAM_MAX_STREAMS_PER_TENANT answers one tenant may stream at once, all workers; 0: no limit [256]
  RAGSTREAM_MAX_DOCUMENTS_PER_TENANT  documents one tenant may hold; 0: no limit [100000]
  OPENAI_BASE_URL                  OpenAI-compatible API base, e.g. https://api.openai.com/v1
  OPENAI_API_KEY                   its API key (never logged)
  RAGSTREAM_CHAT_MODEL             model name sent upstream (required with OPENAI_BASE_URL)
  RAGSTREAM_CONNECT_TIMEOUT_MS     upstream connect timeout [5000]
  RAGSTREAM_FIRST_TOKEN_TIMEOUT_MS upstream time allowed until the first token [60000]
  RAGSTREAM_IDLE_TIMEOUT_MS        upstream gap allowed between tokens [60000]
  RAGSTREAM_MAX_RETRIES            retries on 429/5xx/connect failure, before the first token [2]
  RAGSTREAM_MAX_RETRY_WAIT_MS      cap on a Retry-After wait [20000]
  RAGSTREAM_MAX_TOKENS             most tokens one answer may take upstream (max_tokens); 0: none sent [2048]
  RAGSTREAM_HISTORY_BUDGET_CHARS   characters of earlier conversation put in the prompt [8000]
  RAGSTREAM_PERSIST_INTERVAL_MS    how often a streaming answer is saved (<= 500) [500]
  RAGSTREAM_PING_INTERVAL_MS       ": ping" comment interval while nothing else is sent [5000]
  RAGSTREAM_ON_DISCONNECT          cancel|finish: what to do when the client leaves [cancel]
  RAGSTREAM_EXTRACTIVE_WORD_DELAY_MS  pacing of the offline answerer's words [15]
  RAGSTREAM_ORPHAN_TIMEOUT_S       seconds without saves before an answer is interrupted [15]
  RAGSTREAM_IDEMPOTENCY_TTL_S      seconds a client_message_id stays bound to its request [86400]
  RAGSTREAM_EARLY_MODEL_CALL       1: call the model while the question is being saved; 0: after [1]
  RAGSTREAM_MAX_DOCUMENT_BYTES     largest document accepted (413 above) [4194304]
  RAGSTREAM_TOP_K                  passages retrieved per answer, 1..20 [5]
  RAGSTREAM_CHUNK_CHARS            target chunk size in characters [700]
  RAGSTREAM_CHUNK_OVERLAP_CHARS    overlap between consecutive chunks [100]
  RAGSTREAM_VECTOR_SHARDS          vector shard databases; fixed when the index is made [4]
  RAGSTREAM_VECTOR_FORMAT          float | int8 (int8 scan + exact rescoring, ~2x faster); fixed too [float]
  RAGSTREAM_IVF_MIN_CHUNKS         a tenant's vectors get an approximate index (IVF) from this many chunks; 0: never [20000]
  RAGSTREAM_IVF_NPROBE             lists an approximate search probes; 0: the share the build tuned [0]
  RAGSTREAM_IVF_NLIST              lists of a new approximate index; 0: 2 x sqrt(chunks) [0]
  RAGSTREAM_IVF_RECALL             recall@10 the learnt probe aims for; 0: no learning, at least 0.4 of the lists [0.95]
  RAGSTREAM_IVF_CHECK_EVERY        1 in N approximate searches is checked against the exact scan to learn from; 0: none [16]
  RAGSTREAM_IVF_CHECK_INTERVAL_MS  at most one such check per this many milliseconds [1000]
  RAGSTREAM_EMBEDDER               hash (offline, 384 dimensions) | openai [hash]
  RAGSTREAM_EMBED_MODEL            embedding model for openai [text-embedding-3-small]
  RAGSTREAM_EMBED_DIMENSIONS       openai embedding dimensions (0: the model's own) [0]
  RAGSTREAM_MIN_RELEVANCE          share of a question a passage must cover to be cited; unset: the embedder's
  RAGSTREAM_VECTOR_WEIGHT          weight of the vector side in hybrid fusion (BM25: 1); unset: the embedder's
  RAGSTREAM_MIN_COSINE             cosine at which vector evidence alone cites a passage; unset: the embedder's
  RAGSTREAM_CLUSTER_ROLE           primary | standby: replicate through the shard's NATS JetStream log; unset: one host
  RAGSTREAM_SHARD                  this host's shard (names its log); unset: none
  RAGSTREAM_NATS_URL               the NATS servers holding the log, comma-separated [nats://127.0.0.1:4222]
  RAGSTREAM_LOG_REPLICAS           copies of a new shard log the NATS servers keep [3]
  RAGSTREAM_NODE                   this host's name in its shard's leader lease; unset: the host name
  RAGSTREAM_LEASE_MS               a primary's lease lapses this long after its last renewal (set when the lease bucket is made) [6000]

With OPENAI_BASE_URL and RAGSTREAM_CHAT_MODEL unset, answers come from the offline
extractive answerer (quoted sentences of the retrieved passages).
)";
}

}  // namespace ragstream
