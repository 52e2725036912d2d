#include "lib/rag/hash_embedder.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <utility>

#include "lib/core/utf8.h"
#include "lib/rag/text.h"

namespace ragstream::rag {
namespace {

constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;
constexpr uint64_t kSignSalt = 0x9e3779b97f4a7c15ULL;

constexpr float kTermWeight = 1.0f;
constexpr float kPairWeight = 0.5f;
constexpr float kTrigramWeight = 0.3f;

// Streaming FNV-1a 64, so a feature is hashed from its pieces without building a string.
class Fnv1a {
 public:
  explicit Fnv1a(char kind) { Add(std::string_view(&kind, 1)); }
  Fnv1a& Add(std::string_view bytes) {
    for (char c : bytes) {
      h_ ^= static_cast<unsigned char>(c);
      h_ *= kFnvPrime;
    }
    return *this;
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = kFnvOffsetBasis;
};

// MurmurHash3's 64-bit finaliser: FNV-1a's low bits (which pick the bucket) mix poorly on
// short inputs, and every output bit of this depends on every input bit.
uint64_t Fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

struct Feature {
  uint64_t hash;
  float weight;
};

// Appends the padded character trigrams of `term` (at least two code points) to `out`.
void AddTrigrams(std::string_view term, std::vector<Feature>* out) {
  // Byte offset of each code point, plus the end. Terms are at most kMaxTokenBytes bytes,
  // so at most that many code points.
  // (Tokenize promises that; the bound is enforced here too, since overrunning `at` would
  // write past the stack array.)
  term = Utf8Truncate(term, kMaxTokenBytes);
  std::array<uint8_t, kMaxTokenBytes + 1> at{};
  size_t count = 0;
  for (size_t i = 0; i < term.size() && count < kMaxTokenBytes; ++i) {
    if ((static_cast<unsigned char>(term[i]) & 0xC0) != 0x80) at[count++] = static_cast<uint8_t>(i);
  }
  at[count] = static_cast<uint8_t>(term.size());
  if (count < 2) return;
  // Padded position q: 0 is "^", 1..count are the code points, count + 1 is "$".
  auto piece = [&](size_t q) -> std::string_view {
    if (q == 0) return "^";
    if (q == count + 1) return "$";
    return term.substr(at[q - 1], at[q] - at[q - 1]);
  };
  for (size_t first = 0; first < count; ++first) {
    Fnv1a h('t');
    h.Add(piece(first)).Add(piece(first + 1)).Add(piece(first + 2));
    out->push_back({Fmix64(h.value()), kTrigramWeight});
  }
}

// Sorts by hash, ascending: a least-significant-digit radix sort, 8 bits a pass (a chunk has
// about a thousand features; std::sort was a tenth of ingestion's time). Features with equal
// hashes are the same feature with the same weight, so their order does not matter.
void SortByHash(std::vector<Feature>& features) {
  thread_local std::vector<Feature> scratch;
  scratch.resize(features.size());
  Feature* from = features.data();
  Feature* to = scratch.data();
  const size_t n = features.size();
  for (int shift = 0; shift < 64; shift += 8) {
    size_t count[257] = {};
    for (size_t i = 0; i < n; ++i) ++count[((from[i].hash >> shift) & 0xff) + 1];
    if (count[((from[0].hash >> shift) & 0xff) + 1] == n) continue;  // one digit: no move
    for (int d = 0; d < 256; ++d) count[d + 1] += count[d];
    for (size_t i = 0; i < n; ++i) to[count[(from[i].hash >> shift) & 0xff]++] = from[i];
    std::swap(from, to);
  }
  if (from != features.data()) std::copy(from, from + n, features.data());
}

// 1 + ln(count), the weight of a feature seen `count` times: most features of a chunk are
// seen once or a few times, and calling log() for each was 7% of ingestion's time. The table
// holds std::log's own results, so the embeddings are bit for bit what they were.
double CountWeight(size_t count) {
  static const auto table = [] {
    std::array<double, 64> t{};
    for (size_t n = 1; n < t.size(); ++n) t[n] = 1.0 + std::log(static_cast<double>(n));
    return t;
  }();
  return count < table.size() ? table[count] : 1.0 + std::log(static_cast<double>(count));
}

}  // namespace

HashEmbedder::HashEmbedder(int dimension) : dimension_(std::max(dimension, 1)) {}

std::string HashEmbedder::name() const {
  return "hash-v1";
}

void HashEmbedder::EmbedOne(std::string_view text, float* out) const {
  const auto dim = static_cast<size_t>(dimension_);
  std::fill(out, out + dim, 0.0f);
  const std::vector<std::string> terms = Tokenize(text);
  if (terms.empty()) return;

  std::vector<Feature> features;
  features.reserve(terms.size() * 8);
  for (size_t i = 0; i < terms.size(); ++i) {
    features.push_back({Fmix64(Fnv1a('w').Add(terms[i]).value()), kTermWeight});
    if (i > 0) {
      uint64_t pair = Fnv1a('b').Add(terms[i - 1]).Add(" ").Add(terms[i]).value();
      features.push_back({Fmix64(pair), kPairWeight});
    }
    AddTrigrams(terms[i], &features);
  }

  // Equal features sit together after sorting, which gives each one's count; the order is
  // fixed by the hashes alone, so the float sums (and the result) are the same on every run.
  SortByHash(features);
  for (size_t i = 0; i < features.size();) {
    size_t j = i + 1;
    while (j < features.size() && features[j].hash == features[i].hash) ++j;
    const uint64_t h = features[i].hash;
    const double value = features[i].weight * CountWeight(j - i);
    const bool negative = (Fmix64(h ^ kSignSalt) >> 63) != 0;
    out[h % dim] += static_cast<float>(negative ? -value : value);
    i = j;
  }

  double norm_sq = 0.0;
  for (size_t k = 0; k < dim; ++k) norm_sq += static_cast<double>(out[k]) * out[k];
  // Signs can cancel to an exact zero vector only in theory; leave it as the empty text's.
  if (norm_sq == 0.0) return;
  const double inv = 1.0 / std::sqrt(norm_sq);
  for (size_t k = 0; k < dim; ++k) out[k] = static_cast<float>(out[k] * inv);
}

Result<std::vector<std::vector<float>>> HashEmbedder::Embed(const std::vector<std::string>& texts) {
  std::vector<std::vector<float>> vectors(texts.size(),
                                          std::vector<float>(static_cast<size_t>(dimension_)));
  for (size_t i = 0; i < texts.size(); ++i) EmbedOne(texts[i], vectors[i].data());
  return vectors;
}

}  // namespace ragstream::rag
