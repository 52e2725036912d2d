// ragstream backup DIR [--data-dir DIR]: mdb_copy -c of the local store, checked by mdb_stat.
// This is the one command that does not go over HTTP: LMDB has no network copy, so it runs
// on the host that has the store.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "cli/format.h"
#include "cli/process.h"

namespace ragstream::cli {
namespace fs = std::filesystem;
namespace {

Status Failed(std::string code, std::string message) {
  return Status(ErrorKind::kInternal, std::move(code), std::move(message));
}

std::string LastLines(const std::string& output) {
  std::string text = Clean(output, 400);
  return text.empty() ? "no output" : text;
}

Status RunTool(const std::vector<std::string>& argv, std::string& output) {
  ProcessResult r = RunProcess(argv);
  output = r.output;
  if (r.not_found) {
    return Failed("missing_tool", argv[0] + " was not found in PATH (install lmdb-utils)");
  }
  if (r.exit_code != 0) {
    return Failed(argv[0] + "_failed",
                  argv[0] + " exited with " +
                      (r.exit_code < 0 ? std::string("a signal") : std::to_string(r.exit_code)) +
                      ": " + LastLines(r.output));
  }
  return Status::Ok();
}

}  // namespace

int RunBackup(const Context& ctx) {
  const char* env_dir = std::getenv("RAGSTREAM_DATA_DIR");
  const std::string data_dir =
      ctx.args.Get("--data-dir")
          .value_or(env_dir && *env_dir ? std::string(env_dir) : std::string("./ragstream-data"));
  const fs::path target = ctx.args.positional[0];
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(data_dir) / "data.mdb", ec)) {
    return PrintFailure(Failed(
        "no_store", "no LMDB store in " + data_dir +
                        " (data.mdb is missing): backup runs on the host that has the store; "
                        "pass --data-dir or set RAGSTREAM_DATA_DIR"));
  }
  bool created = false;
  if (fs::exists(fs::symlink_status(target, ec))) {
    if (!fs::is_directory(target, ec)) {
      return PrintFailure(Failed("not_a_folder", target.string() + " exists and is not a folder"));
    }
    if (!fs::is_empty(target, ec) || ec) {
      return PrintFailure(Failed("not_empty", target.string() +
                                                  " is not empty: refusing to write a backup "
                                                  "there (choose a new or empty folder)"));
    }
  } else {
    if (!fs::create_directories(target, ec) || ec) {
      return PrintFailure(
          Failed("cannot_create", "cannot create " + target.string() + ": " + ec.message()));
    }
    created = true;
  }
  auto cleanup = [&] {
    fs::remove(target / "data.mdb", ec);
    fs::remove(target / "lock.mdb", ec);
    if (created) fs::remove(target, ec);
  };
  // The copy holds every tenant's data: owner-only, whatever the caller's umask (mdb_copy
  // inherits this process's umask when it creates data.mdb).
  ::umask(077);
  if (::chmod(target.c_str(), 0700) != 0) {
    cleanup();
    return PrintFailure(Failed("cannot_protect", "cannot make " + target.string() +
                                                     " private (chmod 0700) before copying"));
  }
  std::string output;
  if (Status s = RunTool({"mdb_copy", "-c", data_dir, target.string()}, output); !s.ok()) {
    cleanup();
    return PrintFailure(s);
  }
  if (Status s = RunTool({"mdb_stat", "-a", target.string()}, output); !s.ok()) {
    cleanup();
    return PrintFailure(
        Failed("backup_unverified", "the copy did not verify, so it was removed: " + s.message()));
  }
  fs::remove(target / "lock.mdb", ec);  // made by mdb_stat; not part of the backup
  if (::chmod((target / "data.mdb").c_str(), 0600) != 0) {
    cleanup();
    return PrintFailure(Failed("cannot_protect", "cannot make the copy private (chmod 0600)"));
  }
  size_t databases = 0;
  for (size_t p = output.find("Status of "); p != std::string::npos;
       p = output.find("Status of ", p + 1)) {
    ++databases;
  }
  uintmax_t bytes = fs::file_size(target / "data.mdb", ec);
  std::printf(
      "backup of %s written to %s: data.mdb %ju bytes (%s), verified with mdb_stat "
      "(%zu databases)\n",
      data_dir.c_str(), target.c_str(), bytes, HumanBytes(bytes).c_str(), databases);
  return kExitOk;
}

}  // namespace ragstream::cli
