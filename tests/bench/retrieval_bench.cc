// Ingestion and retrieval benchmark on synthetic text: ingests documents through the real
// Ingester (chunk, hash-embed, tokenize, one LMDB transaction per document) into a fresh
// store, then times search in each mode. Reports one JSON object.
//
//   retrieval_bench --chunks 100000 [--dir /tmp/x] [--queries 200] [--shards 4] [--reuse]
//   --reuse: keep the store in --dir afterwards, and search an existing one without ingesting
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lib/rag/analyzer.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/ingester.h"
#include "lib/rag/retriever.h"
#include "lib/store/document_store.h"

using namespace ragstream;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5))];
}

// Pseudo-words with a Zipf-like frequency, so postings lists have a realistic spread.
class TextGenerator {
 public:
  explicit TextGenerator(uint32_t seed) : rng_(seed) {
    const char* syllables[] = {"ka",  "lo",  "mi",  "ter", "ran", "bel", "sto", "vin", "dra",
                               "pen", "qui", "zor", "al",  "esh", "ung", "or",  "te",  "ma"};
    for (int i = 0; i < 30000; ++i) {
      std::string w;
      int parts = 1 + static_cast<int>(rng_() % 3);
      for (int p = 0; p < parts; ++p) w += syllables[rng_() % std::size(syllables)];
      words_.push_back(w + std::to_string(i % 97));
    }
  }
  const std::string& Word() {
    // Zipf-ish: squaring a uniform draw favours low ranks.
    double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    return words_[static_cast<size_t>(u * u * u * (words_.size() - 1))];
  }
  std::string Paragraph(int sentences) {
    std::string out;
    for (int s = 0; s < sentences; ++s) {
      int n = 8 + static_cast<int>(rng_() % 12);
      for (int i = 0; i < n; ++i) out += (i ? " " : "") + Word();
      out += ". ";
    }
    return out;
  }

 private:
  std::mt19937 rng_;
  std::vector<std::string> words_;
};

}  // namespace

int main(int argc, char** argv) {
  size_t target_chunks = 10000, queries = 200;
  int shards = 4;
  std::string dir = "/tmp/ragstream-retrieval-bench";
  bool reuse = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string("0"); };
    if (arg == "--reuse") {
      reuse = true;
    } else if (arg == "--chunks") {
      target_chunks = std::stoul(next());
    } else if (arg == "--queries") {
      queries = std::stoul(next());
    } else if (arg == "--shards") {
      shards = std::stoi(next());
    } else if (arg == "--dir") {
      dir = next();
    } else {
      std::fprintf(stderr,
                   "usage: retrieval_bench [--chunks N] [--queries N] [--shards N] "
                   "[--dir DIR] [--reuse]\n");
      return 2;
    }
  }
  const bool existing = reuse && std::filesystem::exists(dir + "/data.mdb");
  if (!existing) std::filesystem::remove_all(dir);
  auto env =
      store::Env::Open({dir, 64ull << 30, 64, 4096, store::DocumentStore::Databases(shards)});
  if (!env.ok()) {
    std::fprintf(stderr, "%s\n", env.status().ToString().c_str());
    return 1;
  }
  store::DocumentStore documents(**env, shards, store::VectorFormat::kFloat,
                                 rag::AnalyzeDocumentChunks);
  rag::HashEmbedder embedder;
  (void)documents.CheckIndexIdentity(embedder.name(), embedder.dimension());
  rag::Ingester ingester(documents, embedder, {});
  rag::Retriever retriever(documents, embedder);

  TextGenerator gen(42);
  size_t chunks = 0, bytes = 0, docs = 0;
  auto t0 = Clock::now();
  if (existing) chunks = documents.vectors().Count().value();
  while (!existing && chunks < target_chunks) {
    std::string text;
    for (int p = 0; p < 6; ++p) text += gen.Paragraph(4) + "\n\n";  // ~5 chunks
    auto r = ingester.Ingest("default", "doc " + std::to_string(docs), text);
    if (!r.ok()) {
      std::fprintf(stderr, "ingest: %s\n", r.status().ToString().c_str());
      return 1;
    }
    chunks += r->record.chunk_count;
    bytes += text.size();
    ++docs;
  }
  double ingest_s = Ms(Clock::now() - t0) / 1000.0;

  std::printf(
      "{\"chunks\": %zu, \"documents\": %zu, \"text_mb\": %.2f, \"ingest_s\": %.2f, "
      "\"ingest_mb_per_s\": %.3f, \"store_mb\": %.1f",
      chunks, docs, bytes / 1e6, ingest_s, bytes / 1e6 / ingest_s,
      (*env)->MapUsage().used_bytes / 1e6);
  for (auto mode :
       {rag::RetrievalMode::kVector, rag::RetrievalMode::kLexical, rag::RetrievalMode::kHybrid}) {
    std::vector<double> lat;
    TextGenerator qgen(7);
    for (size_t q = 0; q < queries; ++q) {
      std::string query = qgen.Word() + " " + qgen.Word() + " " + qgen.Word() + " " + qgen.Word();
      auto t = Clock::now();
      auto r = retriever.Retrieve({"default", query, 5, mode, {}});
      lat.push_back(Ms(Clock::now() - t));
      if (!r.ok()) return 1;
    }
    std::printf(", \"%s_p50_ms\": %.2f, \"%s_p99_ms\": %.2f", rag::RetrievalModeName(mode),
                Percentile(lat, 50), rag::RetrievalModeName(mode), Percentile(lat, 99));
  }
  std::printf("}\n");
  if (!reuse) std::filesystem::remove_all(dir);
  return 0;
}
