#include "lib/store/document_store.h"

#include <algorithm>
#include <map>

#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/core/log.h"
#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

// A document write holding the write lock longer than this is logged.
constexpr int64_t kSlowWriteMs = 100;

std::string DocCountKey(std::string_view tenant) {
  return "doc_count/" + std::string(tenant);
}

Result<DocumentRecord> LoadDocument(const Txn& txn, MDB_dbi dbi, std::string_view tenant,
                                    const std::string& id) {
  auto raw = txn.Get(dbi, TenantKey(tenant, id));
  if (!raw.ok()) return raw.status();
  DocumentRecord d;
  if (!raw->has_value() || !DecodeDocument(**raw, d)) {
    return Status::NotFound("document " + id + " not found");
  }
  return d;
}

}  // namespace

std::string EncodeDocument(const DocumentRecord& d) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("id");
  WriteString(w, d.id);
  w.Key("title");
  WriteString(w, d.title);
  w.Key("content_hash");
  WriteString(w, d.content_hash);
  w.Key("bytes");
  w.Uint64(d.bytes);
  w.Key("chars");
  w.Uint64(d.chars);
  w.Key("chunk_count");
  w.Uint(d.chunk_count);
  w.Key("created_at");
  w.Int64(d.created_at);
  w.Key("language");
  WriteString(w, d.language);
  w.Key("number");
  w.Uint(d.number);
  w.Key("first_chunk");
  w.Uint(d.first_chunk);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

bool DecodeDocument(std::string_view json, DocumentRecord& d) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return false;
  auto s = [&doc](const char* k) {
    auto it = doc.FindMember(k);
    return it != doc.MemberEnd() && it->value.IsString() ? std::string(AsView(it->value))
                                                         : std::string();
  };
  auto u = [&doc](const char* k) -> uint64_t {
    auto it = doc.FindMember(k);
    return it != doc.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
  };
  d.id = s("id");
  d.title = s("title");
  d.content_hash = s("content_hash");
  d.bytes = u("bytes");
  d.chars = u("chars");
  d.chunk_count = static_cast<uint32_t>(u("chunk_count"));
  auto created = doc.FindMember("created_at");
  d.created_at =
      created != doc.MemberEnd() && created->value.IsInt64() ? created->value.GetInt64() : 0;
  d.language = s("language");
  d.number = static_cast<uint32_t>(u("number"));
  d.first_chunk = static_cast<uint32_t>(u("first_chunk"));
  return !d.id.empty();
}

std::vector<std::string> DocumentStore::Databases(int shards) {
  std::vector<std::string> names = {"documents", "doc_text", "doc_by_hash"};
  for (auto& n : ChunkCatalog::Databases()) names.push_back(n);  // includes index_meta
  for (auto& n : LexicalIndex::Databases()) {
    if (n != "index_meta") names.push_back(n);
  }
  for (auto& n : VectorIndex::Databases(shards)) names.push_back(n);
  for (auto& n : IvfIndex::Databases()) names.push_back(n);
  return names;
}

DocumentStore::DocumentStore(const Env& env, int shards, VectorFormat vector_format,
                             Analyzer analyzer)
    : env_(env),
      shards_(shards),
      documents_(env.Dbi("documents")),
      text_(env.Dbi("doc_text")),
      by_hash_(env.Dbi("doc_by_hash")),
      meta_(env.Dbi("index_meta")),
      catalog_(env),
      vectors_(env, shards, vector_format),
      ivf_(env, vectors_),
      lexical_(env),
      analyzer_(std::move(analyzer)) {}

Status DocumentStore::CheckIndexIdentity(const std::string& embedder, uint32_t dimension) {
  // A cluster standby only checks: what is missing comes from its shard's log.
  const bool may_write = env_.WritesRefused().ok();
  auto txn = may_write ? Txn::BeginWrite(env_) : Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  // Stores made before tenants keyed records by bare ids; this version would not see them.
  auto layout = txn->Get(meta_, "layout");
  if (!layout.ok()) return layout.status();
  auto embedder_entry = txn->Get(meta_, "embedder");
  if (!embedder_entry.ok()) return embedder_entry.status();
  if (!layout->has_value() && embedder_entry->has_value()) {
    return Status(ErrorKind::kInvalidArgument, "old_store_layout",
                  "this store was made by a ragstream without tenants (ids are not keyed by "
                  "tenant); export its conversations and documents with the old version, then "
                  "use a new RAGSTREAM_DATA_DIR and re-ingest");
  }
  if (layout->has_value() && **layout == kPreviousStoreLayout) {
    return Status(ErrorKind::kInvalidArgument, "old_store_layout",
                  "this store has the previous index layout (one key per posting, chunks "
                  "holding copies of their text); stop the workers and run `ragstream migrate "
                  "--data-dir DIR` once to convert it in place (back it up first with "
                  "`ragstream backup`)");
  }
  // An earlier dense-id store is marked current (an unpacked one's workers pack it in the
  // background; older posting blocks are read as they are); a standby leaves that to its
  // primary.
  const bool unpacked = layout->has_value() &&
                        (**layout == kUnpackedStoreLayout || **layout == kTwoVarintStoreLayout);
  if (may_write && unpacked) {
    if (Status s = txn->Put(meta_, "layout", kStoreLayout); !s.ok()) return s;
  }
  const std::string want[5][2] = {{"layout", kStoreLayout},
                                  {"embedder", embedder},
                                  {"dimension", std::to_string(dimension)},
                                  {"shards", std::to_string(shards_)},
                                  {"vector_format", VectorFormatName(vectors_.format())}};
  bool wrote = may_write && unpacked;
  for (const auto& [key, value] : want) {
    if (key == "layout" && !may_write && unpacked) continue;
    auto have = txn->Get(meta_, key);
    if (!have.ok()) return have.status();
    if (!have->has_value()) {
      if (!may_write) continue;
      if (Status s = txn->Put(meta_, key, value); !s.ok()) return s;
      wrote = true;
    } else if (**have != value) {
      return Status(ErrorKind::kInvalidArgument, "index_mismatch",
                    "the vector index was built with " + key + " '" + std::string(**have) +
                        "' but this worker is configured with '" + value +
                        "'; use the same setting, or a new RAGSTREAM_DATA_DIR and re-ingest");
    }
  }
  return wrote ? txn->Commit() : Status::Ok();
}

namespace {

// The map's last bytes are kept for conversations: documents are refused (store_full) once
// only this much (32 MB, or a sixteenth of a smaller map) is left and the map cannot grow,
// so answers being saved never are.
constexpr uint64_t kAnswerReserveBytes = 32ull << 20;

// About how much of the map a document takes (its text, spans, postings and vectors, with
// room for the B-tree pages they dirty; docs/PERFORMANCE.md has the measured sizes).
uint64_t MapBytesFor(const NewDocument& doc) {
  return doc.text.size() * 4 + doc.vectors.size() * sizeof(float) * 3 + 4096;
}

// Runs a document write; if the map was full, grows it and runs it once more.
template <typename Attempt>
auto WithRoom(const Env& env, uint64_t need, Attempt attempt) -> decltype(attempt()) {
  const Env::Room room = env.RoomLeft();
  const uint64_t reserve = std::min(kAnswerReserveBytes, room.max_bytes / 16);
  if (!room.can_grow && room.free_bytes < reserve + need) {
    return Status::StoreFull(
        "the store is full: the map is at its maximum (RAGSTREAM_MAP_MAX_MB, free disk) and "
        "its last " +
        std::to_string(reserve >> 10) + " KB are kept for conversations");
  }
  auto result = attempt();
  if (!result.ok() && result.status().kind() == ErrorKind::kStoreFull && env.Grow(need).ok()) {
    result = attempt();
  }
  return result;
}

}  // namespace

Result<AddResult> DocumentStore::Add(std::string_view tenant, const NewDocument& doc,
                                     uint64_t max_documents) {
  return WithRoom(env_, MapBytesFor(doc), [&] { return AddOnce(tenant, doc, max_documents); });
}

Result<std::vector<AddResult>> DocumentStore::AddMany(std::string_view tenant,
                                                      const std::vector<NewDocument>& docs,
                                                      uint64_t max_documents) {
  uint64_t need = 0;
  for (const auto& d : docs) need += MapBytesFor(d);
  return WithRoom(env_, need, [&] { return AddManyOnce(tenant, docs, max_documents); });
}

Result<std::vector<Result<AddResult>>> DocumentStore::AddGroup(const std::vector<GroupItem>& items,
                                                               int64_t* held_us) {
  uint64_t need = 0;
  for (const auto& item : items) need += MapBytesFor(*item.doc);
  return WithRoom(env_, need, [&] { return AddGroupOnce(items, held_us); });
}

struct DocumentStore::Postings {
  std::map<std::string, PostingBatch, std::less<>> by_tenant;
  // The new chunks' vectors (views into the NewDocuments, alive until the commit), for the
  // approximate index's lists.
  struct NewVectors {
    uint32_t dim = 0;
    std::vector<IvfIndex::NewRows> docs;
  };
  std::map<std::string, NewVectors, std::less<>> vectors_by_tenant;
  // The rebuild's position (ReindexCursor) and the analyzers that made the postings (behind
  // the rebuild's position: the rebuild's; elsewhere: index_meta "analyzer"), read once per
  // transaction.
  std::optional<std::string> reindex_cursor;
  std::string index_version, reindex_version;
  std::string mine;  // this process's analyzer ("": not checked)

  bool Indexed(std::string_view tenant, uint32_t chunk) const {
    return !reindex_cursor || TenantKey(tenant, ChunkKeyPart(chunk)) <= *reindex_cursor;
  }
  // Refuses to write or erase the postings of `chunk` when another analyzer made them.
  Status CheckAnalyzer(std::string_view tenant, uint32_t chunk) const {
    if (mine.empty() || !Indexed(tenant, chunk)) return Status::Ok();
    const std::string& made_by = reindex_cursor ? reindex_version : index_version;
    if (made_by.empty() || made_by == mine) return Status::Ok();
    return Status(ErrorKind::kUnavailable, "analyzer_mismatch",
                  "this worker analyses text with '" + mine + "' but the index was made with '" +
                      made_by + "'; it is being restarted with another version: retry");
  }
  Status Begin(const DocumentStore& store, const Txn& txn) {
    auto cursor = store.ReindexCursor(txn);
    if (!cursor.ok()) return cursor.status();
    reindex_cursor = std::move(*cursor);
    mine = store.analyzer_.version;
    for (auto [key, out] : {std::pair<const char*, std::string*>{"analyzer", &index_version},
                            {"reindex_version", &reindex_version}}) {
      auto v = txn.Get(store.meta_, key);
      if (!v.ok()) return v.status();
      if (v->has_value()) *out = std::string(**v);
    }
    return Status::Ok();
  }
  PostingBatch& For(std::string_view tenant) {
    auto it = by_tenant.find(tenant);
    if (it == by_tenant.end()) it = by_tenant.emplace(std::string(tenant), PostingBatch()).first;
    return it->second;
  }
};

Status DocumentStore::CommitWithPostings(Txn& txn, const Postings& postings, int64_t began_us,
                                         int64_t* held_us) {
  size_t chunks = 0;
  const int64_t postings_from = SteadyMicros();
  for (const auto& [tenant, batch] : postings.by_tenant) {
    if (Status s = lexical_.Write(txn, tenant, batch); !s.ok()) return s;
    chunks += batch.chunks();
  }
  for (const auto& [tenant, rows] : postings.vectors_by_tenant) {
    if (Status s = ivf_.Insert(txn, tenant, rows.docs, rows.dim); !s.ok()) return s;
  }
  const int64_t commit_from = SteadyMicros();
  Status committed = txn.Commit();
  if (committed.ok()) {
    std::vector<std::string> tenants;
    for (const auto& [tenant, rows] : postings.vectors_by_tenant) tenants.push_back(tenant);
    ChunksChanged(tenants);
  }
  // Every answer's saves wait while a document write holds LMDB's one write lock: say when one
  // held it long (batches are bounded to keep this short; see IngestOptions), and where the
  // time went (the records and vectors, the postings, the commit's two fsyncs).
  const int64_t end = SteadyMicros();
  if (held_us) *held_us = end - began_us;
  if (committed.ok() && end - began_us > kSlowWriteMs * 1000) {
    LogWarn("store", "a document write held the write lock long",
            {{"ms", std::to_string((end - began_us) / 1000)},
             {"records_ms", std::to_string((postings_from - began_us) / 1000)},
             {"postings_ms", std::to_string((commit_from - postings_from) / 1000)},
             {"commit_ms", std::to_string((end - commit_from) / 1000)},
             {"chunks", std::to_string(chunks)}});
  }
  return committed;
}

Result<std::optional<std::string>> DocumentStore::ReindexCursor(const Txn& txn) const {
  auto cursor = txn.Get(meta_, "reindex_cursor");
  if (!cursor.ok()) return cursor.status();
  if (!cursor->has_value()) return std::optional<std::string>();
  return std::optional<std::string>(std::string(**cursor));
}

Result<AddResult> DocumentStore::AddOnce(std::string_view tenant, const NewDocument& doc,
                                         uint64_t max_documents) {
  auto results = AddGroupOnce({GroupItem{tenant, &doc, max_documents}});
  if (!results.ok()) return results.status();
  return std::move(results->front());
}

Result<std::vector<AddResult>> DocumentStore::AddManyAfter(std::string_view tenant,
                                                           const std::vector<NewDocument>& docs,
                                                           const TxnStep& first) {
  uint64_t need = 0;
  for (const auto& d : docs) need += MapBytesFor(d);
  return WithRoom(env_, need, [&] { return AddManyOnce(tenant, docs, 0, first); });
}

Result<std::vector<AddResult>> DocumentStore::AddManyOnce(std::string_view tenant,
                                                          const std::vector<NewDocument>& docs,
                                                          uint64_t max_documents,
                                                          const TxnStep& first) {
  auto txn = Txn::BeginBulkWrite(env_);
  if (!txn.ok()) return txn.status();
  const int64_t began_us = SteadyMicros();
  if (first) {
    if (Status s = first(*txn); !s.ok()) return s;
  }
  Postings postings;
  if (Status s = postings.Begin(*this, *txn); !s.ok()) return s;
  std::vector<AddResult> results;
  results.reserve(docs.size());
  bool wrote = static_cast<bool>(first);
  for (const NewDocument& doc : docs) {
    auto added = AddIn(*txn, tenant, doc, max_documents, postings);
    if (!added.ok()) return added.status();
    wrote = wrote || added->created;
    results.push_back(std::move(*added));
  }
  if (!wrote) return results;
  if (Status s = CommitWithPostings(*txn, postings, began_us); !s.ok()) return s;
  return results;
}

Result<std::vector<Result<AddResult>>> DocumentStore::AddGroupOnce(
    const std::vector<GroupItem>& items, int64_t* held_us) {
  auto txn = Txn::BeginBulkWrite(env_);
  if (!txn.ok()) return txn.status();
  const int64_t began_us = SteadyMicros();
  Postings postings;
  if (Status s = postings.Begin(*this, *txn); !s.ok()) return s;
  std::vector<Result<AddResult>> results;
  results.reserve(items.size());
  bool wrote = false;
  for (const GroupItem& item : items) {
    bool wrote_some = false;
    auto added = AddIn(*txn, item.tenant, *item.doc, item.max_documents, postings, &wrote_some);
    // A document refused before any of it was written (its limit, its shape) leaves the
    // transaction as it was; a failure after that would leave half a document: all fail.
    if (!added.ok() && wrote_some) return added.status();
    wrote = wrote || (added.ok() && added->created);
    results.push_back(std::move(added));
  }
  if (!wrote) return results;
  if (Status s = CommitWithPostings(*txn, postings, began_us, held_us); !s.ok()) return s;
  return results;
}

Result<AddResult> DocumentStore::AddIn(Txn& txn_ref, std::string_view tenant,
                                       const NewDocument& doc, uint64_t max_documents,
                                       Postings& postings, bool* wrote_some) {
  if (doc.vectors.size() != doc.chunks.size() * doc.dimension) {
    return Status::Internal("vector count does not match chunk count");
  }
  for (const NewChunk& c : doc.chunks) {
    if (c.start_byte > c.end_byte || c.end_byte > doc.text.size() || c.end_byte > 0xffffffffull ||
        c.end_char > 0xffffffffull) {
      return Status::Internal("a chunk's span lies outside its document");
    }
  }
  Txn* txn = &txn_ref;
  // Checked inside the write transaction, so two concurrent identical uploads store one.
  auto existing = txn->Get(by_hash_, TenantKey(tenant, doc.record.content_hash));
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    auto rec = LoadDocument(*txn, documents_, tenant, std::string(**existing));
    if (rec.ok()) return AddResult{std::move(*rec), false};
  }
  if (max_documents > 0) {
    auto count = ReadCounter(*txn, meta_, DocCountKey(tenant));
    if (!count.ok()) return count.status();
    if (*count >= max_documents) {
      return Status(ErrorKind::kForbidden, "document_limit",
                    "this API key's tenant already holds " + std::to_string(max_documents) +
                        " documents (RAGSTREAM_MAX_DOCUMENTS_PER_TENANT); delete some first");
    }
  }
  // The record's chunk count is what Delete walks: it comes from the chunks themselves.
  DocumentRecord r = doc.record;
  r.chunk_count = static_cast<uint32_t>(doc.chunks.size());
  // Allocating ids writes: from here on a failure leaves the transaction changed.
  if (wrote_some) *wrote_some = true;
  auto number = catalog_.NewDocumentNumber(*txn, tenant);
  if (!number.ok()) return number.status();
  auto first = catalog_.NewChunkIds(*txn, tenant, r.chunk_count);
  if (!first.ok()) return first.status();
  if (r.chunk_count > 0) {
    if (Status s = postings.CheckAnalyzer(tenant, *first); !s.ok()) return s;
  }
  r.number = *number;
  r.first_chunk = *first;
  const std::string key = TenantKey(tenant, r.id);
  if (Status s = txn->Put(documents_, key, EncodeDocument(r)); !s.ok()) return s;
  if (Status s = txn->Put(text_, key, doc.text); !s.ok()) return s;
  if (Status s = txn->Put(by_hash_, TenantKey(tenant, r.content_hash), r.id); !s.ok()) return s;
  if (Status s = AddToCounter(*txn, meta_, DocCountKey(tenant), 1); !s.ok()) return s;
  if (Status s = catalog_.PutDocument(*txn, tenant, r.number, {r.first_chunk, r.chunk_count, r.id});
      !s.ok()) {
    return s;
  }
  PostingBatch& batch = postings.For(tenant);
  for (uint32_t i = 0; i < r.chunk_count; ++i) {
    const NewChunk& c = doc.chunks[i];
    const ChunkSpan span{r.number,
                         i,
                         static_cast<uint32_t>(c.start_byte),
                         static_cast<uint32_t>(c.end_byte),
                         static_cast<uint32_t>(c.start_char),
                         static_cast<uint32_t>(c.end_char),
                         c.length};
    if (Status s = catalog_.PutSpan(*txn, tenant, r.first_chunk + i, span); !s.ok()) return s;
    if (postings.Indexed(tenant, r.first_chunk + i))
      batch.Add(r.first_chunk + i, c.terms, c.length);
  }
  if (r.chunk_count > 0) {
    if (Status s = vectors_.Put(*txn, tenant, r.first_chunk, doc.vectors.data(), r.chunk_count,
                                doc.dimension);
        !s.ok()) {
      return s;
    }
    auto& rows = postings.vectors_by_tenant[std::string(tenant)];
    rows.dim = doc.dimension;
    rows.docs.push_back({r.first_chunk, doc.vectors.data(), r.chunk_count});
  }
  return AddResult{r, true};
}

Result<DocumentRecord> DocumentStore::Get(std::string_view tenant, const std::string& id) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  return LoadDocument(*txn, documents_, tenant, id);
}

Result<std::string> DocumentStore::GetText(std::string_view tenant, const std::string& id) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto raw = txn->Get(text_, TenantKey(tenant, id));
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return Status::NotFound("document " + id + " not found");
  return std::string(**raw);
}

Result<std::vector<DocumentRecord>> DocumentStore::List(std::string_view tenant) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto cur = Cursor::Open(*txn, documents_);
  if (!cur.ok()) return cur.status();
  std::vector<DocumentRecord> out;
  const std::string prefix = TenantPrefix(tenant);
  for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
       have = cur->Next()) {
    DocumentRecord d;
    if (DecodeDocument(cur->value(), d)) out.push_back(std::move(d));
  }
  std::stable_sort(out.begin(), out.end(), [](const DocumentRecord& a, const DocumentRecord& b) {
    return a.created_at > b.created_at;
  });
  return out;
}

Result<uint64_t> DocumentStore::Count(std::string_view tenant) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  return ReadCounter(*txn, meta_, DocCountKey(tenant));
}

Result<uint64_t> DocumentStore::CountAll() const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  MDB_stat stat;
  if (int rc = mdb_stat(txn->raw(), documents_, &stat); rc != 0) return MdbStatus(rc, "mdb_stat");
  return static_cast<uint64_t>(stat.ms_entries);
}

namespace {

// The texts of a document's chunks, as spans of its text (views into `text`).
Result<std::vector<std::string_view>> ChunkTexts(const Txn& txn, const ChunkCatalog& catalog,
                                                 std::string_view tenant, const DocumentRecord& d,
                                                 std::string_view text,
                                                 std::vector<ChunkSpan>& spans) {
  std::vector<std::string_view> texts;
  spans.clear();
  for (uint32_t i = 0; i < d.chunk_count; ++i) {
    auto span = catalog.Span(txn, tenant, d.first_chunk + i);
    if (!span.ok()) return span.status();
    if (!span->has_value() || (*span)->end_byte > text.size()) {
      return Status::Internal("chunk " + std::to_string(i) + " of " + d.id + " is missing");
    }
    spans.push_back(**span);
    texts.push_back((*span)->TextIn(text));
  }
  return texts;
}

}  // namespace

Status DocumentStore::Delete(std::string_view tenant, const std::string& id) {
  // The chunks are analysed before the write transaction (a large document takes a while),
  // from a snapshot; the write then checks that the document is still that one, and starts
  // over (its transaction ended) if it was replaced meanwhile.
  for (int attempt = 0;; ++attempt) {
    Status done = DeleteOnce(tenant, id);
    if (done.code() != "document_replaced" || attempt == 3) return done;
  }
}

Status DocumentStore::DeleteOnce(std::string_view tenant, const std::string& id) {
  DocumentRecord before;
  std::vector<AnalyzedChunk> analysed;
  {
    auto txn = Txn::BeginRead(env_);
    if (!txn.ok()) return txn.status();
    auto rec = LoadDocument(*txn, documents_, tenant, id);
    if (!rec.ok()) return rec.status();
    before = std::move(*rec);
    auto text = txn->Get(text_, TenantKey(tenant, id));
    if (!text.ok()) return text.status();
    std::vector<ChunkSpan> spans;
    auto texts = ChunkTexts(*txn, catalog_, tenant, before, text->value_or(""), spans);
    if (!texts.ok()) return texts.status();
    analysed = analyzer_.analyze(before.title, before.language, *texts);
    if (analysed.size() != spans.size()) return Status::Internal("the analyzer lost chunks");
    for (size_t i = 0; i < spans.size(); ++i) analysed[i].length = spans[i].length;
  }
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  auto rec = LoadDocument(*txn, documents_, tenant, id);
  if (!rec.ok()) return rec.status();
  if (rec->number != before.number) {
    return Status(ErrorKind::kConflict, "document_replaced", "the document changed meanwhile");
  }
  Postings postings;
  if (Status s = postings.Begin(*this, *txn); !s.ok()) return s;
  if (rec->chunk_count > 0) {
    if (Status s = postings.CheckAnalyzer(tenant, rec->first_chunk); !s.ok()) return s;
  }
  PostingBatch& batch = postings.For(tenant);
  for (uint32_t i = 0; i < rec->chunk_count; ++i) {
    if (postings.Indexed(tenant, rec->first_chunk + i)) {
      batch.Add(rec->first_chunk + i, analysed[i].terms, analysed[i].length);
    }
  }
  if (Status s = lexical_.Erase(*txn, tenant, batch); !s.ok()) return s;
  if (Status s =
          catalog_.Erase(*txn, tenant, rec->number, {rec->first_chunk, rec->chunk_count, rec->id});
      !s.ok()) {
    return s;
  }
  if (rec->chunk_count > 0) {
    if (Status s = vectors_.Delete(*txn, tenant, rec->first_chunk, rec->chunk_count); !s.ok())
      return s;
    if (Status s = ivf_.Tombstone(*txn, tenant, rec->first_chunk, rec->chunk_count); !s.ok()) {
      return s;
    }
  }
  if (Status s = txn->Del(by_hash_, TenantKey(tenant, rec->content_hash)); !s.ok()) return s;
  const std::string key = TenantKey(tenant, id);
  if (Status s = txn->Del(text_, key); !s.ok()) return s;
  if (Status s = txn->Del(documents_, key); !s.ok()) return s;
  if (Status s = AddToCounter(*txn, meta_, DocCountKey(tenant), -1); !s.ok()) return s;
  if (Status s = txn->Commit(); !s.ok()) return s;
  if (rec->chunk_count > 0) ChunksChanged({std::string(tenant)});
  return Status::Ok();
}

void DocumentStore::ChunksChanged(const std::vector<std::string>& tenants) const {
  if (!on_chunks_changed_) return;
  for (const std::string& tenant : tenants) on_chunks_changed_(tenant);
}

Result<std::vector<VectorHit>> DocumentStore::SearchVectors(std::string_view tenant,
                                                            const float* query, uint32_t dim,
                                                            size_t k, const ChunkFilter& filter,
                                                            const VectorSearchOptions& options,
                                                            VectorSearchInfo* info) const {
  if (info) *info = {};
  uint64_t filtered = 0;
  for (const auto& [begin, end] : filter.ranges) filtered += end - begin;
  if (!options.exact && (filter.all || filtered >= options.exact_below)) {
    // The rescoring: a chunk deleted since has no vector, and drops out.
    auto row = [&](const Txn& txn, uint32_t chunk, std::vector<float>& scratch) {
      return ChunkVector(txn, tenant, chunk, dim, scratch);
    };
    IvfSearchInfo ivf_info;
    auto hits = ivf_.Search(tenant, query, dim, k, options.probe, filter, row, &ivf_info);
    if (!hits.ok()) return hits.status();
    if (*hits) {
      if (info) *info = {true, ivf_info};
      if (filter.all && on_approximate_search_) {
        on_approximate_search_(std::string(tenant), query, dim);
      }
      return std::move(**hits);
    }
  }
  return vectors_.Search(tenant, query, dim, k, filter);
}

Result<std::vector<std::optional<float>>> DocumentStore::ScoreChunks(
    std::string_view tenant, const float* query, uint32_t dim,
    const std::vector<uint32_t>& chunks) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  std::vector<std::optional<float>> scores;
  scores.reserve(chunks.size());
  std::vector<float> scratch;
  for (uint32_t chunk : chunks) {
    const float* row = ChunkVector(*txn, tenant, chunk, dim, scratch);
    scores.push_back(row ? std::optional<float>(DotProduct(query, row, dim)) : std::nullopt);
  }
  return scores;
}

const float* DocumentStore::ChunkVector(const Txn& txn, std::string_view tenant, uint32_t chunk,
                                        uint32_t dim, std::vector<float>& scratch) const {
  // Most rows are in blocks, found by the chunk id alone (a deleted chunk's row leaves its
  // block in the deleting transaction); a piece is keyed by its document's first chunk.
  if (const float* row = vectors_.BlockRow(txn, tenant, chunk, dim, scratch)) return row;
  auto span = catalog_.Span(txn, tenant, chunk);
  if (!span.ok() || !span->has_value()) return nullptr;
  auto doc = catalog_.Document(txn, tenant, (*span)->doc_num);
  if (!doc.ok() || !doc->has_value()) return nullptr;
  return vectors_.PieceRow(txn, tenant, (*doc)->first_chunk, chunk, dim, scratch);
}

Result<std::optional<IvfState>> DocumentStore::ObserveVectorRecall(std::string_view tenant,
                                                                   const float* query, uint32_t dim,
                                                                   double target_recall) const {
  {
    // No index of this dimension (none yet, or rebuilt for another embedder): nothing to
    // learn, and no full scan to pay for.
    auto txn = Txn::BeginRead(env_);
    if (!txn.ok()) return txn.status();
    auto state = ivf_.Active(*txn, tenant);
    if (!state.ok()) return state.status();
    if (!*state || (*state)->dim != dim) return std::optional<IvfState>();
  }
  auto exact = vectors_.Search(tenant, query, dim, 10);
  if (!exact.ok()) return exact.status();
  std::vector<std::vector<float>> rows;  // copied: the read transaction ends here
  {
    auto txn = Txn::BeginRead(env_);
    if (!txn.ok()) return txn.status();
    std::vector<float> scratch;
    for (const VectorHit& hit : *exact) {
      if (const float* r = ChunkVector(*txn, tenant, hit.chunk, dim, scratch)) {
        rows.emplace_back(r, r + dim);
      }
    }
  }
  std::vector<const float*> neighbours;
  for (const auto& r : rows) neighbours.push_back(r.data());
  return ivf_.ObserveRecall(tenant, query, dim, neighbours, target_recall);
}

Result<std::vector<std::string>> DocumentStore::TenantsWithChunks() const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto cur = Cursor::Open(*txn, meta_);
  if (!cur.ok()) return cur.status();
  constexpr std::string_view kPrefix = "next_chunk/";
  std::vector<std::string> tenants;
  for (bool have = cur->SeekAtLeast(kPrefix); have && HasPrefix(cur->key(), kPrefix);
       have = cur->Next()) {
    tenants.emplace_back(cur->key().substr(kPrefix.size()));
  }
  return tenants;
}

Result<uint64_t> DocumentStore::PackVectors(std::string_view tenant, uint32_t dim,
                                            uint32_t ranges_per_txn,
                                            const std::atomic<bool>* stop) {
  {
    auto txn = Txn::BeginRead(env_);
    if (!txn.ok()) return txn.status();
    auto next = catalog_.NextChunk(*txn, tenant);
    if (!next.ok()) return next.status();
    auto any = vectors_.HasPiecesBelow(*txn, tenant, *next);
    if (!any.ok()) return any.status();
    if (!*any) return uint64_t{0};  // the usual case, without taking the write lock
  }
  uint64_t packed = 0;
  uint32_t from = 0;
  while (true) {
    auto txn = Txn::BeginBulkWrite(env_);
    if (!txn.ok()) return txn.status();
    auto next = catalog_.NextChunk(*txn, tenant);
    if (!next.ok()) return next.status();
    auto progress = vectors_.PackBelow(*txn, tenant, dim, from, *next, ranges_per_txn);
    if (!progress.ok()) return progress.status();
    if (progress->packed > 0) {
      if (Status s = txn->Commit(); !s.ok()) return s;
      packed += progress->packed;
    }
    if (progress->done || (stop && stop->load())) return packed;
    from = progress->next;
  }
}

Result<bool> DocumentStore::VectorIndexNeedsBuild(std::string_view tenant,
                                                  uint64_t min_rows) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto next = catalog_.NextChunk(*txn, tenant);
  if (!next.ok()) return next.status();
  return ivf_.NeedsBuild(*txn, tenant, *next, min_rows);
}

Result<IvfBuildReport> DocumentStore::BuildVectorIndex(std::string_view tenant, uint32_t dim,
                                                       const IvfBuildOptions& options) {
  return ivf_.Build(tenant, dim, options);
}

Result<uint64_t> DocumentStore::ReindexLexical(const std::string& version, size_t batch_chunks) {
  uint64_t reindexed = 0;
  const MDB_dbi spans_dbi = env_.Dbi("chunk_spans");
  for (;;) {
    // A batch of chunks after the rebuild's position, read and analysed from a snapshot: the
    // analysis (the slow part) holds no lock.
    std::optional<std::string> cursor;
    struct Item {
      std::string key;  // in chunk_spans: T/BE32(chunk id)
      ChunkSpan span;
      AnalyzedChunk analysed;
    };
    std::vector<Item> next;
    {
      auto txn = Txn::BeginRead(env_);
      if (!txn.ok()) return txn.status();
      auto have = txn->Get(meta_, "analyzer");
      if (!have.ok()) return have.status();
      if (have->has_value() && **have == version) return reindexed;
      auto at = ReindexCursor(*txn);
      if (!at.ok()) return at.status();
      cursor = std::move(*at);
      if (cursor) {
        auto cur = Cursor::Open(*txn, spans_dbi);
        if (!cur.ok()) return cur.status();
        const std::string& after = *cursor;
        bool more = cur->SeekAfter(after);
        for (; more && next.size() < batch_chunks; more = cur->Next()) {
          std::string_view key = cur->key();
          if (key.size() < 5) continue;
          auto span = catalog_.Span(*txn, key.substr(0, key.size() - 5),
                                    DecodeChunkKeyPart(key.substr(key.size() - 4)));
          if (!span.ok()) return span.status();
          if (span->has_value()) next.push_back({std::string(key), **span, {}});
        }
        // Document by document (its title and language), only the chunks in this batch.
        for (size_t i = 0; i < next.size();) {
          const std::string& key = next[i].key;
          const std::string tenant = key.substr(0, key.size() - 5);
          const uint32_t doc_num = next[i].span.doc_num;
          size_t j = i;
          while (j < next.size() && next[j].span.doc_num == doc_num &&
                 next[j].key.compare(0, tenant.size() + 1, key, 0, tenant.size() + 1) == 0) {
            ++j;
          }
          auto entry = catalog_.Document(*txn, tenant, doc_num);
          if (!entry.ok()) return entry.status();
          if (entry->has_value()) {
            auto rec = LoadDocument(*txn, documents_, tenant, (*entry)->public_id);
            auto text = txn->Get(text_, TenantKey(tenant, (*entry)->public_id));
            if (!text.ok()) return text.status();
            if (rec.ok() && text->has_value()) {
              std::vector<std::string_view> texts;
              for (size_t c = i; c < j; ++c) texts.push_back(next[c].span.TextIn(**text));
              std::vector<AnalyzedChunk> analysed =
                  analyzer_.analyze(rec->title, rec->language, texts);
              for (size_t c = i; c < j && c - i < analysed.size(); ++c) {
                next[c].analysed = std::move(analysed[c - i]);
              }
            }
          }
          i = j;
        }
      }
    }
    auto txn = Txn::BeginBulkWrite(env_);
    if (!txn.ok()) return txn.status();
    const int64_t began_us = SteadyMicros();
    auto have = txn->Get(meta_, "analyzer");
    if (!have.ok()) return have.status();
    if (have->has_value() && **have == version) return reindexed;
    auto now = ReindexCursor(*txn);
    if (!now.ok()) return now.status();
    if (!*now) {
      // Start: empty the index (every tenant's), then rebuild from the first chunk.
      for (const char* db : {"lex_blocks", "lex_doc_freq", "lex_norms"}) {
        if (Status s = txn->Clear(env_.Dbi(db)); !s.ok()) return s;
      }
      std::vector<std::string> totals;
      {
        auto cur = Cursor::Open(*txn, meta_);
        if (!cur.ok()) return cur.status();
        for (bool more = cur->SeekAtLeast("bm25_"); more && HasPrefix(cur->key(), "bm25_");
             more = cur->Next()) {
          totals.emplace_back(cur->key());
        }
      }
      for (const auto& key : totals) {
        if (Status s = txn->Del(meta_, key); !s.ok()) return s;
      }
      if (Status s = txn->Put(meta_, "reindex_cursor", ""); !s.ok()) return s;
      if (Status s = txn->Put(meta_, "reindex_version", version); !s.ok()) return s;
      if (Status s = txn->Commit(); !s.ok()) return s;
      continue;
    }
    if (!cursor || **now != *cursor) continue;  // another worker moved on meanwhile: again
    if (next.empty()) {
      if (Status s = txn->Put(meta_, "analyzer", version); !s.ok()) return s;
      if (Status s = txn->Del(meta_, "reindex_cursor"); !s.ok()) return s;
      if (Status s = txn->Del(meta_, "reindex_version"); !s.ok()) return s;
      if (Status s = txn->Commit(); !s.ok()) return s;
      return reindexed;
    }
    Postings postings;
    for (Item& item : next) {
      const std::string_view tenant = std::string_view(item.key).substr(0, item.key.size() - 5);
      const uint32_t chunk =
          DecodeChunkKeyPart(std::string_view(item.key).substr(item.key.size() - 4));
      // A chunk deleted since the snapshot has no postings to add (its document's delete,
      // ahead of the rebuild, erased none).
      auto still = catalog_.Span(*txn, tenant, chunk);
      if (!still.ok()) return still.status();
      if (!still->has_value()) continue;
      // Its length as this analyzer counts it, in the span too (a later delete reads it there).
      item.span.length = item.analysed.length;
      if (Status s = catalog_.PutSpan(*txn, tenant, chunk, item.span); !s.ok()) return s;
      postings.For(tenant).Add(chunk, item.analysed.terms, item.analysed.length);
      ++reindexed;
    }
    if (Status s = txn->Put(meta_, "reindex_cursor", next.back().key); !s.ok()) return s;
    if (Status s = CommitWithPostings(*txn, postings, began_us); !s.ok()) return s;
  }
}

Result<ChunkRecord> DocumentStore::GetChunk(std::string_view tenant, const std::string& document_id,
                                            uint32_t index) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto not_found = [&] {
    return Status::NotFound("chunk " + std::to_string(index) + " of " + document_id);
  };
  auto rec = LoadDocument(*txn, documents_, tenant, document_id);
  if (!rec.ok()) return rec.status().kind() == ErrorKind::kNotFound ? not_found() : rec.status();
  if (index >= rec->chunk_count) return not_found();
  auto span = catalog_.Span(*txn, tenant, rec->first_chunk + index);
  if (!span.ok()) return span.status();
  auto text = txn->Get(text_, TenantKey(tenant, document_id));
  if (!text.ok()) return text.status();
  if (!span->has_value() || !text->has_value() || (*span)->end_byte > (*text)->size()) {
    return not_found();
  }
  const ChunkSpan& sp = **span;
  ChunkRecord c;
  c.index = index;
  c.start_char = sp.start_char;
  c.end_char = sp.end_char;
  c.text = std::string(sp.TextIn(**text));
  c.length = sp.length;
  return c;
}

Result<ChunkFilter> DocumentStore::FilterFor(std::string_view tenant,
                                             const std::vector<std::string>& ids) const {
  ChunkFilter filter;
  if (ids.empty()) return filter;
  filter.all = false;
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  for (const auto& id : ids) {
    auto rec = LoadDocument(*txn, documents_, tenant, id);
    if (!rec.ok()) {
      if (rec.status().kind() == ErrorKind::kNotFound) continue;
      return rec.status();
    }
    if (rec->chunk_count > 0) {
      filter.ranges.emplace_back(rec->first_chunk, rec->first_chunk + rec->chunk_count);
    }
  }
  std::sort(filter.ranges.begin(), filter.ranges.end());
  return filter;
}

Result<std::vector<std::optional<ChunkRef>>> DocumentStore::Resolve(
    std::string_view tenant, const std::vector<uint32_t>& chunks) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  std::vector<std::optional<ChunkRef>> out;
  out.reserve(chunks.size());
  std::map<uint32_t, std::optional<std::string>> ids;  // document number -> public id
  for (uint32_t chunk : chunks) {
    auto span = catalog_.Span(*txn, tenant, chunk);
    if (!span.ok()) return span.status();
    if (!span->has_value()) {
      out.emplace_back();
      continue;
    }
    auto it = ids.find((*span)->doc_num);
    if (it == ids.end()) {
      auto entry = catalog_.Document(*txn, tenant, (*span)->doc_num);
      if (!entry.ok()) return entry.status();
      it = ids.emplace((*span)->doc_num, entry->has_value()
                                             ? std::optional<std::string>((*entry)->public_id)
                                             : std::nullopt)
               .first;
    }
    if (!it->second) {
      out.emplace_back();
    } else {
      out.push_back(ChunkRef{*it->second, (*span)->index});
    }
  }
  return out;
}

Result<std::vector<std::string>> DocumentStore::Missing(std::string_view tenant,
                                                        const std::vector<std::string>& ids) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  std::vector<std::string> missing;
  for (const auto& id : ids) {
    auto raw = txn->Get(documents_, TenantKey(tenant, id));
    if (!raw.ok()) return raw.status();
    if (!raw->has_value()) missing.push_back(id);
  }
  return missing;
}

}  // namespace ragstream::store
