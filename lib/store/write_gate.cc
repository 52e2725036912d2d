#include "lib/store/write_gate.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace ragstream::store {

struct WriteGate::Shared {
  std::atomic<int32_t> pid[kSlots];       // the process holding the slot; 0: free
  std::atomic<uint32_t> waiting[kSlots];  // its ordinary writers waiting for the lock
  std::atomic<int64_t> last_wait_ms;      // CLOCK_MONOTONIC (shared by every process)
};
static_assert(std::atomic<int32_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free &&
                  std::atomic<int64_t>::is_always_lock_free,
              "the gate is shared between processes: its atomics must not need a lock");

Result<std::unique_ptr<WriteGate>> WriteGate::Open(const std::string& dir) {
  const std::string path = dir + "/write_gate";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Status::Internal("cannot open " + path + ": " + std::strerror(errno));
  // Made by root (a CLI command run with sudo in a new data directory), it would shut the
  // workers out of it: it belongs to whoever owns the directory, as the store's files do.
  struct stat dir_st {};
  if (geteuid() == 0 && stat(dir.c_str(), &dir_st) == 0) {
    (void)fchown(fd, dir_st.st_uid, dir_st.st_gid);
  }
  struct stat st {};
  // A new file is zero: every slot free. Several processes may size it at once; they agree.
  if (fstat(fd, &st) != 0 ||
      (static_cast<size_t>(st.st_size) < sizeof(Shared) && ftruncate(fd, sizeof(Shared)) != 0)) {
    const int err = errno;
    close(fd);
    return Status::Internal("cannot size " + path + ": " + std::strerror(err));
  }
  void* map = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (map == MAP_FAILED) return Status::Internal("cannot map " + path + ": " + std::strerror(err));
  auto* shared = static_cast<Shared*>(map);
  const int32_t self = static_cast<int32_t>(getpid());
  int slot = -1;
  for (int i = 0; i < kSlots && slot < 0; ++i) {
    int32_t holder = shared->pid[i].load();
    const bool free = holder == 0 || (kill(holder, 0) != 0 && errno == ESRCH);
    if (free && shared->pid[i].compare_exchange_strong(holder, self)) {
      shared->waiting[i].store(0);
      slot = i;
    }
  }
  return std::unique_ptr<WriteGate>(new WriteGate(shared, slot));
}

WriteGate::~WriteGate() {
  if (slot_ >= 0) {
    shared_->waiting[slot_].store(0);
    shared_->pid[slot_].store(0);
  }
  munmap(shared_, sizeof(Shared));
}

WriteGate::Announce::Announce(const WriteGate* gate) {
  if (gate == nullptr || gate->slot_ < 0) return;
  count_ = &gate->shared_->waiting[gate->slot_];
  count_->fetch_add(1);
}

WriteGate::Announce::~Announce() {
  if (count_) count_->fetch_sub(1);
}

bool WriteGate::Dead(int slot) const {
  const int32_t holder = shared_->pid[slot].load();
  if (holder != 0 && (kill(holder, 0) == 0 || errno != ESRCH)) return false;
  shared_->waiting[slot].store(0);
  return true;
}

bool WriteGate::AnyWaiting() const {
  for (int i = 0; i < kSlots; ++i) {
    if (shared_->waiting[i].load(std::memory_order_relaxed) > 0 && !Dead(i)) return true;
  }
  return false;
}

namespace {
int64_t MonotonicMillis() {
  // steady_clock is CLOCK_MONOTONIC on Linux: one clock for every process of the host.
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void WriteGate::NoteWaited() const {
  shared_->last_wait_ms.store(MonotonicMillis(), std::memory_order_relaxed);
}

bool WriteGate::WaitedWithin(std::chrono::milliseconds window) const {
  const int64_t last = shared_->last_wait_ms.load(std::memory_order_relaxed);
  return last > 0 && MonotonicMillis() - last <= window.count();
}

std::chrono::microseconds WriteGate::YieldToWaiting(std::chrono::microseconds max_yield) const {
  const auto from = std::chrono::steady_clock::now();
  auto waited = std::chrono::microseconds(0);
  while (waited < max_yield && AnyWaiting()) {
    // An ordinary write holds the lock for a millisecond or two (one fsync): check often.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    waited = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - from);
  }
  return waited;
}

}  // namespace ragstream::store
