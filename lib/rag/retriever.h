// Retrieval: vector search over the shards, BM25 over the postings, or both fused by
// reciprocal rank (hybrid, the default). Returns passages with their document and score.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/rag/embedder.h"
#include "lib/rag/retrieval_mode.h"
#include "lib/store/document_store.h"

namespace ragstream::rag {

struct Passage {
  std::string document_id;
  std::string title;
  uint32_t chunk_index = 0;
  std::string chunk_id;  // "<document_id>:<chunk_index>"
  double score = 0;      // cosine (vector), BM25 (lexical) or fused RRF score (hybrid)
  std::string text;
  uint64_t start_char = 0, end_char = 0;
};

struct RetrievalRequest {
  std::string tenant;  // whose documents are searched (required)
  std::string query;
  size_t top_k = 5;
  RetrievalMode mode = RetrievalMode::kHybrid;
  std::vector<std::string> document_ids;  // empty: all the tenant's documents
};

// Weighted reciprocal rank fusion: sum over lists of weight / (k + rank), rank from 1 (a
// missing weight is 1). Items are keyed by chunk id; the result is sorted by fused score,
// highest first (ties by first appearance).
struct RankedId {
  std::string id;
  double score = 0;
};
std::vector<RankedId> ReciprocalRankFusion(const std::vector<std::vector<std::string>>& lists,
                                           double k = 60.0,
                                           const std::vector<double>& weights = {});

// How hybrid retrieval fuses and how results are spread across documents. The defaults were
// chosen on the shipped evaluation set (data/eval) with the hash embedder, whose ranking is
// the weaker of the two there (recall@5: vector 0.82, lexical 0.93): see docs/retrieval.md.
struct RetrieverOptions {
  double rrf_k = 60;
  double vector_weight = 0.5;
  double lexical_weight = 1.0;
  size_t fusion_depth_per_result = 2;  // each list contributes max(2 x top_k, 10) candidates
  size_t min_fusion_depth = 10;
  size_t max_chunks_per_document = 2;  // more documents, rather than one document's chunks
};

// The API's source objects: [{"document_id", "title", "chunk_id", "score", "text"}, ...].
std::string SourcesJson(const std::vector<Passage>& passages);

class Retriever {
 public:
  Retriever(const store::DocumentStore& store, Embedder& embedder, RetrieverOptions options = {});
  // Thread-safe.
  Result<std::vector<Passage>> Retrieve(const RetrievalRequest& request) const;

 private:
  const store::DocumentStore& store_;
  Embedder& embedder_;
  RetrieverOptions options_;
};

}  // namespace ragstream::rag
