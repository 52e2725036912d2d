#include "lib/fcgi/server.h"

#include <arpa/inet.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "lib/core/http.h"
#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/core/log.h"
#include "lib/fcgi/fcgi_exchange.h"

namespace ragstream::fcgi {
namespace {

// The transport's own word on who connected: SO_PEERCRED on a unix socket (this process's
// user, or root), the peer's address on TCP (loopback). Nothing the peer sends counts.
bool PeerIsLocal(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  if (addr.ss_family == AF_UNIX) {
    ucred cred{};
    socklen_t cred_len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0) return false;
    return cred.uid == geteuid() || cred.uid == 0;
  }
  len = sizeof addr;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

constexpr int kAcceptPollMs = 200;
// How long a connection may take to send each piece of its request (nginx sends the whole
// request at once: this only bounds peers that stall).
constexpr int kRequestReadTimeoutS = 10;

// Finishes the FastCGI request when the handler is done, whatever happens.
struct RequestScope {
  FCGX_Request& req;
  ~RequestScope() { FCGX_Finish_r(&req); }
};

}  // namespace

Result<int> OpenListenSocket(const std::string& spec, int backlog) {
  std::string path;
  if (spec.rfind("unix:", 0) == 0) {
    path = spec.substr(5);
    ::unlink(path.c_str());  // a stale socket file from a previous run
  } else if (spec.find(':') != std::string::npos) {
    path = spec;  // libfcgi treats "host:port" / ":port" as TCP
  } else {
    return Status::InvalidArgument("invalid_listen", "--listen takes unix:PATH or HOST:PORT");
  }
  int fd = FCGX_OpenSocket(path.c_str(), backlog);
  if (fd < 0) {
    return Status::Internal("cannot listen on " + spec + ": " + std::strerror(errno));
  }
  return fd;
}

Server::Server(ServerOptions options, RequestHandler handler)
    : options_(options), handler_(std::move(handler)) {}

Server::~Server() {
  StopAccepting();
  Join();
}

Status Server::Start() {
  if (FCGX_Init() != 0) return Status::Internal("FCGX_Init failed");
  int flags = fcntl(options_.listen_fd, F_GETFL, 0);
  if (flags < 0 || fcntl(options_.listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return Status::Internal(std::string("listening socket unusable: ") + std::strerror(errno));
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, options_.stack_bytes);
  auto start = [&](void* (*entry)(void*)) {
    pthread_t t;
    int rc = pthread_create(&t, &attr, entry, this);
    if (rc != 0) return Status::Internal(std::string("cannot start thread: ") + std::strerror(rc));
    threads_.push_back(t);
    return Status::Ok();
  };
  Status started = Status::Ok();
  for (int i = 0; i < options_.threads && started.ok(); ++i) started = start(&Server::ThreadEntry);
  if (started.ok() && options_.queue_wait_ms >= 0) started = start(&Server::AdmissionEntry);
  pthread_attr_destroy(&attr);
  return started;
}

void* Server::ThreadEntry(void* self) {
  static_cast<Server*>(self)->ThreadMain();
  return nullptr;
}

void Server::ThreadMain() {
  FCGX_Request req;
  FCGX_InitRequest(&req, options_.listen_fd, 0);
  while (true) {
    int fd;
    {
      std::lock_guard lock(accept_mutex_);
      fd = AcceptConnection();
      if (fd < 0) break;
      // Counted before the lock is released, so a drain never sees the listener closed and
      // nothing running while this request is about to start.
      active_.fetch_add(1);
    }
    // libfcgi reads the begin-request and params records with blocking reads: outside the
    // accept lock, so one slow or idle peer holds up only this thread, and bounded by the
    // receive timeout. With ipcFd set and keepConnection on, FCGX_Accept_r takes this
    // connection instead of accepting one itself (its Finish step then closes nothing).
    req.ipcFd = fd;
    req.keepConnection = 1;
    if (FCGX_Accept_r(&req) == 0) {
      RequestScope scope{req};
      HttpRequest http;
      FcgiResponse res(req);
      Status read_status = ReadRequest(
          req,
          [this](const HttpRequest& r) {
            return options_.body_limit ? std::min(options_.body_limit(r), options_.max_body_bytes)
                                       : options_.max_body_bytes;
          },
          http);
      http.peer_is_local = PeerIsLocal(fd);
      // One exception firewall per request: whatever escapes becomes a 500 and a log line.
      try {
        handler_(read_status, http, res);
      } catch (const std::exception& e) {
        LogError("fcgi", "handler threw", {{"request_id", http.request_id}, {"what", e.what()}});
        if (!res.HeadersSent()) {
          WriteJson(res, 500, ErrorJson(Status::Internal("internal error")));
        }
      } catch (...) {
        LogError("fcgi", "handler threw a non-exception", {{"request_id", http.request_id}});
        if (!res.HeadersSent()) {
          WriteJson(res, 500, ErrorJson(Status::Internal("internal error")));
        }
      }
    } else {
      // A peer that never sent a valid request (or timed out): libfcgi closed it.
      LogWarn("fcgi", "dropped a connection that sent no valid FastCGI request");
    }
    if (active_.fetch_sub(1) == 1) {
      std::lock_guard lock(idle_mutex_);
      idle_cv_.notify_all();
    }
  }
  FCGX_Free(&req, 1);
}

void* Server::AdmissionEntry(void* self) {
  static_cast<Server*>(self)->AdmissionMain();
  return nullptr;
}

void Server::AdmissionMain() {
  constexpr int kIdlePollMs = 20;
  FCGX_Request req;
  FCGX_InitRequest(&req, options_.listen_fd, 0);
  int64_t full_since = -1;  // when the pool was last seen full, -1 while it is not
  while (!stopping_.load() && !listener_closed_.load()) {
    if (active_.load() < options_.threads) {
      full_since = -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(kIdlePollMs));
      continue;
    }
    if (full_since < 0) full_since = SteadyMillis();
    pollfd p{options_.listen_fd, POLLIN, 0};
    if (poll(&p, 1, kIdlePollMs) <= 0) continue;
    // Every thread is busy and a request waits. While the pool has been full for less than
    // queue_wait_ms, give it the rest of that time to free a thread (which then takes the
    // connection as usual); after that, every waiting request is turned away at once rather
    // than each waiting its own turn.
    const int64_t deadline = full_since + options_.queue_wait_ms;
    while (active_.load() >= options_.threads && SteadyMillis() < deadline && !stopping_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (active_.load() < options_.threads || stopping_.load()) continue;
    int fd = -1;
    {
      // A thread that just freed up may be accepting: leave the connection to it.
      std::unique_lock lock(accept_mutex_, std::try_to_lock);
      if (!lock.owns_lock() || listener_closed_.load()) continue;
      fd = ::accept4(options_.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    }
    if (fd < 0) continue;  // another process took it
    timeval timeout{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    req.ipcFd = fd;
    req.keepConnection = 1;
    if (FCGX_Accept_r(&req) != 0) continue;
    // Copied: the params die with FCGX_Finish_r.
    const char* uri_param = FCGX_GetParam("REQUEST_URI", req.envp);
    const char* id_param = FCGX_GetParam("REQUEST_ID", req.envp);
    const std::string uri(uri_param ? uri_param : ""), request_id(id_param ? id_param : "");
    {
      FcgiResponse res(req);
      res.AddHeader("Retry-After", "1");
      WriteJson(
          res, 503,
          ErrorJson(Status::Unavailable(
              "overloaded", "every request thread of this worker is busy; retry in a second")));
    }
    FCGX_Finish_r(&req);
    rejected_.fetch_add(1);
    std::string_view path(uri);
    path = path.substr(0, path.find('?'));
    if (options_.on_rejected) options_.on_rejected(path);
    LogWarn("fcgi", "every request thread is busy: answered 503 overloaded",
            {{"request_id", request_id},
             {"uri", path},
             {"threads", static_cast<int64_t>(options_.threads)}});
  }
  FCGX_Free(&req, 1);
}

int Server::AcceptConnection() {
  while (!listener_closed_) {
    const bool stopping = stopping_.load();
    if (stopping && SteadyMillis() >= drain_deadline_ms_.load()) break;
    pollfd p{options_.listen_fd, POLLIN, 0};
    // While stopping, only what is already waiting: no wait for new connections.
    int n = poll(&p, 1, stopping ? 0 : kAcceptPollMs);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (stopping) break;  // the backlog is empty
      continue;
    }
    int fd = ::accept4(options_.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      timeval timeout{kRequestReadTimeoutS, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      return fd;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
      continue;  // another process took it, or the peer gave up
    }
    if (stopping) break;
    // A persistent error (EMFILE, ENFILE, ENOBUFS): say so and back off rather than spin.
    LogError("fcgi", "accept failed", {{"error", std::string_view(std::strerror(errno))}});
    std::this_thread::sleep_for(std::chrono::milliseconds(kAcceptPollMs));
  }
  // Stopping and nothing is waiting (or the deadline passed): close our descriptor, so a
  // front-end is refused rather than left in a backlog nobody will accept from.
  if (!listener_closed_) {
    ::close(options_.listen_fd);
    listener_closed_ = true;
    std::lock_guard lock(idle_mutex_);
    idle_cv_.notify_all();
  }
  return -1;
}

void Server::StopAccepting(int drain_ms) {
  drain_deadline_ms_.store(SteadyMillis() + drain_ms);
  stopping_.store(true);
}

int Server::WaitIdle(int timeout_ms) {
  std::unique_lock lock(idle_mutex_);
  idle_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] {
    return active_.load() == 0 && (!stopping_.load() || listener_closed_.load());
  });
  return active_.load();
}

void Server::Join() {
  for (pthread_t t : threads_) pthread_join(t, nullptr);
  threads_.clear();
}

}  // namespace ragstream::fcgi
