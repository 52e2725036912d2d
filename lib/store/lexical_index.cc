#include "lib/store/lexical_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
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

uint32_t ReadU32(std::string_view v, size_t offset = 0) {
  uint32_t x = 0;
  if (v.size() >= offset + sizeof x) std::memcpy(&x, v.data() + offset, sizeof x);
  return x;
}
std::string U32(uint32_t x) {
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

std::vector<WeightedTerm> Unweighted(const std::vector<std::string>& terms) {
  std::vector<WeightedTerm> out;
  out.reserve(terms.size());
  for (const auto& t : terms) out.push_back({t, 1.0});
  return out;
}

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
  if (Status s = AddToCounter(txn, meta_, ChunksKey(tenant), chunks); !s.ok()) return s;
  return AddToCounter(txn, meta_, TokensKey(tenant), tokens);
}

Status LexicalIndex::Add(Txn& txn, std::string_view tenant, std::string_view document_id,
                         uint32_t chunk_index, const std::vector<std::string>& terms,
                         uint32_t length) {
  for (const auto& [term, tf] : TermFrequencies(terms)) {
    if (Status s = txn.Put(postings_, PostingKey(tenant, term, document_id, chunk_index),
                           U32(tf) + U32(length));
        !s.ok()) {
      return s;
    }
    const std::string df_key = TenantKey(tenant, term);
    auto df = txn.Get(df_, df_key);
    if (!df.ok()) return df.status();
    uint32_t next = (df->has_value() ? ReadU32(**df) : 0) + 1;
    if (Status s = txn.Put(df_, df_key, U32(next)); !s.ok()) return s;
  }
  return AdjustTotals(txn, tenant, 1, length);
}

Status LexicalIndex::Remove(Txn& txn, std::string_view tenant, std::string_view document_id,
                            uint32_t chunk_index, const std::vector<std::string>& terms,
                            uint32_t length) {
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
  return AdjustTotals(txn, tenant, -1, -static_cast<int64_t>(length));
}

Result<LexicalResult> LexicalIndex::Search(std::string_view tenant,
                                           const std::vector<WeightedTerm>& query_terms, size_t k,
                                           const std::vector<std::string>& filter) const {
  auto txn = Txn::BeginRead(env_);
  if (!txn.ok()) return txn.status();
  auto chunks = ReadCounter(*txn, meta_, ChunksKey(tenant));
  if (!chunks.ok()) return chunks.status();
  auto tokens = ReadCounter(*txn, meta_, TokensKey(tenant));
  if (!tokens.ok()) return tokens.status();
  const uint64_t n = *chunks, total = *tokens;
  LexicalResult result;
  if (n == 0 || k == 0) return result;
  double avg_len = static_cast<double>(total) / static_cast<double>(n);

  // The query's terms that the tenant has, with their IDF and the most a chunk can get from
  // each: BM25's tf part is below k1 + 1, so a term adds less than idf * (k1 + 1).
  struct QueryTerm {
    std::string prefix;  // T/term + '\0': the key prefix of its postings
    double idf = 0;      // times the term's weight
    double bound = 0;
  };
  // Duplicates summed (a term is optional only if every mention of it is); sorted, so
  // deterministic.
  std::map<std::string_view, std::pair<double, bool>> weights;
  for (const auto& t : query_terms) {
    if (!t.term.empty() && t.term.size() <= kMaxTermBytes && t.weight > 0) {
      auto [it, inserted] = weights.try_emplace(t.term, 0.0, true);
      it->second.first += t.weight;
      it->second.second = it->second.second && t.optional;
    }
  }
  std::vector<QueryTerm> terms;
  bool prunable = true;
  for (const auto& [term, weight_optional] : weights) {
    const auto [weight, optional] = weight_optional;
    auto df = txn->Get(df_, TenantKey(tenant, term));
    if (!df.ok()) return df.status();
    if (!df->has_value()) {
      if (!optional) result.query_mass += weight * Bm25Idf(n, 0);
      continue;
    }
    QueryTerm t;
    t.prefix = TenantKey(tenant, term);
    t.prefix.push_back('\0');
    t.idf = weight * Bm25Idf(n, ReadU32(**df));
    result.query_mass += t.idf;
    t.bound = t.idf * (kK1 + 1);
    prunable = prunable && t.idf > 0;  // a stale df above N could make it negative
    terms.push_back(std::move(t));
  }
  // Rarest (highest bound) first: their short lists find the best chunks early. Every
  // chunk's score is summed in this same order, so equal chunks score exactly equal.
  std::stable_sort(terms.begin(), terms.end(),
                   [](const QueryTerm& a, const QueryTerm& b) { return a.bound > b.bound; });
  // remaining[j]: the most a chunk can get from terms j.. (with a margin for rounding).
  std::vector<double> remaining(terms.size() + 1, 0.0);
  for (size_t j = terms.size(); j-- > 0;) remaining[j] = remaining[j + 1] + terms[j].bound;
  for (double& r : remaining) r *= 1 + 1e-9;

  // Candidates: the posting key's tail (document id + chunk index), viewed in the memory map
  // (valid while the read transaction is open), and the score summed so far.
  std::unordered_map<std::string_view, size_t> slot;
  std::vector<std::string_view> tails;
  std::vector<double> score;
  auto kth_best = [&] {
    std::vector<double> top(score);
    std::nth_element(top.begin(), top.begin() + static_cast<long>(k - 1), top.end(),
                     std::greater<double>());
    return top[k - 1];
  };
  auto in_filter = [&](std::string_view tail) {
    return filter.empty() ||
           std::find(filter.begin(), filter.end(), tail.substr(0, tail.size() - 4)) != filter.end();
  };
  auto cur = Cursor::Open(*txn, postings_);
  if (!cur.ok()) return cur.status();
  size_t j = 0;
  for (; j < terms.size(); ++j) {
    // Once k chunks have more than any chunk could get from the terms left, a chunk those
    // terms alone would find cannot reach the top k: the rest is scored by lookups below,
    // instead of reading the long postings lists of common terms.
    if (prunable && j > 0 && score.size() >= k && kth_best() > remaining[j]) break;
    const QueryTerm& t = terms[j];
    for (bool have = cur->SeekAtLeast(t.prefix); have && HasPrefix(cur->key(), t.prefix);
         have = cur->Next()) {
      std::string_view tail = cur->key().substr(t.prefix.size());
      if (tail.size() < 4 || !in_filter(tail)) continue;
      std::string_view v = cur->value();
      const double s = Bm25TermScore(t.idf, ReadU32(v, 0), ReadU32(v, 4), avg_len);
      auto [it, inserted] = slot.emplace(tail, score.size());
      if (inserted) {
        tails.push_back(tail);
        score.push_back(0.0);
      }
      score[it->second] += s;
    }
  }
  std::vector<size_t> kept(score.size());
  for (size_t c = 0; c < kept.size(); ++c) kept[c] = c;
  if (j < terms.size()) {
    // Only chunks that can still reach the k-th best score need the terms left; each is a
    // point lookup of its posting key.
    const double threshold = kth_best();
    std::erase_if(kept, [&](size_t c) { return score[c] + remaining[j] < threshold; });
    std::string key;
    for (; j < terms.size(); ++j) {
      const QueryTerm& t = terms[j];
      for (size_t c : kept) {
        key.assign(t.prefix).append(tails[c]);
        auto v = txn->Get(postings_, key);
        if (!v.ok()) return v.status();
        if (!v->has_value()) continue;
        score[c] += Bm25TermScore(t.idf, ReadU32(**v, 0), ReadU32(**v, 4), avg_len);
      }
    }
  }
  std::vector<LexicalHit>& hits = result.hits;
  hits.reserve(kept.size());
  for (size_t c : kept) {
    std::string_view tail = tails[c];
    uint32_t index = static_cast<uint32_t>(
        DecodeBigEndian64(std::string(4, '\0') + std::string(tail.substr(tail.size() - 4))));
    hits.push_back({score[c], std::string(tail.substr(0, tail.size() - 4)), index});
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
  return result;
}

}  // namespace ragstream::store
