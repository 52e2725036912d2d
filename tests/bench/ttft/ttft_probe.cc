// Where retrieval's time goes, step by step, on a store made by ttft_store: for each of
// --n questions (corpus.h), times the query embedding, the vector search, the BM25 search,
// and the chunk and document loads of the fused top-k, as rag::Retriever does them (hybrid,
// top_k 5, the product's fusion depth); the vector search both as the retriever runs it (the
// approximate index when the store has one) and exactly. Prints one JSON object of medians and p99s
// in microseconds. Read-only: it never writes to the store.
//
//   ttft_probe --dir DIR [--n 50] [--shards 4] [--vector-format float|int8]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "lib/rag/analyzer.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/retriever.h"
#include "lib/rag/text.h"
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
  int n = 50, shards = 4;
  bool int8 = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string("0"); };
    if (arg == "--dir") {
      dir = next();
    } else if (arg == "--n") {
      n = std::stoi(next());
    } else if (arg == "--vector-format") {
      int8 = next() == "int8";
    } else if (arg == "--shards") {
      shards = std::stoi(next());
    } else {
      std::fprintf(
          stderr,
          "usage: ttft_probe --dir DIR [--n 50] [--shards 4] [--vector-format float|int8]\n");
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
    std::fprintf(stderr, "ttft_probe: %s\n", env.status().ToString().c_str());
    return 1;
  }
  store::DocumentStore documents(**env, shards,
                                 int8 ? store::VectorFormat::kInt8 : store::VectorFormat::kFloat,
                                 rag::AnalyzeDocumentChunks);
  rag::HashEmbedder embedder;
  rag::Retriever retriever(documents, embedder);
  const size_t k = 5, candidates = 10;  // RetrieverOptions: max(2 x top_k, 10)
  std::map<std::string, std::vector<double>> t;
  std::vector<double> postings_scanned;
  for (int q = 0; q < n; ++q) {
    const std::string question = bench::Question(static_cast<uint64_t>(q));
    auto t0 = Clock::now();
    auto v = embedder.Embed({question});
    t["embed"].push_back(Us(t0));
    t0 = Clock::now();
    // As the retriever searches (its default options: the approximate index when the store
    // has one), and the exact scan beside it.
    const uint32_t dim = static_cast<uint32_t>(v->front().size());
    auto vh = documents.SearchVectors("default", v->front().data(), dim, candidates, {},
                                      rag::RetrieverOptions().vector_search);
    t["vector_search"].push_back(Us(t0));
    t0 = Clock::now();
    store::VectorSearchOptions exact;
    exact.exact = true;
    auto eh = documents.SearchVectors("default", v->front().data(), dim, candidates, {}, exact);
    t["vector_search_exact"].push_back(Us(t0));
    if (!eh.ok()) return 1;
    t0 = Clock::now();
    auto terms = rag::AnalyzeQuery(question);
    t["analyze"].push_back(Us(t0));
    t0 = Clock::now();
    auto lh = documents.lexical().Search("default", terms, candidates, {});
    t["lexical_search"].push_back(Us(t0));
    if (!vh.ok() || !lh.ok()) return 1;
    t0 = Clock::now();
    size_t loaded = 0;
    for (const auto& h : lh->hits) {
      if (loaded++ == k) break;
      auto ref = documents.Resolve("default", {h.chunk});
      if (!ref.ok() || !ref->front()) return 1;
      auto c = documents.GetChunk("default", ref->front()->document_id, ref->front()->index);
      auto d = documents.Get("default", ref->front()->document_id);
      if (!c.ok() || !d.ok()) return 1;
    }
    t["chunk_loads"].push_back(Us(t0));
    t0 = Clock::now();
    auto all = retriever.Retrieve({"default", question, k, rag::RetrievalMode::kHybrid, {}});
    t["retrieve_hybrid"].push_back(Us(t0));
    if (!all.ok()) return 1;
    // The default above is BM25 alone with the hash embedder; a question that searches the
    // vectors (vector mode; hybrid with a semantic embedder runs BM25 beside it) pays this.
    t0 = Clock::now();
    auto by_vector = retriever.Retrieve({"default", question, k, rag::RetrievalMode::kVector, {}});
    t["retrieve_vector"].push_back(Us(t0));
    if (!by_vector.ok()) return 1;
  }
  auto count = documents.vectors().Count();
  std::printf("{\"questions\": %d, \"vectors\": %llu", n,
              static_cast<unsigned long long>(count.ok() ? *count : 0));
  for (const auto& [name, v] : t) {
    std::printf(", \"%s_p50_us\": %.0f, \"%s_p99_us\": %.0f", name.c_str(), Pct(v, 50),
                name.c_str(), Pct(v, 99));
  }
  std::printf("}\n");
  return 0;
}
