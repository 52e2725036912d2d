// RunAtLowestPriority: the work and its threads run at nice 19, the caller keeps its own
// priority, and an exception reaches the caller.
#include "lib/core/low_priority.h"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <thread>

namespace ragstream {
namespace {

int Nice() {
  return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
}

BOOST_AUTO_TEST_SUITE(low_priority_test)

BOOST_AUTO_TEST_CASE(work_and_its_threads_run_at_nice_19_and_the_caller_does_not) {
  const int before = Nice();
  int inside = 0, child = 0;
  bool ran = false;
  RunAtLowestPriority([&] {
    ran = true;
    inside = Nice();
    std::thread t([&] { child = Nice(); });
    t.join();
  });
  BOOST_TEST(ran);
  BOOST_TEST(inside == 19);
  BOOST_TEST(child == 19);
  BOOST_TEST(Nice() == before);
}

BOOST_AUTO_TEST_CASE(an_exception_reaches_the_caller) {
  BOOST_CHECK_THROW(RunAtLowestPriority([] { throw std::runtime_error("no"); }),
                    std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream
