// Ingestion: validate a document, chunk it, embed the chunks (before any transaction, since
// an embedder may call the network), tokenize them for BM25, and store everything in one
// transaction. Identical content is stored once: the existing document is returned.
//
// Group commit: documents that reach the store while another thread of the process is
// committing wait, and the next commit takes them all in one transaction (one fsync, and
// the index pages of shared terms written once); a commit also waits up to
// max_group_wait_us for documents other threads are still preparing. Ingest still returns only
// after its document is durable; a group that fails as a whole (e.g. store_full) is retried one
// document per transaction, so each gets the answer it would have got alone.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/status.h"
#include "lib/rag/chunker.h"
#include "lib/rag/embedder.h"
#include "lib/store/document_store.h"

namespace ragstream::rag {

struct IngestOptions {
  ChunkerOptions chunker;
  uint64_t max_document_bytes = 4 << 20;
  size_t max_title_chars = 200;
  size_t embed_batch = 64;
  uint64_t max_documents_per_tenant = 0;  // 0: no limit
  // A group commit takes at most this many documents, or this many bytes of text (more
  // if one document alone is larger). Every answer's save waits while a commit holds LMDB's
  // one write lock: small commits keep that wait short, and were no slower (24 MB of Debian
  // text in batches: 16 MB groups 6.7 MB/s, 256 KB groups 8.7 MB/s, with the analysis
  // overlapping the commits; docs/PERFORMANCE.md part 7).
  size_t max_group_documents = 64;
  uint64_t max_group_bytes = 256 << 10;
  // While answers are being written (an answer's or a question's write waited for the lock
  // within the last answers_window_ms, on any worker of the host), a commit aims to hold the
  // write lock at most target_commit_us: the bytes a group takes follow the rate the last
  // commits were written at (never below min_group_bytes). A question that arrives during a
  // commit waits for it (ingestion yields the lock to waiting questions between commits:
  // store::WriteGate), so this bounds the time an ingest adds to an answer's first token. With
  // no answers waiting, groups take max_group_bytes: fewer, larger commits ingest faster.
  int64_t target_commit_us = 20000;
  uint64_t min_group_bytes = 16 << 10;
  int64_t answers_window_ms = 5000;
  // How long a commit waits for documents other threads are still preparing.
  int64_t max_group_wait_us = 2000;
  // Threads that prepare (chunk, embed, analyse) the documents of a batch (IngestMany), at
  // a lower priority (nice 10) than the threads that answer and commit.
  size_t analysis_threads = 2;
};

struct IngestResult {
  store::DocumentRecord record;
  bool created = false;  // false: identical content already stored as `record`
};

// One document of a batch: an empty title is taken from the text.
struct IngestInput {
  std::string title;
  std::string text;
};

class Ingester {
 public:
  Ingester(store::DocumentStore& store, Embedder& embedder, IngestOptions options);

  // 400 empty_document / invalid_text (not UTF-8) / invalid_title, 413 document_too_large,
  // 415 binary_content (NUL or mostly control characters), 403 document_limit, 507
  // store_full. An empty `title` is taken from the first line of the text. Thread-safe.
  Result<IngestResult> Ingest(std::string_view tenant, std::string title, std::string text);

  // A batch: each document is checked, chunked, embedded and analysed on its own (several at
  // once, across cores), then stored; results are in the order of `docs`, each what Ingest
  // would have returned for it. A document refused on its own gets its error and the others
  // are still stored. Thread-safe.
  std::vector<Result<IngestResult>> IngestMany(std::string_view tenant,
                                               std::vector<IngestInput> docs);

  // The bytes of text a group commit takes at most while answers are waiting (see
  // target_commit_us).
  uint64_t group_bytes() const { return group_bytes_.load(std::memory_order_relaxed); }

  // Checks a document without storing it (the same errors as Ingest).
  Status Validate(const std::string& title, const std::string& text) const;

  // Everything Ingest does before the store: checks, chunks, embeds and analyses a document.
  // Thread-safe.
  Result<store::NewDocument> Prepare(std::string title, std::string text) const;

 private:
  struct Pending {
    std::string_view tenant;
    const store::NewDocument* doc;
    std::optional<Result<store::AddResult>> result;  // set (under commit_mu_) when committed
  };
  // Stores `doc` durably, in a group with whatever else is waiting (see the top).
  Result<store::AddResult> Store(std::string_view tenant, const store::NewDocument& doc);
  std::vector<Result<store::AddResult>> CommitGroup(const std::vector<Pending*>& group);
  // The bytes of text the next group may take: group_bytes() while answers are waiting for
  // the write lock, max_group_bytes otherwise. Read once per group.
  uint64_t GroupBudget() const;
  // Whether a group of `documents` documents and `bytes` of text takes one more of `size`
  // bytes (max_group_documents and `budget`; a group always takes its first).
  bool GroupHasRoom(size_t documents, uint64_t bytes, uint64_t size, uint64_t budget) const;
  // Moves group_bytes_ towards what `held_us` for `bytes` says fits in target_commit_us.
  void LearnCommitRate(uint64_t bytes, int64_t held_us);

  // Counts a document from its validation to its arrival at Store (or its failure).
  class Preparing {
   public:
    explicit Preparing(Ingester& ingester);
    ~Preparing() { Done(); }
    Preparing(const Preparing&) = delete;
    Preparing& operator=(const Preparing&) = delete;
    void Done();

   private:
    Ingester* ingester_;
  };

  store::DocumentStore& store_;
  Embedder& embedder_;
  IngestOptions options_;
  int preparing_ = 0;  // documents being chunked and embedded (under commit_mu_)
  std::mutex commit_mu_;
  std::condition_variable committed_;
  std::vector<Pending*> waiting_;  // not yet taken by a commit
  bool committing_ = false;        // a thread is committing a group
  std::atomic<uint64_t> group_bytes_;
};

// Sets `doc`'s language and its chunks (their spans of `text` and their analysed terms), as
// Ingest does: the document's language detected once, its title (doc.record.title) analysed
// once.
void AnalyzeChunks(std::string_view text, const std::vector<Chunk>& chunks,
                   store::NewDocument& doc);

// A title from the text: its first non-empty line, without a Markdown '#' prefix, cut to
// `max_chars` characters.
std::string TitleFromText(std::string_view text, size_t max_chars);

}  // namespace ragstream::rag
