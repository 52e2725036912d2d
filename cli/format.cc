#include "cli/format.h"

#include <algorithm>
#include <ctime>

#include "cli/args.h"
#include "lib/core/utf8.h"

namespace ragstream::cli {
namespace {

// Drops C0 controls (except those kept), DEL and the C1 controls U+0080..U+009F, which some
// terminals obey as escape sequences.
std::string DropControls(std::string_view valid_utf8, bool keep_newlines) {
  std::string out;
  out.reserve(valid_utf8.size());
  for (size_t i = 0; i < valid_utf8.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(valid_utf8[i]);
    if (c == 0xC2 && i + 1 < valid_utf8.size()) {
      unsigned char d = static_cast<unsigned char>(valid_utf8[i + 1]);
      if (d >= 0x80 && d <= 0x9F) {
        ++i;
        continue;
      }
    }
    if (c < 0x20 || c == 0x7F) {
      if (keep_newlines && (c == '\n' || c == '\t')) {
        out += static_cast<char>(c);
      } else if (!keep_newlines && (c == '\n' || c == '\t' || c == '\r')) {
        out += ' ';
      }
      continue;
    }
    out += static_cast<char>(c);
  }
  return out;
}

}  // namespace

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Clean(std::string_view text, size_t max_chars) {
  std::string flat = DropControls(SanitizeUtf8(text), false);
  std::string out;
  for (char c : flat) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (Utf8Length(out) <= max_chars) return out;
  // Cut before the (max_chars)th character, leaving room for the ellipsis.
  out.resize(Utf8PrefixChars(out, max_chars - 1).size());
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out + "…";
}

std::string CleanBlock(std::string_view text) {
  return DropControls(SanitizeUtf8(text), true);
}

std::string_view JsonStr(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

int64_t JsonInt(const rapidjson::Value& obj, const char* key, int64_t fallback) {
  if (!obj.IsObject()) return fallback;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsInt64()) return fallback;
  return it->value.GetInt64();
}

double JsonNumber(const rapidjson::Value& obj, const char* key, double fallback) {
  if (!obj.IsObject()) return fallback;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsNumber()) return fallback;
  return it->value.GetDouble();
}

const rapidjson::Value* JsonArray(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsArray()) return nullptr;
  return &it->value;
}

std::string LocalTime(int64_t epoch_ms) {
  if (epoch_ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

void PrintTable(std::FILE* out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&width](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], Utf8Length(row[i]));
    }
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - Utf8Length(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::fprintf(out, "%s\n", line.c_str());
  };
  print(header);
  for (const auto& r : rows) print(r);
}

int PrintFailure(const Status& status) {
  std::fprintf(stderr, "ragstream: %s: %s\n", status.code().c_str(), status.message().c_str());
  return kExitFailed;
}

}  // namespace ragstream::cli
