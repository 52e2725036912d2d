// Background computation that yields the CPU to everything else.
#pragma once

#include <functional>

namespace ragstream {

// Runs `work` on a new thread at nice 19 and waits for it; threads it starts inherit the nice
// value. Nice 19 rather than SCHED_IDLE: a thread the scheduler may starve outright can be
// preempted while it holds a lock others need (the allocator's, the kernel's mmap lock), and
// nice 19 still gets a small share. An unprivileged thread cannot raise its priority again, so
// `work` must not take locks others wait on for long: never a write transaction (LMDB's one
// write lock). Exceptions thrown by `work` are rethrown here; if no thread can be started,
// `work` runs on the caller's thread.
void RunAtLowestPriority(const std::function<void()>& work);

}  // namespace ragstream
