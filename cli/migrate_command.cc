// ragstream migrate [--data-dir DIR]: converts a store of the previous index layout in place
// (lib/rag/store_migration.h). Like backup, it runs on the host that has the store.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "cli/format.h"
#include "lib/rag/analyzer.h"
#include "lib/rag/store_migration.h"
#include "lib/store/conversation_store.h"
#include "lib/store/document_store.h"

namespace ragstream::cli {
namespace fs = std::filesystem;
namespace {

Status Failed(std::string code, std::string message) {
  return Status(ErrorKind::kInternal, std::move(code), std::move(message));
}

// What the store was made with (index_meta): its layout, shard count and vector format.
struct Shape {
  std::string layout;
  int shards = 0;
  std::string vector_format;
};

Result<Shape> StoreShape(const std::string& dir) {
  store::Env::Options options;
  options.path = dir;
  options.databases = {"index_meta"};
  auto env = store::Env::Open(options);
  if (!env.ok()) return env.status();
  auto txn = store::Txn::BeginRead(**env);
  if (!txn.ok()) return txn.status();
  Shape shape;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"layout", &shape.layout},
                          {"vector_format", &shape.vector_format}}) {
    auto v = txn->Get((*env)->Dbi("index_meta"), key);
    if (!v.ok()) return v.status();
    if (v->has_value()) *out = std::string(**v);
  }
  auto shards = txn->Get((*env)->Dbi("index_meta"), "shards");
  if (!shards.ok()) return shards.status();
  if (shards->has_value()) shape.shards = std::atoi(std::string(**shards).c_str());
  return shape;
}

}  // namespace

int RunMigrate(const Context& ctx) {
  const char* env_dir = std::getenv("RAGSTREAM_DATA_DIR");
  const std::string data_dir =
      ctx.args.Get("--data-dir")
          .value_or(env_dir && *env_dir ? std::string(env_dir) : std::string("./ragstream-data"));
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(data_dir) / "data.mdb", ec)) {
    return PrintFailure(Failed("no_store", "no LMDB store in " + data_dir +
                                               " (data.mdb is missing): pass --data-dir or set "
                                               "RAGSTREAM_DATA_DIR"));
  }
  auto shape = StoreShape(data_dir);
  if (!shape.ok()) return PrintFailure(shape.status());
  const int shards = shape->shards;
  // Only a store of the previous layout is opened with its databases (opening creates any
  // that are missing).
  // kUnpackedStoreLayout and kTwoVarintStoreLayout need no conversion: a worker marks them
  // current as it starts (and packs the former's vectors into blocks in the background).
  if (shape->layout == store::kStoreLayout || shape->layout == store::kUnpackedStoreLayout ||
      shape->layout == store::kTwoVarintStoreLayout || shards <= 0) {
    std::printf("%s already has the current layout (%s): nothing to do\n", data_dir.c_str(),
                shards <= 0 ? "no document index" : shape->layout.c_str());
    return kExitOk;
  }
  if (shape->layout != store::kPreviousStoreLayout) {
    return PrintFailure(Status::InvalidArgument(
        "unknown_layout", "the store's layout '" + shape->layout +
                              "' is not one this ragstream converts (it converts " +
                              store::kPreviousStoreLayout + "); nothing was changed"));
  }
  std::vector<std::string> names = store::ConversationStore::Databases();
  auto add = [&names](const std::vector<std::string>& more) {
    for (const auto& n : more) {
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
  };
  add(store::DocumentStore::Databases(shards));
  add(rag::PreviousLayoutDatabases(shards));
  store::Env::Options options;
  options.path = data_dir;
  options.databases = names;
  options.max_dbs = static_cast<unsigned>(names.size()) + 8;
  const uint64_t file_bytes = fs::file_size(fs::path(data_dir) / "data.mdb", ec);
  options.map_size_bytes = std::max<uint64_t>(1ull << 30, file_bytes + (file_bytes / 2));
  options.grow_step_bytes = 1ull << 30;
  auto env = store::Env::Open(options);
  if (!env.ok()) return PrintFailure(env.status());
  store::DocumentStore documents(
      **env, shards,
      shape->vector_format == "int8" ? store::VectorFormat::kInt8 : store::VectorFormat::kFloat,
      store::DocumentStore::Analyzer(rag::AnalyzeDocumentChunks, rag::AnalyzerVersion()));
  rag::WarmUpAnalyzer();
  auto report = rag::MigrateStore(**env, documents, shards, [](uint64_t done, uint64_t total) {
    std::fprintf(stderr, "migrated %llu of %llu documents\n", static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total));
  });
  if (!report.ok()) return PrintFailure(report.status());
  if (!report->migrated) {
    std::printf("%s: nothing to migrate\n", data_dir.c_str());
    return kExitOk;
  }
  std::printf(
      "migrated %s: %llu documents, %llu chunks, to layout %s; check it with "
      "'mdb_stat -a %s'\n",
      data_dir.c_str(), static_cast<unsigned long long>(report->documents),
      static_cast<unsigned long long>(report->chunks), store::kStoreLayout, data_dir.c_str());
  return kExitOk;
}

}  // namespace ragstream::cli
