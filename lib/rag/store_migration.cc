#include "lib/rag/store_migration.h"

#include <cstring>

#include "lib/core/json.h"
#include "lib/core/utf8.h"
#include "lib/rag/analyzer.h"
#include "lib/store/tenant_key.h"

namespace ragstream::rag {
namespace {

constexpr size_t kBatchDocuments = 64;
constexpr uint64_t kBatchBytes = 8ull << 20;
constexpr uint32_t kVectorMagic = 0x31565352;  // "RSV1", the float block header of both layouts

using store::HasPrefix;
using store::TenantKey;

// A chunk record of the previous layout: only where it was (its text and terms are derived).
bool DecodeOldChunk(std::string_view json, uint64_t& start_char, uint64_t& end_char) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  auto s = d.FindMember("start_char"), e = d.FindMember("end_char");
  if (s == d.MemberEnd() || e == d.MemberEnd() || !s->value.IsUint64() || !e->value.IsUint64()) {
    return false;
  }
  start_char = s->value.GetUint64();
  end_char = e->value.GetUint64();
  return start_char <= end_char;
}

// Byte offset of code point `chars` of `text` (ingested text is valid UTF-8).
uint64_t ByteOffset(std::string_view text, uint64_t chars) {
  return Utf8PrefixChars(text, chars).size();
}

// One document of the previous layout, read and rebuilt as the current layout adds it.
struct OldDocument {
  std::string key;  // T/id in `documents`
  store::NewDocument doc;
};

Result<OldDocument> ReadOld(const store::Txn& txn, const store::Env& env, int shards,
                            std::string_view key, std::string_view record_json) {
  OldDocument out;
  out.key = std::string(key);
  store::NewDocument& d = out.doc;
  if (!store::DecodeDocument(record_json, d.record)) {
    return Status::Internal("unreadable document record " + out.key);
  }
  auto text = txn.Get(env.Dbi("doc_text"), key);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return Status::Internal("no text for " + out.key);
  d.text = std::string(**text);
  d.record.language = DocumentLanguage(d.text);
  std::vector<std::string_view> texts;
  for (uint32_t i = 0; i < d.record.chunk_count; ++i) {
    auto raw = txn.Get(env.Dbi("chunks"), out.key + store::ChunkKeyPart(i));
    if (!raw.ok()) return raw.status();
    store::NewChunk c;
    c.index = i;
    if (!raw->has_value() || !DecodeOldChunk(**raw, c.start_char, c.end_char)) {
      return Status::Internal("chunk " + std::to_string(i) + " of " + out.key + " is unreadable");
    }
    c.start_byte = ByteOffset(d.text, c.start_char);
    c.end_byte = ByteOffset(d.text, c.end_char);
    texts.push_back(std::string_view(d.text).substr(c.start_byte, c.end_byte - c.start_byte));
    d.chunks.push_back(std::move(c));
  }
  std::vector<store::AnalyzedChunk> analysed =
      AnalyzeDocumentChunks(d.record.title, d.record.language, texts);
  for (size_t i = 0; i < d.chunks.size(); ++i) {
    d.chunks[i].terms = std::move(analysed[i].terms);
    d.chunks[i].length = analysed[i].length;
  }
  // Its vectors: one value in whichever shard held it, rows in chunk order.
  for (int s = 0; s < shards && d.record.chunk_count > 0; ++s) {
    auto raw = txn.Get(env.Dbi("vec." + std::to_string(s)), key);
    if (!raw.ok()) return raw.status();
    if (!raw->has_value()) continue;
    uint32_t header[4];
    if ((*raw)->size() < sizeof header) break;
    std::memcpy(header, (*raw)->data(), sizeof header);
    const size_t floats = size_t{header[1]} * header[2];
    if (header[0] != kVectorMagic || header[1] != d.record.chunk_count ||
        (*raw)->size() < sizeof header + floats * sizeof(float)) {
      break;
    }
    d.dimension = header[2];
    d.vectors.resize(floats);
    std::memcpy(d.vectors.data(), (*raw)->data() + sizeof header, floats * sizeof(float));
  }
  if (d.record.chunk_count > 0 && d.vectors.empty()) {
    return Status::Internal("the vectors of " + out.key + " are missing or malformed");
  }
  return out;
}

}  // namespace

std::vector<std::string> PreviousLayoutDatabases(int shards) {
  std::vector<std::string> names = {"chunks", "lex_postings", "lex_df"};
  for (int s = 0; s < shards; ++s) names.push_back("vec." + std::to_string(s));
  for (int s = 0; s < shards; ++s) names.push_back("vec8." + std::to_string(s));
  return names;
}

Result<std::string> StoreLayout(const store::Env& env) {
  auto txn = store::Txn::BeginRead(env);
  if (!txn.ok()) return txn.status();
  auto layout = txn->Get(env.Dbi("index_meta"), "layout");
  if (!layout.ok()) return layout.status();
  return layout->has_value() ? std::string(**layout) : std::string();
}

Result<MigrationReport> MigrateStore(const store::Env& env, store::DocumentStore& documents,
                                     int shards,
                                     const std::function<void(uint64_t, uint64_t)>& progress) {
  MigrationReport report;
  auto layout = StoreLayout(env);
  if (!layout.ok()) return layout.status();
  if (*layout != store::kPreviousStoreLayout) {
    if (layout->empty() || *layout == store::kStoreLayout ||
        *layout == store::kUnpackedStoreLayout || *layout == store::kTwoVarintStoreLayout) {
      return report;  // a worker marks the latter current and packs its vectors
    }
    return Status::InvalidArgument("unknown_layout", "the store's layout '" + *layout +
                                                         "' is not one this "
                                                         "ragstream knows; nothing was changed");
  }
  const MDB_dbi meta = env.Dbi("index_meta"), docs_dbi = env.Dbi("documents");
  uint64_t total = 0;
  {
    auto txn = store::Txn::BeginWrite(env);
    if (!txn.ok()) return txn.status();
    MDB_stat stat;
    if (int rc = mdb_stat(txn->raw(), docs_dbi, &stat); rc != 0) {
      return store::MdbStatus(rc, "mdb_stat");
    }
    total = stat.ms_entries;
    // A re-index the previous version had under way (its cursor names documents, not chunks):
    // the migration analyses every document anyway.
    if (Status s = txn->Del(meta, "reindex_cursor"); !s.ok()) return s;
    // The new postings are all made by this analyzer (the old ones are in databases the
    // new layout does not read).
    if (Status s = txn->Put(meta, "analyzer", AnalyzerVersion()); !s.ok()) return s;
    if (Status s = txn->Commit(); !s.ok()) return s;
  }
  for (;;) {
    // The next documents after the cursor, of one tenant, up to the batch limits.
    std::string tenant, read_cursor;
    std::vector<OldDocument> batch;
    {
      auto txn = store::Txn::BeginRead(env);
      if (!txn.ok()) return txn.status();
      auto cursor = txn->Get(meta, "migrate_cursor");
      if (!cursor.ok()) return cursor.status();
      const std::string after = cursor->has_value() ? std::string(**cursor) : std::string();
      read_cursor = after;
      auto cur = store::Cursor::Open(*txn, docs_dbi);
      if (!cur.ok()) return cur.status();
      bool more = cur->SeekAfter(after);
      uint64_t bytes = 0;
      for (; more && batch.size() < kBatchDocuments && bytes < kBatchBytes; more = cur->Next()) {
        const std::string_view key = cur->key();
        const size_t slash = key.find('/');
        if (slash == std::string_view::npos) continue;
        const std::string_view key_tenant = key.substr(0, slash);
        if (!batch.empty() && key_tenant != tenant) break;
        tenant = std::string(key_tenant);
        auto old = ReadOld(*txn, env, shards, key, cur->value());
        if (!old.ok()) return old.status();
        bytes += old->doc.text.size();
        batch.push_back(std::move(*old));
      }
    }
    if (batch.empty()) break;
    std::vector<store::NewDocument> docs;
    for (auto& b : batch) docs.push_back(std::move(b.doc));
    // In the same transaction: the old rows of these documents go, then they are added anew.
    auto remove_old = [&](store::Txn& txn) -> Status {
      // Another migration of the same store may have taken this batch meanwhile.
      auto now = txn.Get(meta, "migrate_cursor");
      if (!now.ok()) return now.status();
      if ((now->has_value() ? std::string(**now) : std::string()) != read_cursor) {
        return Status(ErrorKind::kConflict, "migration_raced",
                      "another `ragstream migrate` is converting this store at the same time; "
                      "run one");
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        const std::string& key = batch[i].key;
        const store::DocumentRecord& r = docs[i].record;
        for (const char* db : {"documents", "doc_text"}) {
          if (Status s = txn.Del(env.Dbi(db), key); !s.ok()) return s;
        }
        if (Status s = txn.Del(env.Dbi("doc_by_hash"), TenantKey(tenant, r.content_hash));
            !s.ok()) {
          return s;
        }
        if (Status s = store::AddToCounter(txn, meta, "doc_count/" + tenant, -1); !s.ok()) {
          return s;
        }
        for (uint32_t c = 0; c < r.chunk_count; ++c) {
          if (Status s = txn.Del(env.Dbi("chunks"), key + store::ChunkKeyPart(c)); !s.ok()) {
            return s;
          }
        }
        for (int s = 0; s < shards; ++s) {
          if (Status st = txn.Del(env.Dbi("vec." + std::to_string(s)), key); !st.ok()) return st;
          if (Status st = txn.Del(env.Dbi("vec8." + std::to_string(s)), key); !st.ok()) return st;
        }
      }
      return txn.Put(meta, "migrate_cursor", batch.back().key);
    };
    auto added = documents.AddManyAfter(tenant, docs, remove_old);
    if (!added.ok()) return added.status();
    report.documents += docs.size();
    for (const auto& d : docs) report.chunks += d.chunks.size();
    if (progress) progress(report.documents, total);
  }
  // The old databases go, and the layout is recorded, at once. (Their handles close with the
  // commit: nothing here uses them after.)
  auto txn = store::Txn::BeginWrite(env);
  if (!txn.ok()) return txn.status();
  for (const auto& name : PreviousLayoutDatabases(shards)) {
    if (int rc = mdb_drop(txn->raw(), env.Dbi(name), 1); rc != 0) {
      return store::MdbStatus(rc, "mdb_drop " + name);
    }
  }
  std::vector<std::string> old_counters;
  {
    auto cur = store::Cursor::Open(*txn, meta);
    if (!cur.ok()) return cur.status();
    for (bool more = cur->First(); more; more = cur->Next()) {
      if (HasPrefix(cur->key(), "lex_chunks/") || HasPrefix(cur->key(), "lex_tokens/")) {
        old_counters.emplace_back(cur->key());
      }
    }
  }
  for (const auto& key : old_counters) {
    if (Status s = txn->Del(meta, key); !s.ok()) return s;
  }
  if (Status s = txn->Del(meta, "migrate_cursor"); !s.ok()) return s;
  if (Status s = txn->Put(meta, "analyzer", AnalyzerVersion()); !s.ok()) return s;
  if (Status s = txn->Put(meta, "layout", store::kStoreLayout); !s.ok()) return s;
  if (Status s = txn->Commit(); !s.ok()) return s;
  report.migrated = true;
  return report;
}

}  // namespace ragstream::rag
