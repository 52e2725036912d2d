// Ingestion: validate a document, chunk it, embed the chunks (before any transaction, since
// an embedder may call the network), tokenize them for BM25, and store everything in one
// transaction. Identical content is stored once: the existing document is returned.
#pragma once

#include <string>

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
};

struct IngestResult {
  store::DocumentRecord record;
  bool created = false;  // false: identical content already stored as `record`
};

class Ingester {
 public:
  Ingester(store::DocumentStore& store, Embedder& embedder, IngestOptions options);

  // 400 empty_document / invalid_text (not UTF-8) / invalid_title, 413 document_too_large,
  // 415 binary_content (NUL or mostly control characters), 403 document_limit, 507
  // store_full. An empty `title` is taken from the first line of the text. Thread-safe.
  Result<IngestResult> Ingest(std::string_view tenant, std::string title, std::string text);

  // Checks a document without storing it (the same errors as Ingest).
  Status Validate(const std::string& title, const std::string& text) const;

 private:
  store::DocumentStore& store_;
  Embedder& embedder_;
  IngestOptions options_;
};

// A title from the text: its first non-empty line, without a Markdown '#' prefix, cut to
// `max_chars` characters.
std::string TitleFromText(std::string_view text, size_t max_chars);

}  // namespace ragstream::rag
