#include "lib/core/metrics.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

namespace ragstream {
namespace {

constexpr uint64_t kMagic = 0x52534D4554523032ull;  // "RSMETR02"
// Slot locks live far past the end of the data so they never overlap it.
constexpr off_t kLockBase = off_t{1} << 40;

// Every route of handlers/routes.cc (router_test checks that none is missing), then "other".
constexpr std::string_view kRoutes[] = {"/api/chat/message/stream",
                                        "/api/chat/message",
                                        "/api/chat/messages/{id}/stream",
                                        "/api/chat/messages/{id}/cancel",
                                        "/api/conversations",
                                        "/api/conversations/{id}",
                                        "/api/documents",
                                        "/api/documents/{id}",
                                        "/api/documents/batch",
                                        "/api/search",
                                        "/api/health",
                                        "/metrics",
                                        "/v1/chat/completions",
                                        "/v1/responses",
                                        "/v1/models",
                                        "other"};
constexpr int kStatuses[] = {200, 201, 204, 400, 401, 404, 405, 409, 413, 415,
                             422, 429, 499, 500, 502, 503, 504, 507, 0};  // 0: other
constexpr std::string_view kErrorKinds[] = {"rate_limited", "server_error", "auth",
                                            "rejected",     "timeout",      "unreachable",
                                            "cut",          "stream_error", "other"};
constexpr size_t kRouteCount = std::size(kRoutes);
constexpr size_t kStatusCount = std::size(kStatuses);
constexpr size_t kKindCount = std::size(kErrorKinds);

constexpr double kTtftBuckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60};
constexpr double kDurationBuckets[] = {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900};
constexpr double kRetrievalBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
constexpr size_t kBuckets = 10;

using Counter = std::atomic<uint64_t>;
static_assert(Counter::is_always_lock_free, "shared counters must be lock-free");

struct Histogram {
  Counter buckets[kBuckets + 1];  // the last is +Inf
  Counter count;
  Counter sum_micros;
};

struct Slot {
  std::atomic<int64_t> pid;
  Counter requests[kRouteCount][kStatusCount];
  std::atomic<int64_t> active_streams;
  Histogram ttft, duration, retrieval;
  Counter tokens;
  Counter upstream_errors[kKindCount];
  Counter disconnect_cancels;
  Counter map_growths;
  Counter model_calls_dropped;
};

template <size_t N>
void Observe(Histogram& h, const double (&bounds)[N], double value) {
  static_assert(N == kBuckets);
  size_t i = 0;
  while (i < N && value > bounds[i]) ++i;
  h.buckets[i].fetch_add(1, std::memory_order_relaxed);
  h.count.fetch_add(1, std::memory_order_relaxed);
  h.sum_micros.fetch_add(static_cast<uint64_t>(value * 1e6), std::memory_order_relaxed);
}

bool LockSlot(int fd, int slot, short type, int cmd, pid_t* holder = nullptr) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = kLockBase + slot;
  fl.l_len = 1;
  if (fcntl(fd, cmd, &fl) != 0) return false;
  if (holder) *holder = fl.l_type == F_UNLCK ? 0 : fl.l_pid;
  return true;
}

std::string FormatDouble(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

struct Metrics::Layout {
  uint64_t magic;
  uint64_t slot_bytes;
  uint64_t slots;
  uint64_t reserved;
  Slot slot[1];  // `slots` of them
};

namespace {
Metrics::Layout* AsLayout(void* map) {
  return static_cast<Metrics::Layout*>(map);
}
size_t FileBytes(int slots) {
  return offsetof(Metrics::Layout, slot) + sizeof(Slot) * static_cast<size_t>(slots);
}
}  // namespace

Result<std::unique_ptr<Metrics>> Metrics::Open(const std::string& path, int slots) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Status::Internal("cannot open " + path + ": " + std::strerror(errno));
  const size_t bytes = FileBytes(slots);
  struct stat st {};
  // Creating processes race only to extend the file to the same size with zeros.
  if (fstat(fd, &st) != 0 ||
      (static_cast<size_t>(st.st_size) < bytes && ftruncate(fd, static_cast<off_t>(bytes)) != 0)) {
    ::close(fd);
    return Status::Internal("cannot size " + path + ": " + std::strerror(errno));
  }
  void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    ::close(fd);
    return Status::Internal("cannot map " + path + ": " + std::strerror(errno));
  }
  Layout* layout = AsLayout(map);
  // Two workers starting together must not see a half-written header: initialise it under
  // an exclusive whole-file lock (flock, independent of the fcntl slot locks).
  flock(fd, LOCK_EX);
  if (layout->magic == 0) {
    layout->slot_bytes = sizeof(Slot);
    layout->slots = static_cast<uint64_t>(slots);
    layout->magic = kMagic;
  }
  flock(fd, LOCK_UN);
  if (layout->magic != kMagic || layout->slot_bytes != sizeof(Slot) ||
      layout->slots != static_cast<uint64_t>(slots)) {
    munmap(map, bytes);
    ::close(fd);
    return Status::Internal(path + " has another layout; remove it (counters restart)");
  }
  for (int i = 0; i < slots; ++i) {
    if (!LockSlot(fd, i, F_WRLCK, F_SETLK)) continue;  // held by a live process
    Slot& s = layout->slot[i];
    s.pid.store(getpid());
    s.active_streams.store(0);  // the previous owner's streams died with it
    return std::unique_ptr<Metrics>(new Metrics(fd, map, bytes, i, slots));
  }
  munmap(map, bytes);
  ::close(fd);
  return Status::Unavailable("metrics_full", "every metrics slot is held by a live worker");
}

Metrics::Metrics(int fd, void* map, size_t bytes, int slot, int slots)
    : fd_(fd), map_(map), bytes_(bytes), slot_(slot), slots_(slots) {}

Metrics::~Metrics() {
  AsLayout(map_)->slot[slot_].active_streams.store(0);
  munmap(map_, bytes_);
  ::close(fd_);  // releases the slot lock
}

void Metrics::CountRequest(std::string_view route, int status) {
  size_t r = 0;
  while (r + 1 < kRouteCount && kRoutes[r] != route) ++r;
  size_t s = 0;
  while (s + 1 < kStatusCount && kStatuses[s] != status) ++s;
  AsLayout(map_)->slot[slot_].requests[r][s].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::StreamStarted() {
  AsLayout(map_)->slot[slot_].active_streams.fetch_add(1);
}

void Metrics::StreamEnded(double seconds) {
  Slot& s = AsLayout(map_)->slot[slot_];
  s.active_streams.fetch_sub(1);
  Observe(s.duration, kDurationBuckets, seconds);
}

void Metrics::TimeToFirstToken(double seconds) {
  Observe(AsLayout(map_)->slot[slot_].ttft, kTtftBuckets, seconds);
}

void Metrics::Retrieval(double seconds) {
  Observe(AsLayout(map_)->slot[slot_].retrieval, kRetrievalBuckets, seconds);
}

void Metrics::TokensRelayed(uint64_t tokens) {
  AsLayout(map_)->slot[slot_].tokens.fetch_add(tokens, std::memory_order_relaxed);
}

void Metrics::UpstreamError(std::string_view kind) {
  size_t k = 0;
  while (k + 1 < kKindCount && kErrorKinds[k] != kind) ++k;
  AsLayout(map_)->slot[slot_].upstream_errors[k].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::DisconnectCancel() {
  AsLayout(map_)->slot[slot_].disconnect_cancels.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::MapGrown() {
  AsLayout(map_)->slot[slot_].map_growths.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::ModelCallsDropped(uint64_t calls) {
  AsLayout(map_)->slot[slot_].model_calls_dropped.fetch_add(calls, std::memory_order_relaxed);
}

bool Metrics::CountsRoute(std::string_view route) {
  for (size_t r = 0; r + 1 < kRouteCount; ++r) {
    if (kRoutes[r] == route) return true;
  }
  return false;
}

std::string Metrics::Render(const std::string& extra) const {
  const Layout* layout = AsLayout(map_);
  // Sum every slot; gauges only over slots of live processes.
  uint64_t requests[kRouteCount][kStatusCount] = {};
  uint64_t tokens = 0, cancels = 0, growths = 0, dropped = 0, errors[kKindCount] = {};
  int64_t active = 0, workers = 0;
  struct Sum {
    uint64_t buckets[kBuckets + 1] = {};
    uint64_t count = 0, sum_micros = 0;
  } ttft, duration, retrieval;
  auto add = [](Sum& into, const Histogram& h) {
    for (size_t b = 0; b <= kBuckets; ++b) into.buckets[b] += h.buckets[b].load();
    into.count += h.count.load();
    into.sum_micros += h.sum_micros.load();
  };
  for (int i = 0; i < slots_; ++i) {
    const Slot& s = layout->slot[i];
    for (size_t r = 0; r < kRouteCount; ++r) {
      for (size_t c = 0; c < kStatusCount; ++c) requests[r][c] += s.requests[r][c].load();
    }
    tokens += s.tokens.load();
    cancels += s.disconnect_cancels.load();
    growths += s.map_growths.load();
    dropped += s.model_calls_dropped.load();
    for (size_t k = 0; k < kKindCount; ++k) errors[k] += s.upstream_errors[k].load();
    add(ttft, s.ttft);
    add(duration, s.duration);
    add(retrieval, s.retrieval);
    pid_t holder = 0;
    bool live = i == slot_ || (LockSlot(fd_, i, F_WRLCK, F_GETLK, &holder) && holder != 0);
    if (live) {
      ++workers;
      active += s.active_streams.load();
    }
  }

  std::string out;
  auto header = [&out](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  header("ragstream_requests_total", "counter",
         "Requests answered by the workers of this host, by route and status.");
  for (size_t r = 0; r < kRouteCount; ++r) {
    for (size_t c = 0; c < kStatusCount; ++c) {
      if (!requests[r][c]) continue;
      out += "ragstream_requests_total{route=\"" + std::string(kRoutes[r]) + "\",status=\"" +
             (kStatuses[c] ? std::to_string(kStatuses[c]) : std::string("other")) + "\"} " +
             std::to_string(requests[r][c]) + "\n";
    }
  }
  header("ragstream_active_streams", "gauge", "Answers streaming right now.");
  out += "ragstream_active_streams " + std::to_string(active) + "\n";
  header("ragstream_workers", "gauge", "Live worker processes sharing these metrics.");
  out += "ragstream_workers " + std::to_string(workers) + "\n";
  auto histogram = [&](const char* name, const char* help, const Sum& h, const double* bounds) {
    header(name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      cumulative += h.buckets[b];
      out += std::string(name) + "_bucket{le=\"" + FormatDouble(bounds[b]) + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    cumulative += h.buckets[kBuckets];
    out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    out += std::string(name) + "_sum " + FormatDouble(h.sum_micros / 1e6) + "\n";
    out += std::string(name) + "_count " + std::to_string(h.count) + "\n";
  };
  histogram("ragstream_ttft_seconds", "Time from request to first token sent.", ttft, kTtftBuckets);
  histogram("ragstream_stream_duration_seconds", "Duration of streamed answers.", duration,
            kDurationBuckets);
  histogram("ragstream_retrieval_seconds", "Time spent retrieving passages for an answer.",
            retrieval, kRetrievalBuckets);
  header("ragstream_tokens_relayed_total", "counter", "Answer pieces relayed to clients.");
  out += "ragstream_tokens_relayed_total " + std::to_string(tokens) + "\n";
  header("ragstream_upstream_errors_total", "counter", "Failed upstream model calls, by kind.");
  for (size_t k = 0; k < kKindCount; ++k) {
    out += "ragstream_upstream_errors_total{kind=\"" + std::string(kErrorKinds[k]) + "\"} " +
           std::to_string(errors[k]) + "\n";
  }
  header("ragstream_disconnect_cancels_total", "counter",
         "Answers cancelled because the client left.");
  out += "ragstream_disconnect_cancels_total " + std::to_string(cancels) + "\n";
  header("ragstream_lmdb_map_growths_total", "counter",
         "Times a worker of this host grew the LMDB map online.");
  out += "ragstream_lmdb_map_growths_total " + std::to_string(growths) + "\n";
  header("ragstream_model_calls_dropped_total", "counter",
         "Model calls made beside a question's write and then stopped (the write refused or "
         "replayed, the client left, or the history changed): the model may have billed them.");
  out += "ragstream_model_calls_dropped_total " + std::to_string(dropped) + "\n";
  out += extra;
  return out;
}

std::string_view UpstreamErrorKind(std::string_view code, int http_status) {
  if (http_status == 429) return "rate_limited";
  if (http_status >= 500) return "server_error";
  if (http_status == 401 || http_status == 403) return "auth";
  if (http_status >= 400) return "rejected";
  if (code == "upstream_first_token_timeout" || code == "upstream_idle_timeout") {
    return "timeout";
  }
  if (code == "upstream_unreachable") return "unreachable";
  if (code == "upstream_cut" || code == "upstream_incomplete") return "cut";
  if (http_status == 200) return "stream_error";
  return "other";
}

}  // namespace ragstream
