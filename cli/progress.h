// Progress of a batch on stderr: on a terminal, one bar redrawn in place
// ("[#####     ] 12/30 file.md") with messages printed above it; otherwise plain lines.
#pragma once

#include <string>

namespace ragstream::cli {

class Progress {
 public:
  // `interactive`: stderr is a terminal (see StderrIsTerminal()).
  Progress(size_t total, bool interactive) : total_(total), interactive_(interactive) {}
  ~Progress() { Done(); }

  // `done` items finished and `current` (a name; "" when all are done) in progress. The bar
  // shows the share done, then the number of the item in progress ("3/30 name.md").
  void Update(size_t done, const std::string& current);
  // A line about one item: above the bar on a terminal; else, a plain line. `always`: shown on
  // a terminal too (failures); otherwise only in plain mode.
  void Line(const std::string& text, bool always);
  // Removes the bar (idempotent).
  void Done();

  static bool StderrIsTerminal();

 private:
  void Clear();
  void Draw();

  size_t total_;
  bool interactive_;
  bool drawn_ = false;
  size_t done_ = 0;
  std::string current_;
};

}  // namespace ragstream::cli
