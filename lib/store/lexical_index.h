// The lexical index: BM25 over chunks, as blocks of postings in the LMDB environment.
//
//   lex_blocks    T/term + '\0' + BE32(first chunk id) -> up to 128 postings of the term, in
//                 chunk id order: a tag byte 0xff, then per posting one varint, the chunk
//                 id's gap from the previous one (from the key's id for the first) times two,
//                 plus one when the term occurs once in the chunk; else the term's frequency
//                 follows as a second varint. About 1-3 bytes a posting. (Blocks written
//                 before the tag, two varints a posting -- gap, then frequency -- start with
//                 a 0 byte and are read as they are; a block is rewritten in the new form
//                 when it next changes.)
//   lex_doc_freq  T/term -> u32 number of the tenant's chunks containing it, for terms in
//                 more than 128 chunks; a rarer term's is counted from its blocks (most terms
//                 are rare, and an entry each was a fifth of the index)
//   lex_norms     T/BE32(chunk id / 2040) -> u16 lengths of those 2040 chunks (BM25's
//                 document length, kept once per chunk rather than in each posting, as
//                 Lucene keeps its norms)
//   index_meta    "bm25_chunks/T", "bm25_tokens/T" -> u64 totals (for IDF and average length)
//
// T is the tenant (tenant_key.h): each tenant has its own postings and its own statistics, so
// neither its results nor its scores depend on what other tenants hold. Chunks are known by
// their dense ids (chunk_catalog.h).
//
// Writes come in batches (PostingBatch): a term's postings of a whole batch are merged into its
// blocks at once, so a term is written once per transaction, however many chunks have it.
// Chunk ids grow, so new postings almost always extend a term's last block. A deletion is the
// same batch with the chunk's terms analysed again from its stored text: no term list is kept
// per chunk.
//
// Terms come from rag::AnalyzeChunk / rag::AnalyzeQuery (the caller analyses; this module
// only stores and scores).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/chunk_catalog.h"
#include "lib/store/lmdb.h"

namespace ragstream::store {

struct LexicalHit {
  double score = 0;
  uint32_t chunk = 0;  // the dense chunk id (ChunkCatalog)
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
  std::vector<LexicalHit> hits;  // highest score first; equal scores by chunk id
  // The query's information: sum of weight x IDF over its terms, a term the tenant does not
  // have counted at the IDF of a term in no chunk. A chunk matching every term once at
  // average length scores about this much, so score / query_mass says how much of the
  // question a chunk covers (the relevance floor uses it).
  double query_mass = 0;
};

// BM25 with k1 = 1.2, b = 0.75; IDF = ln(1 + (N - df + 0.5) / (df + 0.5)).
double Bm25Idf(uint64_t chunks, uint64_t df);
double Bm25TermScore(double idf, uint32_t tf, uint32_t chunk_len, double avg_len);

// The terms of a document's chunks, as ingestion made them: the store analyses a document
// again when it deletes it (to find its postings) and when the analyzer changes.
struct AnalyzedChunk {
  std::vector<std::string> terms;
  uint32_t length = 0;
};
using DocumentAnalyzer = std::function<std::vector<AnalyzedChunk>(
    std::string_view title, std::string_view language, const std::vector<std::string_view>& texts)>;

// The postings of a batch of chunks, gathered in memory.
class PostingBatch {
 public:
  // A chunk's terms (with repetition; order does not matter) and its length for BM25 (its
  // words, which need not be its number of terms). Each chunk once per batch.
  void Add(uint32_t chunk, const std::vector<std::string>& terms, uint32_t length);
  bool empty() const { return lengths_.empty(); }
  size_t chunks() const { return lengths_.size(); }

 private:
  friend class LexicalIndex;
  struct Posting {
    uint32_t chunk, tf;
  };
  std::map<std::string, std::vector<Posting>, std::less<>> terms_;  // in key order
  std::vector<std::pair<uint32_t, uint32_t>> lengths_;              // chunk, length
  uint64_t tokens_ = 0;
};

class LexicalIndex {
 public:
  static std::vector<std::string> Databases();
  explicit LexicalIndex(const Env& env);

  // Within `txn`: adds the batch's postings and counts its chunks in the totals.
  Status Write(Txn& txn, std::string_view tenant, const PostingBatch& batch);
  // Within `txn`: removes what Write(the same batch) added.
  Status Erase(Txn& txn, std::string_view tenant, const PostingBatch& batch);

  // The tenant's top-k chunks by BM25 for the weighted query terms (each term's score times
  // its weight), highest first, among the chunks `filter` lets through. Thread-safe.
  // Exact, but it need not read every posting: terms are scored rarest first, and once k
  // chunks score more than any chunk could get from the terms left (each adds less than
  // idf * (k1 + 1)), those terms' long lists are not read; only the chunks that can still
  // reach the top k look up their blocks of those terms.
  Result<LexicalResult> Search(std::string_view tenant,
                               const std::vector<WeightedTerm>& query_terms, size_t k,
                               const ChunkFilter& filter = {}) const;

 private:
  Status AdjustTotals(Txn& txn, std::string_view tenant, int64_t chunks, int64_t tokens);

  const Env& env_;
  MDB_dbi blocks_, df_, norms_, meta_;
};

}  // namespace ragstream::store
