// Background computation that only takes CPU nothing else wants.
#pragma once

#include <functional>

namespace ragstream {

// Runs `work` on a new thread scheduled SCHED_IDLE (nice 19 where that is refused) and waits
// for it; threads it starts inherit the policy. For work that holds no lock others wait on:
// an unprivileged thread cannot raise its priority again, so a write transaction (LMDB's one
// write lock) must never be taken inside `work`, or every writer would wait on a thread the
// scheduler starves. Exceptions thrown by `work` are rethrown here.
void RunAtIdlePriority(const std::function<void()>& work);

}  // namespace ragstream
