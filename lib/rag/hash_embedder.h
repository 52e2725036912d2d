// The local embedder: signed feature hashing of the lexical terms of a text. Offline,
// deterministic and fast; it captures word overlap (including shared word pairs and, through
// character trigrams, shared stems and typos), not meaning, so it is a sensible default for
// retrieval without a model and a baseline for the OpenAI embedder.
//
// Features of a text (terms come from Tokenize() in lib/rag/text.h):
//   - each term, weight 1.0;
//   - each pair of consecutive terms "t1 t2", weight 0.5;
//   - each character trigram of a term of at least two code points, over code points, with
//     the term padded by "^" and "$" ("ab" gives "^ab", "ab$"; "abc" gives "^ab", "abc",
//     "bc$"), weight 0.3. Terms hold only letters, marks and digits, so the markers never
//     clash with a term's own characters.
// A feature of kind K ('w' term, 'b' pair, 't' trigram) with bytes B is hashed as
//   h = fmix64(fnv1a64(K + B))
// (FNV-1a 64-bit: offset basis 0xcbf29ce484222325, prime 0x100000001b3; fmix64 is the
// MurmurHash3 finaliser). The kind byte keeps the term "abc" and the trigram "abc" apart.
// It adds weight * (1 + ln(tf)) (tf: the feature's count in the text) to component
// h % dimension, negated when bit 63 of fmix64(h ^ 0x9e3779b97f4a7c15) is set (the sign
// makes collisions cancel out on average instead of piling up). The vector is then
// L2-normalised.
//
// Changing any of this (the tokenizer, the features, weights or hashes) changes every stored
// vector: give the embedder a new name() ("hash-v2") so an old index is refused, not
// silently mismatched.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/rag/embedder.h"

namespace ragstream::rag {

class HashEmbedder : public Embedder {
 public:
  static constexpr int kDefaultDimension = 384;

  // `dimension` below 1 is raised to 1 (a nonsensical configuration, but never undefined
  // behaviour); callers check configuration before constructing.
  explicit HashEmbedder(int dimension = kDefaultDimension);

  // "hash-v1".
  std::string name() const override;
  int dimension() const override { return dimension_; }

  // Never fails. A text with no terms (empty, whitespace or punctuation only) gives the
  // zero vector, which has cosine 0 with everything; every other text gives a unit vector.
  // Invalid UTF-8 is repaired first (as by NormalizeText). Thread-safe.
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts) override;

  // Embed() for one text, writing dimension() floats to `out` (overwritten, not added to).
  // Allocates per text (its terms and one feature list), not per feature. Thread-safe.
  void EmbedOne(std::string_view text, float* out) const;

 private:
  int dimension_;
};

}  // namespace ragstream::rag
