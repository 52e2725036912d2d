#include "lib/core/low_priority.h"

#include <sys/resource.h>
#include <unistd.h>

#include <exception>
#include <system_error>
#include <thread>

namespace ragstream {

void RunAtLowestPriority(const std::function<void()>& work) {
  std::exception_ptr failed;
  std::thread low;
  try {
    low = std::thread([&] {
      setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
      try {
        work();
      } catch (...) {
        failed = std::current_exception();
      }
    });
  } catch (const std::system_error&) {
    work();  // no thread to be had (a task limit): at this thread's own priority
    return;
  }
  low.join();
  if (failed) std::rethrow_exception(failed);
}

}  // namespace ragstream
