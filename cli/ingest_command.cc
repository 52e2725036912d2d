// ragstream ingest PATH...
#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/file_walk.h"
#include "cli/format.h"
#include "cli/progress.h"

namespace ragstream::cli {
namespace {

// Far above any server's body limit: the server answers 413 with its own limit below this.
constexpr size_t kMaxFileBytes = 64 << 20;

struct Tally {
  size_t stored = 0, unchanged = 0, failed = 0;
  uint64_t bytes = 0;  // of the newly stored files
};

}  // namespace

int RunIngest(const Context& ctx) {
  FileList list = FindFiles(ctx.args.positional);
  Progress progress(list.files.size(), Progress::StderrIsTerminal());
  ApiClient client(ctx.url, ctx.api_key);
  Tally tally;
  bool unreachable = false;
  for (size_t i = 0; i < list.files.size(); ++i) {
    const FoundFile& f = list.files[i];
    const std::string shown = Clean(f.path, 300);
    progress.Update(i, f.path.substr(f.path.find_last_of('/') + 1));
    auto fail = [&](const std::string& why) {
      ++tally.failed;
      progress.Line("failed    " + shown + ": " + why, true);
    };
    if (unreachable) {
      fail("not sent (the server is unreachable)");
      continue;
    }
    if (!f.problem.empty()) {
      fail(f.problem);
      continue;
    }
    TextFile file = ReadTextFile(f.path, kMaxFileBytes);
    if (!file.problem.empty()) {
      fail(file.problem);
      continue;
    }
    std::string path = "/api/documents";
    if (std::string title = TitleFor(f.path, file.text); !title.empty()) {
      path += "?title=" + UrlEscape(title);
    }
    std::string type = std::string(ContentTypeFor(f.path)) + "; charset=utf-8";
    rapidjson::Document doc;
    auto response = client.Send("POST", path, file.text, type);
    if (Status s = JsonFromResponse(response, doc); !s.ok()) {
      if (s.code() == "unreachable") unreachable = true;
      fail(s.code() + ": " + s.message());
      continue;
    }
    const std::string id = Clean(JsonStr(doc, "id"), 64);
    auto dup = doc.FindMember("duplicate");
    if (dup != doc.MemberEnd() && dup->value.IsBool() && dup->value.GetBool()) {
      ++tally.unchanged;
      progress.Line("unchanged " + shown + " (" + id + ", already stored)", false);
    } else {
      ++tally.stored;
      tally.bytes += file.text.size();
      progress.Line("stored    " + shown + " (" + id + ", " + HumanBytes(file.text.size()) + ")",
                    false);
    }
  }
  progress.Update(list.files.size(), "");
  progress.Done();
  std::string summary = "stored " + std::to_string(tally.stored) + ", unchanged " +
                        std::to_string(tally.unchanged) + " (already stored), failed " +
                        std::to_string(tally.failed) + ", " + std::to_string(tally.bytes) +
                        " bytes";
  if (list.ignored) {
    summary += "; ignored " + std::to_string(list.ignored) + " (not .txt, .md or .markdown)";
  }
  std::printf("%s\n", summary.c_str());
  if (list.files.empty())
    std::fprintf(stderr, "ragstream: no .txt, .md or .markdown files found\n");
  return tally.failed ? kExitFailed : kExitOk;
}

}  // namespace ragstream::cli
