// Text helpers for the client's output: cleaning server text before it reaches a terminal,
// times, sizes, tables, JSON field access, and the one way errors are printed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "lib/core/status.h"

namespace ragstream::cli {

std::string AsciiLower(std::string_view s);

// One line of at most `max_chars` code points: runs of whitespace (newlines included) become
// one space, other control characters (terminal escapes) are dropped, invalid UTF-8 is
// replaced, and a cut text ends with "…".
std::string Clean(std::string_view text, size_t max_chars);

// Multi-line text for a terminal: control characters other than '\n' and '\t' dropped,
// invalid UTF-8 replaced.
std::string CleanBlock(std::string_view text);

// The string member `key` of `obj`, or "" when absent or not a string (also when `obj` is
// not an object). The view lives as long as `obj`.
std::string_view JsonStr(const rapidjson::Value& obj, const char* key);
// The integer member `key`, or `fallback`.
int64_t JsonInt(const rapidjson::Value& obj, const char* key, int64_t fallback = 0);
// The number member `key` (integer or not), or `fallback`.
double JsonNumber(const rapidjson::Value& obj, const char* key, double fallback = 0);
// The array member `key`, or null.
const rapidjson::Value* JsonArray(const rapidjson::Value& obj, const char* key);

// "2024-05-01 12:34" in local time, from milliseconds since the epoch ("-" for 0).
std::string LocalTime(int64_t epoch_ms);
// "812 B", "1.5 KiB", "3.2 MiB", ...
std::string HumanBytes(uint64_t bytes);

// Columns padded to their widest cell (in code points); the last column is not padded.
void PrintTable(std::FILE* out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// Prints "ragstream: code: message" on stderr and returns kExitFailed.
int PrintFailure(const Status& status);

}  // namespace ragstream::cli
