#include "lib/store/write_gate.h"

#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/temp_store.h"

namespace ragstream {

using std::chrono::milliseconds;

BOOST_AUTO_TEST_SUITE(write_gate_test)

BOOST_AUTO_TEST_CASE(an_announced_writer_is_seen_by_every_process_sharing_the_directory) {
  testing::TempDir dir;
  auto mine = store::WriteGate::Open(dir.path());
  auto other = store::WriteGate::Open(dir.path());  // as another worker would
  BOOST_REQUIRE(mine.ok() && other.ok());
  BOOST_TEST((*mine)->has_slot());
  BOOST_TEST(!(*other)->AnyWaiting());
  {
    store::WriteGate::Announce waiting(mine->get());
    BOOST_TEST((*other)->AnyWaiting());
    BOOST_TEST((*mine)->AnyWaiting());
  }
  BOOST_TEST(!(*other)->AnyWaiting());
  BOOST_TEST(((*other)->YieldToWaiting(milliseconds(50)) < milliseconds(5)));
}

BOOST_AUTO_TEST_CASE(a_yield_is_bounded_while_a_writer_waits) {
  testing::TempDir dir;
  auto gate = store::WriteGate::Open(dir.path());
  BOOST_REQUIRE(gate.ok());
  store::WriteGate::Announce waiting(gate->get());
  const auto waited = (*gate)->YieldToWaiting(milliseconds(20));
  BOOST_TEST((waited >= milliseconds(20)));
  BOOST_TEST((waited < milliseconds(2000)));
}

BOOST_AUTO_TEST_CASE(a_process_that_died_announced_does_not_keep_the_gate_shut) {
  testing::TempDir dir;
  auto gate = store::WriteGate::Open(dir.path());
  BOOST_REQUIRE(gate.ok());
  const pid_t child = fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    // Announced and gone without a word, as a worker killed while it waited for the lock.
    auto its = store::WriteGate::Open(dir.path());
    if (!its.ok() || !(*its)->has_slot()) _exit(2);
    new store::WriteGate::Announce(its->get());  // never destroyed
    _exit(0);
  }
  int status = 0;
  BOOST_REQUIRE(waitpid(child, &status, 0) == child);
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_REQUIRE(WEXITSTATUS(status) == 0);
  BOOST_TEST(!(*gate)->AnyWaiting());
  // Its slot is free again: with every other slot taken, a newcomer still gets one.
  std::vector<std::unique_ptr<store::WriteGate>> others;
  for (int i = 1; i < store::WriteGate::kSlots; ++i) {
    auto another = store::WriteGate::Open(dir.path());
    BOOST_REQUIRE(another.ok());
    BOOST_TEST((*another)->has_slot());
    others.push_back(std::move(*another));
  }
  auto one_too_many = store::WriteGate::Open(dir.path());
  BOOST_REQUIRE(one_too_many.ok());
  BOOST_TEST(!(*one_too_many)->has_slot());
  BOOST_TEST(!(*gate)->AnyWaiting());
}

BOOST_AUTO_TEST_CASE(a_bulk_writer_lets_a_waiting_writer_go_before_its_next_write) {
  // An ingest commits and at once begins its next write, while a question's write (B) waits
  // for the lock. B must get it first. Without the gate the ingest's thread, still running
  // when it unlocks, usually takes the lock back before B is even woken.
  for (int round = 0; round < 5; ++round) {
    testing::TempDir dir;
    auto env = testing::OpenStoreEnv(dir.path(), 16 << 20);
    BOOST_REQUIRE(env.ok());
    const store::Env& e = **env;
    std::mutex mu;
    std::string order;
    BOOST_TEST(!e.AnswersWaitedWithin(std::chrono::seconds(5)));
    auto first = store::Txn::BeginBulkWrite(e);
    BOOST_REQUIRE(first.ok());
    std::atomic<bool> started{false};
    std::thread b([&] {
      started = true;
      auto t = store::Txn::BeginWrite(e);
      {
        std::lock_guard lock(mu);
        order += 'B';
      }
      if (t.ok()) (void)t->Commit();
    });
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(milliseconds(20));  // B is waiting for the lock
    BOOST_REQUIRE(first->Commit().ok());
    auto next = store::Txn::BeginBulkWrite(e);
    {
      std::lock_guard lock(mu);
      order += 'C';
    }
    if (next.ok()) BOOST_REQUIRE(next->Commit().ok());
    b.join();
    BOOST_TEST(order == "BC");
    // B waited: bulk writers now keep their transactions short (see Ingester).
    BOOST_TEST(e.AnswersWaitedWithin(std::chrono::seconds(5)));
    BOOST_TEST(!e.AnswersWaitedWithin(std::chrono::milliseconds(-1)));
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace ragstream
