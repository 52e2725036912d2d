// Keeps each tenant's approximate vector index (store::IvfIndex) current, in the background:
// after a write that added or deleted a tenant's chunks, one thread (its computation at nice
// 19, RunAtLowestPriority) checks whether the tenant needs a first index or a new one
// (DocumentStore::VectorIndexNeedsBuild: none yet and RAGSTREAM_IVF_MIN_CHUNKS chunks, or as many
// rows changed as it was built with) and builds it. Searches go on meanwhile on the exact scan or
// the old index; the new one takes over in one transaction. Several workers on one store build each
// tenant once: the build claims it in the store. The same check first packs vectors that a store
// written before vector blocks keeps one value per document (DocumentStore::PackVectors).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lib/store/document_store.h"

namespace ragstream::rag {

struct VectorIndexBuilderOptions {
  uint64_t min_chunks = 20000;  // 0: never build
  uint32_t nlist = 0;           // 0: IvfDefaultNlist
  uint32_t dimension = 0;       // the embedder's
  int threads = 1;              // for training and assignment
  double target_recall = 0.95;  // store::IvfBuildOptions::target_recall
  // Every check_every-th question the approximate index answers is checked against the exact
  // scan on this thread (DocumentStore::ObserveVectorRecall), at most one per
  // check_interval_ms; 0: never.
  uint32_t check_every = 16;
  int64_t check_interval_ms = 1000;
};

class VectorIndexBuilder {
 public:
  VectorIndexBuilder(store::DocumentStore& store, VectorIndexBuilderOptions options);
  // Stops the thread; a build under way gives up and removes what it wrote.
  ~VectorIndexBuilder();
  VectorIndexBuilder(const VectorIndexBuilder&) = delete;
  VectorIndexBuilder& operator=(const VectorIndexBuilder&) = delete;

  // The tenant's chunks changed: check it soon. Cheap, never waits for a build.
  void Touched(const std::string& tenant);
  // The approximate index answered a question (DocumentStore::set_on_approximate_search):
  // a sample of them is checked in the background. Cheap, never waits.
  void Answered(const std::string& tenant, const float* query, uint32_t dim);
  // Waits until nothing is queued, being built or being checked (for tests and tools).
  void WaitIdle();
  uint64_t builds() const { return builds_.load(); }
  uint64_t checks() const { return checks_.load(); }

 private:
  void Run();
  void Check(const std::string& tenant);
  struct Question {
    std::string tenant;
    std::vector<float> query;
  };
  void Observe(const Question& q);
  void Learnt(const std::string& tenant, const store::IvfState& state);

  store::DocumentStore& store_;
  VectorIndexBuilderOptions options_;
  std::mutex mu_;
  std::condition_variable wake_, idle_;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;
  std::deque<Question> questions_;  // at most a few: the rest are not sampled
  // Per tenant, the index id and learnt share last logged (this thread only).
  std::map<std::string, std::pair<uint32_t, float>> learnt_;
  uint64_t answered_ = 0;
  std::chrono::steady_clock::time_point last_sampled_{};
  bool busy_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> builds_{0}, checks_{0};
  std::thread thread_;
};

}  // namespace ragstream::rag
