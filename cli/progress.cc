#include "cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cli/format.h"
#include "lib/core/utf8.h"

namespace ragstream::cli {
namespace {

constexpr size_t kBarWidth = 20;

size_t TerminalColumns() {
  struct winsize ws {};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

}  // namespace

bool Progress::StderrIsTerminal() {
  return isatty(STDERR_FILENO) == 1;
}

void Progress::Update(size_t done, const std::string& current) {
  done_ = done;
  current_ = current;
  if (interactive_) Draw();
}

void Progress::Line(const std::string& text, bool always) {
  if (interactive_ && !always) return;
  Clear();
  std::fprintf(stderr, "%s\n", text.c_str());
  if (interactive_) Draw();
  std::fflush(stderr);
}

void Progress::Done() {
  Clear();
  drawn_ = false;
}

void Progress::Clear() {
  if (interactive_ && drawn_) std::fputs("\r\x1b[K", stderr);
}

void Progress::Draw() {
  size_t filled = total_ ? done_ * kBarWidth / total_ : kBarWidth;
  const size_t shown = current_.empty() ? done_ : std::min(done_ + 1, total_);
  std::string line = "[" + std::string(filled, '#') + std::string(kBarWidth - filled, ' ') + "] " +
                     std::to_string(shown) + "/" + std::to_string(total_);
  size_t columns = TerminalColumns();
  size_t used = Utf8Length(line) + 1;
  if (!current_.empty() && columns > used + 4) {
    line += " " + Clean(current_, columns - used - 1);
  }
  std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace ragstream::cli
