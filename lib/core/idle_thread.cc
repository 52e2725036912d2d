#include "lib/core/idle_thread.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <exception>
#include <thread>

namespace ragstream {

void RunAtIdlePriority(const std::function<void()>& work) {
  std::exception_ptr failed;
  std::thread idle([&] {
    sched_param param{};
    if (sched_setscheduler(0, SCHED_IDLE, &param) != 0) {
      setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
    }
    try {
      work();
    } catch (...) {
      failed = std::current_exception();
    }
  });
  idle.join();
  if (failed) std::rethrow_exception(failed);
}

}  // namespace ragstream
