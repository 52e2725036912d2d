#include "lib/store/chunk_catalog.h"

#include <algorithm>
#include <cstring>

#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

constexpr size_t kSpanBytes = 7 * sizeof(uint32_t);

std::string EncodeSpan(const ChunkSpan& s) {
  const uint32_t fields[7] = {s.doc_num,    s.index,    s.start_byte, s.end_byte,
                              s.start_char, s.end_char, s.length};
  return std::string(reinterpret_cast<const char*>(fields), kSpanBytes);
}

std::string EncodeEntry(const DocEntry& e) {
  const uint32_t fields[2] = {e.first_chunk, e.chunk_count};
  std::string out(reinterpret_cast<const char*>(fields), sizeof fields);
  out.append(e.public_id);
  return out;
}

}  // namespace

bool ChunkFilter::Contains(uint32_t chunk) const {
  if (all) return true;
  auto it = std::upper_bound(
      ranges.begin(), ranges.end(), chunk,
      [](uint32_t c, const std::pair<uint32_t, uint32_t>& r) { return c < r.first; });
  return it != ranges.begin() && chunk < std::prev(it)->second;
}

std::string ChunkKeyPart(uint32_t id) {
  return EncodeBigEndian64(id).substr(4);
}

uint32_t DecodeChunkKeyPart(std::string_view four_bytes) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4 && i < four_bytes.size(); ++i) {
    v = (v << 8) | static_cast<unsigned char>(four_bytes[i]);
  }
  return v;
}

std::vector<std::string> ChunkCatalog::Databases() {
  return {"doc_by_num", "chunk_spans", "index_meta"};
}

ChunkCatalog::ChunkCatalog(const Env& env)
    : docs_(env.Dbi("doc_by_num")), spans_(env.Dbi("chunk_spans")), meta_(env.Dbi("index_meta")) {}

Result<uint32_t> ChunkCatalog::NextChunk(const Txn& txn, std::string_view tenant) const {
  auto next = ReadCounter(txn, meta_, "next_chunk/" + std::string(tenant));
  if (!next.ok()) return next.status();
  return static_cast<uint32_t>(*next);
}

Result<uint32_t> ChunkCatalog::Allocate(Txn& txn, const std::string& counter, uint32_t count) {
  auto next = ReadCounter(txn, meta_, counter);
  if (!next.ok()) return next.status();
  if (*next + count > 0xffffffffull) {
    return Status(ErrorKind::kForbidden, "id_space_exhausted",
                  "this tenant has used all 2^32 document or chunk ids; move its documents to a "
                  "new tenant");
  }
  if (Status s = AddToCounter(txn, meta_, counter, count); !s.ok()) return s;
  return static_cast<uint32_t>(*next);
}

Result<uint32_t> ChunkCatalog::NewDocumentNumber(Txn& txn, std::string_view tenant) {
  return Allocate(txn, "next_doc/" + std::string(tenant), 1);
}

Result<uint32_t> ChunkCatalog::NewChunkIds(Txn& txn, std::string_view tenant, uint32_t count) {
  return Allocate(txn, "next_chunk/" + std::string(tenant), count);
}

Status ChunkCatalog::PutDocument(Txn& txn, std::string_view tenant, uint32_t number,
                                 const DocEntry& entry) {
  return txn.Put(docs_, TenantKey(tenant, ChunkKeyPart(number)), EncodeEntry(entry));
}

Status ChunkCatalog::PutSpan(Txn& txn, std::string_view tenant, uint32_t chunk,
                             const ChunkSpan& span) {
  // Ids grow, so each new span goes at the end of the tenant's range: MDB_APPEND would need
  // the end of the whole database, which another tenant may hold.
  return txn.Put(spans_, TenantKey(tenant, ChunkKeyPart(chunk)), EncodeSpan(span));
}

Status ChunkCatalog::Erase(Txn& txn, std::string_view tenant, uint32_t number,
                           const DocEntry& entry) {
  for (uint32_t i = 0; i < entry.chunk_count; ++i) {
    if (Status s = txn.Del(spans_, TenantKey(tenant, ChunkKeyPart(entry.first_chunk + i)));
        !s.ok()) {
      return s;
    }
  }
  return txn.Del(docs_, TenantKey(tenant, ChunkKeyPart(number)));
}

Result<std::optional<DocEntry>> ChunkCatalog::Document(const Txn& txn, std::string_view tenant,
                                                       uint32_t number) const {
  auto raw = txn.Get(docs_, TenantKey(tenant, ChunkKeyPart(number)));
  if (!raw.ok()) return raw.status();
  if (!raw->has_value() || (*raw)->size() < 8) return std::optional<DocEntry>();
  DocEntry e;
  uint32_t fields[2];
  std::memcpy(fields, (*raw)->data(), sizeof fields);
  e.first_chunk = fields[0];
  e.chunk_count = fields[1];
  e.public_id = std::string((*raw)->substr(8));
  return std::optional<DocEntry>(std::move(e));
}

Result<std::optional<ChunkSpan>> ChunkCatalog::Span(const Txn& txn, std::string_view tenant,
                                                    uint32_t chunk) const {
  auto raw = txn.Get(spans_, TenantKey(tenant, ChunkKeyPart(chunk)));
  if (!raw.ok()) return raw.status();
  if (!raw->has_value() || (*raw)->size() < kSpanBytes) return std::optional<ChunkSpan>();
  uint32_t f[7];
  std::memcpy(f, (*raw)->data(), kSpanBytes);
  return std::optional<ChunkSpan>(ChunkSpan{f[0], f[1], f[2], f[3], f[4], f[5], f[6]});
}

}  // namespace ragstream::store
