// Finding the files `ragstream ingest` sends: paths named on the command line, and the
// .txt / .md / .markdown files under named folders (recursively, in name order, skipping
// hidden entries and not following symlinked folders), then reading and checking one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ragstream::cli {

struct FoundFile {
  std::string path;
  std::string problem;  // non-empty: a failure known before reading (no such path, bad type)
};

struct FileList {
  std::vector<FoundFile> files;
  size_t ignored = 0;  // files under folders that are not .txt / .md / .markdown
};

FileList FindFiles(const std::vector<std::string>& paths);

// True for .txt, .md and .markdown (any case).
bool HasTextExtension(std::string_view path);
// "text/markdown" for .md / .markdown, else "text/plain".
std::string_view ContentTypeFor(std::string_view path);

struct TextFile {
  std::string text;     // valid UTF-8 without a byte-order mark
  std::string problem;  // non-empty: unreadable or not text (and `text` is empty)
};

// Reads a regular file of at most `max_bytes` and checks it is UTF-8 text (no NUL bytes).
TextFile ReadTextFile(const std::string& path, size_t max_bytes);

// The title to send: "" (let the server take the first line) for a Markdown file that opens
// with a '#' heading, else the file name without its extension (one line, at most 200
// characters; "" if the name is not UTF-8).
std::string TitleFor(std::string_view path, std::string_view text);

}  // namespace ragstream::cli
