#include "lib/store/lexical_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

constexpr double kK1 = 1.2;
constexpr double kB = 0.75;

std::string PostingKey(std::string_view tenant, std::string_view term, std::string_view doc,
                       uint32_t chunk) {
  std::string key = TenantKey(tenant, term);
  key.push_back('\0');
  key.append(doc);
  key.append(EncodeBigEndian64(chunk).substr(4));
  return key;
}

uint64_t ReadU64(std::string_view v) {
  uint64_t x = 0;
  if (v.size() == sizeof x) std::memcpy(&x, v.data(), sizeof x);
  return x;
}
uint32_t ReadU32(std::string_view v, size_t offset = 0) {
  uint32_t x = 0;
  if (v.size() >= offset + sizeof x) std::memcpy(&x, v.data() + offset, sizeof x);
  return x;
}
std::string U32(uint32_t x) {
  return std::string(reinterpret_cast<const char*>(&x), sizeof x);
}
std::string U64(uint64_t x) {
  return std::string(reinterpret_cast<const char*>(&x), sizeof x);
}

// LMDB keys are at most 511 bytes and a posting key is the term plus at most 65 bytes of
// tenant and ~33 of document and chunk: longer terms (the tokenizer keeps them under 64
// bytes) are never indexed.
constexpr size_t kMaxTermBytes = 400;

std::string ChunksKey(std::string_view tenant) {
  return "lex_chunks/" + std::string(tenant);
}
std::string TokensKey(std::string_view tenant) {
  return "lex_tokens/" + std::string(tenant);
}

std::map<std::string, uint32_t> TermFrequencies(const std::vector<std::string>& terms) {
  std::map<std::string, uint32_t> tf;
  for (const auto& t : terms) {
    if (!t.empty() && t.size() <= kMaxTermBytes) ++tf[t];
  }
  return tf;
}

}  // namespace

double Bm25Idf(uint64_t chunks, uint64_t df) {
  double n = static_cast<double>(chunks), d = static_cast<double>(df);
  return std::log(1.0 + (n - d + 0.5) / (d + 0.5));
}

double Bm25TermScore(double idf, uint32_t tf, uint32_t chunk_len, double avg_len) {
  double f = tf;
  double norm = avg_len > 0 ? chunk_len / avg_len : 1.0;
  return idf * f * (kK1 + 1) / (f + kK1 * (1 - kB + kB * norm));
}

std::vector<std::string> LexicalIndex::Databases() {
  return {"lex_postings", "lex_df", "index_meta"};
}

LexicalIndex::LexicalIndex(const Env& env)
    : env_(env),
      postings_(env.Dbi("lex_postings")),
      df_(env.Dbi("lex_df")),
      meta_(env.Dbi("index_meta")) {}

Status LexicalIndex::AdjustTotals(Txn& txn, std::string_view tenant, int64_t chunks,
                                  int64_t tokens) {
  for (auto [name, delta] : {std::pair<std::string, int64_t>{ChunksKey(tenant), chunks},
                             std::pair<std::string, int64_t>{TokensKey(tenant), tokens}}) {
    auto cur = txn.Get(meta_, name);
    if (!cur.ok()) return cur.status();
    int64_t value = static_cast<int64_t>(cur->has_value() ? ReadU64(**cur) : 0) + delta;
    if (Status s = txn.Put(meta_, name, U64(static_cast<uint64_t>(std::max<int64_t>(0, value))));
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

Status LexicalIndex::Add(Txn& txn, std::string_view tenant, std::string_view document_id,
                         uint32_t chunk_index, const std::vector<std::string>& terms) {
  const uint32_t len = static_cast<uint32_t>(terms.size());
  for (const auto& [term, tf] : TermFrequencies(terms)) {
    if (Status s = txn.Put(postings_, PostingKey(tenant, term, document_id, chunk_index),
                           U32(tf) + U32(len));
        !s.ok()) {
      return s;
    }
    const std::string df_key = TenantKey(tenant, term);
    auto df = txn.Get(df_, df_key);
    if (!df.ok()) return df.status();
    uint32_t next = (df->has_value() ? ReadU32(**df) : 0) + 1;
    if (Status s = txn.Put(df_, df_key, U32(next)); !s.ok()) return s;
  }
  return AdjustTotals(txn, tenant, 1, len);
}

Status LexicalIndex::Remove(Txn& txn, std::string_view tenant, std::string_view document_id,
                            uint32_t chunk_index, const std::vector<std::string>& terms) {
  for (const auto& [term, tf] : TermFrequencies(terms)) {
    if (Status s = txn.Del(postings_, PostingKey(tenant, term, document_id, chunk_index));
        !s.ok()) {
      return s;
    }
    const std::string df_key = TenantKey(tenant, term);
    auto df = txn.Get(df_, df_key);
    if (!df.ok()) return df.status();
    uint32_t current = df->has_value() ? ReadU32(**df) : 0;
    Status s = current <= 1 ? txn.Del(df_, df_key) : txn.Put(df_, df_key, U32(current - 1));
    if (!s.ok()) return s;
  }
  return AdjustTotals(txn, tenant, -1, -static_cast<int64_t>(terms.size()));
}

Result<std::vector<LexicalHit>> LexicalIndex::Search(std::string_view tenant,
                                                     const std::vector<std::string>& query_terms,
                                                     size_t k,
                                                     const std::vector<std::string>& filter) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto chunks = txn->Get(meta_, ChunksKey(tenant));
  auto tokens = txn->Get(meta_, TokensKey(tenant));
  if (!chunks.ok()) return chunks.status();
  if (!tokens.ok()) return tokens.status();
  uint64_t n = chunks->has_value() ? ReadU64(**chunks) : 0;
  uint64_t total = tokens->has_value() ? ReadU64(**tokens) : 0;
  if (n == 0) return std::vector<LexicalHit>();
  double avg_len = static_cast<double>(total) / static_cast<double>(n);

  // Accumulate per chunk; the key is the posting key's tail (document id + chunk index).
  std::unordered_map<std::string, double> scores;
  auto cur = Cursor::Open(*txn, postings_);
  if (!cur.ok()) return cur.status();
  for (const auto& [term, query_tf] : TermFrequencies(query_terms)) {
    (void)query_tf;
    auto df = txn->Get(df_, TenantKey(tenant, term));
    if (!df.ok()) return df.status();
    if (!df->has_value()) continue;
    double idf = Bm25Idf(n, ReadU32(**df));
    std::string prefix = TenantKey(tenant, term);
    prefix.push_back('\0');
    for (bool have = cur->SeekAtLeast(prefix);
         have && cur->key().substr(0, prefix.size()) == prefix; have = cur->Next()) {
      std::string_view tail = cur->key().substr(prefix.size());
      if (tail.size() < 4) continue;
      if (!filter.empty() && std::find(filter.begin(), filter.end(),
                                       tail.substr(0, tail.size() - 4)) == filter.end()) {
        continue;
      }
      std::string_view v = cur->value();
      scores[std::string(tail)] += Bm25TermScore(idf, ReadU32(v, 0), ReadU32(v, 4), avg_len);
    }
  }
  std::vector<LexicalHit> hits;
  hits.reserve(scores.size());
  for (auto& [tail, score] : scores) {
    uint32_t index = static_cast<uint32_t>(
        DecodeBigEndian64(std::string(4, '\0') + tail.substr(tail.size() - 4)));
    hits.push_back({score, tail.substr(0, tail.size() - 4), index});
  }
  auto better = [](const LexicalHit& a, const LexicalHit& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.document_id != b.document_id) return a.document_id < b.document_id;
    return a.chunk_index < b.chunk_index;
  };
  if (hits.size() > k) {
    std::partial_sort(hits.begin(), hits.begin() + static_cast<long>(k), hits.end(), better);
    hits.resize(k);
  } else {
    std::sort(hits.begin(), hits.end(), better);
  }
  return hits;
}

}  // namespace ragstream::store
