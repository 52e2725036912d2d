// Running a helper program (mdb_copy, mdb_stat) without a shell and capturing its output.
#pragma once

#include <string>
#include <vector>

namespace ragstream::cli {

struct ProcessResult {
  int exit_code = -1;      // -1: killed by a signal or could not be waited for
  bool not_found = false;  // the program could not be executed (missing from PATH)
  std::string output;      // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH) with stdin from /dev/null; blocks until it exits.
ProcessResult RunProcess(const std::vector<std::string>& argv);

}  // namespace ragstream::cli
