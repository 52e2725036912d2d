// Logging: one JSON object per line on stderr (journald keeps it). Lines are written with a
// single write(2) so lines from concurrent threads and processes do not interleave.
// Never pass a secret or a document's text as a field.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ragstream {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Parses "debug|info|warn|error"; false if unknown.
bool ParseLogLevel(std::string_view text, LogLevel& out);
const char* LogLevelName(LogLevel level);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

using LogValue = std::variant<std::string_view, int64_t, double, bool>;
using LogField = std::pair<std::string_view, LogValue>;

// {"ts": "...", "level": "...", "component": ..., "msg": ..., fields...}
void Log(LogLevel level, std::string_view component, std::string_view msg,
         std::initializer_list<LogField> fields = {});

inline void LogInfo(std::string_view component, std::string_view msg,
                    std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, component, msg, fields);
}
inline void LogWarn(std::string_view component, std::string_view msg,
                    std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kWarn, component, msg, fields);
}
inline void LogError(std::string_view component, std::string_view msg,
                     std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, component, msg, fields);
}

}  // namespace ragstream
