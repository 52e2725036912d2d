// The commands of the ragstream client. Each returns the process exit code (kExitOk,
// kExitFailed; usage errors are reported by main before a command runs, except value
// checks, which return kExitUsage after printing the problem).
#pragma once

#include <string>

#include "cli/args.h"

namespace ragstream::cli {

struct Context {
  ParsedArgs args;
  std::string url;      // --url, $RAGSTREAM_URL, or the local default
  std::string api_key;  // --api-key or $RAGSTREAM_API_KEY; may be empty
};

// Prints "ragstream: MESSAGE" and the hint to run the command's --help; returns kExitUsage.
int UsageError(const Context& ctx, const std::string& message);

int RunIngest(const Context& ctx);
int RunAsk(const Context& ctx);
int RunConversationsList(const Context& ctx);
int RunConversationsShow(const Context& ctx);
int RunConversationsExport(const Context& ctx);
int RunDocumentsList(const Context& ctx);
int RunDocumentsDelete(const Context& ctx);
int RunBackup(const Context& ctx);
int RunMigrate(const Context& ctx);
int RunStats(const Context& ctx);
int RunClusterStatus(const Context& ctx);
int RunClusterLeaders(const Context& ctx);
int RunClusterMove(const Context& ctx);

}  // namespace ragstream::cli
