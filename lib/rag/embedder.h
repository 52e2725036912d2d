// The embedder interface: text in, one L2-normalised vector per text out. Implementations
// are the local hash embedder (offline, the default) and the OpenAI-compatible one; tests
// inject fakes.
//
// The vector index records name() and dimension() when it is built; vectors from a
// different embedder are meaningless against it, so a mismatch is a clear error, never a
// silent mix. An implementation whose output changes for the same input must change name().
#pragma once

#include <string>
#include <vector>

#include "lib/core/status.h"

namespace ragstream::rag {

class Embedder {
 public:
  virtual ~Embedder() = default;

  // Stable identifier recorded in the index, e.g. "hash-v1".
  virtual std::string name() const = 0;

  // Number of floats in every vector Embed() returns; fixed for the object's lifetime.
  virtual int dimension() const = 0;

  // One vector per text, in the order of `texts`, each of dimension() floats with L2 norm 1
  // (or all zeros for a text with nothing to embed; implementations document when). An
  // empty batch gives an empty result. Texts are UTF-8. On failure (an unreachable upstream,
  // a rejected request) returns the Status and no vectors. Thread-safe: may be called
  // concurrently from many request threads.
  virtual Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts) = 0;
};

}  // namespace ragstream::rag
