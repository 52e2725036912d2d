// Fast non-cryptographic random numbers for jitter and the like: one 8-byte state per
// thread (a std::mt19937 thread_local would put 2.5-5 KiB of TLS into every one of the
// thousands of request threads). Ids use getrandom() instead (lib/core/ids.h).
#pragma once

#include <cstdint>

namespace ragstream {

// splitmix64, seeded per thread from getrandom() (or the clock and the thread's address).
uint64_t FastRandom();

}  // namespace ragstream
