// relay_upstream: a cheap OpenAI-compatible streaming upstream for the relay benchmarks.
//
// It answers POST /v1/chat/completions (stream: true) the way tests/fake_openai does with
// `[[fake: tokens=N, gap_ms=G, stamp_content]]`: a role chunk at once, then N content chunks
// G ms apart whose content is "|<CLOCK_REALTIME seconds, 6 decimals>|" taken just before the
// write, a finish chunk, a usage chunk when asked (stream_options.include_usage), [DONE].
// Chunked transfer encoding, keep-alive honoured (ragstream reuses its connection per thread).
//
// Why not tests/fake_openai: at thousands of streams of 10 tokens/s the Python fake needs
// most of a core by itself on a 2-core host, so the benchmark would measure the fake. This
// one is a single-threaded epoll loop with a timer heap (a few microseconds per token).
// Tokens follow a fixed schedule (start + first_token_ms + i * gap_ms), so a late wake-up
// does not stretch the stream. GET /_fake/health answers 200, GET /_fake/stats the counts
// (tokens_sent, streams, active_streams); anything else 404.
//
// Usage: relay_upstream --port 0 --port-file FILE   (127.0.0.1 only; SIGTERM to stop)
//   Prints, at exit, one JSON line: tokens sent, streams, CPU seconds.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

double RealSeconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A number after `key=` in the last `[[fake: ...]]` directive of the body, or `fallback`.
double Directive(std::string_view body, std::string_view key, double fallback) {
  size_t at = body.rfind("[[fake:");
  if (at == std::string_view::npos) return fallback;
  size_t end = body.find("]]", at);
  std::string_view d = body.substr(at, end == std::string_view::npos ? end : end - at);
  size_t pos = 0;
  while ((pos = d.find(key, pos)) != std::string_view::npos) {
    bool starts = pos > 0 && (d[pos - 1] == ' ' || d[pos - 1] == ',' || d[pos - 1] == ':');
    size_t eq = pos + key.size();
    if (starts && eq < d.size() && d[eq] == '=') {
      return std::strtod(std::string(d.substr(eq + 1, 32)).c_str(), nullptr);
    }
    pos = eq;
  }
  return fallback;
}

struct Conn {
  int fd = -1;
  uint64_t id = 0;
  std::string in;   // request bytes not parsed yet
  std::string out;  // bytes the socket did not take yet
  bool streaming = false;
  bool keep_alive = true;
  bool close_after_write = false;
  bool usage = false;
  bool want_out = false;  // EPOLLOUT registered
  int tokens = 0;         // content tokens to send
  int sent = 0;           // content tokens sent
  int64_t start_ns = 0;   // when the stream's schedule started
  int64_t first_ns = 0;   // delay before the first token
  int64_t gap_ns = 0;     // delay between tokens
};

struct Due {
  int64_t at_ns;
  int fd;
  uint64_t id;
  bool operator>(const Due& o) const { return at_ns > o.at_ns; }
};

class Upstream {
 public:
  explicit Upstream(int listen_fd) : listen_fd_(listen_fd) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    Add(listen_fd_, EPOLLIN);
    Add(timer_, EPOLLIN);
  }

  void Run() {
    std::vector<epoll_event> events(1024);
    while (!g_stop) {
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 500);
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          AcceptAll();
        } else if (fd == timer_) {
          uint64_t ticks;
          while (read(timer_, &ticks, sizeof ticks) > 0) {
          }
        } else {
          OnSocket(fd, events[i].events);
        }
      }
      FireDue();
    }
  }

  long tokens_sent() const { return tokens_sent_; }
  long streams() const { return streams_; }

 private:
  void Add(int fd, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
  }
  void Mod(int fd, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e);
  }

  void AcceptAll() {
    while (true) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->id = ++next_id_;
      conns_[fd] = std::move(c);
      Add(fd, EPOLLIN | EPOLLRDHUP);
    }
  }

  void Close(int fd) {
    if (auto it = conns_.find(fd); it != conns_.end() && it->second->streaming) --active_;
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns_.erase(fd);  // a pending timer entry finds no conn (or another id) and is dropped
  }

  void OnSocket(int fd, uint32_t ev) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    if (ev & EPOLLOUT) {
      if (!Flush(c)) return;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      char buf[16384];
      while (true) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          c.in.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          Close(fd);  // the client left (mid-stream or not)
          return;
        }
        break;
      }
      if (!c.streaming) Parse(c);
    }
  }

  // Parses one request from c.in if it is whole, and starts answering it.
  void Parse(Conn& c) {
    size_t head_end = c.in.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      if (c.in.size() > 65536) Close(c.fd);
      return;
    }
    std::string_view head(c.in.data(), head_end);
    size_t length = 0;
    bool keep_alive = head.find("HTTP/1.1") != std::string_view::npos;
    // Header names compared case-insensitively by lowering a copy of the head.
    std::string lower(head);
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (size_t p = lower.find("\r\ncontent-length:"); p != std::string::npos) {
      length = std::strtoul(lower.c_str() + p + 17, nullptr, 10);
    }
    if (lower.find("\r\nconnection: close") != std::string::npos) keep_alive = false;
    if (lower.find("\r\nconnection: keep-alive") != std::string::npos) keep_alive = true;
    if (c.in.size() < head_end + 4 + length) return;  // body not all here yet
    std::string_view body(c.in.data() + head_end + 4, length);
    c.keep_alive = keep_alive;
    bool chat = head.rfind("POST ", 0) == 0 &&
                (head.find(" /v1/chat/completions ") != std::string_view::npos ||
                 head.find(" /chat/completions ") != std::string_view::npos);
    if (chat) {
      c.tokens = static_cast<int>(Directive(body, "tokens", 20));
      c.gap_ns = static_cast<int64_t>(Directive(body, "gap_ms", 5) * 1e6);
      c.first_ns = static_cast<int64_t>(Directive(body, "first_token_ms", 0) * 1e6);
      c.usage = body.find("\"include_usage\":true") != std::string_view::npos;
      c.in.erase(0, head_end + 4 + length);
      StartStream(c);
      return;
    }
    bool health = head.rfind("GET /_fake/health ", 0) == 0;
    bool stats = head.rfind("GET /_fake/stats ", 0) == 0;
    std::string answer = health ? "{\"ok\":true}" : "{\"error\":{\"message\":\"not found\"}}";
    if (stats) {
      health = true;  // a 200
      answer = "{\"tokens_sent\":" + std::to_string(tokens_sent_) +
               ",\"streams\":" + std::to_string(streams_) +
               ",\"active_streams\":" + std::to_string(active_) + "}";
    }
    std::string resp =
        std::string(health ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n") +
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(answer.size()) +
        "\r\n" + (keep_alive ? "" : "Connection: close\r\n") + "\r\n" + answer;
    c.in.erase(0, head_end + 4 + length);
    c.close_after_write = !keep_alive;
    Send(c, resp);
  }

  std::string Chunk(const Conn& c, std::string_view delta, const char* finish) {
    std::string json =
        "{\"id\":\"chatcmpl-bench" + std::to_string(c.id) +
        "\",\"object\":\"chat.completion.chunk\",\"created\":" + std::to_string(time(nullptr)) +
        ",\"model\":\"fake-model\",\"system_fingerprint\":\"fp_fake\",\"choices\":[{"
        "\"index\":0,\"delta\":" +
        std::string(delta) + ",\"logprobs\":null,\"finish_reason\":" + finish + "}]" +
        (c.usage ? ",\"usage\":null}" : "}");
    return Frame("data: " + json + "\n\n");
  }
  static std::string Frame(const std::string& event) {
    char size[32];
    snprintf(size, sizeof size, "%zx\r\n", event.size());
    return size + event + "\r\n";
  }

  void StartStream(Conn& c) {
    c.streaming = true;
    c.sent = 0;
    c.start_ns = MonoNs();
    ++streams_;
    ++active_;
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        "Transfer-Encoding: chunked\r\nCache-Control: no-cache, must-revalidate\r\n";
    head += c.keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    head += Chunk(c, "{\"role\":\"assistant\",\"content\":\"\"}", "null");
    if (!Send(c, head)) return;
    Schedule(c);
  }

  void Schedule(const Conn& c) {
    int64_t at = c.start_ns + c.first_ns + c.sent * c.gap_ns;
    heap_.push({at, c.fd, c.id});
    if (!firing_ && (at < armed_ns_ || armed_ns_ <= MonoNs())) Arm(at);
  }

  void Arm(int64_t at_ns) {
    armed_ns_ = at_ns;
    itimerspec its{};
    int64_t at = std::max<int64_t>(at_ns, 1);
    its.it_value.tv_sec = at / 1000000000;
    its.it_value.tv_nsec = at % 1000000000;
    timerfd_settime(timer_, TFD_TIMER_ABSTIME, &its, nullptr);
  }

  void FireDue() {
    firing_ = true;
    int64_t now = MonoNs();
    while (!heap_.empty() && heap_.top().at_ns <= now) {
      Due d = heap_.top();
      heap_.pop();
      auto it = conns_.find(d.fd);
      if (it == conns_.end() || it->second->id != d.id || !it->second->streaming) continue;
      Conn& c = *it->second;
      if (c.sent < c.tokens) {
        char content[64];
        snprintf(content, sizeof content, "{\"content\":\"|%.6f|\"}", RealSeconds());
        ++c.sent;
        ++tokens_sent_;
        if (!Send(c, Chunk(c, content, "null"))) continue;
        Schedule(c);
        continue;
      }
      std::string tail = Chunk(c, "{}", "\"stop\"");
      if (c.usage) {
        tail += Frame(
            "data: {\"id\":\"chatcmpl-bench" + std::to_string(c.id) +
            "\",\"object\":\"chat.completion.chunk\",\"created\":" + std::to_string(time(nullptr)) +
            ",\"model\":\"fake-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,"
            "\"completion_tokens\":" +
            std::to_string(c.sent) + ",\"total_tokens\":" + std::to_string(c.sent + 10) + "}}\n\n");
      }
      tail += Frame("data: [DONE]\n\n");
      tail += "0\r\n\r\n";
      c.streaming = false;
      --active_;
      c.close_after_write = !c.keep_alive;
      if (!Send(c, tail)) continue;
      if (!c.in.empty()) Parse(c);  // a pipelined next request
      now = MonoNs();
    }
    firing_ = false;
    if (!heap_.empty()) {
      Arm(heap_.top().at_ns);
    } else {
      armed_ns_ = 0;
    }
  }

  // Writes (or queues) bytes; false if the connection was closed.
  bool Send(Conn& c, const std::string& bytes) {
    c.out += bytes;
    return Flush(c);
  }
  bool Flush(Conn& c) {
    while (!c.out.empty()) {
      ssize_t w = write(c.fd, c.out.data(), c.out.size());
      if (w > 0) {
        c.out.erase(0, static_cast<size_t>(w));
        continue;
      }
      if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!c.want_out) Mod(c.fd, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
        c.want_out = true;
        return true;
      }
      Close(c.fd);
      return false;
    }
    if (c.want_out) Mod(c.fd, EPOLLIN | EPOLLRDHUP);
    c.want_out = false;
    if (c.close_after_write) {
      Close(c.fd);
      return false;
    }
    return true;
  }

  int listen_fd_;
  int ep_;
  int timer_;
  int64_t armed_ns_ = 0;
  bool firing_ = false;
  uint64_t next_id_ = 0;
  long tokens_sent_ = 0;
  long streams_ = 0;
  long active_ = 0;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> heap_;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  const char* port_file = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--port" && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else if (a == "--port-file" && i + 1 < argc) {
      port_file = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s --port N [--port-file FILE]\n", argv[0]);
      return 2;
    }
  }
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || listen(fd, 4096) < 0) {
    std::perror("relay_upstream: bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int bound = ntohs(addr.sin_port);
  if (port_file) {
    std::string tmp = std::string(port_file) + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", bound);
      std::fclose(f);
      std::rename(tmp.c_str(), port_file);
    }
  }
  std::printf("listening on 127.0.0.1:%d\n", bound);
  std::fflush(stdout);
  Upstream up(fd);
  up.Run();
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::printf("{\"tokens_sent\": %ld, \"streams\": %ld, \"cpu_s\": %.3f}\n", up.tokens_sent(),
              up.streams(), cpu);
  return 0;
}
