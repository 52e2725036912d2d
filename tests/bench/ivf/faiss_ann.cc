// The FAISS reference for ragstream's approximate vector index (lib/store/ivf_index.h: an IVF
// of int8 codes in LMDB, with exact float rescoring). Same vectors, same nlist, same nprobe
// values: what recall and single-query latency the textbook implementations reach, so the
// figures of our own index can be read against them -- is a recall shortfall the method's
// (FAISS shows it too) or ours; is a latency the scan's cost or LMDB's. HNSW is measured as
// well, as the alternative design (a graph instead of lists) that ivf_index.h did not take.
//
//   faiss_ann --base B.fvecs --queries Q.fvecs [--k 10] [--nlist 626]
//             [--nprobe 1,2,4,8,16,32,64,128,256] [--hnsw-m 32] [--ef-construction 100]
//             [--ef 16,32,64,128,256,512] [--threads 1] [--sample-per-list 64]
//             [--iterations 10]
//   --hnsw-m 0: no HNSW (its build is the slow part: ~150 s at 100k x 384 on 2 cores)
//
// .fvecs: per vector a little-endian int32 dimension, then that many float32. The vectors are
// taken to be unit length (checked, and reported on stderr if not); the metric is inner
// product throughout.
//
// What runs (Debian's libfaiss-dev 1.7.3):
// - exact: IndexFlatIP over the base; the top-k of each query, searched one query at a time,
//   is the ground truth, and its p50 latency is the cost of the exhaustive scan;
// - ivf_flat: IndexIVFFlat, quantizer IndexFlatIP, spherical k-means (`--iterations`) on a
//   random sample of min(n, nlist x sample-per-list) base vectors (the sampling ivf_index.h
//   does), then all vectors added; per nprobe, recall@k against exact (mean over queries of
//   |approx top-k n exact top-k| / k) and p50/p99 latency of single queries;
// - ivf_sq8: the same with IndexIVFScalarQuantizer QT_8bit (one byte per component, trained
//   range per dimension) encoding the vectors themselves, not residuals (by_residual = false,
//   like ivf_index.h's codes). FAISS ranks by the approximate scores and does not rescore,
//   so its recall is a floor for an index that rescores candidates exactly;
// - hnsw: IndexHNSWFlat(dim, M, inner product), efConstruction given; build time, then per
//   efSearch recall and p50/p99 latency of single queries.
// Builds (training, adds, HNSW construction) use --threads OpenMP threads; every search runs
// on one thread, one query at a time, after one untimed warm-up query.
//
// Output: one JSON object on stdout; progress on stderr.
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/MetricType.h>
#include <faiss/impl/HNSW.h>
#include <faiss/impl/ScalarQuantizer.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using idx_t = faiss::Index::idx_t;

constexpr uint64_t kSampleSeed = 1234;

struct Options {
  std::string base;
  std::string queries;
  int k = 10;
  int nlist = 626;
  std::vector<int> nprobe = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  int hnsw_m = 32;
  int ef_construction = 100;
  std::vector<int> ef = {16, 32, 64, 128, 256, 512};
  int threads = 1;
  int sample_per_list = 64;
  int iterations = 10;
};

struct Vectors {
  size_t n = 0;
  size_t dim = 0;
  std::vector<float> data;  // n x dim, row-major

  const float* Row(size_t i) const { return data.data() + i * dim; }
};

// One setting of a search parameter (nprobe or efSearch).
struct Run {
  int param = 0;
  double recall = 0;       // by ids
  double recall_ties = 0;  // counting equal-scoring vectors (Recall below)
  double p50_us = 0;
  double p99_us = 0;
  double scanned = 0;  // per query: IVF codes scanned; HNSW base-layer distances computed
};

// The exact top-k of every query (nq x k ids) and its k-th score.
struct Truth {
  std::vector<idx_t> labels;
  std::vector<float> kth_score;
};

struct DataStats {
  size_t non_unit = 0;
  size_t zero = 0;
  size_t duplicates = 0;
};

struct IvfResult {
  double train_s = 0;
  double add_s = 0;
  double imbalance = 0;  // FAISS's imbalance factor of the list sizes: 1 is perfectly even
  std::vector<Run> runs;
};

struct HnswResult {
  int m = 0;
  int ef_construction = 0;
  double build_s = 0;
  std::vector<Run> runs;
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "faiss_ann: %s\n", message.c_str());
  std::exit(2);
}

void Usage() {
  std::fprintf(stderr,
               "usage: faiss_ann --base B.fvecs --queries Q.fvecs [--k 10] [--nlist 626]\n"
               "                 [--nprobe 1,2,4,8,16,32,64,128,256] [--hnsw-m 32]\n"
               "                 [--ef-construction 100] [--ef 16,32,64,128,256,512]\n"
               "                 [--threads 1] [--sample-per-list 64] [--iterations 10]\n");
  std::exit(2);
}

int ParsePositive(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value <= 0 || value > 1'000'000'000) {
    Die("bad value for " + flag + ": '" + text + "'");
  }
  return static_cast<int>(value);
}

std::vector<int> ParseList(const std::string& flag, const std::string& text) {
  std::vector<int> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) values.push_back(ParsePositive(flag, item));
  if (values.empty()) Die("empty list for " + flag);
  return values;
}

Options ParseArgs(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") Usage();
    if (i + 1 >= argc) Die("missing value for " + flag);
    const std::string value = argv[++i];
    if (flag == "--base") {
      options.base = value;
    } else if (flag == "--queries") {
      options.queries = value;
    } else if (flag == "--k") {
      options.k = ParsePositive(flag, value);
    } else if (flag == "--nlist") {
      options.nlist = ParsePositive(flag, value);
    } else if (flag == "--nprobe") {
      options.nprobe = ParseList(flag, value);
    } else if (flag == "--hnsw-m") {
      options.hnsw_m = value == "0" ? 0 : ParsePositive(flag, value);
    } else if (flag == "--ef-construction") {
      options.ef_construction = ParsePositive(flag, value);
    } else if (flag == "--ef") {
      options.ef = ParseList(flag, value);
    } else if (flag == "--threads") {
      options.threads = ParsePositive(flag, value);
    } else if (flag == "--sample-per-list") {
      options.sample_per_list = ParsePositive(flag, value);
    } else if (flag == "--iterations") {
      options.iterations = ParsePositive(flag, value);
    } else {
      Die("unknown flag " + flag);
    }
  }
  if (options.base.empty() || options.queries.empty()) Usage();
  return options;
}

// Reads a whole .fvecs file; every vector must have the same dimension.
Vectors ReadFvecs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot open " + path);
  in.seekg(0, std::ios::end);
  const auto bytes = static_cast<size_t>(in.tellg());
  in.seekg(0, std::ios::beg);
  int32_t dim = 0;
  if (bytes < sizeof(dim) || !in.read(reinterpret_cast<char*>(&dim), sizeof(dim)) || dim <= 0) {
    Die(path + ": no vector dimension at the start");
  }
  const size_t record = sizeof(int32_t) + sizeof(float) * static_cast<size_t>(dim);
  if (bytes % record != 0)
    Die(path + ": size is not a multiple of a " + std::to_string(dim) + "-dimension record");
  Vectors v;
  v.dim = static_cast<size_t>(dim);
  v.n = bytes / record;
  v.data.resize(v.n * v.dim);
  in.seekg(0, std::ios::beg);
  for (size_t i = 0; i < v.n; ++i) {
    int32_t d = 0;
    in.read(reinterpret_cast<char*>(&d), sizeof(d));
    if (d != dim)
      Die(path + ": vector " + std::to_string(i) + " has dimension " + std::to_string(d) +
          ", expected " + std::to_string(dim));
    in.read(reinterpret_cast<char*>(v.data.data() + i * v.dim), sizeof(float) * v.dim);
    if (!in) Die(path + ": short read at vector " + std::to_string(i));
  }
  return v;
}

// Counts vectors that are not unit length (inner product is then not cosine), of which all
// zero (an embedding of nothing), and exact copies of an earlier vector (the same text twice:
// ties in the ground truth, which an id-based recall counts against the index).
DataStats Inspect(const std::string& name, const Vectors& v) {
  DataStats stats;
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < v.n; ++i) {
    double sum = 0;
    for (size_t j = 0; j < v.dim; ++j) sum += double{v.Row(i)[j]} * v.Row(i)[j];
    if (sum == 0) ++stats.zero;
    if (std::abs(std::sqrt(sum) - 1) > 1e-3) ++stats.non_unit;
    const std::string_view bytes(reinterpret_cast<const char*>(v.Row(i)), sizeof(float) * v.dim);
    if (!seen.insert(bytes).second) ++stats.duplicates;
  }
  std::fprintf(stderr, "%s: %zu x %zu, %zu not unit length (%zu zero), %zu duplicates\n",
               name.c_str(), v.n, v.dim, stats.non_unit, stats.zero, stats.duplicates);
  return stats;
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double Micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// Nearest-rank percentile, p in (0, 1].
double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

// Searches every query alone on one thread; fills labels and scores (nq x k) and per-query
// microseconds.
void SearchEach(const faiss::Index& index, const Vectors& queries, int k,
                std::vector<idx_t>* labels, std::vector<float>* scores,
                std::vector<double>* micros) {
  omp_set_num_threads(1);
  const auto kk = static_cast<size_t>(k);
  labels->assign(queries.n * kk, -1);
  scores->assign(queries.n * kk, 0);
  micros->clear();
  index.search(1, queries.Row(0), k, scores->data(), labels->data());  // warm-up
  for (size_t q = 0; q < queries.n; ++q) {
    const auto start = Clock::now();
    index.search(1, queries.Row(q), k, scores->data() + q * kk, labels->data() + q * kk);
    micros->push_back(Micros(Clock::now() - start));
  }
}

float Dot(const float* a, const float* b, size_t dim) {
  float sum = 0;
  for (size_t j = 0; j < dim; ++j) sum += a[j] * b[j];
  return sum;
}

// ids: mean over queries of |approx top-k n exact top-k| / k (the figure asked for).
// ties: the same, but a returned vector also counts if its exact score reaches the exact k-th
// score (less 1e-5), so a copy of a true neighbour, or an equal-scoring one, is not a miss.
struct Recalls {
  double ids = 0;
  double ties = 0;
};

Recalls Recall(const std::vector<idx_t>& approx, const Truth& truth, const Vectors& base,
               const Vectors& queries, int k) {
  const size_t nq = queries.n;
  const auto kk = static_cast<size_t>(k);
  Recalls sum;
  for (size_t q = 0; q < nq; ++q) {
    std::vector<idx_t> a(approx.begin() + q * kk, approx.begin() + (q + 1) * kk);
    std::vector<idx_t> e(truth.labels.begin() + q * kk, truth.labels.begin() + (q + 1) * kk);
    std::sort(a.begin(), a.end());
    std::sort(e.begin(), e.end());
    std::vector<idx_t> common;
    std::set_intersection(a.begin(), a.end(), e.begin(), e.end(), std::back_inserter(common));
    common.erase(std::remove(common.begin(), common.end(), idx_t{-1}), common.end());
    sum.ids += static_cast<double>(common.size()) / k;
    a.erase(std::unique(a.begin(), a.end()), a.end());
    size_t good = 0;
    for (idx_t id : a) {
      if (id < 0) continue;
      const float score = Dot(queries.Row(q), base.Row(static_cast<size_t>(id)), base.dim);
      if (score >= truth.kth_score[q] - 1e-5f) ++good;
    }
    sum.ties += static_cast<double>(std::min(good, kk)) / k;
  }
  if (nq > 0) {
    sum.ids /= static_cast<double>(nq);
    sum.ties /= static_cast<double>(nq);
  }
  return sum;
}

// A random sample of min(n, cap) rows (seeded), copied out in ascending row order.
std::vector<float> Sample(const Vectors& base, size_t cap) {
  const size_t count = std::min(base.n, cap);
  std::vector<size_t> rows(base.n);
  std::iota(rows.begin(), rows.end(), size_t{0});
  std::mt19937_64 rng(kSampleSeed);
  for (size_t i = 0; i < count; ++i) {  // partial Fisher-Yates
    std::uniform_int_distribution<size_t> pick(i, base.n - 1);
    std::swap(rows[i], rows[pick(rng)]);
  }
  rows.resize(count);
  std::sort(rows.begin(), rows.end());
  std::vector<float> out(count * base.dim);
  for (size_t i = 0; i < count; ++i) {
    std::memcpy(out.data() + i * base.dim, base.Row(rows[i]), sizeof(float) * base.dim);
  }
  return out;
}

// Trains and fills an IVF index, then runs every nprobe.
IvfResult MeasureIvf(const std::string& name, faiss::IndexIVF* index, const Options& options,
                     const Vectors& base, const Vectors& queries, const Truth& truth) {
  IvfResult result;
  index->cp.niter = options.iterations;
  index->cp.spherical = true;
  // The sample below is the whole training set: keep FAISS from subsampling it again.
  index->cp.max_points_per_centroid =
      std::max(index->cp.max_points_per_centroid, options.sample_per_list);
  const std::vector<float> sample =
      Sample(base, static_cast<size_t>(options.nlist) * options.sample_per_list);
  const auto sample_n = static_cast<idx_t>(sample.size() / base.dim);

  omp_set_num_threads(options.threads);
  std::fprintf(stderr, "%s: training on %lld vectors, nlist %d, %d iterations\n", name.c_str(),
               static_cast<long long>(sample_n), options.nlist, options.iterations);
  auto start = Clock::now();
  index->train(sample_n, sample.data());
  result.train_s = Seconds(Clock::now() - start);
  std::fprintf(stderr, "%s: trained in %.2f s; adding %zu vectors\n", name.c_str(), result.train_s,
               base.n);
  start = Clock::now();
  index->add(static_cast<idx_t>(base.n), base.data.data());
  result.add_s = Seconds(Clock::now() - start);
  result.imbalance = index->invlists->imbalance_factor();
  std::fprintf(stderr, "%s: added in %.2f s, imbalance factor %.3f\n", name.c_str(), result.add_s,
               result.imbalance);

  std::vector<idx_t> labels;
  std::vector<float> scores;
  std::vector<double> micros;
  for (int nprobe : options.nprobe) {
    if (nprobe > options.nlist) {
      std::fprintf(stderr, "%s: skipping nprobe %d > nlist %d\n", name.c_str(), nprobe,
                   options.nlist);
      continue;
    }
    index->nprobe = static_cast<size_t>(nprobe);
    faiss::indexIVF_stats.reset();
    SearchEach(*index, queries, options.k, &labels, &scores, &micros);
    Run run;
    run.param = nprobe;
    const Recalls recalls = Recall(labels, truth, base, queries, options.k);
    run.recall = recalls.ids;
    run.recall_ties = recalls.ties;
    run.p50_us = Percentile(micros, 0.50);
    run.p99_us = Percentile(micros, 0.99);
    // The stats include the warm-up query: queries.n + 1 searches.
    run.scanned =
        static_cast<double>(faiss::indexIVF_stats.ndis) / static_cast<double>(queries.n + 1);
    std::fprintf(stderr,
                 "%s: nprobe %4d  recall %.4f (ties %.4f)  p50 %8.1f us  p99 %8.1f us  "
                 "scanned %.0f\n",
                 name.c_str(), nprobe, run.recall, run.recall_ties, run.p50_us, run.p99_us,
                 run.scanned);
    result.runs.push_back(run);
  }
  return result;
}

HnswResult MeasureHnsw(const Options& options, const Vectors& base, const Vectors& queries,
                       const Truth& truth) {
  HnswResult result;
  result.m = options.hnsw_m;
  result.ef_construction = options.ef_construction;
  faiss::IndexHNSWFlat index(static_cast<int>(base.dim), options.hnsw_m,
                             faiss::METRIC_INNER_PRODUCT);
  index.hnsw.efConstruction = options.ef_construction;
  omp_set_num_threads(options.threads);
  std::fprintf(stderr, "hnsw: building, M %d, efConstruction %d, %d threads\n", options.hnsw_m,
               options.ef_construction, options.threads);
  const auto start = Clock::now();
  index.add(static_cast<idx_t>(base.n), base.data.data());
  result.build_s = Seconds(Clock::now() - start);
  std::fprintf(stderr, "hnsw: built in %.2f s\n", result.build_s);

  std::vector<idx_t> labels;
  std::vector<float> scores;
  std::vector<double> micros;
  for (int ef : options.ef) {
    index.hnsw.efSearch = ef;
    faiss::hnsw_stats.reset();
    SearchEach(index, queries, options.k, &labels, &scores, &micros);
    Run run;
    run.param = ef;
    const Recalls recalls = Recall(labels, truth, base, queries, options.k);
    run.recall = recalls.ids;
    run.recall_ties = recalls.ties;
    run.p50_us = Percentile(micros, 0.50);
    run.p99_us = Percentile(micros, 0.99);
    // FAISS 1.7.3 counts the base-layer distances of a search in n3 (ndis stays 0); the greedy
    // descent through the upper layers is not counted.
    run.scanned = static_cast<double>(faiss::hnsw_stats.n3 + faiss::hnsw_stats.ndis) /
                  static_cast<double>(queries.n + 1);
    std::fprintf(stderr,
                 "hnsw: ef %4d  recall %.4f (ties %.4f)  p50 %8.1f us  p99 %8.1f us  "
                 "distances %.0f\n",
                 ef, run.recall, run.recall_ties, run.p50_us, run.p99_us, run.scanned);
    result.runs.push_back(run);
  }
  return result;
}

std::string Fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

std::string RunsJson(const std::vector<Run>& runs, const char* param_name,
                     const char* scanned_name) {
  std::string out = "[";
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    out += (i ? ", " : "");
    out += "{\"" + std::string(param_name) + "\": " + std::to_string(r.param) +
           ", \"recall\": " + Fixed(r.recall, 4) + ", \"recall_ties\": " + Fixed(r.recall_ties, 4) +
           ", \"p50_us\": " + Fixed(r.p50_us, 1) + ", \"p99_us\": " + Fixed(r.p99_us, 1) + ", \"" +
           scanned_name + "\": " + Fixed(r.scanned, 0) + "}";
  }
  return out + "]";
}

std::string IvfJson(const IvfResult& r, int nlist) {
  return "{\"train_s\": " + Fixed(r.train_s, 3) + ", \"add_s\": " + Fixed(r.add_s, 3) +
         ", \"nlist\": " + std::to_string(nlist) + ", \"imbalance\": " + Fixed(r.imbalance, 3) +
         ", \"runs\": " + RunsJson(r.runs, "nprobe", "scanned") + "}";
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseArgs(argc, argv);
  std::fprintf(stderr, "faiss_ann: reading %s and %s\n", options.base.c_str(),
               options.queries.c_str());
  const Vectors base = ReadFvecs(options.base);
  const Vectors queries = ReadFvecs(options.queries);
  if (base.dim != queries.dim) {
    Die("base dimension " + std::to_string(base.dim) + " != query dimension " +
        std::to_string(queries.dim));
  }
  if (base.n == 0 || queries.n == 0) Die("no vectors");
  if (static_cast<size_t>(options.k) > base.n) Die("--k exceeds the base size");
  if (static_cast<size_t>(options.nlist) > base.n) Die("--nlist exceeds the base size");
  const DataStats base_stats = Inspect("base", base);
  Inspect("queries", queries);
  const auto dim = static_cast<idx_t>(base.dim);

  // Ground truth: exhaustive inner product, one query at a time.
  Truth truth;
  double exact_p50_us = 0;
  {
    faiss::IndexFlatIP flat(dim);
    flat.add(static_cast<idx_t>(base.n), base.data.data());
    std::vector<float> scores;
    std::vector<double> micros;
    SearchEach(flat, queries, options.k, &truth.labels, &scores, &micros);
    for (size_t q = 0; q < queries.n; ++q) {
      truth.kth_score.push_back(scores[(q + 1) * static_cast<size_t>(options.k) - 1]);
    }
    exact_p50_us = Percentile(micros, 0.50);
    std::fprintf(stderr, "exact: p50 %.1f us, p99 %.1f us\n", exact_p50_us,
                 Percentile(micros, 0.99));
  }

  IvfResult ivf_flat;
  {
    faiss::IndexFlatIP quantizer(dim);
    faiss::IndexIVFFlat index(&quantizer, base.dim, static_cast<size_t>(options.nlist),
                              faiss::METRIC_INNER_PRODUCT);
    ivf_flat = MeasureIvf("ivf_flat", &index, options, base, queries, truth);
  }

  IvfResult ivf_sq8;
  {
    faiss::IndexFlatIP quantizer(dim);
    faiss::IndexIVFScalarQuantizer index(&quantizer, base.dim, static_cast<size_t>(options.nlist),
                                         faiss::ScalarQuantizer::QT_8bit,
                                         faiss::METRIC_INNER_PRODUCT,
                                         /*encode_residual=*/false);
    ivf_sq8 = MeasureIvf("ivf_sq8", &index, options, base, queries, truth);
  }

  // --hnsw-m 0 leaves HNSW out (its build takes minutes at 100k vectors on 2 cores).
  HnswResult hnsw;
  if (options.hnsw_m > 0) hnsw = MeasureHnsw(options, base, queries, truth);

  std::printf(
      "{\"n\": %zu, \"dim\": %zu, \"base_non_unit\": %zu, \"base_zero\": %zu, "
      "\"base_duplicates\": %zu, \"queries\": %zu, \"k\": %d, \"threads\": %d, "
      "\"sample_per_list\": %d, \"iterations\": %d, \"exact_p50_us\": %s,\n"
      " \"ivf_flat\": %s,\n \"ivf_sq8\": %s,\n"
      " \"hnsw\": {\"m\": %d, \"ef_construction\": %d, \"build_s\": %s, \"runs\": %s}}\n",
      base.n, base.dim, base_stats.non_unit, base_stats.zero, base_stats.duplicates, queries.n,
      options.k, options.threads, options.sample_per_list, options.iterations,
      Fixed(exact_p50_us, 1).c_str(), IvfJson(ivf_flat, options.nlist).c_str(),
      IvfJson(ivf_sq8, options.nlist).c_str(), hnsw.m, hnsw.ef_construction,
      Fixed(hnsw.build_s, 3).c_str(), RunsJson(hnsw.runs, "ef", "distances").c_str());
  return 0;
}
