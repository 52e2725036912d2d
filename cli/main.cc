// ragstream: the command-line client of a ragstream server (see `ragstream --help`).
#include <cstdio>
#include <cstdlib>
#include <map>

#include "cli/commands.h"

namespace ragstream::cli {
namespace {

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

int Main(int argc, char** argv) {
  ParseOutcome parsed = ParseArgs(argc, argv);
  ParsedArgs& args = parsed.args;
  if (args.help) {
    std::string text = args.command          ? CommandHelp(*args.command)
                       : !args.group.empty() ? GroupHelp(args.group)
                                             : TopHelp();
    std::fputs(text.c_str(), stdout);
    return kExitOk;
  }
  if (!parsed.error.empty()) {
    std::string where = args.command         ? " " + std::string(args.command->name)
                        : args.group.empty() ? std::string()
                                             : " " + args.group;
    std::fprintf(stderr, "ragstream: %s\nRun 'ragstream%s --help' for usage.\n",
                 parsed.error.c_str(), where.c_str());
    return kExitUsage;
  }
  if (args.version) {
    std::printf("ragstream %s\n", RAGSTREAM_VERSION);
    return kExitOk;
  }
  Context ctx;
  // The same default as the scripts: RAGSTREAM_URL, else the local port run.sh serves on.
  ctx.url = args.Get("--url").value_or(
      EnvOr("RAGSTREAM_URL", "http://127.0.0.1:" + EnvOr("RAGSTREAM_PORT", "8080")));
  ctx.api_key = args.Get("--api-key").value_or(EnvOr("RAGSTREAM_API_KEY", ""));
  if (ctx.url.find("://") == std::string::npos) ctx.url = "http://" + ctx.url;
  ctx.args = std::move(args);

  static const std::map<std::string_view, int (*)(const Context&)> kRun = {
      {"ingest", RunIngest},
      {"ask", RunAsk},
      {"conversations list", RunConversationsList},
      {"conversations show", RunConversationsShow},
      {"conversations export", RunConversationsExport},
      {"documents list", RunDocumentsList},
      {"documents delete", RunDocumentsDelete},
      {"backup", RunBackup},
      {"migrate", RunMigrate},
      {"stats", RunStats},
      {"cluster status", RunClusterStatus},
      {"cluster leaders", RunClusterLeaders},
      {"cluster move", RunClusterMove},
  };
  auto it = kRun.find(ctx.args.command->name);
  if (it == kRun.end()) return UsageError(ctx, "this command is not implemented");
  return it->second(ctx);
}

}  // namespace

int UsageError(const Context& ctx, const std::string& message) {
  std::string name = ctx.args.command ? " " + std::string(ctx.args.command->name) : "";
  std::fprintf(stderr, "ragstream: %s\nRun 'ragstream%s --help' for usage.\n", message.c_str(),
               name.c_str());
  return kExitUsage;
}

}  // namespace ragstream::cli

int main(int argc, char** argv) {
  return ragstream::cli::Main(argc, argv);
}
