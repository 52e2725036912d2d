#include "lib/core/random.h"

#include <sys/random.h>

#include <chrono>

namespace ragstream {
namespace {

uint64_t Seed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed)) {
    static thread_local int here;
    seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
           reinterpret_cast<uintptr_t>(&here);
  }
  return seed;
}

}  // namespace

uint64_t FastRandom() {
  thread_local uint64_t state = Seed();
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace ragstream
