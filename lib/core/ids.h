// Identifiers and clocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ragstream {

// A new random id: `prefix` + 24 lowercase hex characters (96 bits from getrandom).
std::string NewId(std::string_view prefix);

// True if `id` could have come from NewId(prefix): the prefix, then 24 hex characters.
bool IsWellFormedId(std::string_view id, std::string_view prefix);

// Wall-clock milliseconds since the epoch (stored timestamps).
int64_t NowMillis();
// Monotonic milliseconds (durations, deadlines).
int64_t SteadyMillis();
// Monotonic microseconds, the same clock (per-phase timings of a request).
int64_t SteadyMicros();

}  // namespace ragstream
