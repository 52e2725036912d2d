// Spherical k-means for the approximate vector index (ivf_index.h): pure functions, no LMDB.
//
// The vectors are compared by inner product (cosine for unit vectors, which every embedder
// here returns), so a centroid is the normalised mean of its rows and a row belongs to the
// centroid with the highest inner product -- what FAISS's IndexIVFFlat does with
// METRIC_INNER_PRODUCT and spherical training.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace ragstream::store {

struct KMeansOptions {
  uint32_t iterations = 10;
  uint64_t seed = 1;
  int threads = 1;  // rows are split across this many threads
  // Set: training ends early (its centroids are then of no use; the caller gives up).
  const std::atomic<bool>* stop = nullptr;
};

// `k` centroids (k x dim floats, row-major, each of unit length) of `rows` (each dim floats).
// Starts from k distinct rows picked by `seed`; a centroid left without rows is moved onto a
// random row of the largest cluster. Needs rows.size() >= k >= 1. Deterministic for a seed
// and thread count.
std::vector<float> TrainSphericalKMeans(const std::vector<const float*>& rows, uint32_t dim,
                                        uint32_t k, const KMeansOptions& options = {});

// out[i] = the centroid with the highest inner product with rows[i] (lowest index on ties).
// `stop` set: returns early, `out` incomplete.
void AssignNearest(const std::vector<const float*>& rows, uint32_t dim, const float* centroids,
                   uint32_t k, int threads, uint32_t* out, const std::atomic<bool>* stop = nullptr);

// The `n` centroids with the highest inner product with `query`, best first.
std::vector<uint32_t> NearestCentroids(const float* query, uint32_t dim, const float* centroids,
                                       uint32_t k, uint32_t n);

}  // namespace ragstream::store
