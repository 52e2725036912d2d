// The FastCGI worker loop: a pool of threads, each accepting one request at a time with
// FCGX_Accept_r and handing it to the handler.
//
// Accepting is serialised: one thread at a time waits on the listening socket (poll with a
// short timeout) and accepts, so a new connection wakes one thread rather than the whole
// pool; the request itself is then read outside the lock, with a receive timeout, so a slow
// peer holds up only its own thread. The listening socket is non-blocking, so a connection
// another process took first is EAGAIN rather than a blocked thread. Stopping takes what is
// already waiting, then closes this process's descriptor (see StopAccepting).
#pragma once

#include <fcgiapp.h>
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "lib/core/http.h"
#include "lib/core/status.h"

namespace ragstream::fcgi {

struct ServerOptions {
  int listen_fd = 0;
  int threads = 256;
  size_t stack_bytes = 256 * 1024;
  uint64_t max_body_bytes = 1 << 20;
  // The body limit of a request, chosen from its method and path (nullptr: max_body_bytes
  // for all); the result is capped at max_body_bytes.
  std::function<uint64_t(const HttpRequest&)> body_limit = nullptr;
  // Admission control: when every request thread is busy, a waiting connection gets this
  // long for one to free up, then a 503 with Retry-After (overloaded) from a thread of its
  // own, so no client waits silently in the backlog. -1 turns it off.
  int queue_wait_ms = 100;
  // Called once per request turned away, with its path (for metrics).
  std::function<void(std::string_view path)> on_rejected = nullptr;
};

// Called for every request, on a pool thread. `read_status` is not Ok when the body could
// not be read (too large, short); the handler answers it.
using RequestHandler =
    std::function<void(const Status& read_status, HttpRequest& req, HttpResponse& res)>;

// Opens a listening socket for "unix:PATH" or "HOST:PORT" / ":PORT". Returns the fd.
Result<int> OpenListenSocket(const std::string& spec, int backlog = 1024);

class Server {
 public:
  Server(ServerOptions options, RequestHandler handler);
  ~Server();

  // Starts the pool. Call with SIGTERM/SIGINT blocked so the threads inherit the mask.
  Status Start();
  // Stops waiting for new requests; running ones go on. Connections already waiting in the
  // backlog are still taken and served (for up to `drain_ms`), since the front-end has sent
  // them here and would answer 502 if they were reset. Once the backlog is empty the
  // process's listening descriptor is closed, so a front-end connecting to a socket only this
  // process listened on is refused at once and moves to another worker. (A socket systemd
  // holds stays open in systemd, and its backlog waits for the replacement.)
  void StopAccepting(int drain_ms = 0);
  // Requests turned away with 503 because every thread was busy.
  uint64_t rejected() const { return rejected_.load(); }
  // Waits until no request is running and, once stopping, the backlog has been taken, or
  // `timeout_ms` passes; returns how many requests still run.
  int WaitIdle(int timeout_ms);
  // Joins every thread (after StopAccepting; running requests must end on their own).
  void Join();
  int active() const { return active_.load(); }

 private:
  void ThreadMain();
  // The admission thread: answers 503 overloaded while every request thread is busy.
  void AdmissionMain();
  static void* AdmissionEntry(void* self);
  // Under accept_mutex_: the next connection's descriptor, or -1 when the thread should end.
  int AcceptConnection();
  static void* ThreadEntry(void* self);

  ServerOptions options_;
  RequestHandler handler_;
  std::vector<pthread_t> threads_;
  std::mutex accept_mutex_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> drain_deadline_ms_{0};
  std::atomic<bool> listener_closed_{false};  // written under accept_mutex_
  std::atomic<int> active_{0};
  std::atomic<uint64_t> rejected_{0};
  std::mutex idle_mutex_;
  std::condition_variable idle_cv_;
};

}  // namespace ragstream::fcgi
