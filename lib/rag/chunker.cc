#include "lib/rag/chunker.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>

namespace ragstream::rag {
namespace {

// How far (in code points) a hard cut may move back to avoid splitting a grapheme cluster.
// A cluster longer than this (stacked marks, long emoji sequences) is cut anyway.
constexpr size_t kMaxGraphemeBackoff = 16;
// How many closing quotes or brackets may follow a sentence terminator (`.")` and the like).
constexpr int kMaxClosers = 3;

struct Limits {
  size_t target;
  size_t overlap;
  size_t max;
  size_t min_len;  // the earliest preferred cut: target / 2
};

Limits Sanitize(const ChunkerOptions& o) {
  Limits l;
  l.max = std::max<size_t>(o.max_chars, 1);
  l.target = std::clamp<size_t>(o.target_chars, 1, l.max);
  l.overlap = std::min(o.overlap_chars, l.target / 2);
  l.min_len = std::max<size_t>(l.target / 2, 1);
  return l;
}

struct Decoded {
  int32_t cp;
  size_t len;
};

// The code point at s[i] (i < s.size()). An invalid byte decodes as a one-byte U+FFFD, so
// bad input neither stalls nor crashes the chunker.
Decoded DecodeAt(std::string_view s, size_t i) {
  auto lead = static_cast<unsigned char>(s[i]);
  if (lead < 0x80) return {lead, 1};
  int32_t cp = 0;
  utf8proc_ssize_t n =
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                       static_cast<utf8proc_ssize_t>(std::min<size_t>(s.size() - i, 4)), &cp);
  if (n <= 0) return {0xFFFD, 1};
  return {cp, static_cast<size_t>(n)};
}

// Unicode White_Space.
bool IsSpace(int32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  if (cp == 0x85) return true;
  utf8proc_category_t c = utf8proc_category(cp);
  return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

// Ideographic and full-width terminators: CJK puts no space after them.
bool IsFullwidthTerminator(int32_t cp) {
  return cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == 0xFF61;  // 。！？｡
}

bool IsTerminator(int32_t cp) {
  switch (cp) {
    case '.':
    case '!':
    case '?':
    case 0x2026:  // … horizontal ellipsis
    case 0x05C3:  // ׃ Hebrew sof pasuq
    case 0x061F:  // ؟ Arabic question mark
    case 0x06D4:  // ۔ Arabic full stop (Urdu)
      return true;
    default:
      return IsFullwidthTerminator(cp);
  }
}

// Closing quotes and brackets, which belong to the sentence they end.
bool IsCloser(int32_t cp) {
  if (cp == '"' || cp == '\'') return true;
  if (cp < 0x80) return cp == ')' || cp == ']' || cp == '}';
  utf8proc_category_t c = utf8proc_category(cp);
  return c == UTF8PROC_CATEGORY_PE || c == UTF8PROC_CATEGORY_PF;
}

// Whether the whitespace run starting at text[i] holds a blank line. Stops at the second
// line break, so a long run is read only as far as needed.
bool RunHasBlankLine(std::string_view text, size_t i) {
  int breaks = 0;
  bool after_cr = false;
  while (i < text.size() && breaks < 2) {
    Decoded d = DecodeAt(text, i);
    if (!IsSpace(d.cp)) break;
    switch (d.cp) {
      case '\n':
        breaks += after_cr ? 0 : 1;  // CRLF is one break
        break;
      case '\r':
      case '\v':
      case 0x85:
      case 0x2028:
        ++breaks;
        break;
      case '\f':
      case 0x2029:  // a page or paragraph separator is a paragraph break by itself
        breaks += 2;
        break;
      default:
        break;
    }
    after_cr = d.cp == '\r';
    i += d.len;
  }
  return breaks >= 2;
}

// Byte offset just past the last non-whitespace code point of `doc` (0 if there is none).
size_t ContentEnd(std::string_view doc) {
  size_t end = doc.size();
  while (end > 0) {
    size_t j = end - 1;
    while (j > 0 && end - j < 4 && (static_cast<unsigned char>(doc[j]) & 0xC0) == 0x80) --j;
    Decoded d = DecodeAt(doc, j);
    // A decode that does not end exactly at `end` means invalid bytes: content, stop.
    if (j + d.len != end || !IsSpace(d.cp)) break;
    end = j;
  }
  return end;
}

// Advances (*byte, *chr) past whitespace.
void SkipSpace(std::string_view text, size_t* byte, size_t* chr) {
  while (*byte < text.size()) {
    Decoded d = DecodeAt(text, *byte);
    if (!IsSpace(d.cp)) return;
    *byte += d.len;
    ++*chr;
  }
}

// What a position k (between code points k-1 and k of a window) is good for. The order is
// the order of preference.
enum Kind : uint8_t { kNone = 0, kSpace = 1, kSentence = 2, kParagraph = 3 };

// The code points of the text from a chunk's start, up to max_chars + 1 of them (the last
// one only as lookahead), with per-position kinds. The vectors are reused between chunks.
class Window {
 public:
  // Decodes up to `limit` code points from text[start]; returns how many it got.
  size_t Fill(std::string_view text, size_t start, size_t limit) {
    pos_.clear();
    cps_.clear();
    size_t b = start;
    while (cps_.size() < limit && b < text.size()) {
      Decoded d = DecodeAt(text, b);
      pos_.push_back(b);
      cps_.push_back(d.cp);
      b += d.len;
    }
    pos_.push_back(b);
    return cps_.size();
  }

  // Classifies the cut positions 1..n (n < number decoded, so cp(n) exists as lookahead),
  // and the chunk-start positions 1..n-1 for the overlap.
  void Classify(std::string_view text, size_t n) {
    space_.assign(n + 1, 0);
    for (size_t k = 0; k <= n; ++k) space_[k] = IsSpace(cps_[k]);
    cut_.assign(n + 1, kNone);
    start_.assign(n + 1, kNone);
    Kind run = kNone;  // the kind of the whitespace run being crossed
    for (size_t k = 1; k <= n; ++k) {
      if (space_[k] && !space_[k - 1]) {
        if (RunHasBlankLine(text, pos_[k])) {
          cut_[k] = kParagraph;
        } else {
          cut_[k] = EndsSentence(k) ? kSentence : kSpace;
        }
        run = static_cast<Kind>(cut_[k]);
      } else if (!space_[k] && !space_[k - 1] && EndsSentence(k)) {
        cut_[k] = kSentence;  // a CJK terminator with no space after it
      }
      if (!space_[k]) {
        start_[k] = space_[k - 1] ? static_cast<uint8_t>(run) : cut_[k];
      }
    }
  }

  // The position in [lo, hi] of kind >= `want` (== `want` if `exact`) nearest to `ideal`
  // (the later one on a tie), or 0 if there is none.
  size_t Nearest(const std::vector<uint8_t>& kinds, Kind want, bool exact, size_t lo, size_t hi,
                 size_t ideal) const {
    size_t best = 0;
    size_t best_distance = SIZE_MAX;
    for (size_t k = lo; k <= hi; ++k) {
      if (exact ? kinds[k] != want : kinds[k] < want) continue;
      size_t distance = k > ideal ? k - ideal : ideal - k;
      if (distance <= best_distance) {
        best = k;
        best_distance = distance;
      }
    }
    return best;
  }

  // A position in [max(floor, 1), k] that does not split a grapheme cluster, looking back
  // at most kMaxGraphemeBackoff code points; `k` if there is none.
  size_t GraphemeBoundaryAtOrBefore(size_t k, size_t floor) const {
    for (size_t c = k; c >= std::max<size_t>(floor, 1) && k - c < kMaxGraphemeBackoff; --c) {
      if (utf8proc_grapheme_break_stateful(cps_[c - 1], cps_[c], nullptr)) return c;
    }
    return k;
  }

  size_t TrimEnd(size_t k) const {
    while (k > 0 && space_[k - 1]) --k;
    return k;
  }

  size_t pos(size_t k) const { return pos_[k]; }
  const std::vector<uint8_t>& cuts() const { return cut_; }
  const std::vector<uint8_t>& starts() const { return start_; }

 private:
  // Whether a sentence ends between code points k-1 and k.
  bool EndsSentence(size_t k) const {
    size_t j = k;
    for (int i = 0; i < kMaxClosers && j > 0 && IsCloser(cps_[j - 1]); ++i) --j;
    if (j == 0 || !IsTerminator(cps_[j - 1])) return false;
    int32_t next = cps_[k];
    if (IsSpace(next)) return true;
    // After 。 the next sentence starts at once, unless more closers or terminators follow.
    return IsFullwidthTerminator(cps_[j - 1]) && !IsCloser(next) && !IsTerminator(next);
  }

  std::vector<size_t> pos_;   // byte offset of each code point, plus the end
  std::vector<int32_t> cps_;  // the code points
  std::vector<uint8_t> space_;
  std::vector<uint8_t> cut_;    // Kind of ending a chunk at k
  std::vector<uint8_t> start_;  // Kind of boundary a chunk starting at k would start on
};

}  // namespace

std::vector<Chunk> ChunkText(std::string_view document, const ChunkerOptions& options) {
  const Limits lim = Sanitize(options);
  std::vector<Chunk> chunks;
  // Trailing whitespace can be in no chunk, so it is cut off once here.
  const std::string_view text = document.substr(0, ContentEnd(document));
  size_t start_byte = 0;
  size_t start_char = 0;
  SkipSpace(text, &start_byte, &start_char);
  size_t prev_end_char = 0;  // end of the last chunk emitted (0: none yet)
  Window w;

  auto emit = [&](size_t begin, size_t end, size_t end_char) {
    chunks.push_back(
        Chunk{std::string(text.substr(begin, end - begin)), start_char, end_char, begin, end});
    prev_end_char = end_char;
  };

  while (start_byte < text.size()) {
    size_t got = w.Fill(text, start_byte, lim.max + 1);
    if (got <= lim.max) {  // the rest fits; `text` ends in non-whitespace, so no trim
      emit(start_byte, text.size(), start_char + got);
      break;
    }
    const size_t n = lim.max;
    w.Classify(text, n);

    // Each chunk must end past the previous one, or the overlap could repeat it forever.
    size_t lo = lim.min_len;
    if (!chunks.empty()) lo = std::max(lo, prev_end_char - start_char + 1);
    lo = std::min(lo, n);
    const size_t ideal = std::min(lim.target, n);
    size_t cut = 0;
    for (Kind kind : {kParagraph, kSentence, kSpace}) {
      cut = w.Nearest(w.cuts(), kind, /*exact=*/true, lo, n, ideal);
      if (cut != 0) break;
    }
    if (cut == 0) cut = w.GraphemeBoundaryAtOrBefore(n, lo);

    const size_t end = w.TrimEnd(cut);
    if (!chunks.empty() && start_char + end <= prev_end_char) {
      // Only whitespace between the previous chunk's end and the cut: nothing new fits
      // here, so resume after that whitespace (without overlap; there is nothing to repeat).
      start_byte = w.pos(cut);
      start_char += cut;
      SkipSpace(text, &start_byte, &start_char);
      continue;
    }
    emit(w.pos(0), w.pos(end), start_char + end);

    // Where the next chunk starts: about `overlap` before this one's end, at a sentence
    // start if there is one near, else a word start, else exactly there.
    size_t next = cut;
    if (lim.overlap > 0 && end > 1) {
      const size_t target_start = end > lim.overlap ? end - lim.overlap : 1;
      const size_t radius = std::max<size_t>(lim.overlap / 2, 1);
      const size_t from = target_start > radius ? target_start - radius : 1;
      const size_t to = std::min(end - 1, target_start + radius);
      next = w.Nearest(w.starts(), kSentence, /*exact=*/false, from, to, target_start);
      if (next == 0) next = w.Nearest(w.starts(), kSpace, /*exact=*/false, from, to, target_start);
      if (next == 0) next = w.GraphemeBoundaryAtOrBefore(std::min(target_start, end - 1), 1);
    }
    start_byte = w.pos(next);
    start_char += next;
    SkipSpace(text, &start_byte, &start_char);
  }
  return chunks;
}

}  // namespace ragstream::rag
