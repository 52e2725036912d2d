// Builds (or extends) the store that part 3 of scripts/bench.sh measures: synthetic documents
// (corpus.h), chunked, hash-embedded and tokenized exactly as the Ingester does, written
// through DocumentStore (the same records, vectors and postings as an upload) into the tenant
// "default" of the worker's own layout (conversation and document databases,
// RAGSTREAM_VECTOR_SHARDS shards), until the tenant holds at least --chunks chunks.
//
// What differs from the product, to build 10^5-10^6 chunks in minutes: --batch documents go
// in one transaction (DocumentStore::AddMany; the product's Ingester commits one document per
// transaction, or a few when uploads arrive together), the environment is switched to
// MDB_NOSYNC while building (commits are not fsynced one by one; everything is synced once
// at the end, so the result is the same store), and --threads producer threads chunk and
// embed while one thread writes. The text is generated (corpus.h), or with --jsonl read from
// a file of JSON lines {"title", "text"} (until the file runs out, if it does first).
//
//   ttft_store --dir DIR --chunks N [--shards 4] [--chunk-chars 700] [--paragraphs 10]
//              [--threads 1] [--batch 1] [--vector-format float|int8] [--map-mb 65536]
//              [--jsonl FILE] [--ivf]
//   --ivf: then builds the tenant's approximate vector index (as the worker's background
//   builder would, with the default settings, on 2 threads) and reports its build time
//   ttft_store --questions N      prints N questions (one per line) in the corpus's words
//   ttft_store --documents N FROM prints documents FROM..FROM+N-1 as JSON lines {"title", "text"}
// Prints one JSON object: chunks and documents now in the store, what this run added, and
// how long it took.
#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

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

constexpr const char* kTenant = "default";

uint64_t ReadMetaU64(const store::Env& env, const std::string& key) {
  auto txn = store::Txn::BeginRead(env);
  if (!txn.ok()) return 0;
  auto v = txn->Get(env.Dbi("index_meta"), key);
  uint64_t x = 0;
  if (v.ok() && v->has_value() && (*v)->size() == sizeof x) std::memcpy(&x, (*v)->data(), sizeof x);
  return x;
}

// --jsonl: documents {"title", "text"} read from a file, in order (instead of synthetic ones).
std::vector<std::pair<std::string, std::string>> ReadJsonLines(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> docs;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    rapidjson::Document d;
    d.Parse(line.data(), line.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("text") || !d["text"].IsString())
      continue;
    std::string title = d.HasMember("title") && d["title"].IsString() ? d["title"].GetString() : "";
    docs.emplace_back(std::move(title), d["text"].GetString());
  }
  return docs;
}

store::NewDocument Prepare(uint64_t n, int paragraphs, const rag::ChunkerOptions& chunker,
                           rag::HashEmbedder& embedder,
                           const std::vector<std::pair<std::string, std::string>>* given) {
  const bool real = given && n < given->size();
  std::string text = real ? (*given)[n].second : bench::Document(n, paragraphs);
  store::NewDocument doc;
  doc.record.id = NewId("doc_");
  doc.record.title = real ? (*given)[n].first : "Synthetic document " + std::to_string(n);
  doc.record.content_hash = Sha256Hex(text);
  doc.record.bytes = text.size();
  doc.record.chars = Utf8Length(text);
  doc.record.created_at = NowMillis();
  std::vector<rag::Chunk> chunks = rag::ChunkText(text, chunker);
  doc.dimension = static_cast<uint32_t>(embedder.dimension());
  doc.vectors.resize(chunks.size() * doc.dimension);
  for (size_t i = 0; i < chunks.size(); ++i) {
    embedder.EmbedOne(chunks[i].text, doc.vectors.data() + i * doc.dimension);
  }
  rag::AnalyzeChunks(text, chunks, doc);  // as the product's Ingester
  doc.record.chunk_count = static_cast<uint32_t>(doc.chunks.size());
  doc.text = std::move(text);
  return doc;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  uint64_t target = 10000, map_mb = 65536;
  int shards = 4, chunk_chars = 700, paragraphs = 10, threads = 1;
  size_t batch_size = 1;
  bool int8 = false;
  std::string jsonl;
  bool ivf = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string("0"); };
    if (arg == "--documents") {  // N FROM: documents FROM.. as JSON lines {"title", "text"}
      const uint64_t n = std::stoull(next()), from = std::stoull(next());
      for (uint64_t d = from; d < from + n; ++d) {
        std::string text = bench::Document(d, 10), escaped;
        for (char c : text) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
        std::printf("{\"title\": \"Synthetic document %llu\", \"text\": \"%s\"}\n",
                    static_cast<unsigned long long>(d), escaped.c_str());
      }
      return 0;
    } else if (arg == "--questions") {
      const uint64_t n = std::stoull(next());
      for (uint64_t q = 0; q < n; ++q) std::printf("%s\n", bench::Question(q).c_str());
      return 0;
    } else if (arg == "--dir") {
      dir = next();
    } else if (arg == "--chunks") {
      target = std::stoull(next());
    } else if (arg == "--shards") {
      shards = std::stoi(next());
    } else if (arg == "--chunk-chars") {
      chunk_chars = std::stoi(next());
    } else if (arg == "--paragraphs") {
      paragraphs = std::stoi(next());
    } else if (arg == "--threads") {
      threads = std::max(1, std::stoi(next()));
    } else if (arg == "--batch") {
      batch_size = std::max<size_t>(1, std::stoul(next()));
    } else if (arg == "--vector-format") {
      int8 = next() == "int8";
    } else if (arg == "--ivf") {
      ivf = true;
    } else if (arg == "--jsonl") {
      jsonl = next();
    } else if (arg == "--map-mb") {
      map_mb = std::stoull(next());
    } else {
      std::fprintf(stderr,
                   "usage: ttft_store --dir DIR --chunks N [--shards 4] [--chunk-chars 700] "
                   "[--paragraphs 10] [--threads 1] [--batch 1] [--vector-format float|int8] "
                   "[--map-mb 65536] [--jsonl FILE] [--ivf]\n");
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "ttft_store: --dir is required\n");
    return 2;
  }
  // The worker's databases (handlers/main.cc), so the worker opens this store as its own.
  std::vector<std::string> databases = store::ConversationStore::Databases();
  for (auto& name : store::DocumentStore::Databases(shards)) {
    if (std::find(databases.begin(), databases.end(), name) == databases.end()) {
      databases.push_back(name);
    }
  }
  auto env = store::Env::Open({dir, map_mb << 20, 64, 4096, databases});
  if (!env.ok()) {
    std::fprintf(stderr, "ttft_store: %s\n", env.status().ToString().c_str());
    return 1;
  }
  store::DocumentStore documents(**env, shards,
                                 int8 ? store::VectorFormat::kInt8 : store::VectorFormat::kFloat,
                                 rag::AnalyzeDocumentChunks);
  rag::HashEmbedder embedder;
  if (Status s = documents.CheckIndexIdentity(embedder.name(), embedder.dimension()); !s.ok()) {
    std::fprintf(stderr, "ttft_store: %s\n", s.ToString().c_str());
    return 1;
  }
  // Records the analyzer as a worker would (a no-op on a store this tool built): otherwise the
  // first worker to open the store re-indexes it before it listens.
  auto reindexed = documents.ReindexLexical(rag::AnalyzerVersion());
  if (!reindexed.ok()) {
    std::fprintf(stderr, "ttft_store: %s\n", reindexed.status().ToString().c_str());
    return 1;
  }
  if (int rc = mdb_env_set_flags((*env)->raw(), MDB_NOSYNC, 1); rc != 0) {
    std::fprintf(stderr, "ttft_store: mdb_env_set_flags: %s\n", mdb_strerror(rc));
    return 1;
  }
  rag::ChunkerOptions chunker;
  chunker.target_chars = static_cast<size_t>(chunk_chars);
  chunker.overlap_chars = 100;
  chunker.max_chars = static_cast<size_t>(chunk_chars) * 10 / 7;

  const uint64_t had_chunks = ReadMetaU64(**env, std::string("bm25_chunks/") + kTenant);
  const uint64_t had_docs = ReadMetaU64(**env, std::string("doc_count/") + kTenant);
  auto t0 = Clock::now();

  // Producers prepare documents numbered from had_docs on; the main thread writes them.
  std::mutex mu;
  std::condition_variable ready, room;
  std::deque<store::NewDocument> queue;
  std::atomic<uint64_t> next_doc{had_docs};
  std::atomic<bool> stop{false};
  const std::vector<std::pair<std::string, std::string>> given =
      jsonl.empty() ? std::vector<std::pair<std::string, std::string>>() : ReadJsonLines(jsonl);
  if (!jsonl.empty() && given.empty()) {
    std::fprintf(stderr, "ttft_store: no documents in %s\n", jsonl.c_str());
    return 2;
  }
  int producers_done = 0;  // --jsonl: producers that ran out of documents
  const size_t max_queue = 2 * batch_size;
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&] {
      rag::HashEmbedder local;
      while (!stop.load()) {
        const uint64_t n = next_doc.fetch_add(1);
        if (!given.empty() && n >= given.size()) {
          std::unique_lock lock(mu);
          ++producers_done;
          ready.notify_one();
          return;
        }
        store::NewDocument doc = Prepare(n, paragraphs, chunker, local, &given);
        std::unique_lock lock(mu);
        room.wait(lock, [&] { return queue.size() < max_queue || stop.load(); });
        if (stop.load()) return;
        queue.push_back(std::move(doc));
        ready.notify_one();
      }
    });
  }
  uint64_t chunks = had_chunks, docs = 0, bytes = 0;
  int status = 0;
  bool out_of_documents = false;
  while (chunks < target && !out_of_documents) {
    // Up to --batch documents per transaction (DocumentStore::AddMany), never past the target.
    std::vector<store::NewDocument> batch;
    uint64_t batch_chunks = 0;
    {
      std::unique_lock lock(mu);
      while (batch.size() < batch_size && chunks + batch_chunks < target) {
        ready.wait(lock, [&] { return !queue.empty() || producers_done == threads; });
        if (queue.empty()) {
          out_of_documents = true;
          break;
        }
        batch_chunks += queue.front().chunks.size();
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
        room.notify_one();
      }
    }
    auto added = documents.AddMany(kTenant, batch);
    if (!added.ok()) {
      std::fprintf(stderr, "ttft_store: %s\n", added.status().ToString().c_str());
      status = 1;
      break;
    }
    for (const auto& doc : batch) {
      chunks += doc.chunks.size();
      bytes += doc.text.size();
      ++docs;
    }
  }
  {
    std::lock_guard lock(mu);
    stop.store(true);
    room.notify_all();
  }
  for (auto& t : producers) t.join();
  double ivf_seconds = -1;
  uint32_t ivf_nlist = 0;
  if (ivf && status == 0) {
    const auto b0 = Clock::now();
    store::IvfBuildOptions options;
    options.threads = 2;
    auto report =
        documents.BuildVectorIndex(kTenant, rag::HashEmbedder::kDefaultDimension, options);
    if (!report.ok() || !report->built) {
      std::fprintf(stderr, "ttft_store: the vector index: %s\n",
                   report.ok() ? report->skipped.c_str() : report.status().ToString().c_str());
      status = 1;
    } else {
      ivf_seconds = std::chrono::duration<double>(Clock::now() - b0).count();
      ivf_nlist = report->nlist;
    }
  }
  if (int rc = mdb_env_sync((*env)->raw(), 1); rc != 0) {
    std::fprintf(stderr, "ttft_store: mdb_env_sync: %s\n", mdb_strerror(rc));
    status = 1;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "{\"chunks\": %llu, \"documents\": %llu, \"added_chunks\": %llu, \"added_documents\": "
      "%llu, \"added_text_mb\": %.2f, \"seconds\": %.2f, \"store_mb\": %.1f, \"threads\": %d, "
      "\"chunk_chars\": %d, \"batch\": %zu, \"nosync\": true, \"ivf_build_s\": %.2f, "
      "\"ivf_nlist\": %u}\n",
      static_cast<unsigned long long>(chunks), static_cast<unsigned long long>(had_docs + docs),
      static_cast<unsigned long long>(chunks - had_chunks), static_cast<unsigned long long>(docs),
      bytes / 1e6, seconds, (*env)->MapUsage().used_bytes / 1e6, threads, chunk_chars, batch_size,
      ivf_seconds, ivf_nlist);
  return status;
}
