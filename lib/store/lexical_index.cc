#include "lib/store/lexical_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <unordered_map>

#include "lib/core/log.h"
#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

constexpr double kK1 = 1.2;
constexpr double kB = 0.75;

// Postings per block: a block of a common term stays well inside a 4 KB page (about 500
// bytes), so rewriting the last block of each term a batch touches costs little.
constexpr size_t kBlockPostings = 128;

// LMDB keys are at most 511 bytes and a block key is the term plus at most 65 bytes of
// tenant and 5 of separator and id: longer terms (the tokenizer keeps them under 64 bytes) are
// never indexed.
constexpr size_t kMaxTermBytes = 400;

struct Posting {
  uint32_t chunk, tf;
};

// Chunk lengths (BM25's document lengths) live apart from the postings, as Lucene keeps its
// norms: u16 arrays of this many chunks, one 4 KB overflow page each.
constexpr uint32_t kNormsPerBlock = 2040;

void PutVarint(std::string& out, uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutVarint64(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint64(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift <= 63 && !in.empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

bool GetVarint(std::string_view& in, uint32_t& v) {
  uint64_t wide = 0;
  if (!GetVarint64(in, wide) || wide > UINT32_MAX) return false;
  v = static_cast<uint32_t>(wide);
  return true;
}

// A block's value starts with this tag, then each posting is one varint: its chunk id's gap
// from the previous one (from the key's id for the first) times two, plus one when the term
// occurs once in the chunk (most postings); otherwise its frequency follows as a second varint.
// Blocks written before the tag (two varints a posting, gap then frequency) start with the
// first posting's gap, 0, and are read as they are.
constexpr char kPackedTag = '\xff';

// The postings of a block whose key ends in `first`. A malformed tail is dropped.
void DecodeBlock(uint32_t first, std::string_view value, std::vector<Posting>& out) {
  out.clear();
  uint64_t chunk = first;
  if (!value.empty() && value.front() == kPackedTag) {
    value.remove_prefix(1);
    while (!value.empty()) {
      uint64_t packed = 0;
      uint32_t tf = 1;
      if (!GetVarint64(value, packed) || (!(packed & 1) && !GetVarint(value, tf))) return;
      chunk += packed >> 1;
      if (chunk > UINT32_MAX) return;
      out.push_back({static_cast<uint32_t>(chunk), tf});
    }
    return;
  }
  while (!value.empty()) {
    uint32_t gap, tf;
    if (!GetVarint(value, gap) || !GetVarint(value, tf)) return;
    chunk += gap;
    if (chunk > UINT32_MAX) return;
    out.push_back({static_cast<uint32_t>(chunk), tf});
  }
}

std::string EncodeBlock(const Posting* p, size_t n) {
  std::string out;
  out.reserve(1 + n * 3);
  out.push_back(kPackedTag);
  uint32_t previous = n ? p[0].chunk : 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t gap = p[i].chunk - previous;
    PutVarint64(out, gap << 1 | (p[i].tf == 1 ? 1 : 0));
    if (p[i].tf != 1) PutVarint(out, p[i].tf);
    previous = p[i].chunk;
  }
  return out;
}

std::string TermPrefix(std::string_view tenant, std::string_view term) {
  std::string prefix = TenantKey(tenant, term);
  prefix.push_back('\0');
  return prefix;
}

uint32_t BlockFirst(std::string_view key, size_t prefix_size) {
  return DecodeChunkKeyPart(key.substr(prefix_size));
}

// The block of a term where `chunk` belongs: the last one starting at or before it, else the
// term's first block (when `chunk` comes before all of them). Its key, its postings and where
// the next block starts (UINT32_MAX + 1 when it is the last). Empty key: the term has none.
struct Located {
  std::string key;
  std::vector<Posting> postings;
  uint64_t next_first = uint64_t{1} << 32;
};

bool Locate(Cursor& cur, const std::string& prefix, uint32_t chunk, Located& out) {
  out.key.clear();
  out.postings.clear();
  out.next_first = uint64_t{1} << 32;
  bool here = cur.SeekAtLeast(prefix + ChunkKeyPart(chunk));
  bool at_block =
      here && HasPrefix(cur.key(), prefix) && BlockFirst(cur.key(), prefix.size()) == chunk;
  if (!at_block) {
    // The block before (starting below `chunk`), if it is this term's.
    bool back = here ? cur.Prev() : cur.Last();
    at_block = back && HasPrefix(cur.key(), prefix);
    if (!at_block) {
      // `chunk` precedes every block of the term: merge into the first one, if any.
      if (cur.SeekAtLeast(prefix) && HasPrefix(cur.key(), prefix)) at_block = true;
    }
  }
  if (!at_block) return false;
  out.key = std::string(cur.key());
  DecodeBlock(BlockFirst(out.key, prefix.size()), cur.value(), out.postings);
  if (cur.Next() && HasPrefix(cur.key(), prefix)) {
    out.next_first = BlockFirst(cur.key(), prefix.size());
  }
  return true;
}

uint32_t ReadU32(std::string_view v) {
  uint32_t x = 0;
  if (v.size() >= sizeof x) std::memcpy(&x, v.data(), sizeof x);
  return x;
}
std::string U32(uint32_t x) {
  return std::string(reinterpret_cast<const char*>(&x), sizeof x);
}

std::string ChunksKey(std::string_view tenant) {
  return "bm25_chunks/" + std::string(tenant);
}
std::string TokensKey(std::string_view tenant) {
  return "bm25_tokens/" + std::string(tenant);
}

// Writes `postings` (sorted, unique) as blocks of the term, replacing `old_key` (if any).
Status WriteBlocks(Txn& txn, MDB_dbi dbi, const std::string& prefix, const std::string& old_key,
                   const std::vector<Posting>& postings) {
  // A block that keeps its first id is overwritten by the first Put below.
  if (!old_key.empty() &&
      (postings.empty() || old_key != prefix + ChunkKeyPart(postings.front().chunk))) {
    if (Status s = txn.Del(dbi, old_key); !s.ok()) return s;
  }
  for (size_t at = 0; at < postings.size(); at += kBlockPostings) {
    const size_t n = std::min(kBlockPostings, postings.size() - at);
    if (Status s =
            txn.Put(dbi, prefix + ChunkKeyPart(postings[at].chunk), EncodeBlock(&postings[at], n));
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// A term's document frequency is stored (lex_doc_freq) only when it is above this; a rarer
// term's is the number of postings in its blocks, counted when needed (a block or two). Most
// terms are rare -- version strings, names, numbers -- and their df entries were a fifth of
// the lexical index.
constexpr uint32_t kStoredDfAbove = kBlockPostings;

// The postings in a term's blocks.
uint32_t CountPostings(Cursor& cur, const std::string& prefix) {
  uint32_t n = 0;
  std::vector<Posting> postings;
  for (bool have = cur.SeekAtLeast(prefix); have && HasPrefix(cur.key(), prefix);
       have = cur.Next()) {
    DecodeBlock(BlockFirst(cur.key(), prefix.size()), cur.value(), postings);
    n += static_cast<uint32_t>(postings.size());
  }
  return n;
}

// A term's df: stored, or counted. `stored` says which.
struct Df {
  uint32_t value = 0;
  bool stored = false;
};
Result<Df> ReadDf(const Txn& txn, MDB_dbi dbi, Cursor& cur, const std::string& df_key,
                  const std::string& prefix) {
  auto df = txn.Get(dbi, df_key);
  if (!df.ok()) return df.status();
  if (df->has_value()) return Df{ReadU32(**df), true};
  return Df{CountPostings(cur, prefix), false};
}

// Keeps the df entry exactly when the new df is above kStoredDfAbove.
Status StoreDf(Txn& txn, MDB_dbi dbi, const std::string& df_key, const Df& before, int64_t delta) {
  const int64_t next = int64_t{before.value} + delta;
  if (next > kStoredDfAbove) return txn.Put(dbi, df_key, U32(static_cast<uint32_t>(next)));
  return before.stored ? txn.Del(dbi, df_key) : Status::Ok();
}

// Sets (or, with `erase`, clears) the lengths of `lengths`' chunks in their norm blocks; a
// block left all zero is deleted.
Status WriteNorms(Txn& txn, MDB_dbi dbi, std::string_view tenant,
                  std::vector<std::pair<uint32_t, uint32_t>> lengths, bool erase) {
  std::sort(lengths.begin(), lengths.end());
  std::string block;
  for (size_t i = 0; i < lengths.size();) {
    const uint32_t number = lengths[i].first / kNormsPerBlock;
    const std::string key = TenantKey(tenant, ChunkKeyPart(number));
    auto have = txn.Get(dbi, key);
    if (!have.ok()) return have.status();
    block.assign(kNormsPerBlock * sizeof(uint16_t), '\0');
    if (have->has_value()) block.replace(0, std::min(block.size(), (*have)->size()), **have);
    for (; i < lengths.size() && lengths[i].first / kNormsPerBlock == number; ++i) {
      const auto v =
          static_cast<uint16_t>(erase ? 0 : std::min<uint32_t>(lengths[i].second, 65535));
      std::memcpy(&block[(lengths[i].first % kNormsPerBlock) * sizeof v], &v, sizeof v);
    }
    Status s = block.find_first_not_of('\0') == std::string::npos ? txn.Del(dbi, key)
                                                                  : txn.Put(dbi, key, block);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// Chunk lengths read in place from the norm blocks of a read transaction.
class NormReader {
 public:
  NormReader(const Txn& txn, MDB_dbi dbi, std::string_view tenant)
      : txn_(txn), dbi_(dbi), tenant_(tenant) {}
  uint32_t Length(uint32_t chunk) {
    const uint32_t number = chunk / kNormsPerBlock;
    if (number != last_number_) {
      auto it = blocks_.find(number);
      if (it == blocks_.end()) {
        auto v = txn_.Get(dbi_, TenantKey(tenant_, ChunkKeyPart(number)));
        it = blocks_.emplace(number, v.ok() && v->has_value() ? **v : std::string_view()).first;
      }
      last_number_ = number;
      last_ = it->second;
    }
    const size_t at = size_t{chunk % kNormsPerBlock} * sizeof(uint16_t);
    uint16_t v = 0;
    if (at + sizeof v <= last_.size()) std::memcpy(&v, last_.data() + at, sizeof v);
    return v;
  }

 private:
  const Txn& txn_;
  MDB_dbi dbi_;
  std::string_view tenant_;
  std::unordered_map<uint32_t, std::string_view> blocks_;
  uint32_t last_number_ = UINT32_MAX;
  std::string_view last_;
};

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

void PostingBatch::Add(uint32_t chunk, const std::vector<std::string>& terms, uint32_t length) {
  std::unordered_map<std::string_view, uint32_t> tf;
  for (const auto& t : terms) {
    if (!t.empty() && t.size() <= kMaxTermBytes) ++tf[t];
  }
  for (const auto& [term, count] : tf) {
    auto it = terms_.find(term);
    if (it == terms_.end()) it = terms_.emplace(std::string(term), std::vector<Posting>()).first;
    it->second.push_back({chunk, count});
  }
  lengths_.emplace_back(chunk, length);
  tokens_ += length;
}

std::vector<std::string> LexicalIndex::Databases() {
  return {"lex_blocks", "lex_doc_freq", "lex_norms", "index_meta"};
}

LexicalIndex::LexicalIndex(const Env& env)
    : env_(env),
      blocks_(env.Dbi("lex_blocks")),
      df_(env.Dbi("lex_doc_freq")),
      norms_(env.Dbi("lex_norms")),
      meta_(env.Dbi("index_meta")) {}

Status LexicalIndex::AdjustTotals(Txn& txn, std::string_view tenant, int64_t chunks,
                                  int64_t tokens) {
  if (Status s = AddToCounter(txn, meta_, ChunksKey(tenant), chunks); !s.ok()) return s;
  return AddToCounter(txn, meta_, TokensKey(tenant), tokens);
}

Status LexicalIndex::Write(Txn& txn, std::string_view tenant, const PostingBatch& batch) {
  if (batch.empty()) return Status::Ok();
  auto cur = Cursor::Open(txn, blocks_);
  if (!cur.ok()) return cur.status();
  std::vector<PostingBatch::Posting> adding;
  Located block;
  std::vector<Posting> merged;
  for (const auto& [term, batch_postings] : batch.terms_) {
    adding = batch_postings;
    std::sort(adding.begin(), adding.end(),
              [](const auto& a, const auto& b) { return a.chunk < b.chunk; });
    const std::string prefix = TermPrefix(tenant, term);
    const std::string df_key = TenantKey(tenant, term);
    auto df = ReadDf(txn, df_, *cur, df_key, prefix);
    if (!df.ok()) return df.status();
    int64_t added = 0;
    for (size_t i = 0; i < adding.size();) {
      const bool found = Locate(*cur, prefix, adding[i].chunk, block);
      // This block takes the new postings that come before the next block.
      size_t j = i;
      while (j < adding.size() && adding[j].chunk < block.next_first) ++j;
      merged.clear();
      merged.reserve(block.postings.size() + (j - i));
      size_t a = 0, b = i;
      while (a < block.postings.size() || b < j) {
        if (b == j || (a < block.postings.size() && block.postings[a].chunk < adding[b].chunk)) {
          merged.push_back(block.postings[a++]);
        } else {
          // A chunk already there is replaced (the batch is the newer word on it).
          if (a < block.postings.size() && block.postings[a].chunk == adding[b].chunk) {
            ++a;
          } else {
            ++added;
          }
          merged.push_back({adding[b].chunk, adding[b].tf});
          ++b;
        }
      }
      if (Status s = WriteBlocks(txn, blocks_, prefix, found ? block.key : std::string(), merged);
          !s.ok()) {
        return s;
      }
      i = j;
    }
    if (Status s = StoreDf(txn, df_, df_key, *df, added); !s.ok()) return s;
  }
  if (Status s = WriteNorms(txn, norms_, tenant, batch.lengths_, false); !s.ok()) return s;
  return AdjustTotals(txn, tenant, static_cast<int64_t>(batch.lengths_.size()),
                      static_cast<int64_t>(batch.tokens_));
}

Status LexicalIndex::Erase(Txn& txn, std::string_view tenant, const PostingBatch& batch) {
  if (batch.empty()) return Status::Ok();
  auto cur = Cursor::Open(txn, blocks_);
  if (!cur.ok()) return cur.status();
  std::vector<uint32_t> gone;
  Located block;
  std::vector<Posting> kept;
  int64_t expected = 0, found = 0;  // postings the batch names, and those that were there
  for (const auto& [term, batch_postings] : batch.terms_) {
    gone.clear();
    for (const auto& p : batch_postings) gone.push_back(p.chunk);
    std::sort(gone.begin(), gone.end());
    const std::string prefix = TermPrefix(tenant, term);
    const std::string df_key = TenantKey(tenant, term);
    auto df = ReadDf(txn, df_, *cur, df_key, prefix);
    if (!df.ok()) return df.status();
    int64_t removed = 0;
    for (size_t i = 0; i < gone.size();) {
      if (!Locate(*cur, prefix, gone[i], block)) break;  // the term has no blocks left
      size_t j = i;
      while (j < gone.size() && gone[j] < block.next_first) ++j;
      kept.clear();
      for (const Posting& p : block.postings) {
        if (std::binary_search(gone.begin() + static_cast<long>(i),
                               gone.begin() + static_cast<long>(j), p.chunk)) {
          ++removed;
        } else {
          kept.push_back(p);
        }
      }
      if (kept.size() != block.postings.size()) {
        if (Status s = WriteBlocks(txn, blocks_, prefix, block.key, kept); !s.ok()) return s;
      }
      i = j;
    }
    if (Status s = StoreDf(txn, df_, df_key, *df, -removed); !s.ok()) return s;
    expected += static_cast<int64_t>(batch_postings.size());
    found += removed;
  }
  // The batch is the document analysed again: a posting not found means the analysis has
  // changed since it was added (the analyzer's version guards against that), and the
  // index keeps a stale posting. Say so.
  if (found < expected) {
    LogWarn("lexical", "a delete did not find every posting of its chunks",
            {{"expected", std::to_string(expected)}, {"found", std::to_string(found)}});
  }
  if (Status s = WriteNorms(txn, norms_, tenant, batch.lengths_, true); !s.ok()) return s;
  return AdjustTotals(txn, tenant, -static_cast<int64_t>(batch.lengths_.size()),
                      -static_cast<int64_t>(batch.tokens_));
}

Result<LexicalResult> LexicalIndex::Search(std::string_view tenant,
                                           const std::vector<WeightedTerm>& query_terms, size_t k,
                                           const ChunkFilter& filter) const {
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
    std::string prefix;  // T/term + '\0': the key prefix of its blocks
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
  auto cur = Cursor::Open(*txn, blocks_);
  if (!cur.ok()) return cur.status();
  for (const auto& [term, weight_optional] : weights) {
    const auto [weight, optional] = weight_optional;
    const std::string prefix = TermPrefix(tenant, term);
    auto df = ReadDf(*txn, df_, *cur, TenantKey(tenant, term), prefix);
    if (!df.ok()) return df.status();
    if (df->value == 0) {
      if (!optional) result.query_mass += weight * Bm25Idf(n, 0);
      continue;
    }
    QueryTerm t;
    t.prefix = prefix;
    t.idf = weight * Bm25Idf(n, df->value);
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

  // Candidates: their chunk ids, in increasing order, and the score summed so far. Each term's
  // postings come in chunk id order too, so a term is merged in (no hashing per posting).
  std::vector<uint32_t> ids, term_ids, merged_ids;
  std::vector<double> score, term_score, merged_score;
  auto kth_best = [&] {
    std::vector<double> top(score);
    std::nth_element(top.begin(), top.begin() + static_cast<long>(k - 1), top.end(),
                     std::greater<double>());
    return top[k - 1];
  };
  NormReader norms(*txn, norms_, tenant);
  std::vector<Posting> postings;
  size_t j = 0;
  for (; j < terms.size(); ++j) {
    // Once k chunks have more than any chunk could get from the terms left, a chunk those
    // terms alone would find cannot reach the top k: the rest is scored by lookups below,
    // instead of reading the long postings lists of common terms.
    if (prunable && j > 0 && score.size() >= k && kth_best() > remaining[j]) break;
    const QueryTerm& t = terms[j];
    term_ids.clear();
    term_score.clear();
    for (bool have = cur->SeekAtLeast(t.prefix); have && HasPrefix(cur->key(), t.prefix);
         have = cur->Next()) {
      DecodeBlock(BlockFirst(cur->key(), t.prefix.size()), cur->value(), postings);
      for (const Posting& p : postings) {
        if (!filter.Contains(p.chunk)) continue;
        term_ids.push_back(p.chunk);
        term_score.push_back(Bm25TermScore(t.idf, p.tf, norms.Length(p.chunk), avg_len));
      }
    }
    // A chunk's score is summed in term order, starting from 0, whichever list it came from.
    merged_ids.clear();
    merged_score.clear();
    size_t a = 0, b = 0;
    while (a < ids.size() || b < term_ids.size()) {
      if (b == term_ids.size() || (a < ids.size() && ids[a] < term_ids[b])) {
        merged_ids.push_back(ids[a]);
        merged_score.push_back(score[a++]);
      } else if (a == ids.size() || term_ids[b] < ids[a]) {
        merged_ids.push_back(term_ids[b]);
        merged_score.push_back(0.0 + term_score[b++]);
      } else {
        merged_ids.push_back(ids[a]);
        merged_score.push_back(score[a++] + term_score[b++]);
      }
    }
    ids.swap(merged_ids);
    score.swap(merged_score);
  }
  std::vector<size_t> kept(score.size());
  for (size_t c = 0; c < kept.size(); ++c) kept[c] = c;  // in chunk id order
  if (j < terms.size()) {
    // Only chunks that can still reach the k-th best score need the terms left: in chunk id
    // order, each looks up the block of the term that would hold it (neighbours share one).
    const double threshold = kth_best();
    std::erase_if(kept, [&](size_t c) { return score[c] + remaining[j] < threshold; });
    Located block;
    for (; j < terms.size(); ++j) {
      const QueryTerm& t = terms[j];
      uint64_t block_first = 1, block_end = 0;  // the loaded block covers [first, end)
      for (size_t c : kept) {
        const uint32_t id = ids[c];
        if (id < block_first || id >= block_end) {
          if (!Locate(*cur, t.prefix, id, block)) break;
          block_first = block.postings.empty() ? block.next_first : block.postings.front().chunk;
          block_end = block.next_first;
          if (id < block_first) continue;  // before the term's first block
        }
        auto it = std::lower_bound(block.postings.begin(), block.postings.end(), id,
                                   [](const Posting& p, uint32_t v) { return p.chunk < v; });
        if (it == block.postings.end() || it->chunk != id) continue;
        score[c] += Bm25TermScore(t.idf, it->tf, norms.Length(id), avg_len);
      }
    }
  }
  std::vector<LexicalHit>& hits = result.hits;
  hits.reserve(kept.size());
  for (size_t c : kept) hits.push_back({score[c], ids[c]});
  auto better = [](const LexicalHit& a, const LexicalHit& b) {
    return a.score != b.score ? a.score > b.score : a.chunk < b.chunk;
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
