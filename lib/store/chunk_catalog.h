// Dense ids: per tenant, every document gets a u32 number and every chunk a u32 id, handed out
// in increasing order and never reused (a document's chunks get consecutive ids). The indexes
// key everything by these ids -- postings as delta-coded blocks, vectors by their first chunk --
// and only this catalog knows which public document id and which part of its text a chunk is.
//
//   doc_by_num   T/BE32(number) -> DocEntry: first chunk id, chunk count, the public id
//   chunk_spans  T/BE32(chunk id) -> ChunkSpan (28 bytes): the document's number, the chunk's
//                index and where it is in the document's text (no copy of the text)
//   index_meta   "next_doc/T", "next_chunk/T" -> u64: the next ids to hand out
//
// T is the tenant (tenant_key.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/lmdb.h"

namespace ragstream::store {

struct ChunkSpan {
  uint32_t doc_num = 0;
  uint32_t index = 0;       // the chunk's position in its document
  uint32_t start_byte = 0;  // [start, end) in the document's text, in bytes
  uint32_t end_byte = 0;
  uint32_t start_char = 0;  // the same in code points (what the API reports)
  uint32_t end_char = 0;
  uint32_t length = 0;  // its length for BM25

  // The chunk's text in its document's text (which must hold it: end_byte <= size).
  std::string_view TextIn(std::string_view document) const {
    return document.substr(start_byte, end_byte - start_byte);
  }
};

struct DocEntry {
  uint32_t first_chunk = 0;
  uint32_t chunk_count = 0;
  std::string public_id;
};

// A set of chunk ids as sorted, disjoint [first, end) ranges; `all` means no restriction.
struct ChunkFilter {
  bool all = true;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  bool Contains(uint32_t chunk) const;
};

// A chunk id as a 4-byte big-endian key part (byte order is numeric order).
std::string ChunkKeyPart(uint32_t id);
uint32_t DecodeChunkKeyPart(std::string_view four_bytes);

class ChunkCatalog {
 public:
  static std::vector<std::string> Databases();
  explicit ChunkCatalog(const Env& env);

  // Within `txn`: `count` new consecutive ids; returns the first. ResourceExhausted-like
  // error once a tenant would pass 2^32 - 1.
  Result<uint32_t> NewDocumentNumber(Txn& txn, std::string_view tenant);
  Result<uint32_t> NewChunkIds(Txn& txn, std::string_view tenant, uint32_t count);

  // The next chunk id the tenant will get (the number of chunk ids handed out so far).
  Result<uint32_t> NextChunk(const Txn& txn, std::string_view tenant) const;

  Status PutDocument(Txn& txn, std::string_view tenant, uint32_t number, const DocEntry& entry);
  Status PutSpan(Txn& txn, std::string_view tenant, uint32_t chunk, const ChunkSpan& span);
  // Removes the document's entry and its chunks' spans.
  Status Erase(Txn& txn, std::string_view tenant, uint32_t number, const DocEntry& entry);

  Result<std::optional<DocEntry>> Document(const Txn& txn, std::string_view tenant,
                                           uint32_t number) const;
  Result<std::optional<ChunkSpan>> Span(const Txn& txn, std::string_view tenant,
                                        uint32_t chunk) const;

 private:
  Result<uint32_t> Allocate(Txn& txn, const std::string& counter, uint32_t count);

  MDB_dbi docs_, spans_, meta_;
};

}  // namespace ragstream::store
