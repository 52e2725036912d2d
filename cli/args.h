// Command-line parsing for the ragstream client: a table of commands (each with its usage,
// help text and options), and a parser that accepts the global options anywhere, `--opt V`
// and `--opt=V`, `--` to end options, and `--help` / `-h` on every command.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ragstream::cli {

// Exit codes of every command.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;  // a request failed (or a file, or the backup)
constexpr int kExitUsage = 2;   // bad command line

struct OptionSpec {
  std::string_view name;        // "--top-k"
  std::string_view value_name;  // "N"; empty for a flag
  std::string_view help;
};

struct CommandSpec {
  std::string_view name;  // "ask", "conversations list"
  std::string_view args;  // positional arguments in the usage line: "\"question\""
  size_t min_args = 0;
  size_t max_args = 0;  // kUnlimited for any number
  std::string_view summary;
  std::string_view details;  // more help, printed after the options (may be empty)
  std::vector<OptionSpec> options;
};

constexpr size_t kUnlimited = static_cast<size_t>(-1);

// Every command, in the order of the top-level help.
const std::vector<CommandSpec>& Commands();
// The options every command accepts (--url, --api-key, --help).
const std::vector<OptionSpec>& GlobalOptions();

struct ParsedArgs {
  const CommandSpec* command = nullptr;  // null: no command (top-level --help / --version)
  std::string group;                     // "conversations" for `conversations --help`
  bool help = false;
  bool version = false;
  std::map<std::string, std::string, std::less<>> options;  // "--limit" -> "5"; flags -> ""
  std::vector<std::string> positional;

  bool Has(std::string_view name) const { return options.find(name) != options.end(); }
  std::optional<std::string> Get(std::string_view name) const;
};

struct ParseOutcome {
  ParsedArgs args;
  std::string error;  // non-empty: a usage error (exit 2)
};

ParseOutcome ParseArgs(int argc, const char* const* argv);

// The help of one command (or of a group such as "conversations"), and the top-level help.
std::string CommandHelp(const CommandSpec& spec);
std::string GroupHelp(std::string_view group);
std::string TopHelp();

// Parses a whole decimal integer in [lo, hi]; nullopt otherwise.
std::optional<long long> ParseInt(std::string_view text, long long lo, long long hi);

}  // namespace ragstream::cli
