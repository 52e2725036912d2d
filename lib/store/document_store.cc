#include "lib/store/document_store.h"

#include <algorithm>

#include "lib/core/json.h"
#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

std::string ChunkKey(std::string_view tenant, std::string_view doc, uint32_t index) {
  return TenantKey(tenant, doc) + EncodeBigEndian64(index).substr(4);
}
// Written into index_meta by the first worker; see CheckIndexIdentity.
constexpr const char* kStoreLayout = "tenant-keys-v1";

std::string DocCountKey(std::string_view tenant) {
  return "doc_count/" + std::string(tenant);
}

std::string EncodeChunk(const ChunkRecord& c) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("index");
  w.Uint(c.index);
  w.Key("start_char");
  w.Uint64(c.start_char);
  w.Key("end_char");
  w.Uint64(c.end_char);
  w.Key("text");
  WriteString(w, c.text);
  w.Key("terms");
  w.StartArray();
  for (const auto& t : c.terms) WriteString(w, t);
  w.EndArray();
  w.Key("length");
  w.Uint(c.length);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

bool DecodeChunk(std::string_view json, ChunkRecord& c) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  auto u = [&d](const char* k) -> uint64_t {
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
  };
  c.index = static_cast<uint32_t>(u("index"));
  c.start_char = u("start_char");
  c.end_char = u("end_char");
  auto text = d.FindMember("text");
  if (text == d.MemberEnd() || !text->value.IsString()) return false;
  c.text = AsView(text->value);
  c.terms.clear();
  auto terms = d.FindMember("terms");
  if (terms != d.MemberEnd() && terms->value.IsArray()) {
    for (const auto& t : terms->value.GetArray()) {
      if (t.IsString()) c.terms.emplace_back(AsView(t));
    }
  }
  // Chunks stored before "length" was measured in words had one term per word.
  auto length = d.FindMember("length");
  c.length = length != d.MemberEnd() && length->value.IsUint()
                 ? length->value.GetUint()
                 : static_cast<uint32_t>(c.terms.size());
  return true;
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
  return !d.id.empty();
}

std::vector<std::string> DocumentStore::Databases(int shards) {
  std::vector<std::string> names = {"documents", "doc_text", "doc_by_hash", "chunks"};
  for (auto& n : LexicalIndex::Databases()) names.push_back(n);  // includes index_meta
  for (auto& n : VectorIndex::Databases(shards)) names.push_back(n);
  return names;
}

DocumentStore::DocumentStore(const Env& env, int shards, VectorFormat vector_format)
    : env_(env),
      shards_(shards),
      documents_(env.Dbi("documents")),
      text_(env.Dbi("doc_text")),
      by_hash_(env.Dbi("doc_by_hash")),
      chunks_(env.Dbi("chunks")),
      meta_(env.Dbi("index_meta")),
      vectors_(env, shards, vector_format),
      lexical_(env) {}

Status DocumentStore::CheckIndexIdentity(const std::string& embedder, uint32_t dimension) {
  auto txn = Txn::BeginWrite(env_);
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
  const std::string want[5][2] = {{"layout", kStoreLayout},
                                  {"embedder", embedder},
                                  {"dimension", std::to_string(dimension)},
                                  {"shards", std::to_string(shards_)},
                                  {"vector_format", VectorFormatName(vectors_.format())}};
  bool wrote = false;
  for (const auto& [key, value] : want) {
    auto have = txn->Get(meta_, key);
    if (!have.ok()) return have.status();
    if (!have->has_value()) {
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

// About how much of the map a document takes (its text, chunk copies, postings and
// vectors; the store holds about 13 times the text, docs/PERFORMANCE.md).
uint64_t MapBytesFor(const NewDocument& doc) {
  return doc.text.size() * 16 + doc.vectors.size() * sizeof(float) * 3 + 4096;
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

Result<std::vector<Result<AddResult>>> DocumentStore::AddGroup(
    const std::vector<GroupItem>& items) {
  uint64_t need = 0;
  for (const auto& item : items) need += MapBytesFor(*item.doc);
  return WithRoom(env_, need, [&] { return AddGroupOnce(items); });
}

Result<AddResult> DocumentStore::AddOnce(std::string_view tenant, const NewDocument& doc,
                                         uint64_t max_documents) {
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  auto added = AddIn(*txn, tenant, doc, max_documents);
  if (!added.ok() || !added->created) return added;
  if (Status s = txn->Commit(); !s.ok()) return s;
  return added;
}

Result<std::vector<AddResult>> DocumentStore::AddManyOnce(std::string_view tenant,
                                                          const std::vector<NewDocument>& docs,
                                                          uint64_t max_documents) {
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  std::vector<AddResult> results;
  results.reserve(docs.size());
  bool wrote = false;
  for (const NewDocument& doc : docs) {
    auto added = AddIn(*txn, tenant, doc, max_documents);
    if (!added.ok()) return added.status();
    wrote = wrote || added->created;
    results.push_back(std::move(*added));
  }
  if (wrote) {
    if (Status s = txn->Commit(); !s.ok()) return s;
  }
  return results;
}

Result<std::vector<Result<AddResult>>> DocumentStore::AddGroupOnce(
    const std::vector<GroupItem>& items) {
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  std::vector<Result<AddResult>> results;
  results.reserve(items.size());
  bool wrote = false;
  for (const GroupItem& item : items) {
    bool wrote_some = false;
    auto added = AddIn(*txn, item.tenant, *item.doc, item.max_documents, &wrote_some);
    // A document refused before any of it was written (its limit, its shape) leaves the
    // transaction as it was; a failure after that would leave half a document: all fail.
    if (!added.ok() && wrote_some) return added.status();
    wrote = wrote || (added.ok() && added->created);
    results.push_back(std::move(added));
  }
  if (wrote) {
    if (Status s = txn->Commit(); !s.ok()) return s;
  }
  return results;
}

Result<AddResult> DocumentStore::AddIn(Txn& txn_ref, std::string_view tenant,
                                       const NewDocument& doc, uint64_t max_documents,
                                       bool* wrote_some) {
  if (doc.vectors.size() != doc.chunks.size() * doc.dimension) {
    return Status::Internal("vector count does not match chunk count");
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
  const std::string key = TenantKey(tenant, r.id);
  if (wrote_some) *wrote_some = true;
  if (Status s = txn->Put(documents_, key, EncodeDocument(r)); !s.ok()) return s;
  if (Status s = txn->Put(text_, key, doc.text); !s.ok()) return s;
  if (Status s = txn->Put(by_hash_, TenantKey(tenant, r.content_hash), r.id); !s.ok()) return s;
  if (Status s = AddToCounter(*txn, meta_, DocCountKey(tenant), 1); !s.ok()) return s;
  for (const ChunkRecord& c : doc.chunks) {
    if (Status s = txn->Put(chunks_, ChunkKey(tenant, r.id, c.index), EncodeChunk(c)); !s.ok()) {
      return s;
    }
    if (Status s = lexical_.Add(*txn, tenant, r.id, c.index, c.terms, c.length); !s.ok()) return s;
  }
  if (!doc.chunks.empty()) {
    if (Status s = vectors_.Put(*txn, tenant, r.id, doc.vectors.data(),
                                static_cast<uint32_t>(doc.chunks.size()), doc.dimension);
        !s.ok()) {
      return s;
    }
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

Status DocumentStore::Delete(std::string_view tenant, const std::string& id) {
  auto txn = Txn::BeginWrite(env_);
  if (!txn.ok()) return txn.status();
  auto rec = LoadDocument(*txn, documents_, tenant, id);
  if (!rec.ok()) return rec.status();
  for (uint32_t i = 0; i < rec->chunk_count; ++i) {
    const std::string key = ChunkKey(tenant, id, i);
    auto raw = txn->Get(chunks_, key);
    if (!raw.ok()) return raw.status();
    ChunkRecord chunk;
    if (raw->has_value() && DecodeChunk(**raw, chunk)) {
      if (Status s = lexical_.Remove(*txn, tenant, id, i, chunk.terms, chunk.length); !s.ok())
        return s;
    }
    if (Status s = txn->Del(chunks_, key); !s.ok()) return s;
  }
  if (Status s = vectors_.Delete(*txn, tenant, id); !s.ok()) return s;
  if (Status s = txn->Del(by_hash_, TenantKey(tenant, rec->content_hash)); !s.ok()) return s;
  const std::string key = TenantKey(tenant, id);
  if (Status s = txn->Del(text_, key); !s.ok()) return s;
  if (Status s = txn->Del(documents_, key); !s.ok()) return s;
  if (Status s = AddToCounter(*txn, meta_, DocCountKey(tenant), -1); !s.ok()) return s;
  return txn->Commit();
}

Result<uint64_t> DocumentStore::ReindexLexical(const std::string& version,
                                               const ChunkAnalyzer& analyze, size_t batch_chunks) {
  uint64_t reindexed = 0;
  for (;;) {
    auto txn = Txn::BeginWrite(env_);
    if (!txn.ok()) return txn.status();
    auto have = txn->Get(meta_, "analyzer");
    if (!have.ok()) return have.status();
    if (have->has_value() && **have == version) return reindexed;
    auto from = txn->Get(meta_, "reindex_cursor");
    if (!from.ok()) return from.status();
    std::string cursor_key = from->has_value() ? std::string(**from) : std::string();
    // The documents after the cursor, up to about batch_chunks chunks (copied: the writes
    // below would invalidate a cursor's view).
    std::vector<std::pair<std::string, DocumentRecord>> docs;
    {
      auto cur = Cursor::Open(*txn, documents_);
      if (!cur.ok()) return cur.status();
      size_t chunks = 0;
      bool have_doc = cursor_key.empty() ? cur->First() : cur->SeekAtLeast(cursor_key);
      if (have_doc && !cursor_key.empty() && cur->key() == cursor_key) have_doc = cur->Next();
      for (; have_doc && chunks < batch_chunks; have_doc = cur->Next()) {
        DocumentRecord d;
        if (!DecodeDocument(cur->value(), d)) continue;
        chunks += d.chunk_count;
        docs.emplace_back(std::string(cur->key()), std::move(d));
      }
    }
    for (const auto& [key, d] : docs) {
      const std::string_view tenant = std::string_view(key).substr(0, key.size() - d.id.size() - 1);
      for (uint32_t i = 0; i < d.chunk_count; ++i) {
        const std::string chunk_key = ChunkKey(tenant, d.id, i);
        auto raw = txn->Get(chunks_, chunk_key);
        if (!raw.ok()) return raw.status();
        ChunkRecord chunk;
        if (!raw->has_value() || !DecodeChunk(**raw, chunk)) continue;
        if (Status s = lexical_.Remove(*txn, tenant, d.id, i, chunk.terms, chunk.length); !s.ok()) {
          return s;
        }
        chunk.terms.clear();
        analyze(chunk.text, d.title, chunk.terms, chunk.length);
        if (Status s = lexical_.Add(*txn, tenant, d.id, i, chunk.terms, chunk.length); !s.ok()) {
          return s;
        }
        if (Status s = txn->Put(chunks_, chunk_key, EncodeChunk(chunk)); !s.ok()) return s;
        ++reindexed;
      }
    }
    Status s = docs.empty() ? txn->Put(meta_, "analyzer", version)
                            : txn->Put(meta_, "reindex_cursor", docs.back().first);
    if (s.ok() && docs.empty()) s = txn->Del(meta_, "reindex_cursor");
    if (!s.ok()) return s;
    if (Status c = txn->Commit(); !c.ok()) return c;
  }
}

Result<ChunkRecord> DocumentStore::GetChunk(std::string_view tenant, const std::string& document_id,
                                            uint32_t index) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto raw = txn->Get(chunks_, ChunkKey(tenant, document_id, index));
  if (!raw.ok()) return raw.status();
  ChunkRecord c;
  if (!raw->has_value() || !DecodeChunk(**raw, c)) {
    return Status::NotFound("chunk " + std::to_string(index) + " of " + document_id);
  }
  return c;
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
