#include "lib/store/kmeans.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>

#include "lib/store/vector_index.h"

namespace ragstream::store {
namespace {

// Runs body(begin, end) over [0, n) split into `threads` contiguous parts.
template <typename F>
void Parallel(size_t n, int threads, F body) {
  const size_t parts = std::max<size_t>(1, std::min<size_t>(threads, n));
  if (parts == 1) {
    body(size_t{0}, n);
    return;
  }
  std::vector<std::thread> running;
  for (size_t p = 1; p < parts; ++p) {
    running.emplace_back([&, p] { body(n * p / parts, n * (p + 1) / parts); });
  }
  body(size_t{0}, n / parts);
  for (auto& t : running) t.join();
}

uint32_t Best(const float* scores, uint32_t k) {
  return static_cast<uint32_t>(std::max_element(scores, scores + k) - scores);
}

void Normalise(float* v, uint32_t dim) {
  double norm = 0;
  for (uint32_t i = 0; i < dim; ++i) norm += double{v[i]} * v[i];
  if (norm <= 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (uint32_t i = 0; i < dim; ++i) v[i] *= inv;
}

}  // namespace

void AssignNearest(const std::vector<const float*>& rows, uint32_t dim, const float* centroids,
                   uint32_t k, int threads, uint32_t* out, const std::atomic<bool>* stop) {
  Parallel(rows.size(), threads, [&](size_t begin, size_t end) {
    std::vector<float> scores(k);
    for (size_t i = begin; i < end; ++i) {
      if (stop && (i - begin) % 1024 == 0 && stop->load()) return;
      ScoreRows(rows[i], centroids, k, dim, scores.data());
      out[i] = Best(scores.data(), k);
    }
  });
}

std::vector<uint32_t> NearestCentroids(const float* query, uint32_t dim, const float* centroids,
                                       uint32_t k, uint32_t n) {
  std::vector<float> scores(k);
  ScoreRows(query, centroids, k, dim, scores.data());
  std::vector<uint32_t> order(k);
  std::iota(order.begin(), order.end(), 0u);
  n = std::min(n, k);
  std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](uint32_t a, uint32_t b) {
    return scores[a] != scores[b] ? scores[a] > scores[b] : a < b;
  });
  order.resize(n);
  return order;
}

std::vector<float> TrainSphericalKMeans(const std::vector<const float*>& rows, uint32_t dim,
                                        uint32_t k, const KMeansOptions& options) {
  std::mt19937_64 random(options.seed);
  std::vector<size_t> pick(rows.size());
  std::iota(pick.begin(), pick.end(), size_t{0});
  std::shuffle(pick.begin(), pick.end(), random);
  std::vector<float> centroids(size_t{k} * dim);
  for (uint32_t c = 0; c < k; ++c) {
    std::copy(rows[pick[c]], rows[pick[c]] + dim, centroids.begin() + size_t{c} * dim);
    Normalise(centroids.data() + size_t{c} * dim, dim);
  }
  std::vector<uint32_t> assigned(rows.size());
  std::vector<double> sums(size_t{k} * dim);
  std::vector<uint32_t> sizes(k);
  for (uint32_t it = 0; it < options.iterations; ++it) {
    if (options.stop && options.stop->load()) break;
    AssignNearest(rows, dim, centroids.data(), k, options.threads, assigned.data(), options.stop);
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(sizes.begin(), sizes.end(), 0u);
    for (size_t i = 0; i < rows.size(); ++i) {
      double* sum = sums.data() + size_t{assigned[i]} * dim;
      for (uint32_t d = 0; d < dim; ++d) sum[d] += rows[i][d];
      ++sizes[assigned[i]];
    }
    const uint32_t largest =
        static_cast<uint32_t>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
    for (uint32_t c = 0; c < k; ++c) {
      float* centroid = centroids.data() + size_t{c} * dim;
      if (sizes[c] == 0) {
        // An empty cluster takes over a random row of the largest one, so that cluster is
        // split on the next assignment instead of the centroid being wasted.
        std::vector<size_t> members;
        for (size_t i = 0; i < rows.size(); ++i) {
          if (assigned[i] == largest) members.push_back(i);
        }
        const size_t i = members[random() % members.size()];
        std::copy(rows[i], rows[i] + dim, centroid);
        continue;
      }
      for (uint32_t d = 0; d < dim; ++d)
        centroid[d] = static_cast<float>(sums[size_t{c} * dim + d]);
      Normalise(centroid, dim);
    }
  }
  return centroids;
}

}  // namespace ragstream::store
