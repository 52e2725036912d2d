// relay_client: opens N concurrent streaming chat requests and records, for every token, the
// delay between the upstream stamping it (content "|<CLOCK_REALTIME seconds>|", see
// upstream.cc and tests/fake_openai stamp_content) and its arrival here.
//
// The same job as tests/bench/stream_load.py, in C++ with epoll, so that the client costs a
// few microseconds per event and can be split over threads: on a 2-core host shared with
// nginx, the workers and the upstream, a Python asyncio client needs a large share of a core
// at thousands of streams and would measure itself. Loopback only; stops by itself.
//
//   relay_client --port P --streams N [--tokens 20] [--gap-ms 100] [--ramp-ms 2000]
//                [--direct] [--path /api/chat/message/stream] [--threads 1]
//                [--timeout 60] [--ready-file F]
//
// --direct sends an OpenAI chat-completions request (to the upstream itself); otherwise the
// ragstream body {"message": ...}. --ready-file is written once every stream has received a
// token (all streams open and mid-answer). Prints one JSON line of results.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

struct Options {
  int port = 0;
  int streams = 100;
  int tokens = 20;
  int gap_ms = 100;
  int ramp_ms = 2000;
  int threads = 1;
  double timeout_s = 60;
  bool direct = false;
  std::string path = "/api/chat/message/stream";
  std::string ready_file;
};

double RealSeconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double MonoSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Outcome {
  long complete = 0, incomplete = 0, timeout = 0, connect_failed = 0, bad_status = 0;
};

std::atomic<int> g_streams_with_token{0};

struct Stream {
  int index = 0;
  int fd = -1;
  bool sent = false;
  bool head_done = false;
  bool chunked = false;
  int status = 0;
  bool done = false;
  bool counted_token = false;
  bool first_event = false;
  int tokens = 0;
  double deadline = 0;
  double started = 0;  // monotonic, when the request was sent
  std::string head;    // response head until \r\n\r\n
  std::string line;    // the SSE line being read
  // chunked decoding
  enum { kSize, kData, kDataEnd, kTrailer } cstate = kSize;
  size_t chunk_left = 0;
  std::string size_line;
};

class Worker {
 public:
  Worker(const Options& o, int first, int step, double t0)
      : o_(o), first_(first), step_(step), t0_(t0) {}

  void Run() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    std::vector<int> todo;
    for (int i = first_; i < o_.streams; i += step_) todo.push_back(i);
    streams_.resize(todo.size());
    delays_.reserve(todo.size() * static_cast<size_t>(o_.tokens));
    size_t next = 0, open = 0;
    std::vector<epoll_event> events(1024);
    while (next < todo.size() || open > 0) {
      double now = MonoSeconds();
      while (next < todo.size() &&
             t0_ + o_.ramp_ms / 1000.0 * todo[next] / std::max(1, o_.streams) <= now) {
        Stream& s = streams_[next];
        s.index = todo[next];
        s.deadline = now + o_.timeout_s;
        if (Connect(s, next)) ++open;
        ++next;
      }
      int wait_ms = 200;
      if (next < todo.size()) {
        double at = t0_ + o_.ramp_ms / 1000.0 * todo[next] / std::max(1, o_.streams);
        wait_ms = std::clamp(static_cast<int>((at - now) * 1000.0) + 1, 0, 200);
      }
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), wait_ms);
      for (int i = 0; i < n; ++i) {
        Stream& s = streams_[events[i].data.u64];
        if (s.fd < 0) continue;
        if (!OnEvent(s, events[i].events)) {
          Finish(s);
          --open;
        }
      }
      now = MonoSeconds();
      if (now >= next_timeout_check_) {
        next_timeout_check_ = now + 0.5;
        for (Stream& s : streams_) {
          if (s.fd >= 0 && now > s.deadline) {
            ++out_.timeout;
            Finish(s);
            --open;
          }
        }
      }
    }
    close(ep_);
  }

  const Outcome& outcome() const { return out_; }
  const std::vector<float>& delays() const { return delays_; }
  const std::vector<float>& first_event_ms() const { return first_event_ms_; }

 private:
  std::string Request(int i) const {
    std::string directive = "[[fake: tokens=" + std::to_string(o_.tokens) +
                            ", gap_ms=" + std::to_string(o_.gap_ms) + ", stamp_content]]";
    std::string body, path;
    if (o_.direct) {
      body =
          "{\"model\":\"fake-model\",\"stream\":true,\"messages\":[{\"role\":\"user\","
          "\"content\":\"q" +
          std::to_string(i) + " " + directive + "\"}]}";
      path = "/v1/chat/completions";
    } else {
      body = "{\"message\":\"load question " + std::to_string(i) + " " + directive + "\"}";
      path = o_.path;
    }
    return "POST " + path +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }

  bool Connect(Stream& s, size_t slot) {
    s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) {
      ++out_.connect_failed;
      return false;
    }
    int one = 1;
    setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(o_.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (rc < 0 && errno != EINPROGRESS) {
      ++out_.connect_failed;
      close(s.fd);
      s.fd = -1;
      return false;
    }
    epoll_event e{};
    e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    e.data.u64 = slot;
    epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &e);
    return true;
  }

  // False when the stream is over (closed, failed).
  bool OnEvent(Stream& s, uint32_t ev) {
    if (!s.sent && (ev & EPOLLOUT)) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        ++out_.connect_failed;
        s.done = true;  // counted as a connect failure only
        s.tokens = -1;
        return false;
      }
      std::string req = Request(s.index);
      if (write(s.fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
        ++out_.connect_failed;
        s.tokens = -1;
        return false;
      }
      s.sent = true;
      s.started = MonoSeconds();
      epoll_event e{};
      e.events = EPOLLIN | EPOLLRDHUP;
      e.data.u64 = static_cast<uint64_t>(&s - streams_.data());
      epoll_ctl(ep_, EPOLL_CTL_MOD, s.fd, &e);
    }
    if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return true;
    char buf[16384];
    while (true) {
      ssize_t r = read(s.fd, buf, sizeof buf);
      if (r > 0) {
        double arrival = RealSeconds();
        Feed(s, std::string_view(buf, static_cast<size_t>(r)), arrival);
        if (static_cast<size_t>(r) < sizeof buf) return true;
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return true;
      return false;  // EOF or error: the stream is over
    }
  }

  void Feed(Stream& s, std::string_view data, double arrival) {
    if (!s.head_done) {
      s.head.append(data);
      size_t end = s.head.find("\r\n\r\n");
      if (end == std::string::npos) return;
      s.head_done = true;
      s.status = std::atoi(s.head.c_str() + s.head.find(' ') + 1);
      std::string lower = s.head.substr(0, end);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      s.chunked = lower.find("transfer-encoding: chunked") != std::string::npos;
      std::string rest = s.head.substr(end + 4);
      s.head.clear();
      if (!rest.empty()) Feed(s, rest, arrival);
      return;
    }
    if (!s.chunked) {
      Body(s, data, arrival);
      return;
    }
    while (!data.empty()) {
      switch (s.cstate) {
        case Stream::kSize: {
          size_t nl = data.find('\n');
          s.size_line.append(data.substr(0, nl));
          if (nl == std::string_view::npos) return;
          data.remove_prefix(nl + 1);
          s.chunk_left = std::strtoul(s.size_line.c_str(), nullptr, 16);
          s.size_line.clear();
          s.cstate = s.chunk_left == 0 ? Stream::kTrailer : Stream::kData;
          break;
        }
        case Stream::kData: {
          size_t take = std::min(s.chunk_left, data.size());
          Body(s, data.substr(0, take), arrival);
          data.remove_prefix(take);
          s.chunk_left -= take;
          if (s.chunk_left == 0) s.cstate = Stream::kDataEnd;
          break;
        }
        case Stream::kDataEnd: {
          size_t nl = data.find('\n');
          if (nl == std::string_view::npos) return;
          data.remove_prefix(nl + 1);
          s.cstate = Stream::kSize;
          break;
        }
        case Stream::kTrailer:
          return;
      }
    }
  }

  void Body(Stream& s, std::string_view data, double arrival) {
    while (!data.empty()) {
      size_t nl = data.find('\n');
      if (nl == std::string_view::npos) {
        s.line.append(data);
        return;
      }
      std::string_view line;
      if (s.line.empty()) {
        line = data.substr(0, nl);
      } else {
        s.line.append(data.substr(0, nl));
        line = s.line;
      }
      Line(s, line, arrival);
      s.line.clear();
      data.remove_prefix(nl + 1);
    }
  }

  void Line(Stream& s, std::string_view line, double arrival) {
    if (line.substr(0, 6) != "data: ") return;
    if (!s.first_event) {  // time to the first event (ragstream: its meta event)
      s.first_event = true;
      first_event_ms_.push_back(static_cast<float>((MonoSeconds() - s.started) * 1000.0));
    }
    std::string_view d = line.substr(6);
    if (d.substr(0, 6) == "[DONE]" || d.find("\"done\":true") != std::string_view::npos) {
      s.done = true;
      return;
    }
    size_t bar = d.find("\"|");
    if (bar == std::string_view::npos) return;
    double sent = std::strtod(std::string(d.substr(bar + 2, 24)).c_str(), nullptr);
    if (sent <= 0) return;
    delays_.push_back(static_cast<float>((arrival - sent) * 1000.0));
    ++s.tokens;
    if (!s.counted_token) {
      s.counted_token = true;
      if (g_streams_with_token.fetch_add(1) + 1 == o_.streams && !o_.ready_file.empty()) {
        if (FILE* f = std::fopen(o_.ready_file.c_str(), "w")) std::fclose(f);
      }
    }
  }

  void Finish(Stream& s) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, s.fd, nullptr);
    close(s.fd);
    s.fd = -1;
    if (s.tokens < 0) return;  // already counted as a connect failure
    if (s.status != 200) {
      ++out_.bad_status;
    } else if (s.done && s.tokens == o_.tokens) {
      ++out_.complete;
    } else {
      ++out_.incomplete;
    }
  }

  const Options& o_;
  int first_, step_;
  double t0_;
  int ep_ = -1;
  double next_timeout_check_ = 0;
  std::vector<Stream> streams_;
  std::vector<float> delays_;
  std::vector<float> first_event_ms_;
  Outcome out_;
};

double Pct(const std::vector<float>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(sorted.size() - 1, i)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--port") {
      o.port = std::atoi(next());
    } else if (a == "--streams") {
      o.streams = std::atoi(next());
    } else if (a == "--tokens") {
      o.tokens = std::atoi(next());
    } else if (a == "--gap-ms") {
      o.gap_ms = std::atoi(next());
    } else if (a == "--ramp-ms") {
      o.ramp_ms = std::atoi(next());
    } else if (a == "--threads") {
      o.threads = std::max(1, std::atoi(next()));
    } else if (a == "--timeout") {
      o.timeout_s = std::atof(next());
    } else if (a == "--direct") {
      o.direct = true;
    } else if (a == "--path") {
      o.path = next();
    } else if (a == "--ready-file") {
      o.ready_file = next();
    } else {
      std::fprintf(stderr, "unknown argument %s (see the comment at the top of %s)\n", a.c_str(),
                   __FILE__);
      return 2;
    }
  }
  if (o.port <= 0) {
    std::fprintf(stderr, "--port is required\n");
    return 2;
  }
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  double t0 = MonoSeconds();
  std::vector<Worker> workers;
  workers.reserve(static_cast<size_t>(o.threads));
  for (int t = 0; t < o.threads; ++t) workers.emplace_back(o, t, o.threads, t0);
  std::vector<std::thread> threads;
  for (int t = 1; t < o.threads; ++t) threads.emplace_back([&workers, t] { workers[t].Run(); });
  workers[0].Run();
  for (auto& t : threads) t.join();
  double elapsed = MonoSeconds() - t0;

  Outcome total;
  std::vector<float> delays, first;
  for (const Worker& w : workers) {
    first.insert(first.end(), w.first_event_ms().begin(), w.first_event_ms().end());
    const Outcome& x = w.outcome();
    total.complete += x.complete;
    total.incomplete += x.incomplete;
    total.timeout += x.timeout;
    total.connect_failed += x.connect_failed;
    total.bad_status += x.bad_status;
    delays.insert(delays.end(), w.delays().begin(), w.delays().end());
  }
  std::sort(delays.begin(), delays.end());
  std::sort(first.begin(), first.end());
  double sum = 0;
  for (float d : delays) sum += d;
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::printf(
      "{\"mode\": \"%s\", \"streams\": %d, \"tokens_per_stream\": %d, \"gap_ms\": %d, "
      "\"complete\": %ld, \"incomplete\": %ld, \"timeout\": %ld, \"connect_failed\": %ld, "
      "\"bad_status\": %ld, \"tokens_measured\": %zu, \"delay_ms_p50\": %.3f, "
      "\"delay_ms_p90\": %.3f, \"delay_ms_p99\": %.3f, \"delay_ms_p999\": %.3f, "
      "\"delay_ms_max\": %.3f, \"delay_ms_mean\": %.3f, \"elapsed_s\": %.2f, "
      "\"first_event_ms_p50\": %.3f, \"first_event_ms_p99\": %.3f, \"first_event_ms_max\": %.3f, "
      "\"client_cpu_s\": %.3f, \"client_threads\": %d}\n",
      o.direct ? "direct" : "relay", o.streams, o.tokens, o.gap_ms, total.complete,
      total.incomplete, total.timeout, total.connect_failed, total.bad_status, delays.size(),
      Pct(delays, 50), Pct(delays, 90), Pct(delays, 99), Pct(delays, 99.9),
      delays.empty() ? 0.0 : delays.back(), delays.empty() ? 0.0 : sum / delays.size(), elapsed,
      Pct(first, 50), Pct(first, 99), first.empty() ? 0.0 : first.back(), cpu, o.threads);
  return 0;
}
