// The approximate vector index on a store made by ttft_store: builds it (unless --no-build),
// then for --n questions (corpus.h, embedded by the hash embedder, as the product does)
// compares the approximate top-k with the exact one at each --nprobe, timing both. Prints one
// JSON object: the build's report, and per nprobe recall@k against exact (mean), and p50/p99
// microseconds of DocumentStore::SearchVectors.
//
//   ivf_probe --dir DIR [--n 200] [--k 10] [--shards 4] [--nprobe 1,2,4,8,16,32,64]
//             [--nlist 0] [--threads 2] [--no-build] [--random] [--seed 1] [--questions FILE]
//             [--shares default,0.05,0.1,...]
//
// --shares: probe these shares of the lists; `default` is what a search without an nprobe
// probes (what the index learnt from checked questions, or the build's estimate).
// --observe: check every question against the exact scan before measuring, as the worker does
// with a sample of its questions: the default probe learns from them.
// --questions FILE: the questions, one per line (else corpus.h's synthetic ones).
// --dump PREFIX: writes the vectors and queries as fvecs files and exits (no search).
// --random: queries are random unit vectors instead of questions (the worst case for an IVF:
// no structure to find).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "lib/rag/analyzer.h"
#include "lib/rag/hash_embedder.h"
#include "lib/store/conversation_store.h"
#include "lib/store/document_store.h"
#include "tests/bench/ttft/corpus.h"

using namespace ragstream;
using Clock = std::chrono::steady_clock;

namespace {

double Us(Clock::time_point since) {
  return std::chrono::duration<double, std::micro>(Clock::now() - since).count();
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int n = 200, k = 10, shards = 4, threads = 2;
  uint32_t nlist = 0;
  uint64_t seed = 1;
  bool build = true, random_queries = false;
  std::vector<std::string> question_lines;  // --questions FILE: one per line
  std::string dump;  // --dump PREFIX: PREFIX.base.fvecs, PREFIX.queries.fvecs, then exit
  std::vector<uint32_t> nprobes = {1, 2, 4, 8, 16, 32, 64};
  std::vector<double> shares;  // --shares: probe these shares of the lists instead
  bool observe = false;        // --observe: check each question first, as the product samples
  bool int8 = false;           // --vector-format int8: the store was made with int8 vectors
  const double target_recall = 0.95;  // RAGSTREAM_IVF_RECALL's default
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string("0"); };
    if (arg == "--dir") {
      dir = next();
    } else if (arg == "--n") {
      n = std::stoi(next());
    } else if (arg == "--k") {
      k = std::stoi(next());
    } else if (arg == "--shards") {
      shards = std::stoi(next());
    } else if (arg == "--threads") {
      threads = std::stoi(next());
    } else if (arg == "--nlist") {
      nlist = static_cast<uint32_t>(std::stoul(next()));
    } else if (arg == "--seed") {
      seed = std::stoull(next());
    } else if (arg == "--nprobe") {
      nprobes.clear();
      std::stringstream list(next());
      for (std::string item; std::getline(list, item, ',');) {
        nprobes.push_back(static_cast<uint32_t>(std::stoul(item)));
      }
    } else if (arg == "--no-build") {
      build = false;
    } else if (arg == "--questions") {
      std::ifstream in(next());
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) question_lines.push_back(line);
      }
    } else if (arg == "--shares") {
      std::stringstream list(next());
      for (std::string item; std::getline(list, item, ',');) {
        shares.push_back(item == "default" ? -1 : std::stod(item));
      }
    } else if (arg == "--dump") {
      dump = next();
    } else if (arg == "--random") {
      random_queries = true;
    } else if (arg == "--observe") {
      observe = true;
    } else if (arg == "--vector-format") {
      int8 = next() == "int8";
    } else {
      std::fprintf(stderr,
                   "usage: ivf_probe --dir DIR [--n 200] [--k 10] [--shards 4] "
                   "[--nprobe 1,2,4,...] [--nlist 0] [--threads 2] [--no-build] [--random] "
                   "[--seed 1] [--questions FILE] [--shares default,0.1,...] [--observe] "
                   "[--vector-format float|int8] "
                   "[--dump PREFIX]\n");
      return 2;
    }
  }
  std::vector<std::string> databases = store::ConversationStore::Databases();
  for (auto& name : store::DocumentStore::Databases(shards)) {
    if (std::find(databases.begin(), databases.end(), name) == databases.end()) {
      databases.push_back(name);
    }
  }
  auto env = store::Env::Open({dir, 0, 64, 4096, databases});
  if (!env.ok()) {
    std::fprintf(stderr, "ivf_probe: %s\n", env.status().ToString().c_str());
    return 1;
  }
  store::DocumentStore documents(**env, shards,
                                 int8 ? store::VectorFormat::kInt8 : store::VectorFormat::kFloat,
                                 rag::AnalyzeDocumentChunks);
  rag::HashEmbedder embedder;
  const uint32_t dim = static_cast<uint32_t>(embedder.dimension());
  std::printf("{");
  if (build) {
    store::IvfBuildOptions options;
    options.nlist = nlist;
    options.threads = threads;
    options.target_recall = target_recall;
    const auto t0 = Clock::now();
    auto report = documents.BuildVectorIndex("default", dim, options);
    if (!report.ok()) {
      std::fprintf(stderr, "ivf_probe: build: %s\n", report.status().ToString().c_str());
      return 1;
    }
    std::printf(
        "\"build\": {\"built\": %s, \"seconds\": %.2f, \"rows\": %llu, \"nlist\": %u, "
        "\"trained_on\": %llu, \"read_s\": %.2f, \"train_s\": %.2f, \"assign_s\": %.2f, "
        "\"write_s\": %.2f, \"flip_s\": %.3f, \"threads\": %d, \"tuned_share\": %.4f, "
        "\"estimated_recall\": %.4f, \"target_recall\": %.2f}, ",
        report->built ? "true" : "false", Us(t0) / 1e6,
        static_cast<unsigned long long>(report->rows), report->nlist,
        static_cast<unsigned long long>(report->trained_on), report->read_s, report->train_s,
        report->assign_s, report->write_s, report->flip_s, threads, report->tuned_share,
        report->estimated_recall, target_recall);
  }
  std::vector<std::vector<float>> queries;
  std::mt19937_64 random(seed);
  std::normal_distribution<float> normal;
  for (int q = 0; q < n; ++q) {
    if (random_queries) {
      std::vector<float> v(dim);
      double norm = 0;
      for (float& x : v) {
        x = normal(random);
        norm += double{x} * x;
      }
      for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
      queries.push_back(std::move(v));
    } else {
      auto v = embedder.Embed({question_lines.empty()
                                   ? bench::Question(static_cast<uint64_t>(q) + seed * 100000)
                                   : question_lines[q % question_lines.size()]});
      if (!v.ok()) return 1;
      queries.push_back(v->front());
    }
  }
  if (!dump.empty()) {
    // fvecs (int32 dim, then dim float32, per vector): the tenant's vectors in chunk id order,
    // and the queries, for a comparison with other libraries on the same vectors.
    auto write = [&](const std::string& path, const std::vector<const float*>& rows) {
      FILE* f = std::fopen(path.c_str(), "wb");
      if (!f) return false;
      const int32_t d = static_cast<int32_t>(dim);
      for (const float* r : rows) {
        std::fwrite(&d, 4, 1, f);
        std::fwrite(r, 4, dim, f);
      }
      return std::fclose(f) == 0;
    };
    auto txn = store::Txn::BeginRead(**env);
    if (!txn.ok()) return 1;
    std::vector<std::pair<uint32_t, std::vector<float>>> base;
    Status s = documents.vectors().ForEach(
        *txn, "default", 0, dim, [&](uint32_t first, const float* rows, uint32_t count, bool) {
          for (uint32_t r = 0; r < count; ++r) {
            base.push_back({first + r, std::vector<float>(rows + size_t{r} * dim,
                                                          rows + size_t{r + 1} * dim)});
          }
          return Status::Ok();
        });
    if (!s.ok()) return 1;
    std::sort(base.begin(), base.end());
    std::vector<const float*> rows, qs;
    for (const auto& b : base) rows.push_back(b.second.data());
    for (const auto& q : queries) qs.push_back(q.data());
    if (!write(dump + ".base.fvecs", rows) || !write(dump + ".queries.fvecs", qs)) return 1;
    std::printf("\"dumped\": %zu}\n", rows.size());
    return 0;
  }
  // --observe: each question is checked against the exact scan first, as the worker does with
  // a sample of its questions (DocumentStore::ObserveVectorRecall): the default probe learns
  // from these questions. Without it, the probe is what earlier runs taught the index.
  if (observe) {
    for (const auto& q : queries) {
      if (auto s = documents.ObserveVectorRecall("default", q.data(), dim, target_recall);
          !s.ok()) {
        std::fprintf(stderr, "ivf_probe: observe: %s\n", s.status().ToString().c_str());
        return 1;
      }
    }
    auto txn = store::Txn::BeginRead(**env);
    if (!txn.ok()) return 1;
    auto state = documents.ivf().Active(*txn, "default");
    if (state.ok() && *state) {
      std::printf("\"learnt\": {\"questions\": %zu, \"share\": %.4f, \"recall\": %.4f}, ",
                  queries.size(), (*state)->live_share, (*state)->live_recall);
    }
  }
  std::vector<std::set<uint32_t>> truth;
  std::vector<float> kth;  // the exact k-th score: a hit scoring as much ties with the truth
  std::vector<double> exact_us;
  for (const auto& q : queries) {
    store::VectorSearchOptions exact;
    exact.exact = true;
    const auto t0 = Clock::now();
    auto hits = documents.SearchVectors("default", q.data(), dim, k, {}, exact);
    exact_us.push_back(Us(t0));
    if (!hits.ok()) return 1;
    std::set<uint32_t> ids;
    for (const auto& h : *hits) ids.insert(h.chunk);
    truth.push_back(std::move(ids));
    kth.push_back(hits->empty() ? 0.0f : hits->back().score);
  }
  std::printf(
      "\"queries\": %d, \"k\": %d, \"random_queries\": %s, \"exact_p50_us\": %.0f, "
      "\"exact_p99_us\": %.0f, \"approximate\": [",
      n, k, random_queries ? "true" : "false", Pct(exact_us, 50), Pct(exact_us, 99));
  // Each run: an nprobe, or (--shares) a share of the lists.
  const size_t runs = shares.empty() ? nprobes.size() : shares.size();
  for (size_t p = 0; p < runs; ++p) {
    std::vector<double> us;
    double recall = 0, recall_ties = 0;
    uint64_t scanned = 0;
    uint32_t probed = 0, nlist = 0;
    bool approximate = true;
    for (size_t i = 0; i < queries.size(); ++i) {
      store::VectorSearchOptions how;
      if (shares.empty()) {
        how.probe = store::IvfProbe{nprobes[p]};
      } else if (shares[p] >= 0) {
        how.probe = store::IvfProbe{0, false, shares[p]};
      }  // else the default: what the product probes
      store::VectorSearchInfo info;
      const auto t0 = Clock::now();
      auto hits = documents.SearchVectors("default", queries[i].data(), dim, k, {}, how, &info);
      us.push_back(Us(t0));
      if (!hits.ok()) return 1;
      approximate = approximate && info.approximate;
      scanned += info.ivf.rows_scanned;
      probed = info.ivf.nprobe;
      nlist = info.ivf.nlist;
      size_t found = 0;
      for (const auto& h : *hits) found += truth[i].count(h.chunk);
      recall += truth[i].empty() ? 1.0 : static_cast<double>(found) / truth[i].size();
      // Duplicate chunks (a licence in many packages) score alike: a hit as good as the exact
      // k-th is as right as the one the exact scan happened to list.
      size_t tied = 0;
      for (const auto& h : *hits) tied += h.score >= kth[i];
      recall_ties += truth[i].empty() ? 1.0 : static_cast<double>(tied) / truth[i].size();
    }
    std::printf(
        "%s{\"share\": %.4f, \"default\": %s, \"nprobe\": %u, \"approximate\": %s, "
        "\"recall\": %.4f, "
        "\"recall_ties\": %.4f, "
        "\"p50_us\": %.0f, \"p99_us\": %.0f, \"rows_scanned_mean\": %.0f}",
        p ? ", " : "",
        shares.empty()   ? 0.0
        : shares[p] >= 0 ? shares[p]
                         : static_cast<double>(probed) / std::max<uint32_t>(nlist, 1),
        !shares.empty() && shares[p] < 0 ? "true" : "false", probed, approximate ? "true" : "false",
        recall / n, recall_ties / n, Pct(us, 50), Pct(us, 99), static_cast<double>(scanned) / n);
  }
  std::printf("]}\n");
  return 0;
}
