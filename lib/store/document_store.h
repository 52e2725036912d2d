// Documents, their chunks, and the two indexes over them, kept consistent: adding or
// deleting a document touches the document record, its text, its content-hash entry, its
// chunk spans, its vectors and its lexical postings in one transaction.
//
// Every document belongs to a tenant, and every key below starts with the tenant's name and
// '/' (tenant_key.h): a tenant sees, searches and deletes only its own documents, and another
// tenant's document id is NotFound exactly like an unknown one.
//
//   documents    T/document id -> DocumentRecord (JSON; with its dense number, first chunk id
//                and language)
//   doc_text     T/document id -> the original text: the only copy (a chunk is a span of it)
//   doc_by_hash  T/sha256 of the text -> document id (identical content is stored once per
//                tenant: deduplicating across tenants would tell one what another holds)
//   doc_by_num, chunk_spans   dense ids (chunk_catalog.h)
//   lex_blocks, lex_doc_freq  the lexical index (lexical_index.h)
//   vblocks.N, vectors.N      the vector index: 512-chunk blocks, and the pieces of the range
//   vblocks8.N, vectors8.N    still filling; int8 twins (vector_index.h)
//   ivf                       the approximate vector index over it (ivf_index.h)
//   lex_norms                 chunk lengths for BM25 (lexical_index.h)
//   index_meta   "layout" (the key layout), "embedder", "dimension", "shards": what the
//                store and its vector index were made with; "analyzer": what made the
//                postings; "reindex_cursor", "reindex_version": a rebuild under way (see
//                ReindexLexical); "doc_count/T" -> u64 documents of tenant T (its limit is
//                checked in Add); "next_doc/T", "next_chunk/T" (chunk_catalog.h);
//                "bm25_chunks/T", "bm25_tokens/T" (lexical_index.h); "migrate_cursor" (a
//                migration under way, store_migration.h)
//
// A store made by the previous layout (per-posting keys, chunk records with their own text and
// terms) is refused at start; `ragstream migrate` converts it (store_migration.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/chunk_catalog.h"
#include "lib/store/ivf_index.h"
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
  std::string language;  // what its chunks were analysed in (ISO 639-1)
  // Set by the store: the document's dense number and its first chunk's dense id.
  uint32_t number = 0;
  uint32_t first_chunk = 0;
};

// A chunk as read back: its text is a span of the document's.
struct ChunkRecord {
  uint32_t index = 0;
  uint64_t start_char = 0;  // [start, end) in code points of the document
  uint64_t end_char = 0;
  std::string text;
  uint32_t length = 0;  // its length for BM25 (rag::ChunkTerms::length)
};

// A chunk as it is added: where it is in the text, and its analysed terms.
struct NewChunk {
  uint32_t index = 0;
  uint64_t start_char = 0, end_char = 0;  // in code points
  uint64_t start_byte = 0, end_byte = 0;  // text.substr(start_byte, end_byte - start_byte)
  std::vector<std::string> terms;         // lexical terms, with repetition
  uint32_t length = 0;                    // its length for BM25
};

struct NewDocument {
  DocumentRecord record;  // id, title, content_hash, bytes, chars, language set by the caller
  std::string text;
  std::vector<NewChunk> chunks;
  std::vector<float> vectors;  // chunks.size() x dimension, row-major
  uint32_t dimension = 0;
};

// A chunk found by a search, as the API names it.
struct ChunkRef {
  std::string document_id;
  uint32_t index = 0;
};

// How a vector search runs: approximately through the tenant's IVF index when it has one
// (nprobe lists), or exactly over every vector.
struct VectorSearchOptions {
  bool exact = false;  // true: always the exact scan (e.g. to measure recall)
  IvfProbe probe;      // lists probed by the approximate search
  // A filter (document_ids) that leaves fewer chunks than this is searched exactly over them.
  uint64_t exact_below = 20000;
};
struct VectorSearchInfo {
  bool approximate = false;
  IvfSearchInfo ivf;  // when approximate
};

struct AddResult {
  DocumentRecord record;
  bool created = false;  // false: identical content was already stored as `record`
};

class DocumentStore {
 public:
  static std::vector<std::string> Databases(int shards);

  // How this process analyses a document's chunks (rag::AnalyzeDocumentChunks), and the
  // version it records (rag::AnalyzerVersion()). With a version, a write whose postings the
  // index made with another analyzer is refused (503 analyzer_mismatch: a worker of another
  // version, during a rolling restart): deleting would re-analyse the text differently and
  // miss postings. Without one (tests), nothing is checked.
  struct Analyzer {
    template <typename F>
    Analyzer(F f, std::string v = "") : analyze(std::move(f)), version(std::move(v)) {}
    DocumentAnalyzer analyze;
    std::string version;
  };
  DocumentStore(const Env& env, int shards, VectorFormat vector_format, Analyzer analyzer);

  // Records the embedder on first use; afterwards a different name, dimension or shard
  // count is an error naming both, since vectors from another embedder would be garbage; so
  // is another vector format (the blocks of the other format would be missing). A
  // store made before tenants (no "layout") is refused: its records would be invisible; so is
  // one of the previous layout (old_store_layout, naming `ragstream migrate`).
  // A store whose writes are refused (a cluster standby) is only checked: what is missing
  // arrives through its shard's log.
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
  // AddMany after `first` has run in the same write transaction (the migration removes there
  // what the documents replace, and records its progress).
  using TxnStep = std::function<Status(Txn&)>;
  Result<std::vector<AddResult>> AddManyAfter(std::string_view tenant,
                                              const std::vector<NewDocument>& docs,
                                              const TxnStep& first);

  // Group commit: the documents of several requests (each with its tenant and limit) in one
  // transaction. A document refused on its own (document_limit, a malformed NewDocument) gets
  // its error and the others are still stored; the outer Status fails only when the
  // transaction does (e.g. store_full), and then nothing of the group is written.
  struct GroupItem {
    std::string_view tenant;
    const NewDocument* doc = nullptr;
    uint64_t max_documents = 0;
  };
  // `held_us`, if given, is set to how long the commit held the write lock (microseconds).
  Result<std::vector<Result<AddResult>>> AddGroup(const std::vector<GroupItem>& items,
                                                  int64_t* held_us = nullptr);
  Result<DocumentRecord> Get(std::string_view tenant, const std::string& id) const;
  Result<std::string> GetText(std::string_view tenant, const std::string& id) const;
  // The tenant's documents, newest first.
  Result<std::vector<DocumentRecord>> List(std::string_view tenant) const;
  // The tenant's documents.
  Result<uint64_t> Count(std::string_view tenant) const;
  // Documents of every tenant (for health and metrics).
  Result<uint64_t> CountAll() const;
  // Removes the document and everything derived from it. NotFound if unknown. Its chunks are
  // analysed again before the write transaction, to find their postings.
  Status Delete(std::string_view tenant, const std::string& id);
  Result<ChunkRecord> GetChunk(std::string_view tenant, const std::string& document_id,
                               uint32_t index) const;
  // The chunks of the documents `ids` (empty: every chunk), for the indexes' searches.
  Result<ChunkFilter> FilterFor(std::string_view tenant, const std::vector<std::string>& ids) const;
  // What each dense chunk id is (nullopt: deleted since it was found).
  Result<std::vector<std::optional<ChunkRef>>> Resolve(std::string_view tenant,
                                                       const std::vector<uint32_t>& chunks) const;
  // The ids among `ids` that the tenant does not have.
  Result<std::vector<std::string>> Missing(std::string_view tenant,
                                           const std::vector<std::string>& ids) const;

  // Rebuilds the lexical index when the store's postings were made by another analyzer than
  // `version` (index_meta "analyzer"), then records `version`: empties it, then analyses
  // every chunk again in chunk id order, in write transactions of about `batch_chunks`
  // chunks, each resuming where the last stopped (index_meta "reindex_cursor"), so it never
  // holds the write lock long, survives a kill, and several workers starting at once share the
  // work. Documents added meanwhile are indexed by whichever comes first, never twice.
  // Returns the number of chunks re-analysed (0 when the store was current or empty).
  Result<uint64_t> ReindexLexical(const std::string& version, size_t batch_chunks = 512);

  // The tenant's top-k chunks by inner product with `query` (see VectorSearchOptions).
  Result<std::vector<VectorHit>> SearchVectors(std::string_view tenant, const float* query,
                                               uint32_t dim, size_t k, const ChunkFilter& filter,
                                               const VectorSearchOptions& options,
                                               VectorSearchInfo* info = nullptr) const;
  // The inner product of `query` with the vector of each of `chunks`, in one read transaction
  // (the rescoring of another search's candidates: no scan); nullopt for a chunk without one
  // (deleted since, or stored by an embedder of another dimension).
  Result<std::vector<std::optional<float>>> ScoreChunks(std::string_view tenant, const float* query,
                                                        uint32_t dim,
                                                        const std::vector<uint32_t>& chunks) const;
  // Packs the tenant's vectors of `dim` dimensions that a store written before vector blocks
  // keeps one value per document into blocks (VectorIndex::PackBelow), in write transactions
  // of at most `ranges_per_txn` ranges (~0.8 MB each at 384 dimensions), so that no writer waits
  // long. Returns the ranges packed; 0, after a few cursor seeks, when there is nothing to do.
  // Stops between transactions once `stop` is set (the rest is packed at the next start).
  Result<uint64_t> PackVectors(std::string_view tenant, uint32_t dim, uint32_t ranges_per_txn = 8,
                               const std::atomic<bool>* stop = nullptr);
  // Whether the tenant's vectors should get a (new) approximate index (IvfIndex::NeedsBuild),
  // and building it.
  Result<bool> VectorIndexNeedsBuild(std::string_view tenant, uint64_t min_rows) const;
  Result<IvfBuildReport> BuildVectorIndex(std::string_view tenant, uint32_t dim,
                                          const IvfBuildOptions& options);
  // Checks a question against the tenant's approximate index: its exact top 10, found by the
  // full scan, tell the index how deep a probe must go (IvfIndex::ObserveRecall). A full scan:
  // call it for a sample of the questions, off the request path.
  Result<std::optional<IvfState>> ObserveVectorRecall(std::string_view tenant, const float* query,
                                                      uint32_t dim, double target_recall) const;
  // Called after each search the approximate index answered without a filter (set once,
  // before the store is shared); the query lives only during the call.
  void set_on_approximate_search(
      std::function<void(const std::string& tenant, const float* query, uint32_t dim)> f) {
    on_approximate_search_ = std::move(f);
  }
  // The tenants that were ever given chunk ids (index_meta "next_chunk/T").
  Result<std::vector<std::string>> TenantsWithChunks() const;
  // Called after each committed transaction that added or deleted a tenant's chunks (set
  // once, before the store is shared).
  void set_on_chunks_changed(std::function<void(const std::string& tenant)> f) {
    on_chunks_changed_ = std::move(f);
  }

  const VectorIndex& vectors() const { return vectors_; }
  const IvfIndex& ivf() const { return ivf_; }
  const LexicalIndex& lexical() const { return lexical_; }
  const Env& env() const { return env_; }

 private:
  // One attempt of Add, AddMany, AddGroup (which grow the map and try again when it was
  // full, and keep the map's last bytes for conversations).
  Result<AddResult> AddOnce(std::string_view tenant, const NewDocument& doc,
                            uint64_t max_documents);
  Result<std::vector<AddResult>> AddManyOnce(std::string_view tenant,
                                             const std::vector<NewDocument>& docs,
                                             uint64_t max_documents, const TxnStep& first = {});
  Result<std::vector<Result<AddResult>>> AddGroupOnce(const std::vector<GroupItem>& items,
                                                      int64_t* held_us = nullptr);
  // Add's work inside an open write transaction (which the caller commits). `wrote_some`,
  // if given, is set once it has started writing (a failure after that spoils `txn`).
  // One attempt of Delete: a document_replaced conflict when the document changed between
  // its analysis and the write.
  Status DeleteOnce(std::string_view tenant, const std::string& id);
  // Postings go into `postings` (by tenant), written once per term when the caller commits.
  struct Postings;
  Result<AddResult> AddIn(Txn& txn, std::string_view tenant, const NewDocument& doc,
                          uint64_t max_documents, Postings& postings, bool* wrote_some = nullptr);
  // Writes the postings gathered and commits; logs a write that held the lock since
  // `began_us` (SteadyMicros) too long, and sets `held_us` (if given) to how long it held it.
  Status CommitWithPostings(Txn& txn, const Postings& postings, int64_t began_us,
                            int64_t* held_us = nullptr);
  // Whether a chunk's postings are in the index: always, except during a rebuild
  // (ReindexLexical) for chunks it has not reached yet, which it will index itself.
  Result<std::optional<std::string>> ReindexCursor(const Txn& txn) const;

  const Env& env_;
  int shards_;
  MDB_dbi documents_, text_, by_hash_, meta_;
  ChunkCatalog catalog_;
  VectorIndex vectors_;
  IvfIndex ivf_;
  LexicalIndex lexical_;
  Analyzer analyzer_;
  std::function<void(const std::string& tenant)> on_chunks_changed_;
  std::function<void(const std::string& tenant, const float* query, uint32_t dim)>
      on_approximate_search_;
  // Within `txn`: a chunk's float vector, from its block, or else read through its document
  // (its span names the document, whose entry has the first chunk its piece is keyed by);
  // nullptr when the chunk is gone. May point into `scratch`.
  const float* ChunkVector(const Txn& txn, std::string_view tenant, uint32_t chunk, uint32_t dim,
                           std::vector<float>& scratch) const;
  void ChunksChanged(const std::vector<std::string>& tenants) const;
};

// The key layouts index_meta "layout" names: this version's, and the previous one (which
// `ragstream migrate` converts).
inline constexpr const char* kStoreLayout = "dense-ids-v4";
// Postings of two varints each (before a term frequency of 1 rode in the gap's low bit,
// lexical_index.h): opened as it is and marked kStoreLayout; its blocks are read as they are and
// rewritten in the new form when they next change. A binary of that version refuses a store so
// marked, rather than misread the new blocks.
inline constexpr const char* kTwoVarintStoreLayout = "dense-ids-v3";
// Dense ids with one vector value per document (before vector blocks): opened as it is, marked
// kStoreLayout, and its vectors packed into blocks in the background (VectorIndexBuilder). A
// binary older than blocks refuses a store so marked, rather than miss the rows in blocks.
inline constexpr const char* kUnpackedStoreLayout = "dense-ids-v2";
inline constexpr const char* kPreviousStoreLayout = "tenant-keys-v1";

std::string EncodeDocument(const DocumentRecord& d);
bool DecodeDocument(std::string_view json, DocumentRecord& d);

}  // namespace ragstream::store
