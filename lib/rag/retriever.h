// Retrieval: vector search over the shards, BM25 over the analysed postings, or both fused
// by score (hybrid, the default). Returns the passages above the relevance floor, with their
// document and score: none when nothing in the documents fits the question.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/rag/analyzer.h"
#include "lib/rag/embedder.h"
#include "lib/rag/retrieval_mode.h"
#include "lib/store/document_store.h"

namespace ragstream::rag {

struct Passage {
  std::string document_id;
  std::string title;
  uint32_t chunk_index = 0;
  std::string chunk_id;  // "<document_id>:<chunk_index>"
  double score = 0;      // cosine (vector), BM25 (lexical) or the fused score (hybrid)
  double relevance = 0;  // BM25 / the question's mass: how much of it the passage covers
  std::string text;
  uint64_t start_char = 0, end_char = 0;
};

struct RetrievalRequest {
  std::string tenant;  // whose documents are searched (required)
  std::string query;
  size_t top_k = 5;
  RetrievalMode mode = RetrievalMode::kHybrid;
  std::vector<std::string> document_ids;  // empty: all the tenant's documents
  bool exact = false;                     // the exact vector scan even when an index exists
  uint32_t nprobe = 0;                    // 0: RetrieverOptions::vector_search.probe
};

// How the vector side of a retrieval ran.
struct RetrievalInfo {
  bool vector_searched = false;
  bool vector_rescored = false;  // hybrid: only the lexical candidates' vectors were scored
  size_t rows_scored = 0;
  store::VectorSearchInfo vector;
};

// Score-aware fusion of the two candidate lists (relative score fusion, as Weaviate's
// relativeScoreFusion and Elasticsearch's linear retriever do it, with the lexical side on an
// absolute scale):
//   fused = lexical_weight x relevance + vector_weight x (cos - min) / (max - min)
// where relevance = BM25 / the query's mass (store::LexicalResult::query_mass: about 1 for a
// chunk that matches every term of the question once) and the cosine is min-max normalised
// over the vector candidates. A candidate missing from a list gets 0 from it. Sorted by
// fused score, highest first; equal scores by id, so the same store gives the same order.
struct FusionCandidate {
  std::string id;
  double lexical_relevance = -1;  // < 0: not in the lexical list
  double cosine = -2;             // < -1: not in the vector list
};
struct FusedId {
  std::string id;
  double score = 0;
  double lexical_relevance = 0;  // 0 when not in the lexical list
  double cosine = -2;
};
std::vector<FusedId> RelativeScoreFusion(const std::vector<FusionCandidate>& candidates,
                                         double lexical_weight, double vector_weight);

// How retrieval fuses, what it cites and how results are spread across documents. The
// defaults are per embedder (ForEmbedder): chosen on the tuning half of data/evalset with the
// hash embedder; see docs/retrieval.md.
struct RetrieverOptions {
  double lexical_weight = 1.0;
  // The hash embedder shares words and letter trigrams, not meaning: on the tuning half of
  // data/evalset a weight of 0.02 (a tie-breaker between lexical candidates) measured the
  // same as none, and every weight above 0.05 worse; so it has none, and hybrid retrieval
  // with it is BM25 alone, which costs no vector work (docs/retrieval.md).
  double vector_weight = 0;
  // The relevance floor: a passage is cited only if it covers at least this much of the
  // question (lexical relevance), or, in vector mode (and in hybrid mode when the embedder
  // vouches), if its cosine reaches min_cosine.
  double min_relevance = 0.1;
  double min_cosine = 0.1;
  bool vector_vouches_in_hybrid = false;  // a semantic embedder's cosine counts in hybrid
  size_t fusion_depth_per_result = 3;     // each list contributes max(3 x top_k, 20)
  size_t min_fusion_depth = 20;
  size_t max_chunks_per_document = 2;  // more documents, rather than one document's chunks
  QueryAnalysisOptions query;
  store::VectorSearchOptions vector_search;  // approximate or exact (RAGSTREAM_IVF_*)

  // The defaults for an embedder: "hash" as above; any other (a semantic model) weighs as
  // much as BM25 in hybrid mode and vouches for a passage with a cosine of 0.3 or more (not
  // measured here: no semantic embedder runs offline; RAGSTREAM_VECTOR_WEIGHT and
  // RAGSTREAM_MIN_COSINE override).
  static RetrieverOptions ForEmbedder(std::string_view embedder_name);
};

// The API's source objects: [{"document_id", "title", "chunk_id", "score", "text"}, ...].
std::string SourcesJson(const std::vector<Passage>& passages);

class Retriever {
 public:
  Retriever(const store::DocumentStore& store, Embedder& embedder, RetrieverOptions options = {});
  // Thread-safe.
  Result<std::vector<Passage>> Retrieve(const RetrievalRequest& request,
                                        RetrievalInfo* info = nullptr) const;
  // How many documents the tenant holds (to tell "nothing fits" from "nothing there").
  Result<uint64_t> DocumentCount(const std::string& tenant) const { return store_.Count(tenant); }

 private:
  const store::DocumentStore& store_;
  Embedder& embedder_;
  RetrieverOptions options_;
};

}  // namespace ragstream::rag
