#include "cli/file_walk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cli/format.h"
#include "lib/core/utf8.h"

namespace ragstream::cli {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxTitleChars = 200;

std::string Extension(std::string_view path) {
  size_t slash = path.find_last_of('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = name.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0) return "";
  return AsciiLower(name.substr(dot));
}

void Walk(const fs::path& dir, FileList& out) {
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(*it);
  }
  if (ec) {
    out.files.push_back({dir.string(), "cannot read the folder: " + ec.message()});
    return;
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
  for (const auto& e : entries) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code sec;
    fs::file_status link = e.symlink_status(sec);
    if (fs::is_directory(link)) {
      Walk(e.path(), out);
    } else if (fs::is_symlink(link) && fs::is_directory(e.status(sec))) {
      continue;  // a symlinked folder: not followed (no loops, no surprises)
    } else if (HasTextExtension(name)) {
      out.files.push_back({e.path().string(), ""});
    } else {
      ++out.ignored;
    }
  }
}

}  // namespace

bool HasTextExtension(std::string_view path) {
  std::string ext = Extension(path);
  return ext == ".txt" || ext == ".md" || ext == ".markdown";
}

std::string_view ContentTypeFor(std::string_view path) {
  std::string ext = Extension(path);
  return ext == ".md" || ext == ".markdown" ? "text/markdown" : "text/plain";
}

FileList FindFiles(const std::vector<std::string>& paths) {
  FileList out;
  for (const auto& p : paths) {
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (fs::is_directory(st)) {
      Walk(p, out);
    } else if (!fs::exists(st) && !fs::is_symlink(fs::symlink_status(p, ec))) {
      out.files.push_back({p, "no such file or folder"});
    } else if (!HasTextExtension(p)) {
      out.files.push_back({p, "not a .txt, .md or .markdown file"});
    } else {
      out.files.push_back({p, ""});
    }
  }
  return out;
}

TextFile ReadTextFile(const std::string& path, size_t max_bytes) {
  TextFile out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    out.problem = std::string("cannot read: ") + std::strerror(errno);
    return out;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    out.problem = "not a regular file";
    return out;
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    out.problem = "larger than " + HumanBytes(max_bytes);
    return out;
  }
  std::string data;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      out.problem = std::string("cannot read: ") + std::strerror(errno);
      ::close(fd);
      return out;
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > max_bytes) {
      ::close(fd);
      out.problem = "larger than " + HumanBytes(max_bytes);
      return out;
    }
  }
  ::close(fd);
  if (data.compare(0, 3, "\xEF\xBB\xBF") == 0) data.erase(0, 3);
  if (data.find('\0') != std::string::npos) {
    out.problem = "not text (binary content: NUL bytes)";
  } else if (!IsValidUtf8(data)) {
    out.problem = "not UTF-8 text";
  } else {
    out.text = std::move(data);
  }
  return out;
}

std::string TitleFor(std::string_view path, std::string_view text) {
  if (ContentTypeFor(path) == "text/markdown") {
    size_t start = text.find_first_not_of(" \t\r\n");
    if (start != std::string_view::npos && text[start] == '#') return "";
  }
  size_t slash = path.find_last_of('/');
  std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
  size_t dot = name.find_last_of('.');
  if (dot != std::string::npos && dot > 0) name.resize(dot);
  if (!IsValidUtf8(name)) return "";
  std::string title = Clean(name, kMaxTitleChars);
  return title.find_first_not_of(' ') == std::string::npos ? "" : title;
}

}  // namespace ragstream::cli
