#include "lib/rag/vector_index_builder.h"

#include <cmath>
#include <cstdio>

#include "lib/core/log.h"
#include "lib/core/low_priority.h"

namespace ragstream::rag {
namespace {

// Questions waiting to be checked against the exact scan; more are not sampled.
constexpr size_t kMaxQueuedQuestions = 4;

std::string Fixed(double v, int decimals = 2) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

VectorIndexBuilder::VectorIndexBuilder(store::DocumentStore& store,
                                       VectorIndexBuilderOptions options)
    : store_(store), options_(options) {
  // Always: packing a store written before vector blocks needs the thread even when no
  // approximate index is ever built (min_chunks 0: VectorIndexNeedsBuild is then false).
  thread_ = std::thread([this] { Run(); });
}

VectorIndexBuilder::~VectorIndexBuilder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void VectorIndexBuilder::Touched(const std::string& tenant) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!queued_.insert(tenant).second) return;
    queue_.push_back(tenant);
  }
  wake_.notify_one();
}

void VectorIndexBuilder::Answered(const std::string& tenant, const float* query, uint32_t dim) {
  if (options_.check_every == 0 || options_.min_chunks == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (++answered_ % options_.check_every != 0 || questions_.size() >= kMaxQueuedQuestions) {
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_sampled_ < std::chrono::milliseconds(options_.check_interval_ms)) return;
    last_sampled_ = now;
    questions_.push_back({tenant, std::vector<float>(query, query + dim)});
  }
  wake_.notify_one();
}

void VectorIndexBuilder::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock,
             [&] { return (queue_.empty() && questions_.empty() && !busy_) || stop_.load(); });
}

void VectorIndexBuilder::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return !queue_.empty() || !questions_.empty() || stop_.load(); });
    if (stop_.load()) break;
    busy_ = true;
    // A failure here (no thread could be started, memory) costs an index or a check, never
    // the worker and its streams.
    if (!queue_.empty()) {
      std::string tenant = std::move(queue_.front());
      queue_.pop_front();
      queued_.erase(tenant);
      lock.unlock();
      try {
        Check(tenant);
      } catch (const std::exception& e) {
        LogError("ivf", "building the approximate vector index failed",
                 {{"tenant", tenant}, {"error", e.what()}});
      }
    } else {
      Question q = std::move(questions_.front());
      questions_.pop_front();
      lock.unlock();
      try {
        Observe(q);
      } catch (const std::exception& e) {
        LogError("ivf", "could not check a question against the exact scan",
                 {{"tenant", q.tenant}, {"error", e.what()}});
      }
    }
    lock.lock();
    busy_ = false;
    if (queue_.empty() && questions_.empty()) idle_.notify_all();
  }
  idle_.notify_all();
}

void VectorIndexBuilder::Observe(const Question& q) {
  auto s = store_.ObserveVectorRecall(
      q.tenant, q.query.data(), static_cast<uint32_t>(q.query.size()), options_.target_recall);
  if (!s.ok()) {
    LogWarn("ivf", "could not check a question against the exact scan",
            {{"tenant", q.tenant}, {"error", s.status().message()}});
    return;
  }
  checks_.fetch_add(1);
  if (*s) Learnt(q.tenant, **s);
}

void VectorIndexBuilder::Learnt(const std::string& tenant, const store::IvfState& state) {
  // Said when the learnt probe first appears for an index, and when it moves by a hundredth
  // of the lists or more: not at every check.
  auto [it, first] = learnt_.try_emplace(tenant, std::pair<uint32_t, float>{state.id, 0.0f});
  if (state.live_share <= 0) return;
  if (!first && it->second.first == state.id &&
      std::abs(it->second.second - state.live_share) < 0.01f) {
    return;
  }
  it->second = {state.id, state.live_share};
  LogInfo("ivf", "the approximate vector index learnt its probe",
          {{"tenant", tenant},
           {"id", std::to_string(state.id)},
           {"share", Fixed(state.live_share, 3)},
           {"nprobe", std::to_string(static_cast<uint32_t>(
                          std::ceil(static_cast<double>(state.live_share) * state.nlist)))},
           {"nlist", std::to_string(state.nlist)},
           {"recall", Fixed(state.live_recall, 3)}});
}

void VectorIndexBuilder::Check(const std::string& tenant) {
  // A store written before vector blocks: its per-document values become blocks, a few ranges
  // per write transaction (after that, a few cursor seeks find nothing to do).
  if (options_.dimension > 0) {
    auto packed = store_.PackVectors(tenant, options_.dimension, 8, &stop_);
    if (!packed.ok()) {
      LogWarn("vectors", "could not pack vectors into blocks",
              {{"tenant", tenant}, {"error", packed.status().message()}});
    } else if (*packed > 0) {
      LogInfo("vectors", "packed per-document vectors into blocks",
              {{"tenant", tenant}, {"ranges", std::to_string(*packed)}});
    }
  }
  auto needed = store_.VectorIndexNeedsBuild(tenant, options_.min_chunks);
  if (!needed.ok()) {
    LogWarn("ivf", "could not check the approximate vector index",
            {{"tenant", tenant}, {"error", needed.status().message()}});
    return;
  }
  if (!*needed) return;
  store::IvfBuildOptions build;
  build.nlist = options_.nlist;
  build.threads = options_.threads;
  build.min_rows = options_.min_chunks;
  build.target_recall = options_.target_recall;
  // The computation only on CPU nothing else wants: the index is an optimisation (searches
  // are exact without it), and at nice 10 it took half the cores from the ingestion whose
  // rows it indexes (a 24 MB batch ingest: 4.3 MB/s with it, 7.2 without). This thread keeps
  // its priority for the build's reads and writes: it holds the write lock at times.
  build.compute = [](const std::function<void()>& work) { RunAtLowestPriority(work); };
  build.stop = &stop_;
  LogInfo("ivf", "building an approximate vector index", {{"tenant", tenant}});
  auto report = store_.BuildVectorIndex(tenant, options_.dimension, build);
  if (!report.ok()) {
    if (stop_.load()) return;  // given up at shutdown, cleaned up
    LogWarn("ivf", "building the approximate vector index failed",
            {{"tenant", tenant}, {"error", report.status().message()}});
    return;
  }
  if (!report->built) {
    LogInfo("ivf", "no approximate vector index built",
            {{"tenant", tenant}, {"reason", report->skipped}});
    return;
  }
  builds_.fetch_add(1);
  LogInfo("ivf", "approximate vector index built",
          {{"tenant", tenant},
           {"id", std::to_string(report->id)},
           {"rows", std::to_string(report->rows)},
           {"nlist", std::to_string(report->nlist)},
           {"trained_on", std::to_string(report->trained_on)},
           {"probe_share", Fixed(report->tuned_share, 3)},
           {"estimated_recall", Fixed(report->estimated_recall, 3)},
           {"caught_up", std::to_string(report->caught_up)},
           {"train_s", Fixed(report->train_s)},
           {"assign_s", Fixed(report->assign_s)},
           {"write_s", Fixed(report->write_s)},
           {"flip_s", Fixed(report->flip_s)}});
}

}  // namespace ragstream::rag
