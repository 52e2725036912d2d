// ragstream-worker: the FastCGI responder process.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "handlers/app.h"
#include "handlers/routes.h"
#include "lib/chat/chat_service.h"
#include "lib/chat/partial_writer.h"
#include "lib/cluster/replicator.h"
#include "lib/cluster/tenant_mover.h"
#include "lib/core/api_keys.h"
#include "lib/core/config.h"
#include "lib/core/ids.h"
#include "lib/core/log.h"
#include "lib/core/metrics.h"
#include "lib/fcgi/server.h"
#include "lib/llm/extractive_answerer.h"
#include "lib/llm/openai_client.h"
#include "lib/llm/openai_embedder.h"
#include "lib/rag/analyzer.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/ingester.h"
#include "lib/rag/retriever.h"
#include "lib/rag/vector_index_builder.h"
#include "lib/store/document_store.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include "lib/store/conversation_store.h"

namespace ragstream {
namespace {

constexpr int kAbortWaitMs = 5000;

const char kUsage[] =
    R"(Usage: ragstream-worker [--listen unix:PATH|HOST:PORT] [--check-config] [--help]

A FastCGI responder serving the ragstream API (run it behind nginx). Without --listen it
takes its listening socket on fd 0 (systemd socket activation, spawn-fcgi).

  --listen SPEC     listen on a unix socket (unix:/run/ragstream/worker-1.sock) or TCP
                    (127.0.0.1:9000) instead of fd 0
  --check-config    check the environment settings, print them (secrets masked), exit
  --version         print the version
  --help            this text

Signals: SIGTERM or SIGINT stops accepting, lets running streams finish for up to
RAGSTREAM_GRACE_S seconds, ends the rest with an error event, and exits 0.

)";

// Records the status a handler sets, for the request log line.
class RecordingResponse : public HttpResponse {
 public:
  explicit RecordingResponse(HttpResponse& inner) : inner_(inner) {}
  void SetStatus(int status) override {
    status_ = status;
    inner_.SetStatus(status);
  }
  void AddHeader(std::string_view n, std::string_view v) override { inner_.AddHeader(n, v); }
  bool Write(std::string_view b) override { return inner_.Write(b); }
  bool Flush() override { return inner_.Flush(); }
  bool ClientGone() override { return inner_.ClientGone(); }
  bool HeadersSent() const override { return inner_.HeadersSent(); }
  int status() const { return status_; }

 private:
  HttpResponse& inner_;
  int status_ = 200;
};

bool IsSocket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

int Run(int argc, char** argv) {
  std::string listen_spec;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::fputs(ConfigHelp().c_str(), stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("ragstream-worker %s\n", RAGSTREAM_VERSION);
      return 0;
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--listen" && i + 1 < argc) {
      listen_spec = argv[++i];
    } else {
      std::fprintf(stderr, "ragstream-worker: unknown argument '%s' (see --help)\n", arg.c_str());
      return 2;
    }
  }

  auto config = LoadConfig();
  if (!config.ok()) {
    std::fprintf(stderr, "ragstream-worker: bad configuration: %s\n",
                 config.status().message().c_str());
    return 2;
  }
  std::optional<ApiKeys> api_keys;
  if (!config->api_keys_file.empty()) {
    auto loaded = ApiKeys::Load(config->api_keys_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "ragstream-worker: bad configuration: %s\n",
                   loaded.status().message().c_str());
      return 2;
    }
    api_keys = std::move(*loaded);
  }
  if (check_only) {
    for (const auto& line : DescribeConfig(*config)) std::printf("%s\n", line.c_str());
    std::printf("configuration ok\n");
    return 0;
  }
  SetLogLevel(config->log_level);
  signal(SIGPIPE, SIG_IGN);  // a departed peer must be a failed write, not a dead process
  // Block the stop signals before any thread exists (the partial writer, the request pool,
  // search threads), so every thread inherits the mask and only sigwait below takes them.
  // Otherwise a thread could receive SIGTERM into the handler FCGX_Init installs, which
  // makes every later FCGX_Accept_r fail.
  // SIGUSR1 too: libfcgi treats it like SIGTERM, and it means nothing to this worker.
  sigset_t stop_signals, blocked;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  blocked = stop_signals;
  sigaddset(&blocked, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

  std::vector<std::string> databases = store::ConversationStore::Databases();
  databases.push_back(cluster::Replicator::kDatabase);
  for (auto& name : store::DocumentStore::Databases(config->vector_shards)) {
    if (std::find(databases.begin(), databases.end(), name) == databases.end()) {
      databases.push_back(name);
    }
  }
  // LMDB's limits follow the configuration rather than fixed numbers: a named database for
  // each name the stores use (the vector shards included, so any RAGSTREAM_VECTOR_SHARDS the
  // check accepts can open), and reader slots for every request thread of several worker
  // processes on the host, each thread holding at most a few read transactions at once.
  const unsigned max_dbs = static_cast<unsigned>(databases.size()) + 8;
  const unsigned max_readers = std::max(4096u, static_cast<unsigned>(config->threads) * 16u);
  int stale_readers = 0;
  store::Env::Options env_options{config->data_dir, config->map_size_mb << 20, max_dbs, max_readers,
                                  databases};
  env_options.grow_step_bytes = config->map_grow_mb << 20;
  env_options.max_map_bytes = config->map_max_mb << 20;
  auto env = store::Env::Open(env_options, &stale_readers);
  if (!env.ok()) {
    LogError("worker", "cannot open the store", {{"error", env.status().ToString()}});
    return 1;
  }
  // Cluster mode: before anything writes, so that every write goes through the shard's log
  // (and a standby refuses all but the log's).
  std::unique_ptr<cluster::Replicator> replicator;
  if (!config->cluster_role.empty()) {
    cluster::ReplicatorOptions ro;
    ro.log.urls = config->nats_url;
    ro.log.shard = config->shard;
    ro.log.replicas = config->log_replicas;
    ro.role = config->cluster_role == "primary" ? cluster::Role::kPrimary : cluster::Role::kStandby;
    ro.lock_path = config->data_dir + "/replication.lock";
    ro.log.lease_ms = config->lease_ms;
    ro.node = config->node;
    if (ro.node.empty()) {
      char host[256] = {};
      if (gethostname(host, sizeof(host) - 1) == 0) ro.node = host;
    }
    auto started = cluster::Replicator::Start(**env, ro);
    if (!started.ok()) {
      LogError("worker", "cannot start replicating through the shard's log",
               {{"error", started.status().ToString()}});
      return 1;
    }
    replicator = std::move(*started);
  }
  // A tenant moving into this shard (`ragstream cluster move`) is carried out by the process
  // that applies the log on the shard's primary.
  std::unique_ptr<cluster::TenantMover> mover;
  if (replicator) {
    mover = std::make_unique<cluster::TenantMover>(**env, *replicator, config->shard);
    mover->Start();
  }
  store::ConversationStore conversations(**env);
  store::DocumentStore documents(
      **env, config->vector_shards,
      config->vector_format == "int8" ? store::VectorFormat::kInt8 : store::VectorFormat::kFloat,
      store::DocumentStore::Analyzer(rag::AnalyzeDocumentChunks, rag::AnalyzerVersion()));

  std::unique_ptr<rag::Embedder> embedder;
  if (config->embedder == "openai") {
    auto created = llm::OpenAiEmbedder::Create(llm::OpenAiEmbedder::OptionsFromConfig(*config));
    if (!created.ok()) {
      std::fprintf(stderr, "ragstream-worker: %s\n", created.status().message().c_str());
      return 2;
    }
    embedder = std::move(*created);
  } else {
    embedder = std::make_unique<rag::HashEmbedder>();
  }
  if (Status s = documents.CheckIndexIdentity(embedder->name(),
                                              static_cast<uint32_t>(embedder->dimension()));
      !s.ok()) {
    LogError("worker",
             s.code() == "old_store_layout" ? "the store has an old layout; it is not used"
                                            : "the store does not match this worker's settings",
             {{"code", s.code()}, {"error", s.message()}});
    return 2;
  }
  if (replicator) {
    // A host that took its shard's lease after it started (a standby promoted, or a primary
    // whose NATS was slow to start) writes the identity its start could not: the store holds
    // what it was made with, wherever the shard is read (a tenant move checks it).
    const std::string embedder_name = embedder->name();
    const auto dimension = static_cast<uint32_t>(embedder->dimension());
    replicator->set_on_lead([&documents, embedder_name, dimension] {
      if (Status s = documents.CheckIndexIdentity(embedder_name, dimension); !s.ok()) {
        LogWarn("worker", "could not record the store's identity on taking the lease",
                {{"code", s.code()}, {"error", s.message()}});
      }
    });
  }
  // The callback above uses `documents`, which goes before the replicator does.
  struct ForgetOnLead {
    cluster::Replicator* replicator;
    ~ForgetOnLead() {
      if (replicator) replicator->set_on_lead(nullptr);
    }
  } forget_on_lead{replicator.get()};
  const std::string analyzer = rag::WarmUpAnalyzer();
  // A standby's index is the primary's, through the log: it never rebuilds its own.
  auto reindexed = (**env).WritesRefused().ok() ? documents.ReindexLexical(rag::AnalyzerVersion())
                                                : Result<uint64_t>(uint64_t{0});
  if (!reindexed.ok()) {
    LogError("worker", "could not re-index the lexical index with the new analyzer",
             {{"error", reindexed.status().message()}});
    return 2;
  }
  LogInfo("worker", "lexical analysis",
          {{"analyzer", rag::AnalyzerVersion() + ": " + analyzer},
           {"chunks_reindexed", std::to_string(*reindexed)}});
  rag::IngestOptions ingest_options;
  ingest_options.chunker.target_chars = static_cast<size_t>(config->chunk_chars);
  ingest_options.chunker.overlap_chars = static_cast<size_t>(config->chunk_overlap_chars);
  ingest_options.chunker.max_chars = static_cast<size_t>(config->chunk_chars) * 10 / 7;
  ingest_options.max_document_bytes = config->max_document_bytes;
  ingest_options.max_documents_per_tenant = config->max_documents_per_tenant;
  // A batch is prepared on every core; its commits stay small (see IngestOptions).
  ingest_options.analysis_threads = std::max(1u, std::thread::hardware_concurrency());
  rag::Ingester ingester(documents, *embedder, ingest_options);
  // The approximate vector index: built in the background once a tenant has enough chunks.
  rag::VectorIndexBuilderOptions ivf_options;
  ivf_options.min_chunks = config->ivf_min_chunks;
  ivf_options.nlist = static_cast<uint32_t>(config->ivf_nlist);
  ivf_options.target_recall = config->ivf_recall.value_or(0.95);
  // No target, nothing to learn; a fixed nprobe, nothing to use it for: no checks.
  ivf_options.check_every = ivf_options.target_recall > 0 && config->ivf_nprobe == 0
                                ? static_cast<uint32_t>(config->ivf_check_every)
                                : 0;
  ivf_options.check_interval_ms = config->ivf_check_interval_ms;
  ivf_options.dimension = static_cast<uint32_t>(embedder->dimension());
  rag::VectorIndexBuilder ivf_builder(documents, ivf_options);
  documents.set_on_chunks_changed([&ivf_builder](const std::string& t) { ivf_builder.Touched(t); });
  // A cluster standby builds and learns nothing itself: its index is the primary's, by the log.
  if ((**env).WritesRefused().ok()) {
    // A sample of the questions the approximate index answers is checked against the exact
    // scan in the background: how deep the default probe goes is learnt from them.
    documents.set_on_approximate_search(
        [&ivf_builder](const std::string& t, const float* q, uint32_t dim) {
          ivf_builder.Answered(t, q, dim);
        });
    // A build cut short (a restart, a crash) or a tenant grown under an older version is
    // picked up at start too.
    if (auto tenants = documents.TenantsWithChunks(); tenants.ok()) {
      for (const auto& t : *tenants) ivf_builder.Touched(t);
    }
  }
  rag::RetrieverOptions retrieval = rag::RetrieverOptions::ForEmbedder(embedder->name());
  retrieval.vector_search.exact_below = std::max<uint64_t>(config->ivf_min_chunks, 1);
  if (config->ivf_nprobe > 0)
    retrieval.vector_search.probe.nprobe = static_cast<uint32_t>(config->ivf_nprobe);
  // RAGSTREAM_IVF_RECALL=0: the share, whatever an index learnt before.
  retrieval.vector_search.probe.tuned = ivf_options.target_recall > 0;
  if (config->min_relevance) retrieval.min_relevance = *config->min_relevance;
  if (config->vector_weight) retrieval.vector_weight = *config->vector_weight;
  if (config->min_cosine) retrieval.min_cosine = *config->min_cosine;
  rag::Retriever retriever(documents, *embedder, retrieval);

  std::shared_ptr<llm::ChatModel> model;
  if (config->upstream_configured()) {
    model = std::make_shared<llm::OpenAiChatModel>(llm::OpenAiOptions::FromConfig(*config));
  } else {
    llm::ExtractiveOptions extractive;
    extractive.word_delay_ms = config->extractive_word_delay_ms;
    model = std::make_shared<llm::ExtractiveAnswerer>(extractive);
    LogInfo("worker", "no upstream model configured: answering with the extractive answerer",
            {{"hint", "set OPENAI_BASE_URL and RAGSTREAM_CHAT_MODEL to use an LLM"}});
  }
  std::atomic<bool> draining{false}, abort_streams{false};
  chat::PartialWriter partial_writer(conversations, config->persist_interval_ms / 2);
  chat::ChatServiceOptions chat_options;
  chat_options.history_budget_chars = static_cast<size_t>(config->history_budget_chars);
  chat_options.persist_interval_ms = config->persist_interval_ms;
  chat_options.partial_writer = &partial_writer;
  chat_options.abort_streams = &abort_streams;
  chat_options.default_top_k = static_cast<size_t>(config->top_k);
  chat_options.max_streams_per_tenant = static_cast<size_t>(config->max_streams_per_tenant);
  chat_options.idempotency_ttl_ms = int64_t{config->idempotency_ttl_s} * 1000;
  chat_options.early_model_call = config->early_model_call != 0;
  chat::ChatService chat(conversations, model, chat_options, &retriever, &documents);

  // Host-wide metrics live beside the store: every worker of the host shares the file.
  std::unique_ptr<Metrics> metrics;
  if (auto opened = Metrics::Open(config->data_dir + "/metrics-v5.shm"); opened.ok()) {
    metrics = std::move(*opened);
    // Still one thread: the server and the sweeper start below.
    (*env)->set_on_grow([m = metrics.get()] { m->MapGrown(); });
  } else {
    LogWarn("worker", "metrics disabled", {{"error", opened.status().ToString()}});
  }

  handlers::AppContext app;
  app.config = *config;
  app.env = env->get();
  app.conversations = &conversations;
  app.chat = &chat;
  app.documents = &documents;
  app.ingester = &ingester;
  app.retriever = &retriever;
  app.embedder_name = embedder->name();
  app.api_keys = api_keys ? &*api_keys : nullptr;
  app.trust_loopback = config->trust_loopback;
  app.metrics = metrics.get();
  if (replicator) app.cluster_metrics = [&replicator] { return replicator->MetricsText(); };
  app.started_at_ms = SteadyMillis();
  app.draining = &draining;
  handlers::Router router = handlers::BuildRouter(app);

  int listen_fd = 0;
  std::string socket_path;  // the unix socket file this process created, if any
  struct stat socket_stat {};
  if (!listen_spec.empty()) {
    auto fd = fcgi::OpenListenSocket(listen_spec);
    if (!fd.ok()) {
      LogError("worker", "cannot listen", {{"error", fd.status().ToString()}});
      return 1;
    }
    listen_fd = *fd;
    if (listen_spec.rfind("unix:", 0) == 0 && ::stat(listen_spec.c_str() + 5, &socket_stat) == 0) {
      socket_path = listen_spec.substr(5);
    }
  } else if (!IsSocket(0)) {
    std::fprintf(stderr,
                 "ragstream-worker: fd 0 is not a listening socket; use --listen (see --help)\n");
    return 2;
  }

  auto handle = [&](const Status& read_status, HttpRequest& req, HttpResponse& raw_res) {
    const int64_t start = SteadyMillis();
    const int64_t received_us = SteadyMicros();
    if (req.request_id.empty()) req.request_id = NewId("req_");
    RecordingResponse res(raw_res);
    handlers::RequestRecord record;
    if (!read_status.ok()) {
      record.route = req.path;
      record.outcome = "rejected";
      handlers::WriteError(res, read_status);
    } else {
      router.Dispatch(req, res, record);
    }
    if (metrics) metrics->CountRequest(record.route, res.status());
    // A chat send's time to first token, from the request's arrival, and its phases.
    const chat::SendPhases& ph = record.phases;
    const int64_t handler_us = ph.send_started_us >= 0 ? ph.send_started_us - received_us : -1;
    const int64_t first_token_us = ph.first_token_us >= 0 ? handler_us + ph.first_token_us : -1;
    Log(res.status() >= 500 ? LogLevel::kWarn : LogLevel::kInfo, "http", "request",
        {{"request_id", req.request_id},
         {"method", req.method},
         {"route", record.route},
         {"tenant", record.tenant},
         {"status", static_cast<int64_t>(res.status())},
         {"duration_ms", SteadyMillis() - start},
         {"tokens", record.tokens},
         {"ttft_ms", record.ttft_ms},
         {"first_token_us", first_token_us},
         {"handler_us", handler_us},
         {"store_us", ph.store_us},
         {"language_us", ph.language_us},
         {"retrieval_us", ph.retrieval_us},
         {"prompt_us", ph.prompt_us},
         {"start_us", ph.start_us},
         {"upstream_ttft_us", ph.upstream_ttft_us},
         {"store_wait_us", ph.store_wait_us},
         {"outcome", record.outcome},
         {"conversation_id", record.conversation_id},
         {"message_id", record.message_id}});
  };

  fcgi::ServerOptions server_options;
  server_options.listen_fd = listen_fd;
  server_options.threads = config->threads;
  server_options.stack_bytes = static_cast<size_t>(config->thread_stack_kb) * 1024;
  // The server's cap is the larger of the two limits; body_limit below holds every route but
  // the batch one to RAGSTREAM_MAX_BODY_BYTES.
  server_options.max_body_bytes = std::max(config->max_body_bytes, config->max_batch_bytes);
  server_options.queue_wait_ms = config->queue_wait_ms;
  // Per-route body limits: a batch of documents has RAGSTREAM_MAX_BATCH_BYTES; the others are
  // capped by RAGSTREAM_MAX_BODY_BYTES: documents and OpenAI requests (whole conversations)
  // may be large; a chat message is at most RAGSTREAM_MAX_MESSAGE_CHARS characters (6 bytes
  // each when JSON-escaped) and its fields; everything else is a small JSON object.
  const uint64_t body_limit = config->max_body_bytes;
  const uint64_t batch_limit = config->max_batch_bytes;
  const uint64_t chat_body_limit = std::min<uint64_t>(
      uint64_t{static_cast<uint64_t>(config->max_message_chars)} * 6 + (64 << 10), body_limit);
  server_options.body_limit = [=](const HttpRequest& r) -> uint64_t {
    const std::string_view path = r.path;
    if (path == "/api/documents/batch") return batch_limit;
    if (path == "/api/documents" || path.substr(0, 4) == "/v1/") return body_limit;
    if (path == "/api/chat/message" || path == "/api/chat/message/stream") return chat_body_limit;
    return std::min<uint64_t>(256 << 10, body_limit);
  };
  server_options.on_rejected = [&metrics](std::string_view path) {
    if (metrics) metrics->CountRequest(path, 503);
  };
  fcgi::Server server(server_options, handle);
  if (Status s = server.Start(); !s.ok()) {
    LogError("worker", "cannot start", {{"error", s.ToString()}});
    return 1;
  }
  LogInfo("worker", "started",
          {{"version", RAGSTREAM_VERSION},
           {"listen", listen_spec.empty() ? std::string_view("fd 0") : listen_spec},
           {"threads", static_cast<int64_t>(config->threads)},
           {"data_dir", config->data_dir},
           {"stale_readers_cleared", static_cast<int64_t>(stale_readers)},
           {"chat_model", model->name()},
           {"embedder", embedder->name()}});
  if (api_keys) {
    LogInfo("worker", "API keys required",
            {{"keys_file", config->api_keys_file},
             {"keys", static_cast<int64_t>(api_keys->size())},
             {"tenants", static_cast<int64_t>(api_keys->tenant_count())}});
  } else if (config->trust_loopback) {
    LogWarn("worker",
            "no RAGSTREAM_API_KEYS_FILE: serving loopback clients only, all as tenant 'default' "
            "(RAGSTREAM_TRUST_LOOPBACK=1; the FastCGI peer is checked with SO_PEERCRED or its "
            "address)",
            {{"hint", "make keys with scripts/make_api_key.sh"}});
  } else {
    LogWarn("worker",
            "no RAGSTREAM_API_KEYS_FILE and RAGSTREAM_TRUST_LOOPBACK is off: every tenant route "
            "answers 403 no_api_keys",
            {{"hint",
              "make keys with scripts/make_api_key.sh, or set RAGSTREAM_TRUST_LOOPBACK=1 "
              "for a single-user machine"}});
  }

  // Answers left `streaming` by a worker that died (kill -9, a crash) are marked
  // `interrupted` by whichever worker looks first; every worker looks every few seconds.
  std::mutex sweep_mutex;
  std::condition_variable sweep_cv;
  bool sweep_stop = false;
  std::thread orphan_sweeper([&] {
    const auto period = std::chrono::seconds(std::max(1, config->orphan_timeout_s / 3));
    std::unique_lock lock(sweep_mutex);
    while (!sweep_cv.wait_for(lock, period, [&] { return sweep_stop; })) {
      if (auto cleared = (*env)->ClearStaleReaders(); cleared.ok() && *cleared > 0) {
        LogWarn("worker", "freed the reader slots of processes that died",
                {{"count", static_cast<int64_t>(*cleared)}});
      }
      // A cluster standby writes nothing of its own: the primary's sweeps reach it by the log.
      if (!(*env)->WritesRefused().ok()) continue;
      auto marked = conversations.MarkOrphans(int64_t{config->orphan_timeout_s} * 1000);
      if (!marked.ok()) {
        LogWarn("worker", "orphan sweep failed", {{"error", marked.status().ToString()}});
      } else if (*marked > 0) {
        LogWarn("worker", "marked answers of a dead worker interrupted",
                {{"count", static_cast<int64_t>(*marked)}});
      }
      auto expired = conversations.ExpireIdempotencyKeys(int64_t{config->idempotency_ttl_s} * 1000);
      if (!expired.ok()) {
        LogWarn("worker", "idempotency key sweep failed", {{"error", expired.status().ToString()}});
      }
    }
  });

  int sig = 0;
  sigwait(&stop_signals, &sig);
  draining.store(true);
  // A socket this process opened is unlinked below, so its backlog only holds what was sent
  // before: take it all within the grace. A socket inherited from systemd stays open in
  // systemd and keeps filling for the replacement worker: take only what the kernel had
  // already queued (a short window), not new arrivals for the whole grace period.
  constexpr int kInheritedSocketDrainMs = 100;
  server.StopAccepting(listen_spec.empty() ? kInheritedSocketDrainMs : config->grace_s * 1000);
  // Remove the socket file so nginx is refused at once and tries another worker -- unless a
  // replacement worker already bound the same path (rolling restart), which must keep it.
  struct stat now {};
  if (!socket_path.empty() && ::stat(socket_path.c_str(), &now) == 0 &&
      now.st_ino == socket_stat.st_ino && now.st_dev == socket_stat.st_dev) {
    ::unlink(socket_path.c_str());
  }
  LogInfo("worker", "draining",
          {{"signal", std::string_view(strsignal(sig))},
           {"active", static_cast<int64_t>(server.active())},
           {"grace_s", static_cast<int64_t>(config->grace_s)}});
  int left = server.WaitIdle(config->grace_s * 1000);
  // Past the grace period every stream still running, or still to come from the backlog,
  // ends now with an error event (its state saved).
  abort_streams.store(true);
  if (left > 0) {
    LogWarn("worker", "grace period over: ending running streams",
            {{"active", static_cast<int64_t>(left)}});
    server.WaitIdle(kAbortWaitMs);
  }
  server.Join();
  {
    std::lock_guard lock(sweep_mutex);
    sweep_stop = true;
  }
  sweep_cv.notify_all();
  orphan_sweeper.join();
  LogInfo("worker", "stopped");
  return 0;
}

}  // namespace
}  // namespace ragstream

int main(int argc, char** argv) {
  return ragstream::Run(argc, argv);
}
