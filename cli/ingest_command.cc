// ragstream ingest PATH...
//
// Files go to POST /api/documents/batch as NDJSON, in batches that close at kBatchFiles files
// or kBatchBytes of text (a larger file goes alone); each file's line is printed from the
// batch's per-document results, in file order. A server without the batch route (404, or
// 405 from one that takes only GET/DELETE there) gets one POST /api/documents per file, as
// does a batch the server finds too large (413).
#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/file_walk.h"
#include "cli/format.h"
#include "cli/progress.h"
#include "lib/core/json.h"

namespace ragstream::cli {
namespace {

// Far above any server's body limit: the server answers 413 with its own limit below this.
constexpr size_t kMaxFileBytes = 64 << 20;
// A batch closes at this many files or this much text, whichever comes first.
constexpr size_t kBatchFiles = 64;
constexpr size_t kBatchBytes = 8 << 20;

struct Tally {
  size_t stored = 0, unchanged = 0, failed = 0;
  uint64_t bytes = 0;  // of the newly stored files
};

// One file of a batch: either a problem found before sending, or its text and title.
struct Entry {
  std::string path;
  std::string shown;    // the path, cleaned for printing
  std::string problem;  // non-empty: failed before sending
  std::string title;
  std::string text;
};

// What the server said about one file.
struct Outcome {
  enum Kind { kStored, kUnchanged, kFailed } kind = kFailed;
  std::string id;
  std::string why;  // kFailed: "code: message"
};

class Ingest {
 public:
  Ingest(ApiClient& client, Progress& progress) : client_(client), progress_(progress) {}

  // Sends the batch (if it holds anything to send), prints a line per entry, and empties it.
  void Flush(std::vector<Entry>& batch) {
    std::vector<Outcome> outcomes(batch.size());
    std::vector<size_t> to_send;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].problem.empty()) {
        outcomes[i].why = batch[i].problem;
      } else if (unreachable_) {
        outcomes[i].why = "not sent (the server is unreachable)";
      } else {
        to_send.push_back(i);
      }
    }
    if (!to_send.empty()) {
      if (!batch_route_ || !SendBatch(batch, to_send, outcomes)) {
        for (size_t i : to_send) {
          outcomes[i] = unreachable_
                            ? Outcome{Outcome::kFailed, "", "not sent (the server is unreachable)"}
                            : SendOne(batch[i]);
        }
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) Report(batch[i], outcomes[i]);
    batch.clear();
  }

  const Tally& tally() const { return tally_; }

 private:
  // POSTs the files of `batch` named by `to_send` as one NDJSON batch and fills their
  // outcomes. False: the server did not take the batch as such (no batch route, or a body
  // too large), so the caller sends those files one by one.
  bool SendBatch(const std::vector<Entry>& batch, const std::vector<size_t>& to_send,
                 std::vector<Outcome>& outcomes) {
    std::string body;
    for (size_t i : to_send) {
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      w.StartObject();
      if (!batch[i].title.empty()) {
        w.Key("title");
        WriteString(w, batch[i].title);
      }
      w.Key("text");
      WriteString(w, batch[i].text);
      w.EndObject();
      body.append(buf.GetString(), buf.GetSize());
      body += '\n';
    }
    auto response =
        client_.Send("POST", "/api/documents/batch", body, "application/x-ndjson; charset=utf-8");
    if (response.ok() && (response->status == 404 || response->status == 405)) {
      batch_route_ = false;  // an older server: one POST per file from now on
      return false;
    }
    // Over this server's batch limit: the files go one by one (each then gets the answer a
    // single POST gives it).
    if (response.ok() && response->status == 413) return false;
    rapidjson::Document doc;
    Status s = JsonFromResponse(response, doc);
    const rapidjson::Value* items = s.ok() ? JsonArray(doc, "documents") : nullptr;
    if (s.ok() && (!items || items->Size() != to_send.size())) {
      s = Status(ErrorKind::kInternal, "invalid_response",
                 "the server's answer to the batch does not have one result per file");
    }
    if (!s.ok()) {
      const std::string why = s.code() + ": " + s.message();
      for (size_t i : to_send) {
        outcomes[i].why = unreachable_ ? "not sent (the server is unreachable)" : why;
        if (s.code() == "unreachable") unreachable_ = true;  // as one file at a time would
      }
      return true;
    }
    for (rapidjson::SizeType k = 0; k < items->Size(); ++k) {
      const rapidjson::Value& item = (*items)[k];
      Outcome& out = outcomes[to_send[k]];
      if (!item.IsObject() || JsonInt(item, "index", -1) != static_cast<int64_t>(k)) {
        out.why = "invalid_response: the server's result for this file is not the one expected";
      } else if (auto error = item.FindMember("error"); error != item.MemberEnd()) {
        out.why = Clean(JsonStr(error->value, "code"), 100) + ": " +
                  Clean(JsonStr(error->value, "message"), 2000);
      } else {
        out = DocumentOutcome(item);
      }
    }
    return true;
  }

  // One file through POST /api/documents, as before the batch route.
  Outcome SendOne(const Entry& e) {
    std::string path = "/api/documents";
    if (!e.title.empty()) path += "?title=" + UrlEscape(e.title);
    std::string type = std::string(ContentTypeFor(e.path)) + "; charset=utf-8";
    rapidjson::Document doc;
    auto response = client_.Send("POST", path, e.text, type);
    if (Status s = JsonFromResponse(response, doc); !s.ok()) {
      if (s.code() == "unreachable") unreachable_ = true;
      return {Outcome::kFailed, "", s.code() + ": " + s.message()};
    }
    return DocumentOutcome(doc);
  }

  static Outcome DocumentOutcome(const rapidjson::Value& doc) {
    Outcome out;
    out.id = Clean(JsonStr(doc, "id"), 64);
    auto dup = doc.FindMember("duplicate");
    const bool duplicate = dup != doc.MemberEnd() && dup->value.IsBool() && dup->value.GetBool();
    out.kind = duplicate ? Outcome::kUnchanged : Outcome::kStored;
    return out;
  }

  void Report(const Entry& e, const Outcome& o) {
    switch (o.kind) {
      case Outcome::kStored:
        ++tally_.stored;
        tally_.bytes += e.text.size();
        progress_.Line(
            "stored    " + e.shown + " (" + o.id + ", " + HumanBytes(e.text.size()) + ")", false);
        break;
      case Outcome::kUnchanged:
        ++tally_.unchanged;
        progress_.Line("unchanged " + e.shown + " (" + o.id + ", already stored)", false);
        break;
      case Outcome::kFailed:
        ++tally_.failed;
        progress_.Line("failed    " + e.shown + ": " + o.why, true);
        break;
    }
  }

  ApiClient& client_;
  Progress& progress_;
  Tally tally_;
  bool batch_route_ = true;
  bool unreachable_ = false;
};

}  // namespace

int RunIngest(const Context& ctx) {
  FileList list = FindFiles(ctx.args.positional);
  Progress progress(list.files.size(), Progress::StderrIsTerminal());
  ApiClient client(ctx.url, ctx.api_key);
  Ingest ingest(client, progress);
  std::vector<Entry> batch;
  size_t batch_files = 0, batch_bytes = 0;  // of the entries to send
  for (size_t i = 0; i < list.files.size(); ++i) {
    const FoundFile& f = list.files[i];
    progress.Update(i, f.path.substr(f.path.find_last_of('/') + 1));
    Entry e;
    e.path = f.path;
    e.shown = Clean(f.path, 300);
    if (!f.problem.empty()) {
      e.problem = f.problem;
    } else {
      TextFile file = ReadTextFile(f.path, kMaxFileBytes);
      e.problem = std::move(file.problem);
      e.text = std::move(file.text);
    }
    if (e.problem.empty()) {
      if (batch_files > 0 &&
          (batch_files == kBatchFiles || batch_bytes + e.text.size() > kBatchBytes)) {
        ingest.Flush(batch);
        batch_files = batch_bytes = 0;
      }
      e.title = TitleFor(f.path, e.text);
      ++batch_files;
      batch_bytes += e.text.size();
    }
    batch.push_back(std::move(e));
  }
  ingest.Flush(batch);
  const Tally& tally = ingest.tally();
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
