// `ragstream migrate`: converts a store of the previous layout ("tenant-keys-v1": one LMDB key
// per posting, chunk records holding a copy of their text and their terms, vectors keyed by
// document id) to dense ids (document_store.h) in place. Conversations are not touched.
//
// Document by document, in write transactions of at most 64 documents or 8 MB of text, each
// recording how far it got (index_meta "migrate_cursor"): a migration that is killed resumes
// where it stopped when run again. Every document keeps its public id, title, hash, sizes and
// creation time; its chunks keep their boundaries and their vectors (not embedded again); its
// terms are analysed again with the current analyzer. The old databases are dropped at the end
// and the layout is recorded in the same transaction.
//
// Run it with every worker stopped: they refuse a store of the previous layout anyway.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/document_store.h"
#include "lib/store/lmdb.h"

namespace ragstream::rag {

// The databases only the previous layout has (to open them for the migration).
std::vector<std::string> PreviousLayoutDatabases(int shards);

// What index_meta says the store is: "dense-ids-v3", "dense-ids-v2" (before vector blocks),
// "tenant-keys-v1", "" (new or pre-tenant).
Result<std::string> StoreLayout(const store::Env& env);

struct MigrationReport {
  bool migrated = false;  // false: nothing to do (already current, or empty)
  uint64_t documents = 0;
  uint64_t chunks = 0;
};

// `documents` is the current-layout store over `env` (opened with PreviousLayoutDatabases
// too). `progress(done, total)` is called after each transaction.
Result<MigrationReport> MigrateStore(const store::Env& env, store::DocumentStore& documents,
                                     int shards,
                                     const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace ragstream::rag
