#include "lib/core/utf8.h"

#include <cstdint>

namespace ragstream {
namespace {

// Expected length of a sequence starting with `lead`, or 0 if `lead` cannot start one.
int SequenceLength(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Whether the second byte is allowed after `lead` (rules out overlongs, surrogates, >U+10FFFF).
bool SecondByteOk(uint8_t lead, uint8_t b) {
  if ((b & 0xC0) != 0x80) return false;
  if (lead == 0xE0) return b >= 0xA0;
  if (lead == 0xED) return b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90;
  if (lead == 0xF4) return b <= 0x8F;
  return true;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    uint8_t lead = p[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    int len = SequenceLength(lead);
    if (len == 0 || i + len > n) return false;
    if (!SecondByteOk(lead, p[i + 1])) return false;
    for (int k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

size_t CompleteUtf8PrefixLength(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size();
  // A sequence is at most 4 bytes, so only the last 3 can belong to an incomplete one.
  size_t start = n >= 3 ? n - 3 : 0;
  for (size_t i = n; i > start;) {
    --i;
    uint8_t b = p[i];
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    int len = SequenceLength(b);
    if (len <= 1) return n;  // ASCII or invalid lead: nothing to hold back
    size_t have = n - i;
    if (have >= static_cast<size_t>(len)) return n;         // complete
    if (have >= 2 && !SecondByteOk(b, p[i + 1])) return n;  // already invalid: emit
    return i;
  }
  return n;
}

std::string_view Utf8Truncate(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

std::string SanitizeUtf8(std::string_view s) {
  if (IsValidUtf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    size_t len = SequenceLength(static_cast<uint8_t>(s[i]));
    if (len > 0 && i + len <= s.size() && IsValidUtf8(s.substr(i, len))) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

size_t Utf8Length(std::string_view s) {
  size_t count = 0;
  for (char c : s) count += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return count;
}

std::string_view Utf8PrefixChars(std::string_view s, size_t max_chars) {
  size_t chars = 0, end = 0;
  for (; end < s.size(); ++end) {
    if ((static_cast<uint8_t>(s[end]) & 0xC0) != 0x80 && chars++ == max_chars) break;
  }
  return s.substr(0, end);
}

std::string Utf8HoldBack::Push(std::string_view chunk) {
  pending_.append(chunk);
  size_t ready = CompleteUtf8PrefixLength(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string Utf8HoldBack::Flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace ragstream
