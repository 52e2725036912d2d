#include "lib/rag/retriever.h"

#include <algorithm>
#include <future>
#include <unordered_map>

#include "lib/core/json.h"
#include "lib/rag/text.h"

namespace ragstream::rag {
namespace {

// A single-mode search fetches this many candidates per result, so that the per-document cap
// still leaves top_k results.
constexpr size_t kSingleModeCandidatesPerResult = 3;

std::string ChunkId(const std::string& doc, uint32_t index) {
  return doc + ":" + std::to_string(index);
}

bool SplitChunkId(const std::string& id, std::string& doc, uint32_t& index) {
  size_t colon = id.rfind(':');
  if (colon == std::string::npos) return false;
  doc = id.substr(0, colon);
  index = static_cast<uint32_t>(std::stoul(id.substr(colon + 1)));
  return true;
}

}  // namespace

std::vector<RankedId> ReciprocalRankFusion(const std::vector<std::vector<std::string>>& lists,
                                           double k, const std::vector<double>& weights) {
  std::vector<RankedId> fused;
  std::unordered_map<std::string, size_t> position;
  for (size_t l = 0; l < lists.size(); ++l) {
    const double weight = l < weights.size() ? weights[l] : 1.0;
    const auto& list = lists[l];
    for (size_t rank = 0; rank < list.size(); ++rank) {
      auto [it, inserted] = position.emplace(list[rank], fused.size());
      if (inserted) fused.push_back({list[rank], 0});
      fused[it->second].score += weight / (k + static_cast<double>(rank + 1));
    }
  }
  std::stable_sort(fused.begin(), fused.end(),
                   [](const RankedId& a, const RankedId& b) { return a.score > b.score; });
  return fused;
}

Retriever::Retriever(const store::DocumentStore& store, Embedder& embedder,
                     RetrieverOptions options)
    : store_(store), embedder_(embedder), options_(options) {}

Result<std::vector<Passage>> Retriever::Retrieve(const RetrievalRequest& request) const {
  if (request.tenant.empty()) return Status::Internal("retrieval without a tenant");
  const size_t k = request.top_k;
  const size_t candidates =
      request.mode == RetrievalMode::kHybrid
          ? std::max(k * options_.fusion_depth_per_result, options_.min_fusion_depth)
          : k * kSingleModeCandidatesPerResult;
  std::vector<std::string> vector_ids, lexical_ids;
  std::unordered_map<std::string, double> raw_score;

  // In hybrid mode BM25 runs on its own thread while the query is embedded and the vectors
  // scanned: the two searches are independent, and the time to first token pays the longer
  // of them rather than their sum. (An early return below still waits for it: a future from
  // std::async joins in its destructor.)
  auto lexical_search = [&] {
    return store_.lexical().Search(request.tenant, Tokenize(request.query), candidates,
                                   request.document_ids);
  };
  std::future<Result<std::vector<store::LexicalHit>>> lexical_running;
  if (request.mode == RetrievalMode::kHybrid) {
    lexical_running = std::async(std::launch::async, lexical_search);
  }
  if (request.mode != RetrievalMode::kLexical) {
    auto embedded = embedder_.Embed({request.query});
    if (!embedded.ok()) return embedded.status();
    const std::vector<float>& q = embedded->front();
    auto hits = store_.vectors().Search(request.tenant, q.data(), static_cast<uint32_t>(q.size()),
                                        candidates, request.document_ids);
    if (!hits.ok()) return hits.status();
    for (const auto& h : *hits) {
      vector_ids.push_back(ChunkId(h.document_id, h.chunk_index));
      raw_score.emplace(vector_ids.back(), h.score);
    }
  }
  if (request.mode != RetrievalMode::kVector) {
    auto hits = lexical_running.valid() ? lexical_running.get() : lexical_search();
    if (!hits.ok()) return hits.status();
    for (const auto& h : *hits) {
      lexical_ids.push_back(ChunkId(h.document_id, h.chunk_index));
      raw_score.emplace(lexical_ids.back(), h.score);
    }
  }

  std::vector<RankedId> ranked;
  if (request.mode == RetrievalMode::kHybrid) {
    ranked = ReciprocalRankFusion({vector_ids, lexical_ids}, options_.rrf_k,
                                  {options_.vector_weight, options_.lexical_weight});
  } else {
    for (const auto& id : request.mode == RetrievalMode::kVector ? vector_ids : lexical_ids) {
      ranked.push_back({id, raw_score[id]});
    }
  }
  // At most max_chunks_per_document chunks of one document, then the first k.
  std::unordered_map<std::string, size_t> per_document;
  std::vector<RankedId> kept;
  for (auto& r : ranked) {
    if (kept.size() == k) break;
    size_t& n = per_document[r.id.substr(0, r.id.rfind(':'))];
    if (n == options_.max_chunks_per_document) continue;
    ++n;
    kept.push_back(std::move(r));
  }
  ranked = std::move(kept);

  std::vector<Passage> passages;
  std::unordered_map<std::string, std::string> titles;
  for (const auto& r : ranked) {
    Passage p;
    if (!SplitChunkId(r.id, p.document_id, p.chunk_index)) continue;
    auto chunk = store_.GetChunk(request.tenant, p.document_id, p.chunk_index);
    if (!chunk.ok()) continue;  // deleted since the search: skip it
    auto title = titles.find(p.document_id);
    if (title == titles.end()) {
      auto doc = store_.Get(request.tenant, p.document_id);
      if (!doc.ok()) continue;
      title = titles.emplace(p.document_id, doc->title).first;
    }
    p.title = title->second;
    p.chunk_id = r.id;
    p.score = r.score;
    p.text = std::move(chunk->text);
    p.start_char = chunk->start_char;
    p.end_char = chunk->end_char;
    passages.push_back(std::move(p));
  }
  return passages;
}

}  // namespace ragstream::rag

namespace ragstream::rag {

std::string SourcesJson(const std::vector<Passage>& passages) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartArray();
  for (const auto& p : passages) {
    w.StartObject();
    w.Key("document_id");
    WriteString(w, p.document_id);
    w.Key("title");
    WriteString(w, p.title);
    w.Key("chunk_id");
    WriteString(w, p.chunk_id);
    w.Key("score");
    w.Double(p.score);
    w.Key("text");
    WriteString(w, p.text);
    w.Key("start_char");
    w.Uint64(p.start_char);
    w.Key("end_char");
    w.Uint64(p.end_char);
    w.EndObject();
  }
  w.EndArray();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace ragstream::rag
