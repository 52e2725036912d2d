// Part 4 of the benchmarks (issue 7): exact vector search where the vectors live -- the LMDB
// shards, read through store::VectorIndex -- against FAISS IndexFlatIP on the same random
// unit vectors, and against the floor that memory bandwidth sets (bytes scanned / read
// bandwidth, both measured in this run); then the int8 format (store/vector_quant.h) with
// exact float rescoring. Writes a JSON report and a Markdown section.
//
//   vector_bench [--sizes 100000x384,1000000x384,100000x1536] [--dir /tmp/ragstream-vector-bench]
//                [--shards 4] [--threads 1,2] [--single-reps N] [--batch-reps 3]
//                [--block-rows 512] [--oversample 4] [--vi64-cap-s 20] [--budget-s S]
//                [--json FILE] [--md FILE]
//                [--command "how this was run"] [--keep] [--profile
//                vectorindex|docs|docs-prefetch|blocks|int8]
//
// What runs, for each size (rows x dim) and each thread count T (the process is pinned to T
// cores with sched_setaffinity, and OpenMP -- FAISS and its BLAS -- gets T threads):
// - the read bandwidth of T threads summing a 2 GiB buffer, and the floor it sets;
// - VectorIndex::Search, top-10: single-query latency and 64 queries one after another;
// - FAISS IndexFlatIP: single query, and one 64-query batch;
// - for comparison, over the same LMDB environment and with the product's rows kernel: the
//   same vectors in VectorIndex's previous layout, one value per document (docv.N, written by
//   this benchmark: VectorIndex itself now packs each 512-id range into one block value and
//   keeps per-document pieces only for the range still filling), and the benchmark's own
//   prototype of a block scan, blocks of --block-rows rows per value per shard (blk.N), with
//   a 64-query batch over those blocks;
// - int8 blocks (vector_quant.h) with exact float rescoring of k x oversample candidates:
//   latency, 64 queries, and recall@10 against the exact results.
// Correctness: VectorIndex's top-10 is checked against FAISS's exact top-10 for every query.
#include <lmdb.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lib/store/chunk_catalog.h"
#include "lib/store/lmdb.h"
#include "lib/store/tenant_key.h"
#include "lib/store/vector_index.h"
#include "lib/store/vector_quant.h"
#include "tests/bench/vector/block_scan.h"

#ifdef RAGSTREAM_BENCH_FAISS
#include <faiss/IndexFlat.h>
#include <omp.h>
#endif

using namespace ragstream;
using store::ScoredRow;
using store::TopK;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kTopK = 10;
constexpr std::string_view kTenant = "bench";  // one tenant holds every document
constexpr uint32_t kBlockMagic = 0x31425352;   // "RSB1"
constexpr size_t kBlockHeader = 48;            // rows start 64 bytes into an overflow page

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "vector_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Check(Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

// ---------------------------------------------------------------------------------------------
// Random data: splitmix64 and Box-Muller normals, normalised rows. Rows come in chunks of 1024
// seeded from (seed, chunk), so the data do not depend on the number of threads.

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double Uniform01(uint64_t& state) {  // (0, 1]
  return (static_cast<double>(SplitMix(state) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

void FillUnitRows(float* out, uint64_t count, uint32_t dim, uint64_t seed) {
  constexpr uint64_t kChunk = 1024;
  const uint64_t chunks = (count + kChunk - 1) / kChunk;
  std::atomic<uint64_t> next{0};
  auto work = [&] {
    std::vector<double> v(dim);
    for (uint64_t c; (c = next++) < chunks;) {
      uint64_t state = seed * 0x100000001b3ull ^ (c + 1) * 0x9e3779b97f4a7c15ull;
      for (uint64_t r = c * kChunk; r < std::min(count, (c + 1) * kChunk); ++r) {
        double norm = 0;
        for (uint32_t i = 0; i < dim; i += 2) {  // Marsaglia's polar method: two normals
          double u, w, r2;
          do {
            u = 2 * Uniform01(state) - 1;
            w = 2 * Uniform01(state) - 1;
            r2 = u * u + w * w;
          } while (r2 >= 1 || r2 == 0);
          const double f = std::sqrt(-2.0 * std::log(r2) / r2);
          v[i] = u * f;
          if (i + 1 < dim) v[i + 1] = w * f;
        }
        for (double x : v) norm += x * x;
        const double inv = 1.0 / std::sqrt(norm);
        for (uint32_t i = 0; i < dim; ++i) out[r * dim + i] = static_cast<float>(v[i] * inv);
      }
    }
  };
  std::vector<std::thread> threads;
  const unsigned n = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned t = 0; t < n; ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
}

// ---------------------------------------------------------------------------------------------
// CPUs: the process runs pinned to the first T of the CPUs it was given.

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

const std::vector<int>& Cpus() {
  static const std::vector<int> cpus = AllowedCpus();
  return cpus;
}

void PinTo(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) Die("sched_setaffinity failed");
}

void UseThreads(int threads) {
  std::vector<int> cpus(Cpus().begin(), Cpus().begin() + threads);
  PinTo(cpus);
#ifdef RAGSTREAM_BENCH_FAISS
  omp_set_num_threads(threads);
#endif
}

// ---------------------------------------------------------------------------------------------
// Read bandwidth: T threads, each pinned to its own CPU, sum their share of a buffer far
// larger than the caches; GB/s of the whole buffer over the wall time.

class Bandwidth {
 public:
  // The buffer asks for transparent huge pages: it measures the best rate the machine reads
  // at. (Here, 4 KiB anonymous pages read ~30% slower, while the page cache behind the LMDB
  // map reads about as fast as huge pages, so a 4 KiB buffer would set a floor the scans
  // beat.)
  explicit Bandwidth(size_t bytes) : bytes_(bytes) {
    constexpr size_t kHuge = size_t{2} << 20;
    void* p =
        mmap(nullptr, bytes_ + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) Die("mmap of the bandwidth buffer failed");
    map_ = p;
    data_ = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1));
    madvise(data_, bytes_, MADV_HUGEPAGE);  // best effort
    for (size_t i = 0; i < bytes_; i += 8) {
      const uint64_t v = i * 0x9e3779b97f4a7c15ull;
      std::memcpy(data_ + i, &v, 8);
    }
    huge_bytes_ = HugeBytes(data_, bytes_);
  }
  ~Bandwidth() { munmap(map_, bytes_ + (size_t{2} << 20)); }
  size_t huge_bytes() const { return huge_bytes_; }

  // The AnonHugePages of the mapping holding [start, start + len), from /proc/self/smaps.
  static size_t HugeBytes(const char* start, size_t len) {
    std::ifstream in("/proc/self/smaps");
    std::string line;
    bool inside = false;
    while (std::getline(in, line)) {
      unsigned long lo = 0, hi = 0;
      if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(' ') > line.find('-')) {
        inside = lo <= reinterpret_cast<uintptr_t>(start) &&
                 reinterpret_cast<uintptr_t>(start) + len <= hi;
      } else if (inside && line.rfind("AnonHugePages:", 0) == 0) {
        return std::strtoull(line.c_str() + 14, nullptr, 10) * 1024;
      }
    }
    return 0;
  }

  // GB/s of one pass over the buffer.
  double Measure(int threads) {
    std::vector<double> gbs;
    {
      std::atomic<int> ready{0};
      std::atomic<bool> go{false};
      std::vector<uint64_t> sums(threads);
      std::vector<std::thread> pool;
      const size_t share = bytes_ / threads / 256 * 256;
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          PinTo({Cpus()[t]});
          ++ready;
          while (!go.load()) {
          }
          sums[t] = vbench::ReadAll(data_ + t * share, share);
        });
      }
      while (ready.load() < threads) {
      }
      const auto start = Clock::now();
      go = true;
      for (auto& th : pool) th.join();
      const double s = Ms(Clock::now() - start) / 1000;
      for (uint64_t v : sums) sink_ += v;
      gbs.push_back(static_cast<double>(share) * threads / s / 1e9);
    }
    return Median(gbs);
  }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_;
  void* map_;
  char* data_;
  size_t huge_bytes_ = 0;
  uint64_t sink_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The data set and its store.

struct Dataset {
  uint64_t rows = 0;
  uint32_t dim = 0;
  std::vector<float> data;           // rows x dim
  std::vector<std::string> doc_ids;  // random "doc_" + 24 hex, like NewId
  std::vector<uint64_t> doc_first;   // first global row of each document
  std::vector<uint32_t> doc_rows;    // its chunk count
  std::unordered_map<std::string, uint32_t> doc_index;
  std::vector<float> queries;  // kQueries x dim
};

Dataset MakeDataset(uint64_t rows, uint32_t dim, uint32_t queries, uint64_t seed) {
  Dataset ds;
  ds.rows = rows;
  ds.dim = dim;
  ds.data.resize(rows * dim);
  FillUnitRows(ds.data.data(), rows, dim, seed);
  ds.queries.resize(size_t{queries} * dim);
  FillUnitRows(ds.queries.data(), queries, dim, seed + 1000);
  uint64_t state = seed * 31 + 7;
  static constexpr char kHex[] = "0123456789abcdef";
  for (uint64_t row = 0; row < rows;) {
    const uint32_t n = static_cast<uint32_t>(
        std::min<uint64_t>(10 + SplitMix(state) % 41, rows - row));  // 10..50 chunks
    std::string id = "doc_";
    for (int i = 0; i < 24; ++i) id.push_back(kHex[SplitMix(state) & 15]);
    ds.doc_index.emplace(id, static_cast<uint32_t>(ds.doc_ids.size()));
    ds.doc_ids.push_back(std::move(id));
    ds.doc_first.push_back(row);
    ds.doc_rows.push_back(n);
    row += n;
  }
  return ds;
}

// VectorIndex's databases (vblocks.N, vectors.N and their int8 twins), then the benchmark's
// own: docv.N, the per-document layout VectorIndex used before blocks (kept here to compare
// against), and blk.N / q8.N, the block prototype in float and int8.
std::vector<std::string> DatabaseNames(int shards) {
  auto names = store::VectorIndex::Databases(shards);
  for (int s = 0; s < shards; ++s) {
    names.push_back("docv." + std::to_string(s));
    names.push_back("blk." + std::to_string(s));
    names.push_back("q8." + std::to_string(s));
  }
  return names;
}

std::unique_ptr<store::Env> OpenEnv(const std::string& dir, const Dataset& ds, int shards) {
  store::Env::Options options;
  options.path = dir;
  const uint64_t float_bytes = ds.rows * ds.dim * sizeof(float);
  // Three float copies (VectorIndex's, docv.N, blk.N) and two int8 ones, with room to spare
  // for the pages the packing of pieces into blocks frees and LMDB cannot always reuse.
  options.map_size_bytes = float_bytes * 4 + (1ull << 30);
  options.max_readers = 126;
  options.databases = DatabaseNames(shards);
  auto env = Check(store::Env::Open(options), "Env::Open");
  // The benchmark's store need not survive a power cut.
  if (mdb_env_set_flags(env->raw(), MDB_NOSYNC, 1) != 0) Die("MDB_NOSYNC");
  return env;
}

// Composite id of a row in the block layout: shard, block, row in block.
uint64_t BlockRowId(int shard, uint64_t block, uint32_t row) {
  return (uint64_t(shard) << 44) | (block << 20) | row;
}

struct StoreInfo {
  double build_s = 0;                 // VectorIndex::Put of every document
  double docs_build_s = 0;            // the per-document copy (docv.N)
  double blocks_build_s = 0;          // the prototype's float and int8 blocks
  store::VectorIndex::Layout layout;  // VectorIndex's blocks and pieces
  uint64_t doc_values = 0;            // values in docv.N (one per document)
  double store_mb = 0;
  uint64_t blocks = 0;  // the prototype's blocks
};

// Per-document values as VectorIndex wrote them before blocks: a 16-byte header ("RSV1",
// count, dim, 0), then the document's rows.
constexpr uint32_t kDocMagic = 0x31565352;  // "RSV1"
constexpr size_t kDocHeader = 16;

// A write transaction that commits and begins anew once about 256 MB were written in it: the
// store's layouts are written in transactions of that size.
class BatchedTxn {
 public:
  explicit BatchedTxn(store::Env& env)
      : env_(env), txn_(Check(store::Txn::BeginWrite(env), "BeginWrite")) {}
  store::Txn& operator*() { return *txn_; }
  store::Txn* operator->() { return &*txn_; }
  // `bytes` more were written.
  void Wrote(size_t bytes) {
    pending_ += bytes;
    if (pending_ <= (256u << 20)) return;
    Check(txn_->Commit(), "Commit");
    txn_.emplace(Check(store::Txn::BeginWrite(env_), "BeginWrite"));
    pending_ = 0;
  }
  void Commit() { Check(txn_->Commit(), "Commit"); }

 private:
  store::Env& env_;
  std::optional<store::Txn> txn_;
  size_t pending_ = 0;
};

// Writes the documents through VectorIndex::Put (transactions of ~256 MB, in increasing chunk
// ids, so Put packs each 512-id range into its block as the range completes), then the same
// documents in VectorIndex's previous per-document layout (docv.N: same key, same value format,
// same shard), then the same rows per shard in blocks of `block_rows` (float, then int8).
StoreInfo BuildStore(store::Env& env, const Dataset& ds, int shards, uint32_t block_rows) {
  StoreInfo info;
  // int8 format: Put writes each document's float block and its quantised block, so one
  // store serves VectorIndex in both formats (RAGSTREAM_VECTOR_FORMAT=float and =int8).
  store::VectorIndex index(env, shards, store::VectorFormat::kInt8);
  const uint32_t dim = ds.dim;
  auto t0 = Clock::now();
  {
    BatchedTxn txn(env);
    for (size_t d = 0; d < ds.doc_ids.size(); ++d) {
      Check(index.Put(*txn, kTenant, static_cast<uint32_t>(ds.doc_first[d]),
                      ds.data.data() + ds.doc_first[d] * dim, ds.doc_rows[d], dim),
            "VectorIndex::Put");
      txn.Wrote(size_t{ds.doc_rows[d]} * dim * sizeof(float));
    }
    txn.Commit();
  }
  info.build_s = Ms(Clock::now() - t0) / 1000;
  info.layout = Check(index.Values(kTenant), "VectorIndex::Values");

  // The previous layout: one value per document, key tenant/BE32(first chunk), in the shard
  // ShardOf(first chunk), in transactions of ~256 MB like the Puts above.
  t0 = Clock::now();
  {
    std::vector<MDB_dbi> docv;
    for (int s = 0; s < shards; ++s) docv.push_back(env.Dbi("docv." + std::to_string(s)));
    BatchedTxn txn(env);
    std::string value;
    for (size_t d = 0; d < ds.doc_ids.size(); ++d) {
      const uint32_t first = static_cast<uint32_t>(ds.doc_first[d]);
      const uint32_t count = ds.doc_rows[d];
      const size_t bytes = size_t{count} * dim * sizeof(float);
      value.assign(kDocHeader + bytes, '\0');
      const uint32_t header[4] = {kDocMagic, count, dim, 0};
      std::memcpy(value.data(), header, sizeof header);
      std::memcpy(value.data() + kDocHeader, ds.data.data() + ds.doc_first[d] * dim, bytes);
      Check(txn->Put(docv[index.ShardOf(first)],
                     store::TenantKey(kTenant, store::ChunkKeyPart(first)), value),
            "Put per-document value");
      ++info.doc_values;
      txn.Wrote(bytes);
    }
    txn.Commit();
  }
  info.docs_build_s = Ms(Clock::now() - t0) / 1000;

  t0 = Clock::now();
  std::vector<std::vector<uint32_t>> shard_docs(shards);
  for (size_t d = 0; d < ds.doc_ids.size(); ++d) {
    shard_docs[index.ShardOf(static_cast<uint32_t>(ds.doc_first[d]))].push_back(
        static_cast<uint32_t>(d));
  }
  std::vector<float> rows;
  std::vector<uint64_t> ids;
  for (int s = 0; s < shards; ++s) {
    const MDB_dbi blk = env.Dbi("blk." + std::to_string(s));
    const MDB_dbi q8 = env.Dbi("q8." + std::to_string(s));
    BatchedTxn txn(env);
    uint64_t block = 0;
    auto flush = [&] {
      if (ids.empty()) return;
      const uint32_t count = static_cast<uint32_t>(ids.size());
      std::string value(kBlockHeader + rows.size() * sizeof(float) + ids.size() * 8, '\0');
      const uint32_t header[4] = {kBlockMagic, count, dim, 0};
      std::memcpy(value.data(), header, sizeof header);
      std::memcpy(value.data() + kBlockHeader, rows.data(), rows.size() * sizeof(float));
      std::memcpy(value.data() + kBlockHeader + rows.size() * sizeof(float), ids.data(),
                  ids.size() * 8);
      const std::string key = store::TenantKey(kTenant, store::EncodeBigEndian64(block));
      Check(txn->Put(blk, key, value), "Put block");
      Check(txn->Put(q8, key, store::EncodeInt8Block(rows.data(), count, dim)), "Put q8 block");
      ++block;
      rows.clear();
      ids.clear();
      txn.Wrote(value.size() * 5 / 4);
    };
    for (uint32_t d : shard_docs[s]) {
      for (uint32_t c = 0; c < ds.doc_rows[d]; ++c) {
        const float* row = ds.data.data() + (ds.doc_first[d] + c) * dim;
        rows.insert(rows.end(), row, row + dim);
        ids.push_back(ds.doc_first[d] + c);
        if (ids.size() == block_rows) flush();
      }
    }
    flush();
    txn.Commit();
    info.blocks += block;
  }
  info.blocks_build_s = Ms(Clock::now() - t0) / 1000;
  info.store_mb = env.MapUsage().used_bytes / 1e6;
  return info;
}

// ---------------------------------------------------------------------------------------------
// The scans. Each shard is scanned with its own read transaction, by as many std::async tasks
// (the calling thread being one) as the process may use CPUs, at most one per shard, which
// share the shards out as in VectorIndex::Search, so the layouts and kernels are compared
// under the same parallelism.

// scan(s) for every shard s < shards, spread over the tasks as above.
template <typename Fn>
void ForEachShard(int shards, Fn scan) {
  const int tasks = std::max(1, std::min(shards, static_cast<int>(AllowedCpus().size())));
  auto every = [&](int task) {
    for (int s = task; s < shards; s += tasks) scan(s);
  };
  std::vector<std::future<void>> others;
  for (int t = 1; t < tasks; ++t) others.push_back(std::async(std::launch::async, every, t));
  every(0);
  for (auto& f : others) f.get();
}

struct ShardTop {
  TopK top{kTopK};
  std::vector<std::string_view> keys;  // per-document scan: value ordinal -> key
};

template <typename Fn>
std::vector<ShardTop> EachShard(int shards, Fn scan) {
  std::vector<ShardTop> tops(shards);
  ForEachShard(shards, [&](int s) { scan(s, tops[s]); });
  return tops;
}

// VectorIndex's previous layout (one value per document keyed tenant/first chunk id, 16-byte
// header), as the benchmark keeps it in docv.N, walked like ScanShard (the tenant's key range,
// the cursor one value ahead) and scored with a chosen kernel: the layout the blocks replaced,
// under the same kernel and parallelism.
std::vector<uint64_t> SearchDocValues(const store::Env& env, const Dataset& ds, int shards,
                                      const float* query, vbench::RowsFn kernel,
                                      bool prefetch_next = false) {
  auto tops = EachShard(shards, [&](int s, ShardTop& out) {
    auto txn = Check(store::Txn::BeginRead(env), "BeginRead");
    auto cur = Check(store::Cursor::Open(txn, env.Dbi("docv." + std::to_string(s))), "Cursor");
    std::vector<float> scores;
    const std::string prefix = store::TenantPrefix(kTenant);
    // The cursor runs one value ahead of the scoring: a read transaction's views stay valid,
    // so the next value's first cache lines can be requested (prefetch_next) while this one
    // is scored -- values sit wherever they were allocated, so each starts with a cold miss
    // the hardware prefetcher cannot foresee.
    bool have = cur.SeekAtLeast(prefix) && store::HasPrefix(cur.key(), prefix);
    std::string_view key = have ? cur.key() : std::string_view();
    std::string_view value = have ? cur.value() : std::string_view();
    while (have) {
      const bool next = cur.Next() && store::HasPrefix(cur.key(), prefix);
      const std::string_view next_key = next ? cur.key() : std::string_view();
      const std::string_view next_value = next ? cur.value() : std::string_view();
      if (prefetch_next) {
        for (size_t off = 0; off < std::min<size_t>(next_value.size(), 4096); off += 64) {
          __builtin_prefetch(next_value.data() + off);
        }
      }
      uint32_t header[4];
      std::memcpy(header, value.data(), sizeof header);
      if (header[0] != kDocMagic || header[2] != ds.dim) Die("malformed per-document value");
      const uint32_t count = header[1];
      scores.resize(count);
      kernel(query, reinterpret_cast<const float*>(value.data() + kDocHeader), count, ds.dim,
             scores.data());
      const uint64_t ordinal = out.keys.size();
      out.keys.push_back(key.substr(prefix.size()));
      for (uint32_t i = 0; i < count; ++i) {
        if (out.top.Accepts(scores[i])) out.top.Push(scores[i], (ordinal << 20) | i);
      }
      have = next;
      key = next_key;
      value = next_value;
    }
    // Resolve to global rows while the transaction (and the key views) live.
    std::vector<ScoredRow> kept = out.top.Take();
    for (const ScoredRow& r : kept) {
      // The key's tail is the document's first chunk id, which is its first global row.
      out.top.Push(r.score, store::DecodeChunkKeyPart(out.keys[r.id >> 20]) + (r.id & 0xFFFFF));
    }
  });
  TopK all(kTopK);
  for (auto& t : tops) all.Merge(t.top);
  std::vector<uint64_t> ids;
  for (const auto& r : all.Take()) ids.push_back(r.id);
  return ids;
}

struct BlockView {
  uint32_t count = 0;
  const float* rows = nullptr;
  const uint64_t* ids = nullptr;
};

BlockView ParseBlock(std::string_view value, uint32_t dim) {
  uint32_t header[4];
  std::memcpy(header, value.data(), sizeof header);
  if (header[0] != kBlockMagic || header[2] != dim) Die("malformed block");
  BlockView b;
  b.count = header[1];
  b.rows = reinterpret_cast<const float*>(value.data() + kBlockHeader);
  b.ids = reinterpret_cast<const uint64_t*>(value.data() + kBlockHeader +
                                            size_t{b.count} * dim * sizeof(float));
  return b;
}

// The block layout: long runs of rows per value.
std::vector<uint64_t> SearchBlocks(const store::Env& env, uint32_t dim, int shards,
                                   const float* query, vbench::RowsFn kernel) {
  auto tops = EachShard(shards, [&](int s, ShardTop& out) {
    auto txn = Check(store::Txn::BeginRead(env), "BeginRead");
    auto cur = Check(store::Cursor::Open(txn, env.Dbi("blk." + std::to_string(s))), "Cursor");
    std::vector<float> scores;
    const std::string prefix = store::TenantPrefix(kTenant);
    for (bool have = cur.SeekAtLeast(prefix); have && store::HasPrefix(cur.key(), prefix);
         have = cur.Next()) {
      const BlockView b = ParseBlock(cur.value(), dim);
      scores.resize(b.count);
      kernel(query, b.rows, b.count, dim, scores.data());
      for (uint32_t i = 0; i < b.count; ++i) {
        if (out.top.Accepts(scores[i])) out.top.Push(scores[i], b.ids[i]);
      }
    }
  });
  TopK all(kTopK);
  for (auto& t : tops) all.Merge(t.top);
  std::vector<uint64_t> ids;
  for (const auto& r : all.Take()) ids.push_back(r.id);
  return ids;
}

// Many queries in one pass over the blocks: every block is read once per batch.
std::vector<std::vector<uint64_t>> SearchBlocksBatch(const store::Env& env, uint32_t dim,
                                                     int shards, const float* queries,
                                                     uint32_t nq) {
  std::vector<std::vector<TopK>> per_shard(shards, std::vector<TopK>(nq, TopK(kTopK)));
  auto scan = [&](int s) {
    auto txn = Check(store::Txn::BeginRead(env), "BeginRead");
    auto cur = Check(store::Cursor::Open(txn, env.Dbi("blk." + std::to_string(s))), "Cursor");
    std::vector<float> scores;
    std::vector<TopK>& tops = per_shard[s];
    const std::string prefix = store::TenantPrefix(kTenant);
    for (bool have = cur.SeekAtLeast(prefix); have && store::HasPrefix(cur.key(), prefix);
         have = cur.Next()) {
      const BlockView b = ParseBlock(cur.value(), dim);
      scores.resize(size_t{nq} * b.count);
      vbench::ScoreBatch(queries, nq, b.rows, b.count, dim, scores.data());
      for (uint32_t j = 0; j < nq; ++j) {
        const float* sj = scores.data() + size_t{j} * b.count;
        for (uint32_t i = 0; i < b.count; ++i) {
          if (tops[j].Accepts(sj[i])) tops[j].Push(sj[i], b.ids[i]);
        }
      }
    }
  };
  ForEachShard(shards, scan);
  std::vector<std::vector<uint64_t>> out(nq);
  for (uint32_t j = 0; j < nq; ++j) {
    for (int s = 1; s < shards; ++s) per_shard[0][j].Merge(per_shard[s][j]);
    for (const auto& r : per_shard[0][j].Take()) out[j].push_back(r.id);
  }
  return out;
}

// int8 blocks, then exact float rescoring of k x oversample candidates read from the float
// blocks.
std::vector<uint64_t> SearchInt8(const store::Env& env, uint32_t dim, int shards,
                                 const float* query, size_t oversample) {
  const store::Int8Query q = store::QuantizeQuery(query, dim);
  const size_t want = kTopK * oversample;
  std::vector<TopK> tops(shards, TopK(want));
  auto scan = [&](int s) {
    auto txn = Check(store::Txn::BeginRead(env), "BeginRead");
    auto cur = Check(store::Cursor::Open(txn, env.Dbi("q8." + std::to_string(s))), "Cursor");
    const std::string prefix = store::TenantPrefix(kTenant);
    for (bool have = cur.SeekAtLeast(prefix); have && store::HasPrefix(cur.key(), prefix);
         have = cur.Next()) {
      const uint64_t block = store::DecodeBigEndian64(cur.key().substr(prefix.size()));
      auto view = Check(store::DecodeInt8Block(cur.value(), dim, BlockRowId(s, block, 0)),
                        "DecodeInt8Block");
      store::ScanInt8Block(q, view, tops[s]);
    }
  };
  ForEachShard(shards, scan);
  for (int s = 1; s < shards; ++s) tops[0].Merge(tops[s]);
  const std::vector<ScoredRow> candidates = tops[0].Take();

  auto txn = Check(store::Txn::BeginRead(env), "BeginRead");
  std::map<uint64_t, BlockView> blocks;  // (shard, block) -> view, for this query
  auto block_of = [&](uint64_t id) -> const BlockView& {
    const uint64_t sb = id >> 20;
    auto it = blocks.find(sb);
    if (it != blocks.end()) return it->second;
    const int s = static_cast<int>(id >> 44);
    auto value =
        Check(txn.Get(env.Dbi("blk." + std::to_string(s)),
                      store::TenantKey(kTenant, store::EncodeBigEndian64((id >> 20) & 0xFFFFFF))),
              "Get block");
    if (!value) Die("missing float block");
    return blocks.emplace(sb, ParseBlock(*value, dim)).first->second;
  };
  auto best = store::Rescore(
      query, dim, candidates,
      [&](uint64_t id) { return block_of(id).rows + (id & 0xFFFFF) * size_t{dim}; }, kTopK);
  std::vector<uint64_t> ids;
  for (const auto& r : best) ids.push_back(block_of(r.id).ids[r.id & 0xFFFFF]);
  return ids;
}

std::vector<uint64_t> SearchVectorIndex(const store::VectorIndex& index, const Dataset& ds,
                                        const float* query) {
  auto hits = Check(index.Search(kTenant, query, ds.dim, kTopK, {}), "VectorIndex::Search");
  std::vector<uint64_t> ids;
  // The rows are the dense chunk ids: each document's first row is its first chunk id.
  for (const auto& h : hits) ids.push_back(h.chunk);
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Results.

struct Figure {
  double median = 0;  // ms (single) or s (64 queries)
  int runs = 0;
};

struct ThreadResult {
  int threads = 0;
  double bandwidth_gbs = 0;
  double floor_ms = 0;       // float bytes / bandwidth
  double int8_floor_ms = 0;  // int8 block bytes / bandwidth
  // Single-query latency, ms.
  int bandwidth_runs = 0;
  Figure vi, faiss, blocks, int8;
  Figure vi8;               // VectorIndex with the int8 format (the product's two-stage path)
  Figure abl_doc_best;      // VectorIndex's previous per-document layout (docv.N), its kernel
  Figure abl_doc_prefetch;  // ... and the next value's first lines prefetched
  // 64 queries, seconds.
  Figure vi64, faiss64, blocks64, int864;
};

struct SizeResult {
  uint64_t rows = 0;
  uint32_t dim = 0;
  uint64_t documents = 0;
  StoreInfo store;
  double gen_s = 0;
  double faiss_add_s = 0;
  double cold_vi_ms = 0, warm_vi_ms = 0;
  double cold_blocks_ms = 0;
  uint64_t float_bytes = 0, int8_bytes = 0;
  std::vector<ThreadResult> per_threads;
  // Correctness.
  int checked = 0;
  int vi_equals_faiss = 0;      // same ids in the same order
  int vi_equals_faiss_set = 0;  // same set of ids
  int vi_near_tie_only = 0;     // differs, but only at a near tie (< 1e-5) at the k-th place
  int blocks_equals_vi = 0;
  int batch_equals_vi = 0;
  double int8_recall = 0;
  double vi8_recall = 0;  // VectorIndex int8 against VectorIndex float, same queries
  int vi8_checked = 0;
  bool faiss = false;
};

double ExactScore(const Dataset& ds, const float* q, uint64_t row) {
  double s = 0;
  const float* x = ds.data.data() + row * ds.dim;
  for (uint32_t i = 0; i < ds.dim; ++i) s += double{q[i]} * x[i];
  return s;
}

struct Options {
  std::vector<std::pair<uint64_t, uint32_t>> sizes = {
      {100000, 384}, {1000000, 384}, {100000, 1536}};
  std::string dir = "/tmp/ragstream-vector-bench";
  int shards = 4;
  std::vector<int> threads = {1, 2};
  int single_reps = 0;  // 0: 15 for stores under 512 MB, else 7
  int batch_reps = 3;
  double vi64_cap_s = 20;  // VectorIndex's 64 searches run only below this (else estimated)
  double budget_s = 0;     // 0: none; else sizes and runs that would not fit are left out
  uint32_t queries = 64;
  uint32_t block_rows = 512;
  size_t oversample = store::kDefaultOversample;
  std::string json, md, command;
  std::string profile;  // run only this system's single queries (for perf), then stop
  bool keep = false;
};

const Clock::time_point g_start = Clock::now();

double ElapsedS() {
  return Ms(Clock::now() - g_start) / 1000;
}

// Whether `seconds` more fit in the time budget.
bool WithinBudget(const Options& opt, double seconds) {
  return opt.budget_s <= 0 || ElapsedS() + seconds < opt.budget_s;
}

template <typename Fn>
Figure Time(int runs, Fn fn, double scale = 1.0) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    fn(i);
    t.push_back(Ms(Clock::now() - start) * scale);
  }
  return {Median(t), runs};
}

SizeResult RunSize(const Options& opt, uint64_t rows, uint32_t dim, Bandwidth& bw) {
  SizeResult res;
  res.rows = rows;
  res.dim = dim;
  std::fprintf(stderr, "== %lu x %u: generating\n", static_cast<unsigned long>(rows), dim);
  auto t0 = Clock::now();
  Dataset ds = MakeDataset(rows, dim, opt.queries, 42 + dim);
  res.gen_s = Ms(Clock::now() - t0) / 1000;
  res.documents = ds.doc_ids.size();
  res.float_bytes = rows * dim * sizeof(float);
  res.int8_bytes = rows * (store::Int8Stride(dim) + sizeof(float));
  const std::string dir = opt.dir + "/" + std::to_string(rows) + "x" + std::to_string(dim);
  std::filesystem::remove_all(dir);
  {
    auto env = OpenEnv(dir, ds, opt.shards);
    std::fprintf(stderr, "== storing %lu documents\n", static_cast<unsigned long>(res.documents));
    res.store = BuildStore(*env, ds, opt.shards, opt.block_rows);
  }
  // Reopened: a fresh memory map, as a worker that has just started. The pages are in the
  // page cache (just written) but not yet in this process's page tables.
  auto env = OpenEnv(dir, ds, opt.shards);
  store::VectorIndex index(*env, opt.shards);
  store::VectorIndex index8(*env, opt.shards, store::VectorFormat::kInt8);
  UseThreads(static_cast<int>(std::min<size_t>(Cpus().size(), 2)));
  const float* q0 = ds.queries.data();
  auto t = Clock::now();
  SearchVectorIndex(index, ds, q0);
  res.cold_vi_ms = Ms(Clock::now() - t);
  t = Clock::now();
  SearchVectorIndex(index, ds, q0);
  res.warm_vi_ms = Ms(Clock::now() - t);
  const vbench::RowsFn best = vbench::BestRowsKernel();
  t = Clock::now();
  SearchBlocks(*env, dim, opt.shards, q0, best);
  res.cold_blocks_ms = Ms(Clock::now() - t);
  {  // touch the int8 blocks once too
    SearchInt8(*env, dim, opt.shards, q0, opt.oversample);
  }

#ifdef RAGSTREAM_BENCH_FAISS
  res.faiss = true;
  faiss::IndexFlatIP flat(dim);
  t = Clock::now();
  flat.add(static_cast<faiss::Index::idx_t>(rows), ds.data.data());
  res.faiss_add_s = Ms(Clock::now() - t) / 1000;
  auto faiss_search = [&](const float* q, uint32_t nq, std::vector<std::vector<uint64_t>>& out) {
    std::vector<float> d(size_t{nq} * kTopK);
    std::vector<faiss::Index::idx_t> l(size_t{nq} * kTopK);
    flat.search(nq, q, kTopK, d.data(), l.data());
    out.assign(nq, {});
    for (uint32_t j = 0; j < nq; ++j) {
      for (size_t i = 0; i < kTopK; ++i) out[j].push_back(static_cast<uint64_t>(l[j * kTopK + i]));
    }
  };
#endif

  const int single_reps =
      opt.single_reps > 0 ? opt.single_reps : (res.float_bytes < (512ull << 20) ? 15 : 7);
  if (!opt.profile.empty()) {
    // For `perf record`: only the chosen scan, on the first thread count, then stop.
    UseThreads(opt.threads.front());
    std::fprintf(stderr, "== profiling %s: %d searches\n", opt.profile.c_str(), single_reps);
    for (int i = 0; i < single_reps; ++i) {
      const float* q = ds.queries.data() + size_t(i % opt.queries) * dim;
      const auto start = Clock::now();
      if (opt.profile == "vectorindex") {
        SearchVectorIndex(index, ds, q);
      } else if (opt.profile == "vectorindex-int8") {
        SearchVectorIndex(index8, ds, q);
      } else if (opt.profile == "docs") {
        SearchDocValues(*env, ds, opt.shards, q, best);
      } else if (opt.profile == "docs-prefetch") {
        SearchDocValues(*env, ds, opt.shards, q, best, true);
      } else if (opt.profile == "blocks") {
        SearchBlocks(*env, dim, opt.shards, q, best);
      } else if (opt.profile == "int8") {
        SearchInt8(*env, dim, opt.shards, q, opt.oversample);
      } else {
        Die("--profile vectorindex|vectorindex-int8|docs|docs-prefetch|blocks|int8");
      }
      std::fprintf(stderr, "%.1f ms\n", Ms(Clock::now() - start));
    }
    if (!opt.keep) std::filesystem::remove_all(dir);
    return res;
  }
  const uint32_t nq = opt.queries;
  std::vector<std::vector<uint64_t>> vi_results(nq), faiss_results(nq), block_results(nq),
      batch_results, int8_results(nq), vi8_results(nq);
  for (int threads : opt.threads) {
    if (static_cast<size_t>(threads) > Cpus().size()) continue;
    ThreadResult tr;
    tr.threads = threads;
    std::fprintf(stderr, "== %lu x %u, %d thread(s)\n", static_cast<unsigned long>(rows), dim,
                 threads);
    UseThreads(threads);
    auto q = [&](int i) { return ds.queries.data() + size_t(i % nq) * dim; };
    auto timed = [](auto fn) {
      const auto start = Clock::now();
      fn();
      return Ms(Clock::now() - start);
    };
#ifdef RAGSTREAM_BENCH_FAISS
    std::vector<std::vector<uint64_t>> one;
#endif
    // One warm-up of each, then rounds: in each round a bandwidth pass and every system once
    // on the same query, so that load from other jobs on the machine falls on all of them
    // alike rather than on whichever was being measured at the time.
    SearchVectorIndex(index, ds, q(0));
    SearchVectorIndex(index8, ds, q(0));
    SearchDocValues(*env, ds, opt.shards, q(0), best);
    SearchBlocks(*env, dim, opt.shards, q(0), best);
    SearchInt8(*env, dim, opt.shards, q(0), opt.oversample);
#ifdef RAGSTREAM_BENCH_FAISS
    faiss_search(q(0), 1, one);
#endif
    std::vector<double> bw_samples, vi_t, vi8_t, doc_t, docp_t, blk_t, i8_t, fa_t;
    for (int i = 0; i < single_reps; ++i) {
      bw_samples.push_back(bw.Measure(threads));
      vi_t.push_back(timed([&] { vi_results[i] = SearchVectorIndex(index, ds, q(i)); }));
      vi8_t.push_back(timed([&] { vi8_results[i] = SearchVectorIndex(index8, ds, q(i)); }));
      doc_t.push_back(timed([&] { SearchDocValues(*env, ds, opt.shards, q(i), best); }));
      docp_t.push_back(timed([&] { SearchDocValues(*env, ds, opt.shards, q(i), best, true); }));
      blk_t.push_back(
          timed([&] { block_results[i] = SearchBlocks(*env, dim, opt.shards, q(i), best); }));
      i8_t.push_back(timed(
          [&] { int8_results[i] = SearchInt8(*env, dim, opt.shards, q(i), opt.oversample); }));
#ifdef RAGSTREAM_BENCH_FAISS
      fa_t.push_back(timed([&] {
        faiss_search(q(i), 1, one);
        faiss_results[i] = one[0];
      }));
#endif
    }
    tr.vi = {Median(vi_t), single_reps};
    tr.vi8 = {Median(vi8_t), single_reps};
    tr.abl_doc_best = {Median(doc_t), single_reps};
    tr.abl_doc_prefetch = {Median(docp_t), single_reps};
    tr.blocks = {Median(blk_t), single_reps};
    tr.int8 = {Median(i8_t), single_reps};
    tr.faiss = {Median(fa_t), static_cast<int>(fa_t.size())};

    // 64 queries. VectorIndex has no batch API: 64 Search calls one after another, once (the
    // figure is the total of 64 searches). Where that would take over --vi64-cap-s seconds, or
    // more than the time budget leaves, it is not run and the figure is 64 x the single-query
    // median above, marked as an estimate.
    const double vi64_estimate_s = tr.vi.median * nq / 1000;
    const bool run_vi64 =
        vi64_estimate_s <= opt.vi64_cap_s && WithinBudget(opt, vi64_estimate_s * 1.3);
    std::vector<double> vi64, blk64, i864, fa64;
    for (int r = 0; r < opt.batch_reps; ++r) {
      bw_samples.push_back(bw.Measure(threads));
      blk64.push_back(
          timed([&] { batch_results = SearchBlocksBatch(*env, dim, opt.shards, q(0), nq); }) /
          1000);
      i864.push_back(timed([&] {
                       for (uint32_t j = 0; j < nq; ++j) {
                         int8_results[j] = SearchInt8(*env, dim, opt.shards, q(j), opt.oversample);
                       }
                     }) /
                     1000);
#ifdef RAGSTREAM_BENCH_FAISS
      fa64.push_back(timed([&] { faiss_search(q(0), nq, faiss_results); }) / 1000);
#endif
      if (r == 0 && run_vi64) {
        vi64.push_back(timed([&] {
                         for (uint32_t j = 0; j < nq; ++j)
                           vi_results[j] = SearchVectorIndex(index, ds, q(j));
                       }) /
                       1000);
      }
    }
    tr.vi64 = run_vi64 ? Figure{vi64[0], 1} : Figure{vi64_estimate_s, 0};
    tr.blocks64 = {Median(blk64), opt.batch_reps};
    tr.int864 = {Median(i864), opt.batch_reps};
    tr.faiss64 = {Median(fa64), static_cast<int>(fa64.size())};
    tr.bandwidth_gbs = Median(bw_samples);
    tr.bandwidth_runs = static_cast<int>(bw_samples.size());
    tr.floor_ms = res.float_bytes / (tr.bandwidth_gbs * 1e9) * 1000;
    tr.int8_floor_ms = res.int8_bytes / (tr.bandwidth_gbs * 1e9) * 1000;
    res.per_threads.push_back(tr);
  }

  // Correctness over every query VectorIndex answered (all 64 when its 64-query run ran,
  // else the single-query rounds'), against FAISS's exact top-10.
  size_t found = 0;
  for (uint32_t j = 0; j < nq; ++j) {
    const float* qj = ds.queries.data() + size_t{j} * dim;
    const auto& vi = vi_results[j];
    // int8 recall against the exact top-10: VectorIndex's, or where it did not run on this
    // query, the block batch's (an exact float scan, checked equal to VectorIndex below).
    const auto& truth_ids = vi.empty() ? batch_results[j] : vi;
    const std::set<uint64_t> truth(truth_ids.begin(), truth_ids.end());
    for (uint64_t id : int8_results[j]) found += truth.count(id);
    if (vi.empty()) continue;
    ++res.checked;
    if (res.faiss) {
      const auto& fa = faiss_results[j];
      if (vi == fa) ++res.vi_equals_faiss;
      const std::set<uint64_t> a(vi.begin(), vi.end()), b(fa.begin(), fa.end());
      if (a == b) {
        ++res.vi_equals_faiss_set;
      } else {
        // Differs: is it only a near tie at the boundary (the scores equal within 1e-5)?
        double worst_vi = 1e9, worst_fa = 1e9;
        for (uint64_t id : vi) worst_vi = std::min(worst_vi, ExactScore(ds, qj, id));
        for (uint64_t id : fa) worst_fa = std::min(worst_fa, ExactScore(ds, qj, id));
        if (std::fabs(worst_vi - worst_fa) < 1e-5) ++res.vi_near_tie_only;
      }
    }
    if (static_cast<int>(j) < single_reps && block_results[j] == vi) ++res.blocks_equals_vi;
    if (!batch_results.empty() && batch_results[j] == vi) ++res.batch_equals_vi;
  }
  res.int8_recall = static_cast<double>(found) / (kTopK * nq);
  size_t found8 = 0;
  for (uint32_t j = 0; j < nq; ++j) {
    if (vi_results[j].empty() || vi8_results[j].empty()) continue;
    const std::set<uint64_t> truth(vi_results[j].begin(), vi_results[j].end());
    for (uint64_t id : vi8_results[j]) found8 += truth.count(id);
    ++res.vi8_checked;
  }
  if (res.vi8_checked > 0) res.vi8_recall = static_cast<double>(found8) / (kTopK * res.vi8_checked);
  if (!opt.keep) std::filesystem::remove_all(dir);
  return res;
}

// ---------------------------------------------------------------------------------------------
// Output.

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string CpuFlags() {
  __builtin_cpu_init();
  std::string f;
  auto add = [&](bool has, const char* name) {
    if (has) f += std::string(f.empty() ? "" : " ") + name;
  };
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("fma"), "fma");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512bw"), "avx512bw");
  add(__builtin_cpu_supports("avx512vnni"), "avx512vnni");
  return f;
}

double L3Bytes() {
  const std::string size = ReadFirstLine("/sys/devices/system/cpu/cpu0/cache/index3/size");
  if (size.empty()) return 0;
  double v = std::atof(size.c_str());
  if (size.back() == 'K') v *= 1024;
  if (size.back() == 'M') v *= 1024 * 1024;
  return v;
}

std::string LoadAverage() {
  std::istringstream in(ReadFirstLine("/proc/loadavg"));
  std::string one, five;
  in >> one >> five;
  return one + " / " + five;
}

std::string g_load_start;
std::vector<std::string> g_skipped;  // sizes left out for the time budget
size_t g_huge_mib = 0;               // how much of the bandwidth buffer is on huge pages

double MemGiB() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  in >> key >> kb;
  return kb / 1024 / 1024;
}

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string SizeName(const SizeResult& r) {
  std::string rows = r.rows % 1000000 == 0 ? std::to_string(r.rows / 1000000) + "M"
                     : r.rows % 1000 == 0  ? std::to_string(r.rows / 1000) + "k"
                                           : std::to_string(r.rows);
  return rows + " x " + std::to_string(r.dim);
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

struct Target {
  std::string name, target, measured;
  bool met = false;
  std::string note;
};

std::vector<Target> Targets(const std::vector<SizeResult>& sizes) {
  std::vector<Target> out;
  auto threads = [](int t) { return std::to_string(t) + " thread" + (t > 1 ? "s" : ""); };
  for (const auto& s : sizes) {
    for (const auto& t : s.per_threads) {
      const double ratio = t.vi.median / t.floor_ms;
      Target g{"VectorIndex exact top-10, " + SizeName(s) + ", " + threads(t.threads),
               "<= 1.15x the bandwidth floor (" + Fmt("%.1f", t.floor_ms) + " ms)",
               Fmt("%.1f", t.vi.median) + " ms = " + Fmt("%.2f", ratio) + "x", ratio <= 1.15, ""};
      if (!g.met) {
        // What was measured beside it, in the same rounds and with the same kernel; no cause
        // is claimed.
        const auto& layout = s.store.layout;
        g.note = "short by " + Fmt("%.0f", (ratio / 1.15 - 1) * 100) + "%. VectorIndex holds " +
                 std::to_string(layout.blocks) + (layout.blocks == 1 ? " block (" : " blocks (") +
                 std::to_string(layout.block_rows) + " rows) and " + std::to_string(layout.pieces) +
                 (layout.pieces == 1 ? " piece (" : " pieces (") +
                 std::to_string(layout.piece_rows) + " rows). In the same rounds, with the same " +
                 vbench::BestRowsKernelName() + " kernel: the blocks prototype " +
                 Fmt("%.1f", t.blocks.median) + " ms (" +
                 Fmt("%.2f", t.blocks.median / t.floor_ms) +
                 "x), the previous per-document layout " + Fmt("%.1f", t.abl_doc_best.median) +
                 " ms (" + Fmt("%.2f", t.abl_doc_best.median / t.floor_ms) +
                 "x; with the next value prefetched, " + Fmt("%.1f", t.abl_doc_prefetch.median) +
                 " ms, " + Fmt("%.2f", t.abl_doc_prefetch.median / t.floor_ms) + "x)";
      }
      out.push_back(g);
    }
    out.push_back({"int8 recall@10 against the exact top-10, " + SizeName(s), ">= 0.99",
                   Fmt("%.3f", s.int8_recall), s.int8_recall >= 0.99,
                   "the candidates missed the true top-10"});
    for (const auto& t : s.per_threads) {
      // Against the faster of the two exact float scans measured (VectorIndex and the block
      // prototype), so that a slow float path does not flatter int8.
      const double exact = std::min(t.vi.median, t.blocks.median);
      const double speedup = exact / t.int8.median;
      Target g{"int8 + rescoring speed, " + SizeName(s) + ", " + threads(t.threads),
               ">= 2.5x the exact float scan (the faster of VectorIndex and the blocks prototype)",
               Fmt("%.2f", speedup) + "x (" + Fmt("%.1f", t.int8.median) + " vs " +
                   Fmt("%.1f", exact) + " ms)",
               speedup >= 2.5, ""};
      if (!g.met) {
        g.note = "short by " + Fmt("%.0f", (2.5 / speedup - 1) * 100) +
                 "%; int8 + rescoring runs at " + Fmt("%.2f", t.int8.median / t.int8_floor_ms) +
                 "x its own floor, the prototype's float blocks at " +
                 Fmt("%.2f", t.blocks.median / t.floor_ms) + "x theirs and VectorIndex at " +
                 Fmt("%.2f", t.vi.median / t.floor_ms) + "x";
      }
      out.push_back(g);
    }
    // The product's int8 path against the product's exact scan (both VectorIndex).
    out.push_back({"VectorIndex int8 format recall@10 against its float format, " + SizeName(s),
                   ">= 0.99", Fmt("%.3f", s.vi8_recall), s.vi8_recall >= 0.99,
                   "the candidates missed the true top-10"});
    for (const auto& t : s.per_threads) {
      const double speedup = t.vi8.median > 0 ? t.vi.median / t.vi8.median : 0;
      out.push_back({"VectorIndex int8 format speed, " + SizeName(s) + ", " + threads(t.threads),
                     ">= 2.5x VectorIndex's exact float scan",
                     Fmt("%.2f", speedup) + "x (" + Fmt("%.1f", t.vi8.median) + " vs " +
                         Fmt("%.1f", t.vi.median) + " ms)",
                     speedup >= 2.5,
                     "short by " + Fmt("%.0f", speedup > 0 ? (2.5 / speedup - 1) * 100 : 100) +
                         "%; VectorIndex's int8 scan with its rescoring runs at " +
                         Fmt("%.2f", t.vi8.median / t.int8_floor_ms) + "x the int8 floor (" +
                         Fmt("%.2f", t.vi8.median) + " vs " + Fmt("%.2f", t.int8_floor_ms) +
                         " ms), its float scan at " + Fmt("%.2f", t.vi.median / t.floor_ms) +
                         "x the float floor; the prototype's int8 + rescoring at " +
                         Fmt("%.2f", t.int8.median / t.int8_floor_ms) + "x"});
    }
  }
  return out;
}

std::string Json(const Options& opt, const std::vector<SizeResult>& sizes,
                 const std::vector<Target>& targets, size_t bw_bytes) {
  std::ostringstream o;
  auto fig = [&](const char* name, const Figure& f, const char* unit) {
    o << "\"" << name << "_" << unit << "\": " << f.median << ", \"" << name
      << "_runs\": " << f.runs;
  };
  o << "{\n  \"part\": 4,\n  \"title\": \"Vector search\",\n  \"elapsed_s\": "
    << Fmt("%.0f", ElapsedS()) << ",\n  \"skipped_sizes\": [";
  for (size_t i = 0; i < g_skipped.size(); ++i)
    o << (i ? ", " : "") << "\"" << g_skipped[i] << "\"";
  o << "],\n";
  o << "  \"machine\": {\"cpu\": \"" << JsonEscape(CpuModel()) << "\", \"cpus\": " << Cpus().size()
    << ", \"flags\": \"" << CpuFlags() << "\", \"memory_gib\": " << Fmt("%.1f", MemGiB())
    << ", \"thp\": \"" << ReadFirstLine("/sys/kernel/mm/transparent_hugepage/enabled")
    << "\", \"kernel\": \"" << ReadFirstLine("/proc/sys/kernel/osrelease")
    << "\", \"l3_bytes\": " << L3Bytes() << ", \"load_average_start\": \"" << g_load_start
    << "\", \"load_average_end\": \"" << LoadAverage() << "\"},\n";
  o << "  \"settings\": {\"shards\": " << opt.shards << ", \"top_k\": " << kTopK
    << ", \"queries\": " << opt.queries << ", \"block_rows\": " << opt.block_rows
    << ", \"oversample\": " << opt.oversample << ", \"batch_reps\": " << opt.batch_reps
    << ", \"bandwidth_buffer_bytes\": " << bw_bytes
    << ", \"bandwidth_buffer_huge_mib\": " << g_huge_mib << ", \"chunks_per_document\": \"10-50\""
    << ", \"int8_kernel\": \"" << store::DotInt8Kernel() << "\", \"float_kernel\": \""
    << vbench::BestRowsKernelName() << "\", \"batch_kernel\": \"" << vbench::ScoreBatchKernelName()
    << "\", \"faiss\": " << (sizes.empty() || !sizes[0].faiss ? "false" : "true")
    << ", \"command\": \"" << JsonEscape(opt.command) << "\"},\n";
  o << "  \"sizes\": [\n";
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto& s = sizes[i];
    o << "    {\"name\": \"" << SizeName(s) << "\", \"rows\": " << s.rows << ", \"dim\": " << s.dim
      << ", \"documents\": " << s.documents << ", \"float_bytes\": " << s.float_bytes
      << ", \"int8_bytes\": " << s.int8_bytes << ", \"generate_s\": " << s.gen_s
      << ", \"store_build_s\": " << s.store.build_s
      << ", \"doc_values_build_s\": " << s.store.docs_build_s
      << ", \"blocks_build_s\": " << s.store.blocks_build_s
      << ", \"store_mb\": " << s.store.store_mb << ", \"blocks\": " << s.store.blocks
      << ", \"doc_values\": " << s.store.doc_values
      << ",\n     \"vectorindex_layout\": {\"blocks\": " << s.store.layout.blocks
      << ", \"block_rows\": " << s.store.layout.block_rows
      << ", \"pieces\": " << s.store.layout.pieces
      << ", \"piece_rows\": " << s.store.layout.piece_rows << "}"
      << ", \"faiss_add_s\": " << s.faiss_add_s << ", \"cold_first_search_ms\": " << s.cold_vi_ms
      << ", \"second_search_ms\": " << s.warm_vi_ms
      << ", \"cold_first_block_search_ms\": " << s.cold_blocks_ms
      << ",\n     \"correctness\": {\"queries\": " << s.checked
      << ", \"vectorindex_equals_faiss\": " << s.vi_equals_faiss
      << ", \"vectorindex_equals_faiss_as_set\": " << s.vi_equals_faiss_set
      << ", \"differs_only_at_near_tie\": " << s.vi_near_tie_only
      << ", \"blocks_equal_vectorindex\": " << s.blocks_equals_vi
      << ", \"batch_equals_vectorindex\": " << s.batch_equals_vi
      << "}, \"int8_recall_at_10\": " << s.int8_recall << ",\n     \"threads\": [";
    for (size_t j = 0; j < s.per_threads.size(); ++j) {
      const auto& t = s.per_threads[j];
      o << (j ? ",\n" : "\n") << "       {\"threads\": " << t.threads
        << ", \"bandwidth_gbs\": " << t.bandwidth_gbs
        << ", \"bandwidth_runs\": " << t.bandwidth_runs << ", \"floor_ms\": " << t.floor_ms
        << ", \"int8_floor_ms\": " << t.int8_floor_ms << ", ";
      fig("vectorindex_single", t.vi, "ms");
      o << ", \"vectorindex_single_ratio_to_floor\": " << t.vi.median / t.floor_ms << ", ";
      fig("faiss_single", t.faiss, "ms");
      o << ", ";
      fig("blocks_single", t.blocks, "ms");
      o << ", ";
      fig("int8_single", t.int8, "ms");
      o << ", ";
      fig("doc_values_best_kernel", t.abl_doc_best, "ms");
      o << ", ";
      fig("doc_values_best_kernel_prefetch", t.abl_doc_prefetch, "ms");
      o << ", ";
      fig("vectorindex_64", t.vi64, "s");
      o << ", \"vectorindex_64_estimated\": " << (t.vi64.runs == 0 ? "true" : "false");
      o << ", ";
      fig("faiss_64", t.faiss64, "s");
      o << ", ";
      fig("blocks_batch_64", t.blocks64, "s");
      o << ", ";
      fig("int8_64", t.int864, "s");
      o << "}";
    }
    o << "]}" << (i + 1 < sizes.size() ? "," : "") << "\n";
  }
  o << "  ],\n  \"targets\": [\n";
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& t = targets[i];
    o << "    {\"name\": \"" << JsonEscape(t.name) << "\", \"target\": \"" << JsonEscape(t.target)
      << "\", \"measured\": \"" << JsonEscape(t.measured)
      << "\", \"met\": " << (t.met ? "true" : "false") << "}" << (i + 1 < targets.size() ? "," : "")
      << "\n";
  }
  o << "  ]\n}\n";
  return o.str();
}

std::string Markdown(const Options& opt, const std::vector<SizeResult>& sizes,
                     const std::vector<Target>& targets, size_t bw_bytes) {
  std::ostringstream o;
  const bool faiss = !sizes.empty() && sizes[0].faiss;
  auto ms = [](double v) { return Fmt(v < 10 ? "%.2f" : "%.1f", v); };
  auto x = [](double v) { return Fmt("%.2f", v) + "x"; };
  auto th = [](int t) { return std::to_string(t); };
  const double l3 = L3Bytes();
  std::set<int> single_runs;
  for (const auto& s : sizes) {
    for (const auto& t : s.per_threads) {
      single_runs.insert(t.vi.runs);
    }
  }
  auto list = [](const std::set<int>& v) {
    std::string out;
    for (int n : v) out += (out.empty() ? "" : " or ") + std::to_string(n);
    return out;
  };
  o << "## 4. Vector search\n\n";
  o << "**What.** Exact top-" << kTopK
    << " inner-product search over random unit vectors (float32: normal components, normalised; "
       "fixed seed), searched where ragstream keeps them: one LMDB environment on local disk "
       "(pages in the page cache), `store::VectorIndex` with "
    << opt.shards
    << " shards (the product's default). VectorIndex keeps a tenant's vectors by ranges of "
    << store::VectorIndex::kBlockRows
    << " consecutive chunk ids: each complete range is one block value (its rows back to back "
       "after a 48-byte header, then their chunk ids), and only the range still filling keeps "
       "one piece per document; a search scans the blocks and then the pieces, one kernel call "
       "per value. Documents have 10-50 chunks (uniform, mean 30), with dense chunk ids handed "
       "out in order as the product does; they are written with `VectorIndex::Put` in that "
       "order in ~256 MB transactions, so each range is packed into its block by the Put that "
       "completes it (how many blocks and pieces that leaves is in the store table below). The "
       "peer is FAISS "
       "`IndexFlatIP` on the same vectors: Debian's libfaiss-dev 1.7.3, installed by the "
       "benchmark only. Debian builds it without AVX2 (its distance kernels are SSE), its single "
       "query runs on one thread, and its 64-query batch goes through BLAS sgemm (OpenBLAS, "
       "OpenMP build) with `OMP_WAIT_POLICY=PASSIVE`, without which its idle threads spin and "
       "fight over the 2 cores. The floor is bytes scanned / read bandwidth, the bandwidth "
       "measured in the same run: T threads, each pinned to its core, summing a "
    << (bw_bytes >> 30)
    << " GiB buffer with 64-byte loads, on transparent huge pages asked for with madvise ("
    << g_huge_mib << " MiB of it got them; THP is `"
    << ReadFirstLine("/sys/kernel/mm/transparent_hugepage/enabled")
    << "` here): the best rate this machine reads at. On 4 KiB anonymous pages it reads about "
       "30% slower, while the page cache behind the LMDB map reads about as fast as huge pages, "
       "so a 4 KiB buffer would set a floor the scans can beat.\n\n";
  o << "**Threads.** T = the cores the process is pinned to (sched_setaffinity) and OpenMP's "
       "thread count (FAISS, BLAS). VectorIndex scans its "
    << opt.shards << " shards in min(" << opt.shards
    << ", T) tasks (std::async, the calling thread being one) that share the shards out; the "
       "benchmark's own scans do the same.\n\n";
  o << "**Medians.** Single-query figures: the median of " << list(single_runs) << " rounds ("
    << list(single_runs)
    << " distinct queries). Each round runs one bandwidth pass and then every system once on the "
       "round's query, so that load from other jobs falls on all of them alike; the bandwidth is "
       "the median of those passes and of one more before each 64-query round. 64-query "
       "figures: the median of "
    << opt.batch_reps << " rounds of all " << opt.queries
    << " queries for FAISS (one 64-query batch), the block prototype (one 64-query pass) and "
       "int8 (64 searches one after another). VectorIndex has no batch API: its figure is one "
       "run of 64 Search calls one after another (itself a total over 64 searches); where 64 x "
       "its single-query median exceeds "
    << Fmt("%.0f", opt.vi64_cap_s)
    << " s (or the time budget) it is not run, and the table shows that product marked "
       "\"est.\". Every ratio compares figures taken in the same rounds.\n\n";
  if (!g_skipped.empty()) {
    o << "**Left out for the time budget** (" << Fmt("%.0f", opt.budget_s) << " s):";
    for (const auto& sz : g_skipped) o << " " << sz;
    o << ".\n\n";
  }
  o << "**Machine.** " << CpuModel() << ", " << Cpus().size() << " cores (" << CpuFlags()
    << "), L3 " << Fmt("%.0f", l3 / (1 << 20)) << " MiB, " << Fmt("%.0f", MemGiB())
    << " GiB, Linux " << ReadFirstLine("/proc/sys/kernel/osrelease")
    << ", a KVM guest whose CPUs are shared with other jobs (load average " << g_load_start
    << " at the start, " << LoadAverage()
    << " at the end): figures are indicative. Kernels chosen at run time: int8 `"
    << store::DotInt8Kernel() << "`, float rows (VectorIndex and the prototypes) `"
    << vbench::BestRowsKernelName() << "`, batch prototype `" << vbench::ScoreBatchKernelName()
    << "`.\n\n";
  o << "**Command.** `" << opt.command << "`\n\n";

  o << "### Read bandwidth and the floors\n\n";
  o << "| size | float bytes | int8 bytes | T | read GB/s (passes) | float floor ms | int8 floor "
       "ms |\n"
       "|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& s : sizes) {
    for (const auto& t : s.per_threads) {
      o << "| " << SizeName(s) << " | " << Fmt("%.0f", s.float_bytes / 1e6) << " MB | "
        << Fmt("%.0f", s.int8_bytes / 1e6) << " MB | " << th(t.threads) << " | "
        << Fmt("%.1f", t.bandwidth_gbs) << " (" << t.bandwidth_runs << ") | " << ms(t.floor_ms)
        << " | " << ms(t.int8_floor_ms) << " |\n";
    }
  }
  bool cached = false;
  for (const auto& s : sizes) cached |= l3 > 0 && s.float_bytes < l3;
  if (cached) {
    o << "\nWhere the float bytes are fewer than the L3 (" << Fmt("%.0f", l3 / (1 << 20))
      << " MiB), a warm scan can be served partly from the cache, so it may beat the memory "
         "floor (ratios below 1).\n";
  }
  o << "\n### Single-query latency, top-" << kTopK << " (ms; ratio to the floor)\n\n";
  o << "| size | T | floor | VectorIndex | FAISS flat | VectorIndex / FAISS | blocks prototype | "
       "int8 + rescoring (ratio to the int8 floor) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& s : sizes) {
    for (const auto& t : s.per_threads) {
      o << "| " << SizeName(s) << " | " << th(t.threads) << " | " << ms(t.floor_ms) << " | "
        << ms(t.vi.median) << " (" << x(t.vi.median / t.floor_ms) << ") | "
        << (faiss ? ms(t.faiss.median) + " (" + x(t.faiss.median / t.floor_ms) + ")" : "n/a")
        << " | " << (faiss ? x(t.vi.median / t.faiss.median) : "n/a") << " | "
        << ms(t.blocks.median) << " (" << x(t.blocks.median / t.floor_ms) << ") | "
        << ms(t.int8.median) << " (" << x(t.int8.median / t.int8_floor_ms) << ") |\n";
    }
  }
  o << "\n### " << opt.queries << " queries (seconds for all of them; queries/s)\n\n";
  o << "| size | T | floor, one pass per query | floor, one pass per batch | VectorIndex, "
    << opt.queries << " Search calls | FAISS, one batch | blocks prototype, one batch | int8, "
    << opt.queries << " searches |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& s : sizes) {
    for (const auto& t : s.per_threads) {
      auto cell = [&](const Figure& f) {
        return Fmt("%.2f", f.median) + " s (" + Fmt("%.0f", opt.queries / f.median) + "/s)";
      };
      o << "| " << SizeName(s) << " | " << th(t.threads) << " | "
        << Fmt("%.2f", t.floor_ms * opt.queries / 1000) << " s | " << Fmt("%.3f", t.floor_ms / 1000)
        << " s | " << (t.vi64.runs ? "" : "est. ") << cell(t.vi64) << " | "
        << (faiss ? cell(t.faiss64) : "n/a") << " | " << cell(t.blocks64) << " | " << cell(t.int864)
        << " |\n";
    }
  }
  o << "\n### Where the time goes (single query, ms; ratio to the floor)\n\n";
  const std::string k = vbench::BestRowsKernelName();
  o << "Besides VectorIndex's own databases, the same environment holds the vectors in two more "
       "layouts, written by the benchmark only to compare against. \"per-document values\" is "
       "VectorIndex's previous layout, which blocks replaced: one value per document (key "
       "tenant/first chunk id, a 16-byte header, then the document's rows), in the shard "
       "VectorIndex picks for that first chunk, written in ~256 MB transactions; it is read by a "
       "cursor walk like `ScanShard`'s, with and without the next value's first 4 KiB "
       "prefetched while one is scored. \"blocks prototype\" is the benchmark's own block scan: "
       "each shard's documents (as the per-document layout spreads them) packed "
    << opt.block_rows
    << " rows per value (a 48-byte header, so that the rows start on a cache line of the "
       "overflow pages, then the rows' 64-bit ids), plus the same blocks in int8 for the int8 "
       "columns above. VectorIndex scans its "
    << store::VectorIndex::kBlockRows
    << "-id range blocks and then the pieces of the range still filling. Each scan below spreads "
       "its shards over tasks like VectorIndex, scores all rows of a value in one call "
       "of the product's rows kernel (`"
    << k
    << "` here, in VectorIndex too) and keeps a bounded top-k, so the columns differ in the "
       "layout read, not in the kernel.\n\n";
  o << "| size | T | VectorIndex (blocks + pieces) | per-document values (previous layout) | "
       "per-document values, next value prefetched | blocks prototype | floor |\n"
       "|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& s : sizes) {
    for (const auto& t : s.per_threads) {
      auto cell = [&](const Figure& f) {
        return ms(f.median) + " (" + x(f.median / t.floor_ms) + ")";
      };
      o << "| " << SizeName(s) << " | " << th(t.threads) << " | " << cell(t.vi) << " | "
        << cell(t.abl_doc_best) << " | " << cell(t.abl_doc_prefetch) << " | " << cell(t.blocks)
        << " | " << ms(t.floor_ms) << " |\n";
    }
  }
  o << "\nThe first search of a process that has just opened the environment (pages in the page "
       "cache, not yet in its page tables: each 4 KiB page faults once), then its second search, "
    << std::min<size_t>(Cpus().size(), 2) << " threads:\n\n";
  o << "| size | documents | VectorIndex blocks (rows) | VectorIndex pieces (rows) | store MB "
       "(all layouts) | VectorIndex::Put of all, s | VectorIndex first search ms | second ms | "
       "blocks prototype first search ms |\n"
       "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& s : sizes) {
    const auto& layout = s.store.layout;
    o << "| " << SizeName(s) << " | " << s.documents << " | " << layout.blocks << " ("
      << layout.block_rows << ") | " << layout.pieces << " (" << layout.piece_rows << ") | "
      << Fmt("%.0f", s.store.store_mb) << " | " << Fmt("%.1f", s.store.build_s) << " | "
      << ms(s.cold_vi_ms) << " | " << ms(s.warm_vi_ms) << " | " << ms(s.cold_blocks_ms) << " |\n";
  }
  o << "\nStore MB counts every layout in the environment: VectorIndex's blocks and pieces "
       "(float and int8), the benchmark's per-document copy (float) and its prototype blocks "
       "(float and int8).\n";
  o << "\n### Correctness\n\n";
  o << "VectorIndex's top-10 chunk ids (here the rows' numbers) against FAISS's exact "
       "top-10 ids, for every query VectorIndex answered in this run (all "
    << opt.queries
    << ", or the single-query rounds' where its 64-query run was estimated). int8 recall (the "
       "prototype's int8 blocks) is against VectorIndex's top-10, or where it did not run a "
       "query, against the blocks prototype's batch (an exact float scan, checked equal to "
       "VectorIndex in the column before).\n\n";
  o << "| size | VectorIndex = FAISS (ids in order) | as sets | differing only at a near tie "
       "(< 1e-5) | blocks prototype = VectorIndex | prototype batch = VectorIndex | int8 "
       "prototype recall@10 (oversample "
    << opt.oversample << ") |\n|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& s : sizes) {
    const int timed = s.per_threads.empty() ? 0 : s.per_threads.back().blocks.runs;
    o << "| " << SizeName(s) << " | "
      << (faiss ? std::to_string(s.vi_equals_faiss) + "/" + std::to_string(s.checked) : "n/a")
      << " | " << (faiss ? std::to_string(s.vi_equals_faiss_set) : "n/a") << " | "
      << (faiss ? std::to_string(s.vi_near_tie_only) : "n/a") << " | " << s.blocks_equals_vi << "/"
      << timed << " | " << s.batch_equals_vi << "/" << s.checked << " | "
      << Fmt("%.3f", s.int8_recall) << " |\n";
  }
  o << "\n### The product's int8 format (`RAGSTREAM_VECTOR_FORMAT=int8`)\n\n"
       "VectorIndex over the same store with the int8 format: each shard's quantised blocks "
       "and pieces (vblocks8.N, vectors8.N, written by the same Puts) scanned for "
    << store::kDefaultOversample
    << " x k candidates, rescored exactly from the float blocks and pieces. Single-query "
       "latency (median of the same rounds) against VectorIndex's exact float scan, and "
       "recall@10 against it.\n\n"
       "| size | threads | VectorIndex float ms | VectorIndex int8 ms | speed-up | recall@10 "
       "(queries) |\n|---|---:|---:|---:|---:|---:|\n";
  for (const auto& s : sizes) {
    for (const auto& t : s.per_threads) {
      o << "| " << SizeName(s) << " | " << t.threads << " | " << ms(t.vi.median) << " | "
        << ms(t.vi8.median) << " | "
        << Fmt("%.2fx", t.vi8.median > 0 ? t.vi.median / t.vi8.median : 0.0) << " | "
        << Fmt("%.3f", s.vi8_recall) << " (" << s.vi8_checked << ") |\n";
    }
  }
  o << "\n### Targets\n\n| target | goal | measured | met |\n|---|---|---|---|\n";
  for (const auto& t : targets) {
    o << "| " << t.name << " | " << t.target << " | " << t.measured << " | "
      << (t.met ? "met" : "**not met**: " + t.note) << " |\n";
  }
  o << "\n";
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
#ifdef RAGSTREAM_BENCH_FAISS
  // libgomp reads OMP_WAIT_POLICY when it loads: without PASSIVE, FAISS's idle OpenMP threads
  // spin and steal the 2 cores from everything else. Re-exec with it set.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
  }
#endif
  g_load_start = LoadAverage();
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value after " + arg);
      return argv[++i];
    };
    if (arg == "--sizes") {
      opt.sizes.clear();
      std::stringstream list(next());
      for (std::string item; std::getline(list, item, ',');) {
        const size_t x = item.find('x');
        if (x == std::string::npos) Die("bad size " + item);
        opt.sizes.push_back({std::stoull(item.substr(0, x)),
                             static_cast<uint32_t>(std::stoul(item.substr(x + 1)))});
      }
    } else if (arg == "--threads") {
      opt.threads.clear();
      std::stringstream list(next());
      for (std::string item; std::getline(list, item, ',');) opt.threads.push_back(std::stoi(item));
    } else if (arg == "--dir") {
      opt.dir = next();
    } else if (arg == "--shards") {
      opt.shards = std::stoi(next());
    } else if (arg == "--single-reps") {
      opt.single_reps = std::stoi(next());
    } else if (arg == "--batch-reps") {
      opt.batch_reps = std::stoi(next());
    } else if (arg == "--block-rows") {
      opt.block_rows = static_cast<uint32_t>(std::stoul(next()));
    } else if (arg == "--oversample") {
      opt.oversample = std::stoul(next());
    } else if (arg == "--json") {
      opt.json = next();
    } else if (arg == "--md") {
      opt.md = next();
    } else if (arg == "--command") {
      opt.command = next();
    } else if (arg == "--vi64-cap-s") {
      opt.vi64_cap_s = std::stod(next());
    } else if (arg == "--budget-s") {
      opt.budget_s = std::stod(next());
    } else if (arg == "--profile") {
      opt.profile = next();
    } else if (arg == "--keep") {
      opt.keep = true;
    } else {
      std::fprintf(stderr,
                   "usage: vector_bench [--sizes 100000x384,...] [--dir DIR] [--shards N] "
                   "[--threads 1,2] [--single-reps N] [--batch-reps N] [--block-rows N] "
                   "[--oversample N] [--vi64-cap-s S] [--budget-s S] [--json FILE] [--md FILE] "
                   "[--command TEXT] [--keep] "
                   "[--profile vectorindex|docs|docs-prefetch|blocks|int8]\n");
      return 2;
    }
  }
  if (opt.block_rows == 0 || opt.block_rows >= (1u << 20)) Die("--block-rows out of range");
  if (opt.queries == 0) Die("--queries must be positive");
  if (opt.command.empty()) {
    for (int i = 0; i < argc; ++i) opt.command += std::string(i ? " " : "") + argv[i];
  }
  std::fprintf(stderr, "== read bandwidth buffer\n");
  Bandwidth bw(size_t{1} << 30);
  g_huge_mib = bw.huge_bytes() >> 20;
  std::vector<SizeResult> results;
  for (const auto& [rows, dim] : opt.sizes) {
    // A rough, generous estimate of a size's run on a loaded 2-core machine: ~60 s per GB of
    // float vectors (generation, every layout, two thread counts, every system).
    const double estimate_s = rows * dim * sizeof(float) / 1e9 * 60 + 5;
    if (!WithinBudget(opt, estimate_s)) {
      g_skipped.push_back(std::to_string(rows) + "x" + std::to_string(dim));
      std::fprintf(stderr, "== %s skipped: the time budget (%.0f s) would not hold it\n",
                   g_skipped.back().c_str(), opt.budget_s);
      continue;
    }
    results.push_back(RunSize(opt, rows, dim, bw));
  }
  if (!opt.profile.empty()) return 0;
  if (!opt.keep) std::filesystem::remove(opt.dir);
  const auto targets = Targets(results);
  const std::string json = Json(opt, results, targets, bw.bytes());
  const std::string md = Markdown(opt, results, targets, bw.bytes());
  if (!opt.json.empty()) std::ofstream(opt.json) << json;
  if (!opt.md.empty()) std::ofstream(opt.md) << md;
  if (opt.json.empty()) std::fputs(json.c_str(), stdout);
  if (opt.md.empty()) std::fputs(md.c_str(), stdout);
  return 0;
}
