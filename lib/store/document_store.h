// Documents, their chunks, and the two indexes over them, kept consistent: adding or
// deleting a document touches the document record, its text, its content-hash entry, its
// chunks, its vectors and its lexical postings in one transaction.
//
// Every document belongs to a tenant, and every key below starts with the tenant's name and
// '/' (tenant_key.h): a tenant sees, searches and deletes only its own documents, and another
// tenant's document id is NotFound exactly like an unknown one.
//
//   documents    T/document id -> DocumentRecord (JSON)
//   doc_text     T/document id -> the original text
//   doc_by_hash  T/sha256 of the text -> document id (identical content is stored once per
//                tenant: deduplicating across tenants would tell one what another holds)
//   chunks       T/document id + big-endian chunk index -> ChunkRecord (JSON)
//   index_meta   "layout" (the key layout), "embedder", "dimension", "shards": what the
//                store and its vector index were made with;
//                "doc_count/T" -> u64 documents of tenant T (its limit is checked in Add)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/lexical_index.h"
#include "lib/store/lmdb.h"
#include "lib/store/vector_index.h"

namespace ragstream::store {

struct DocumentRecord {
  std::string id;
  std::string title;
  std::string content_hash;
  uint64_t bytes = 0;
  uint64_t chars = 0;
  uint32_t chunk_count = 0;
  int64_t created_at = 0;
};

struct ChunkRecord {
  uint32_t index = 0;
  uint64_t start_char = 0;  // [start, end) in code points of the document
  uint64_t end_char = 0;
  std::string text;
  std::vector<std::string> terms;  // lexical terms, with repetition (kept for deletion)
  uint32_t length = 0;             // its length for BM25 (rag::ChunkTerms::length)
};

struct NewDocument {
  DocumentRecord record;  // id, title, content_hash, bytes, chars set by the caller
  std::string text;
  std::vector<ChunkRecord> chunks;
  std::vector<float> vectors;  // chunks.size() x dimension, row-major
  uint32_t dimension = 0;
};

struct AddResult {
  DocumentRecord record;
  bool created = false;  // false: identical content was already stored as `record`
};

class DocumentStore {
 public:
  static std::vector<std::string> Databases(int shards);

  DocumentStore(const Env& env, int shards, VectorFormat vector_format = VectorFormat::kFloat);

  // Records the embedder on first use; afterwards a different name, dimension or shard
  // count is an error naming both, since vectors from another embedder would be garbage; so
  // is another vector format (the blocks of the other format would be missing). A
  // store made before tenants (no "layout") is refused: its records would be invisible.
  Status CheckIndexIdentity(const std::string& embedder, uint32_t dimension);

  // `max_documents` > 0: a tenant that already holds that many gets document_limit (403)
  // and nothing is written; checked inside the write transaction.
  Result<AddResult> Add(std::string_view tenant, const NewDocument& doc,
                        uint64_t max_documents = 0);
  // Adds `docs` in one transaction (one commit, one fsync): all of them are stored, or none
  // (the first failure is returned). Each result is what Add would have returned for it, in
  // order; content stored earlier, or earlier in `docs`, comes back with created false.
  Result<std::vector<AddResult>> AddMany(std::string_view tenant,
                                         const std::vector<NewDocument>& docs,
                                         uint64_t max_documents = 0);

  // Group commit: the documents of several requests (each with its tenant and limit) in one
  // transaction. A document refused on its own (document_limit, a malformed NewDocument) gets
  // its error and the others are still stored; the outer Status fails only when the
  // transaction does (e.g. store_full), and then nothing of the group is written.
  struct GroupItem {
    std::string_view tenant;
    const NewDocument* doc = nullptr;
    uint64_t max_documents = 0;
  };
  Result<std::vector<Result<AddResult>>> AddGroup(const std::vector<GroupItem>& items);
  Result<DocumentRecord> Get(std::string_view tenant, const std::string& id) const;
  Result<std::string> GetText(std::string_view tenant, const std::string& id) const;
  // The tenant's documents, newest first.
  Result<std::vector<DocumentRecord>> List(std::string_view tenant) const;
  // The tenant's documents.
  Result<uint64_t> Count(std::string_view tenant) const;
  // Documents of every tenant (for health and metrics).
  Result<uint64_t> CountAll() const;
  // Removes the document and everything derived from it. NotFound if unknown.
  Status Delete(std::string_view tenant, const std::string& id);
  Result<ChunkRecord> GetChunk(std::string_view tenant, const std::string& document_id,
                               uint32_t index) const;
  // The ids among `ids` that the tenant does not have.
  Result<std::vector<std::string>> Missing(std::string_view tenant,
                                           const std::vector<std::string>& ids) const;

  // Re-analyses the lexical terms of every chunk when the store's postings were made by
  // another analyzer than `version` (index_meta "analyzer"), then records `version`. Runs in
  // write transactions of about `batch_chunks` chunks, each resuming where the last stopped
  // (index_meta "reindex_cursor"), so it never holds the write lock long, survives a kill, and
  // several workers starting at once share the work instead of repeating it. Returns the
  // number of chunks re-analysed (0 when the store was current or empty).
  using ChunkAnalyzer = std::function<void(std::string_view text, std::string_view title,
                                           std::vector<std::string>& terms, uint32_t& length)>;
  Result<uint64_t> ReindexLexical(const std::string& version, const ChunkAnalyzer& analyze,
                                  size_t batch_chunks = 512);

  const VectorIndex& vectors() const { return vectors_; }
  const LexicalIndex& lexical() const { return lexical_; }

 private:
  // One attempt of Add, AddMany, AddGroup (which grow the map and try again when it was
  // full, and keep the map's last bytes for conversations).
  Result<AddResult> AddOnce(std::string_view tenant, const NewDocument& doc,
                            uint64_t max_documents);
  Result<std::vector<AddResult>> AddManyOnce(std::string_view tenant,
                                             const std::vector<NewDocument>& docs,
                                             uint64_t max_documents);
  Result<std::vector<Result<AddResult>>> AddGroupOnce(const std::vector<GroupItem>& items);
  // Add's work inside an open write transaction (which the caller commits). `wrote_some`,
  // if given, is set once it has started writing (a failure after that spoils `txn`).
  Result<AddResult> AddIn(Txn& txn, std::string_view tenant, const NewDocument& doc,
                          uint64_t max_documents, bool* wrote_some = nullptr);

  const Env& env_;
  int shards_;
  MDB_dbi documents_, text_, by_hash_, chunks_, meta_;
  VectorIndex vectors_;
  LexicalIndex lexical_;
};

std::string EncodeDocument(const DocumentRecord& d);
bool DecodeDocument(std::string_view json, DocumentRecord& d);

}  // namespace ragstream::store
