// The lexical index: BM25 over chunks, as postings in the LMDB environment.
//
//   lex_postings  T/term + '\0' + document id + big-endian chunk index -> u32 tf, u32 length
//   lex_df        T/term -> u32 number of the tenant's chunks containing it
//   index_meta    "lex_chunks/T", "lex_tokens/T" -> u64 totals (for IDF and average length)
//
// T is the tenant (tenant_key.h): each tenant has its own postings and its own statistics,
// so neither its results nor its scores depend on what other tenants hold.
//
// Terms come from rag::AnalyzeChunk / rag::AnalyzeQuery (the caller analyses; this module
// only stores and scores).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/lmdb.h"

namespace ragstream::store {

struct LexicalHit {
  double score = 0;
  std::string document_id;
  uint32_t chunk_index = 0;
};

// A query term and how much it counts (a stem 1, an exact-form or title term less).
struct WeightedTerm {
  std::string term;
  double weight = 1;
  // A guess at another spelling (two words written as one): it adds to the query's mass
  // only when the tenant has it, so a wrong guess does not make the question look less
  // covered.
  bool optional = false;
};

// Each of `terms` with weight 1 (a term given twice weighs 2).
std::vector<WeightedTerm> Unweighted(const std::vector<std::string>& terms);

struct LexicalResult {
  std::vector<LexicalHit> hits;  // highest score first; equal scores by document id, chunk
  // The query's information: sum of weight x IDF over its terms, a term the tenant does not
  // have counted at the IDF of a term in no chunk. A chunk matching every term once at
  // average length scores about this much, so score / query_mass says how much of the
  // question a chunk covers (the relevance floor uses it).
  double query_mass = 0;
};

// BM25 with k1 = 1.2, b = 0.75; IDF = ln(1 + (N - df + 0.5) / (df + 0.5)).
double Bm25Idf(uint64_t chunks, uint64_t df);
double Bm25TermScore(double idf, uint32_t tf, uint32_t chunk_len, double avg_len);

class LexicalIndex {
 public:
  static std::vector<std::string> Databases();
  explicit LexicalIndex(const Env& env);

  // Within `txn`: indexes a chunk's terms (with repetition; order does not matter); `length`
  // is the chunk's length for BM25 (its words, which need not be its number of terms).
  Status Add(Txn& txn, std::string_view tenant, std::string_view document_id, uint32_t chunk_index,
             const std::vector<std::string>& terms, uint32_t length);
  // Within `txn`: removes what Add(...) with the same terms and length added.
  Status Remove(Txn& txn, std::string_view tenant, std::string_view document_id,
                uint32_t chunk_index, const std::vector<std::string>& terms, uint32_t length);

  // The tenant's top-k chunks by BM25 for the weighted query terms (each term's score times
  // its weight), highest first. A non-empty `filter` restricts to those document ids.
  // Thread-safe.
  // Exact, but it need not read every posting: terms are scored rarest first, and once k
  // chunks score more than any chunk could get from the terms left (each adds less than
  // idf * (k1 + 1)), those terms' long lists are not read; only the chunks that can still
  // reach the top k look their postings up.
  Result<LexicalResult> Search(std::string_view tenant,
                               const std::vector<WeightedTerm>& query_terms, size_t k,
                               const std::vector<std::string>& filter) const;

 private:
  Status AdjustTotals(Txn& txn, std::string_view tenant, int64_t chunks, int64_t tokens);

  const Env& env_;
  MDB_dbi postings_, df_, meta_;
};

}  // namespace ragstream::store
