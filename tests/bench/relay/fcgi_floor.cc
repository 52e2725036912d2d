// relay_floor: the least a FastCGI relay of this architecture can do, for the benchmark only.
//
// A POST is answered by opening one HTTP/1.1 connection to the upstream's streaming
// /v1/chat/completions and relaying each content delta to the client as an SSE event
// (`id: N` + `data: {"token":"...","done":false}`), flushed per event, then a done event.
// No store, no retrieval, no prompt, no JSON library: the upstream's content string is copied
// as it is (it is already JSON-escaped). Anything but a POST gets a small 200 (the stack's
// readiness probe).
//
// Concurrency model: the same as ragstream-worker (lib/fcgi/server.cc), so that "nginx +
// floor" against "nginx + ragstream" isolates ragstream's own work: a pool of threads, each
// taking one FastCGI connection at a time with FCGX_Accept_r (under a mutex) and serving it
// with blocking reads and writes; one thread per stream. Stacks are small (the settings
// below), and the read buffer is on the stack.
//
// Usage: relay_floor --listen unix:PATH     (what scripts/stack.sh passes to RAGSTREAM_BIN)
// Environment: OPENAI_BASE_URL (http://127.0.0.1:PORT/v1), RAGSTREAM_THREADS (256),
// RAGSTREAM_THREAD_STACK_KB (256).
#include <arpa/inet.h>
#include <fcgiapp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::mutex g_accept_mutex;

void OnTerm(int) {
  _exit(0);
}
int g_listen_fd = -1;
sockaddr_in g_upstream{};
std::string g_upstream_host;  // for the Host header
std::string g_upstream_path;  // .../chat/completions

int Env(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// Parses http://HOST:PORT/PATH (numeric IPv4 host: loopback only).
bool ParseBaseUrl(const char* url) {
  std::string_view u = url ? url : "";
  if (u.substr(0, 7) != "http://") return false;
  u.remove_prefix(7);
  size_t slash = u.find('/');
  std::string_view hostport = u.substr(0, slash);
  std::string path = slash == std::string_view::npos ? "" : std::string(u.substr(slash));
  while (!path.empty() && path.back() == '/') path.pop_back();
  size_t colon = hostport.find(':');
  std::string host(hostport.substr(0, colon));
  int port = colon == std::string_view::npos
                 ? 80
                 : std::atoi(std::string(hostport.substr(colon + 1)).c_str());
  if (host == "localhost") host = "127.0.0.1";
  g_upstream.sin_family = AF_INET;
  g_upstream.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &g_upstream.sin_addr) != 1) return false;
  g_upstream_host = std::string(hostport);
  g_upstream_path = path + "/chat/completions";
  return true;
}

// The raw (still JSON-escaped) string value of "key" in a flat JSON text, or empty.
std::string_view JsonStringField(std::string_view json, std::string_view quoted_key) {
  size_t k = json.find(quoted_key);
  if (k == std::string_view::npos) return {};
  size_t q = json.find('"', json.find(':', k + quoted_key.size()) + 1);
  if (q == std::string_view::npos) return {};
  size_t end = q + 1;
  while (end < json.size() && json[end] != '"') end += json[end] == '\\' ? 2 : 1;
  if (end >= json.size()) return {};
  return json.substr(q + 1, end - q - 1);
}

int ContentLength(FCGX_Request& req) {
  const char* v = FCGX_GetParam("CONTENT_LENGTH", req.envp);
  return v ? std::atoi(v) : 0;
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t w = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (w <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(w));
  }
  return true;
}

// Relays one upstream stream to the FastCGI client. Returns false if the client left.
class Relay {
 public:
  explicit Relay(FCGX_Request& req) : req_(req) {}

  void Serve() {
    std::string body;
    int length = ContentLength(req_);
    if (length > 0 && length <= (1 << 20)) {
      body.resize(static_cast<size_t>(length));
      body.resize(static_cast<size_t>(std::max(0, FCGX_GetStr(body.data(), length, req_.in))));
    }
    std::string_view message = JsonStringField(body, "\"message\"");
    std::string upstream_body =
        "{\"model\":\"fake-model\",\"stream\":true,\"messages\":[{\"role\":\"user\","
        "\"content\":\"" +
        std::string(message) + "\"}]}";
    std::string request = "POST " + g_upstream_path + " HTTP/1.1\r\nHost: " + g_upstream_host +
                          "\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n"
                          "Connection: close\r\nContent-Length: " +
                          std::to_string(upstream_body.size()) + "\r\n\r\n" + upstream_body;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&g_upstream), sizeof g_upstream) ||
        !WriteAll(fd, request)) {
      if (fd >= 0) close(fd);
      FCGX_PutS(
          "Status: 502 Bad Gateway\r\nContent-Type: application/json\r\n\r\n"
          "{\"error\":{\"code\":\"upstream\"}}",
          req_.out);
      return;
    }
    FCGX_PutS(
        "Status: 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\nretry: 3000\n\n",
        req_.out);
    bool ok = FCGX_FFlush(req_.out) >= 0;
    char buf[16384];
    while (ok && !finished_) {
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r <= 0) break;
      ok = Feed(std::string_view(buf, static_cast<size_t>(r)));
    }
    close(fd);
    if (ok) Event("{\"token\":null,\"done\":true}");
  }

 private:
  // The upstream's bytes: HTTP head, then chunked framing around SSE lines.
  bool Feed(std::string_view data) {
    if (!head_done_) {
      head_.append(data);
      size_t end = head_.find("\r\n\r\n");
      if (end == std::string::npos) return true;
      head_done_ = true;
      chunked_ = head_.find("chunked") < end;
      std::string rest = head_.substr(end + 4);
      head_.clear();
      return Feed(rest);
    }
    if (!chunked_) return Body(data);
    while (!data.empty()) {
      if (chunk_left_ > 0) {
        size_t take = std::min(chunk_left_, data.size());
        if (!Body(data.substr(0, take))) return false;
        data.remove_prefix(take);
        chunk_left_ -= take;
        if (chunk_left_ == 0) skip_crlf_ = true;
        continue;
      }
      size_t nl = data.find('\n');
      size_line_.append(data.substr(0, nl));
      if (nl == std::string_view::npos) return true;
      data.remove_prefix(nl + 1);
      if (skip_crlf_) {  // the CRLF that ends a chunk's data
        skip_crlf_ = false;
        size_line_.clear();
        continue;
      }
      chunk_left_ = std::strtoul(size_line_.c_str(), nullptr, 16);
      size_line_.clear();
      if (chunk_left_ == 0) {
        finished_ = true;
        return true;
      }
    }
    return true;
  }

  bool Body(std::string_view data) {
    while (!data.empty()) {
      size_t nl = data.find('\n');
      if (nl == std::string_view::npos) {
        line_.append(data);
        return true;
      }
      line_.append(data.substr(0, nl));
      data.remove_prefix(nl + 1);
      bool ok = Line(line_);
      line_.clear();
      if (!ok) return false;
    }
    return true;
  }

  bool Line(std::string_view line) {
    if (line.substr(0, 6) != "data: ") return true;
    std::string_view d = line.substr(6);
    if (d.substr(0, 6) == "[DONE]") {
      finished_ = true;
      return true;
    }
    if (d.find("\"content\"") == std::string_view::npos) return true;
    std::string_view content = JsonStringField(d, "\"content\"");
    if (content.empty()) return true;  // the role chunk
    event_ = "{\"token\":\"";
    event_.append(content).append("\",\"done\":false}");
    return Event(event_);
  }

  bool Event(std::string_view data) {
    char id[48];
    int n = std::snprintf(id, sizeof id, "id: %d\ndata: ", next_id_++);
    FCGX_PutStr(id, n, req_.out);
    FCGX_PutStr(data.data(), static_cast<int>(data.size()), req_.out);
    FCGX_PutStr("\n\n", 2, req_.out);
    return FCGX_FFlush(req_.out) >= 0;  // a failed flush: the client (nginx) left
  }

  FCGX_Request& req_;
  bool head_done_ = false, chunked_ = false, finished_ = false, skip_crlf_ = false;
  size_t chunk_left_ = 0;
  int next_id_ = 0;
  std::string head_, size_line_, line_, event_;
};

void* ThreadMain(void*) {
  FCGX_Request req;
  FCGX_InitRequest(&req, g_listen_fd, 0);
  while (true) {
    int rc;
    {
      std::lock_guard lock(g_accept_mutex);
      rc = FCGX_Accept_r(&req);
    }
    if (rc < 0) break;
    const char* method = FCGX_GetParam("REQUEST_METHOD", req.envp);
    if (method && std::strcmp(method, "POST") == 0) {
      Relay(req).Serve();
    } else {
      FCGX_PutS("Status: 200 OK\r\nContent-Type: application/json\r\n\r\n{\"ok\":true}\n", req.out);
    }
    FCGX_Finish_r(&req);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--listen") == 0) listen = argv[++i];
  }
  if (listen.rfind("unix:", 0) != 0 || !ParseBaseUrl(std::getenv("OPENAI_BASE_URL"))) {
    std::fprintf(stderr, "usage: OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 %s --listen unix:PATH\n",
                 argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  std::string path = listen.substr(5);
  unlink(path.c_str());
  if (FCGX_Init() != 0) return 1;
  // libfcgi installs a SIGTERM handler that only flags a shutdown for the next accept; the
  // threads wait inside accept(), so SIGTERM ends the process here, with status 0.
  signal(SIGTERM, OnTerm);
  g_listen_fd = FCGX_OpenSocket(path.c_str(), 4096);
  if (g_listen_fd < 0) {
    std::perror("relay_floor: listen");
    return 1;
  }
  int threads = std::max(1, Env("RAGSTREAM_THREADS", 256));
  size_t stack = static_cast<size_t>(std::max(64, Env("RAGSTREAM_THREAD_STACK_KB", 256))) * 1024;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack);
  std::vector<pthread_t> pool;
  for (int i = 0; i < threads; ++i) {
    pthread_t t;
    if (pthread_create(&t, &attr, ThreadMain, nullptr) != 0) {
      std::perror("relay_floor: pthread_create");
      return 1;
    }
    pool.push_back(t);
  }
  pthread_attr_destroy(&attr);
  // SIGTERM ends the process: the benchmark does not need a drain.
  for (pthread_t t : pool) pthread_join(t, nullptr);
  return 0;
}
