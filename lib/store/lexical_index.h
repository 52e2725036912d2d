// The lexical index: BM25 over chunks, as postings in the LMDB environment.
//
//   lex_postings  T/term + '\0' + document id + big-endian chunk index -> u32 tf, u32 length
//   lex_df        T/term -> u32 number of the tenant's chunks containing it
//   index_meta    "lex_chunks/T", "lex_tokens/T" -> u64 totals (for IDF and average length)
//
// T is the tenant (tenant_key.h): each tenant has its own postings and its own statistics,
// so neither its results nor its scores depend on what other tenants hold.
//
// Terms come from rag::Tokenize (the caller tokenizes; this module only stores and scores).
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

// BM25 with k1 = 1.2, b = 0.75; IDF = ln(1 + (N - df + 0.5) / (df + 0.5)).
double Bm25Idf(uint64_t chunks, uint64_t df);
double Bm25TermScore(double idf, uint32_t tf, uint32_t chunk_len, double avg_len);

class LexicalIndex {
 public:
  static std::vector<std::string> Databases();
  explicit LexicalIndex(const Env& env);

  // Within `txn`: indexes a chunk's terms (with repetition; order does not matter).
  Status Add(Txn& txn, std::string_view tenant, std::string_view document_id, uint32_t chunk_index,
             const std::vector<std::string>& terms);
  // Within `txn`: removes what Add(...) with the same terms added.
  Status Remove(Txn& txn, std::string_view tenant, std::string_view document_id,
                uint32_t chunk_index, const std::vector<std::string>& terms);

  // The tenant's top-k chunks by BM25 for the query terms, highest first. A non-empty
  // `filter` restricts to those document ids. Thread-safe.
  // Exact, but it need not read every posting: terms are scored rarest first, and once k
  // chunks score more than any chunk could get from the terms left (each adds less than
  // idf * (k1 + 1)), those terms' long lists are not read; only the chunks that can still
  // reach the top k look their postings up.
  Result<std::vector<LexicalHit>> Search(std::string_view tenant,
                                         const std::vector<std::string>& query_terms, size_t k,
                                         const std::vector<std::string>& filter) const;

 private:
  Status AdjustTotals(Txn& txn, std::string_view tenant, int64_t chunks, int64_t tokens);

  const Env& env_;
  MDB_dbi postings_, df_, meta_;
};

}  // namespace ragstream::store
