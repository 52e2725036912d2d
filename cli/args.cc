#include "cli/args.h"

#include <algorithm>
#include <charconv>

namespace ragstream::cli {
namespace {

constexpr std::string_view kGroups[] = {"conversations", "documents", "cluster"};

bool IsGroup(std::string_view name) {
  return std::find(std::begin(kGroups), std::end(kGroups), name) != std::end(kGroups);
}

const CommandSpec* FindCommand(std::string_view name) {
  for (const auto& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const OptionSpec* FindOption(const std::vector<OptionSpec>& options, std::string_view name) {
  for (const auto& o : options) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

std::string OptionLines(const std::vector<OptionSpec>& options) {
  std::string out;
  for (const auto& o : options) {
    std::string left = "  " + std::string(o.name);
    if (!o.value_name.empty()) left += " " + std::string(o.value_name);
    left.resize(std::max<size_t>(left.size() + 2, 24), ' ');
    out += left + std::string(o.help) + "\n";
  }
  return out;
}

std::string Plural(size_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

std::string ArgCountError(const CommandSpec& spec, size_t got) {
  std::string want;
  if (spec.max_args == 0) {
    want = "no arguments";
  } else if (spec.min_args == spec.max_args) {
    want = Plural(spec.min_args, "argument");
  } else if (spec.max_args == kUnlimited) {
    want = "at least " + Plural(spec.min_args, "argument");
  } else {
    want = std::to_string(spec.min_args) + " to " + std::to_string(spec.max_args) + " arguments";
  }
  return "'ragstream " + std::string(spec.name) + "' takes " + want + " (" +
         std::string(spec.args.empty() ? "none" : spec.args) + "), got " + std::to_string(got);
}

}  // namespace

std::optional<std::string> ParsedArgs::Get(std::string_view name) const {
  auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

std::optional<long long> ParseInt(std::string_view text, long long lo, long long hi) {
  long long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < lo || v > hi) {
    return std::nullopt;
  }
  return v;
}

ParseOutcome ParseArgs(int argc, const char* const* argv) {
  ParseOutcome out;
  ParsedArgs& a = out.args;
  // --help anywhere (before "--") wins over every other problem of the command line.
  for (int i = 1; i < argc; ++i) {
    std::string_view t = argv[i];
    if (t == "--") break;
    if (t == "--help" || t == "-h") a.help = true;
  }
  auto fail = [&out](std::string message) {
    if (out.error.empty() && !out.args.help) out.error = std::move(message);
  };
  bool options_ended = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view t = argv[i];
    if (!options_ended && t == "--") {
      options_ended = true;
      continue;
    }
    if (!options_ended && t.size() > 1 && t[0] == '-') {
      std::string_view name = t;
      std::optional<std::string_view> inline_value;
      if (size_t eq = t.find('='); eq != std::string_view::npos) {
        name = t.substr(0, eq);
        inline_value = t.substr(eq + 1);
      }
      if (name == "-h") name = "--help";
      if (name == "--version" && !inline_value) {
        a.version = true;
        continue;
      }
      const OptionSpec* spec = FindOption(GlobalOptions(), name);
      if (!spec && a.command) spec = FindOption(a.command->options, name);
      if (!spec) {
        fail("unknown option '" + std::string(name) + "'" +
             (a.command ? " for 'ragstream " + std::string(a.command->name) + "'" : ""));
        continue;
      }
      std::string value;
      if (spec->value_name.empty()) {
        if (inline_value) fail("option " + std::string(name) + " takes no value");
      } else if (inline_value) {
        value = std::string(*inline_value);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        fail("option " + std::string(name) + " needs a value (" + std::string(spec->value_name) +
             ")");
      }
      a.options[std::string(name)] = value;
      continue;
    }
    if (a.command) {
      a.positional.emplace_back(t);
    } else if (a.group.empty() && IsGroup(t)) {
      a.group = std::string(t);
    } else {
      std::string name = a.group.empty() ? std::string(t) : a.group + " " + std::string(t);
      a.command = FindCommand(name);
      if (!a.command) {
        fail(a.group.empty() ? "unknown command '" + std::string(t) + "'"
                             : "unknown subcommand '" + std::string(t) + "' of '" + a.group + "'");
        break;
      }
    }
  }
  if (!out.error.empty() || a.help || a.version) return out;
  if (!a.command) {
    fail(a.group.empty() ? "no command given" : "'" + a.group + "' needs a subcommand");
    return out;
  }
  size_t n = a.positional.size();
  if (n < a.command->min_args || n > a.command->max_args) fail(ArgCountError(*a.command, n));
  return out;
}

std::string CommandHelp(const CommandSpec& spec) {
  std::string out = "Usage: ragstream " + std::string(spec.name);
  if (!spec.args.empty()) out += " " + std::string(spec.args);
  out += " [options]\n\n" + std::string(spec.summary) + ".\n";
  if (!spec.details.empty()) out += "\n" + std::string(spec.details) + "\n";
  if (!spec.options.empty()) out += "\nOptions:\n" + OptionLines(spec.options);
  out += "\nGlobal options:\n" + OptionLines(GlobalOptions());
  out += "\nExit status: 0 ok, 1 the request failed, 2 usage error.\n";
  return out;
}

std::string GroupHelp(std::string_view group) {
  std::string out = "Usage: ragstream " + std::string(group) + " COMMAND [options]\n\nCommands:\n";
  for (const auto& c : Commands()) {
    if (c.name.substr(0, group.size() + 1) != std::string(group) + " ") continue;
    std::string left = "  " + std::string(c.name.substr(group.size() + 1));
    left.resize(std::max<size_t>(left.size() + 2, 12), ' ');
    out += left + std::string(c.summary) + "\n";
  }
  out += "\nRun 'ragstream " + std::string(group) + " COMMAND --help' for its options.\n";
  return out;
}

std::string TopHelp() {
  std::string out =
      "Usage: ragstream [--url URL] [--api-key KEY] COMMAND [options]\n\n"
      "The command-line client of ragstream: it talks to the server's HTTP API only (so it\n"
      "works against a remote deployment), except 'backup', which runs on the store's host.\n\n"
      "Commands:\n";
  for (const auto& c : Commands()) {
    std::string left = "  " + std::string(c.name);
    left.resize(std::max<size_t>(left.size() + 2, 24), ' ');
    out += left + std::string(c.summary) + "\n";
  }
  out += "\nGlobal options:\n" + OptionLines(GlobalOptions());
  out += "  --version             print the version and exit\n";
  out +=
      "\nEnvironment: RAGSTREAM_URL (or RAGSTREAM_PORT), RAGSTREAM_API_KEY, RAGSTREAM_DATA_DIR "
      "(backup).\n"
      "Exit status: 0 ok, 1 a request failed, 2 usage error.\n"
      "Run 'ragstream COMMAND --help' for the options of a command.\n";
  return out;
}

}  // namespace ragstream::cli
