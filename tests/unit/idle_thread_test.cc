// RunAtIdlePriority: the work runs below every normal thread, the caller keeps its own
// priority, and an exception reaches the caller.
#include "lib/core/idle_thread.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <thread>

namespace ragstream {
namespace {

bool Idle() {
  return sched_getscheduler(0) == SCHED_IDLE ||
         getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())) == 19;
}

BOOST_AUTO_TEST_SUITE(idle_thread_test)

BOOST_AUTO_TEST_CASE(work_and_its_threads_run_idle_and_the_caller_does_not) {
  const int policy = sched_getscheduler(0);
  const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  bool ran = false, idle = false, child_idle = false;
  RunAtIdlePriority([&] {
    ran = true;
    idle = Idle();
    std::thread child([&] { child_idle = Idle(); });
    child.join();
  });
  BOOST_TEST(ran);
  BOOST_TEST(idle);
  BOOST_TEST(child_idle);
  BOOST_TEST(sched_getscheduler(0) == policy);
  BOOST_TEST(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())) == nice);
  BOOST_TEST(!Idle());
}

BOOST_AUTO_TEST_CASE(an_exception_reaches_the_caller) {
  BOOST_CHECK_THROW(RunAtIdlePriority([] { throw std::runtime_error("no"); }), std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream
