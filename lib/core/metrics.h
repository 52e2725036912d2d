// Host-wide metrics: every worker process of the host counts into its own slot of one
// memory-mapped file (RAGSTREAM_DATA_DIR/metrics-v1.shm), and whichever worker answers
// GET /metrics sums all the slots, so the totals cover every process.
//
// - A slot belongs to a live process through an fcntl lock on one byte of the file (the
//   kernel drops it when the process dies, even by SIGKILL); a new process takes a free slot
//   and keeps its counters, so host totals never go backwards when a worker restarts, and
//   zeroes its gauges (the dead process's streams are gone).
// - Counters are lock-free 64-bit atomics, which are address-free on the platforms we run on,
//   so they work across processes sharing the mapping.
// - Labels are fixed enumerations (routes of the API, status codes, upstream error kinds), so
//   the layout is fixed; a layout change gets a new file name.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

namespace ragstream {

class Metrics {
 public:
  // Opens (creating) the shared file and takes a free slot. Unavailable if all slots are
  // held by live processes.
  static Result<std::unique_ptr<Metrics>> Open(const std::string& path, int slots = 64);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // `route` is the route pattern the router matched ("(unmatched)" and others count as
  // "other").
  void CountRequest(std::string_view route, int status);
  void StreamStarted();
  void StreamEnded(double seconds);
  void TimeToFirstToken(double seconds);
  void Retrieval(double seconds);
  void TokensRelayed(uint64_t tokens);
  // `kind`: rate_limited, server_error, auth, rejected, timeout, unreachable, cut,
  // stream_error or other.
  void UpstreamError(std::string_view kind);
  void DisconnectCancel();
  void MapGrown();
  // Early model calls stopped before any of their answer was used (ChatService).
  void ModelCallsDropped(uint64_t calls);
  // Whether `route` (a route pattern) has counters of its own rather than "other".
  static bool CountsRoute(std::string_view route);

  // Prometheus text format (version 0.0.4) of the host totals, with `extra` lines (gauges
  // the caller knows, e.g. the LMDB map use) appended.
  std::string Render(const std::string& extra = "") const;

  int slot() const { return slot_; }

  struct Layout;  // the shared file's layout (metrics.cc)

 private:
  Metrics(int fd, void* map, size_t bytes, int slot, int slots);
  int fd_;
  void* map_;
  size_t bytes_;
  int slot_;
  int slots_;
};

// The upstream error kind of an error code from the chat client and its HTTP status.
std::string_view UpstreamErrorKind(std::string_view code, int http_status);

}  // namespace ragstream
