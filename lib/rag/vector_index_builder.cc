#include "lib/rag/vector_index_builder.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/core/log.h"

namespace ragstream::rag {
namespace {

// A build only runs on CPU nothing else wants (SCHED_IDLE; nice 19 if that is refused): it
// is an optimisation, searches are exact without it, and at nice 10 it took its share of both
// cores from the ingestion whose rows it indexes (a 24 MB batch ingest ran at 4.3 MB/s with
// it, 7.2 without). Its threads (k-means) inherit the policy. It holds no transaction while
// it computes, so being starved costs nothing but time.
void LowerPriority() {
  sched_param param{};
  if (sched_setscheduler(0, SCHED_IDLE, &param) != 0) {
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
  }
}

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", s);
  return buf;
}

}  // namespace

VectorIndexBuilder::VectorIndexBuilder(store::DocumentStore& store,
                                       VectorIndexBuilderOptions options)
    : store_(store), options_(options) {
  if (options_.min_chunks > 0) thread_ = std::thread([this] { Run(); });
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
  if (options_.min_chunks == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!queued_.insert(tenant).second) return;
    queue_.push_back(tenant);
  }
  wake_.notify_one();
}

void VectorIndexBuilder::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return (queue_.empty() && !busy_) || stop_.load(); });
}

void VectorIndexBuilder::Run() {
  LowerPriority();
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return !queue_.empty() || stop_.load(); });
    if (stop_.load()) break;
    std::string tenant = std::move(queue_.front());
    queue_.pop_front();
    queued_.erase(tenant);
    busy_ = true;
    lock.unlock();
    Check(tenant);
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
  idle_.notify_all();
}

void VectorIndexBuilder::Check(const std::string& tenant) {
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
           {"caught_up", std::to_string(report->caught_up)},
           {"train_s", Seconds(report->train_s)},
           {"assign_s", Seconds(report->assign_s)},
           {"write_s", Seconds(report->write_s)},
           {"flip_s", Seconds(report->flip_s)}});
}

}  // namespace ragstream::rag
