// UTF-8 helpers: validation, and holding back an incomplete trailing character so a token
// event never splits one (upstream deltas may end mid-character).
#pragma once

#include <string>
#include <string_view>

namespace ragstream {

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Length of the longest prefix of `s` that does not end inside an incomplete (but so far
// valid) multi-byte sequence. Invalid bytes are not held back: they are the caller's problem.
size_t CompleteUtf8PrefixLength(std::string_view s);

// Truncates `s` to at most `max_bytes` without cutting a character.
std::string_view Utf8Truncate(std::string_view s, size_t max_bytes);

// Replaces every invalid sequence with U+FFFD. Used on text about to leave the process as
// JSON (an upstream that sends raw invalid bytes, or an incomplete tail at end of stream).
std::string SanitizeUtf8(std::string_view s);

// Number of code points in valid UTF-8 `s`.
size_t Utf8Length(std::string_view s);

// The first `max_chars` code points of `s` (all of it if shorter): titles and previews are
// limited in characters, not bytes, so a Hebrew title is as long as an English one.
std::string_view Utf8PrefixChars(std::string_view s, size_t max_chars);

// Feeds chunks of bytes; returns what can be emitted now, keeping an incomplete tail.
class Utf8HoldBack {
 public:
  // Returns the emit-ready text of pending + `chunk` (possibly empty).
  std::string Push(std::string_view chunk);
  // Whatever is left (an incomplete tail at end of stream); clears it.
  std::string Flush();
  bool empty() const { return pending_.empty(); }

 private:
  std::string pending_;
};

}  // namespace ragstream
