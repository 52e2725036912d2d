// Part 5 of scripts/bench.sh: ingestion throughput. Synthetic documents (corpus.h) go through
// the product's Ingester -- validate, chunk, hash-embed, analyse (stems, stop words), and one
// durable LMDB transaction per document (document, text, chunks, vectors, BM25 postings) -- from
// --threads threads into a fresh store, until --mb megabytes of text are in.
//
//   ingest_bench --dir DIR [--mb 4] [--threads 1] [--paragraphs 10] [--shards 4] [--nosync]
//                [--phases]
//   --nosync  open the environment with MDB_NOSYNC (not the product: shows what the fsyncs cost)
//   --phases  instead of the Ingester, run its steps one by one on one thread and time each
//             (validation + hash, chunking, embedding, tokenizing, the store's transaction)
// Prints one JSON object.
#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/ids.h"
#include "lib/core/sha256.h"
#include "lib/core/utf8.h"
#include "lib/rag/analyzer.h"
#include "lib/rag/chunker.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/ingester.h"
#include "lib/rag/text.h"
#include "lib/store/conversation_store.h"
#include "lib/store/document_store.h"
#include "tests/bench/ttft/corpus.h"

using namespace ragstream;
using Clock = std::chrono::steady_clock;

namespace {

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  double mb = 4;
  int threads = 1, paragraphs = 10, shards = 4;
  bool nosync = false, phases = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string("0"); };
    if (arg == "--dir") {
      dir = next();
    } else if (arg == "--mb") {
      mb = std::stod(next());
    } else if (arg == "--threads") {
      threads = std::max(1, std::stoi(next()));
    } else if (arg == "--paragraphs") {
      paragraphs = std::stoi(next());
    } else if (arg == "--shards") {
      shards = std::stoi(next());
    } else if (arg == "--nosync") {
      nosync = true;
    } else if (arg == "--phases") {
      phases = true;
    } else {
      std::fprintf(stderr,
                   "usage: ingest_bench --dir DIR [--mb 4] [--threads 1] [--paragraphs 10] "
                   "[--shards 4] [--nosync] [--phases]\n");
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "ingest_bench: --dir is required\n");
    return 2;
  }
  std::filesystem::remove_all(dir);
  std::vector<std::string> databases = store::ConversationStore::Databases();
  for (auto& name : store::DocumentStore::Databases(shards)) {
    if (std::find(databases.begin(), databases.end(), name) == databases.end()) {
      databases.push_back(name);
    }
  }
  auto env = store::Env::Open({dir, 8ull << 30, 64, 4096, databases});
  if (!env.ok()) {
    std::fprintf(stderr, "ingest_bench: %s\n", env.status().ToString().c_str());
    return 1;
  }
  if (nosync) mdb_env_set_flags((*env)->raw(), MDB_NOSYNC, 1);
  store::DocumentStore documents(**env, shards, store::VectorFormat::kFloat,
                                 rag::AnalyzeDocumentChunks);
  rag::HashEmbedder embedder;
  (void)documents.CheckIndexIdentity(embedder.name(), embedder.dimension());
  rag::IngestOptions options;  // the worker's defaults: 700-character chunks, 100 overlap
  options.chunker.max_chars = options.chunker.target_chars * 10 / 7;
  rag::Ingester ingester(documents, embedder, options);

  const uint64_t limit = static_cast<uint64_t>(mb * 1e6);
  std::atomic<uint64_t> next_doc{0}, bytes{0}, docs{0}, chunks{0};
  std::atomic<bool> failed{false};
  // Seconds spent in each step (--phases).
  double t_validate = 0, t_chunk = 0, t_embed = 0, t_tokenize = 0, t_store = 0;

  auto t0 = Clock::now();
  if (phases) {
    while (bytes.load() < limit) {
      std::string text = bench::Document(next_doc++, paragraphs);
      auto t = Clock::now();
      if (!ingester.Validate("", text).ok()) return 1;
      store::NewDocument doc;
      doc.record.id = NewId("doc_");
      doc.record.title = rag::TitleFromText(text, options.max_title_chars);
      doc.record.content_hash = Sha256Hex(text);
      doc.record.bytes = text.size();
      doc.record.chars = Utf8Length(text);
      doc.record.created_at = NowMillis();
      t_validate += Since(t);
      t = Clock::now();
      std::vector<rag::Chunk> pieces = rag::ChunkText(text, options.chunker);
      t_chunk += Since(t);
      t = Clock::now();
      std::vector<std::string> batch;
      for (const auto& p : pieces) batch.push_back(p.text);
      auto vectors = embedder.Embed(batch);
      doc.dimension = static_cast<uint32_t>(embedder.dimension());
      for (const auto& v : *vectors) doc.vectors.insert(doc.vectors.end(), v.begin(), v.end());
      t_embed += Since(t);
      t = Clock::now();
      rag::AnalyzeChunks(text, pieces, doc);  // as the product's Ingester
      doc.text = text;
      t_tokenize += Since(t);
      t = Clock::now();
      auto added = documents.Add("default", doc);
      t_store += Since(t);
      if (!added.ok()) {
        std::fprintf(stderr, "ingest_bench: %s\n", added.status().ToString().c_str());
        return 1;
      }
      bytes += text.size();
      chunks += doc.chunks.size();
      ++docs;
    }
  } else {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        while (!failed.load() && bytes.load() < limit) {
          std::string text = bench::Document(next_doc++, paragraphs);
          const size_t size = text.size();
          auto r = ingester.Ingest("default", "", std::move(text));
          if (!r.ok()) {
            std::fprintf(stderr, "ingest_bench: %s\n", r.status().ToString().c_str());
            failed.store(true);
            return;
          }
          bytes += size;
          chunks += r->record.chunk_count;
          ++docs;
        }
      });
    }
    for (auto& w : workers) w.join();
    if (failed.load()) return 1;
  }
  const double seconds = Since(t0);
  std::printf(
      "{\"threads\": %d, \"nosync\": %s, \"documents\": %llu, \"chunks\": %llu, \"text_mb\": "
      "%.3f, \"seconds\": %.3f, \"mb_per_s\": %.3f, \"docs_per_s\": %.1f, \"store_mb\": %.1f",
      phases ? 1 : threads, nosync ? "true" : "false", static_cast<unsigned long long>(docs.load()),
      static_cast<unsigned long long>(chunks.load()), bytes.load() / 1e6, seconds,
      bytes.load() / 1e6 / seconds, docs.load() / seconds, (*env)->MapUsage().used_bytes / 1e6);
  if (phases) {
    const double per_doc_ms = 1000.0 / static_cast<double>(docs.load());
    std::printf(
        ", \"phases_ms_per_doc\": {\"validate_hash\": %.3f, \"chunk\": %.3f, \"embed\": %.3f, "
        "\"analyze\": %.3f, \"store_txn\": %.3f}",
        t_validate * per_doc_ms, t_chunk * per_doc_ms, t_embed * per_doc_ms,
        t_tokenize * per_doc_ms, t_store * per_doc_ms);
  }
  std::printf("}\n");
  env->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
