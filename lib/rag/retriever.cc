#include "lib/rag/retriever.h"

#include <algorithm>
#include <future>
#include <optional>
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

std::vector<FusedId> RelativeScoreFusion(const std::vector<FusionCandidate>& candidates,
                                         double lexical_weight, double vector_weight) {
  double lo = 0, hi = 0;
  bool any_cosine = false;
  for (const auto& c : candidates) {
    if (c.cosine < -1) continue;
    lo = any_cosine ? std::min(lo, c.cosine) : c.cosine;
    hi = any_cosine ? std::max(hi, c.cosine) : c.cosine;
    any_cosine = true;
  }
  std::vector<FusedId> fused;
  fused.reserve(candidates.size());
  for (const auto& c : candidates) {
    FusedId f{c.id, 0, std::max(0.0, c.lexical_relevance), c.cosine};
    if (c.lexical_relevance >= 0) f.score += lexical_weight * c.lexical_relevance;
    if (c.cosine >= -1) {
      // One candidate, or all equal: each is as good as the best.
      f.score += vector_weight * (hi > lo ? (c.cosine - lo) / (hi - lo) : 1.0);
    }
    fused.push_back(std::move(f));
  }
  std::sort(fused.begin(), fused.end(), [](const FusedId& a, const FusedId& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  });
  return fused;
}

RetrieverOptions RetrieverOptions::ForEmbedder(std::string_view embedder_name) {
  RetrieverOptions o;
  if (embedder_name.substr(0, 4) != "hash") {
    o.vector_weight = 1.0;
    o.min_cosine = 0.3;
    o.vector_vouches_in_hybrid = true;
  }
  return o;
}

Retriever::Retriever(const store::DocumentStore& store, Embedder& embedder,
                     RetrieverOptions options)
    : store_(store), embedder_(embedder), options_(options) {}

Result<std::vector<Passage>> Retriever::Retrieve(const RetrievalRequest& request,
                                                 RetrievalInfo* info) const {
  if (request.tenant.empty()) return Status::Internal("retrieval without a tenant");
  const size_t k = request.top_k;
  const size_t candidates =
      request.mode == RetrievalMode::kHybrid
          ? std::max(k * options_.fusion_depth_per_result, options_.min_fusion_depth)
          : k * kSingleModeCandidatesPerResult;
  std::vector<FusionCandidate> found;
  std::unordered_map<std::string, size_t> slot;
  auto candidate = [&](std::string id) -> FusionCandidate& {
    auto [it, inserted] = slot.emplace(id, found.size());
    if (inserted) found.push_back({std::move(id)});
    return found[it->second];
  };
  std::unordered_map<std::string, double> raw_score;  // BM25 or cosine, for single modes

  auto filter = store_.FilterFor(request.tenant, request.document_ids);
  if (!filter.ok()) return filter.status();
  // The API's chunk ids ("<document id>:<index>") of the indexes' dense ids; a chunk deleted
  // since the search has none.
  auto public_ids =
      [&](const std::vector<uint32_t>& chunks) -> Result<std::vector<std::optional<std::string>>> {
    auto refs = store_.Resolve(request.tenant, chunks);
    if (!refs.ok()) return refs.status();
    std::vector<std::optional<std::string>> out;
    for (const auto& r : *refs) {
      out.push_back(r ? std::optional<std::string>(ChunkId(r->document_id, r->index))
                      : std::nullopt);
    }
    return out;
  };

  // In hybrid mode BM25 runs on its own thread while the query is embedded and the vectors
  // scanned: the two searches are independent, and the time to first token pays the longer
  // of them rather than their sum. (An early return below still waits for it: a future from
  // std::async joins in its destructor.)
  auto lexical_search = [&] {
    return store_.lexical().Search(request.tenant, AnalyzeQuery(request.query, options_.query),
                                   candidates, *filter);
  };
  // When the cosine cannot vouch for a passage (the hash embedder), hybrid retrieval cites
  // only BM25's candidates: the vector side can reorder them but never add one, since a
  // passage BM25 did not find is below the relevance floor. So it scores just those
  // candidates' vectors (a rescoring, as Elasticsearch's rescore phase does), or none when the
  // vector side has no weight (the hash embedder's default), instead of searching every
  // vector, which was most of a question's retrieval from 100k chunks on.
  const bool rescore_lexical = request.mode == RetrievalMode::kHybrid &&
                               !options_.vector_vouches_in_hybrid && options_.min_relevance > 0;
  std::future<Result<store::LexicalResult>> lexical_running;
  if (request.mode == RetrievalMode::kHybrid && !rescore_lexical) {
    lexical_running = std::async(std::launch::async, lexical_search);
  }
  if (request.mode != RetrievalMode::kLexical && !rescore_lexical) {
    auto embedded = embedder_.Embed({request.query});
    if (!embedded.ok()) return embedded.status();
    const std::vector<float>& q = embedded->front();
    store::VectorSearchOptions how = options_.vector_search;
    how.exact = how.exact || request.exact;
    if (request.nprobe > 0) how.probe.nprobe = request.nprobe;
    store::VectorSearchInfo searched;
    auto hits = store_.SearchVectors(request.tenant, q.data(), static_cast<uint32_t>(q.size()),
                                     candidates, *filter, how, &searched);
    if (!hits.ok()) return hits.status();
    if (info) *info = {true, false, 0, searched};
    std::vector<uint32_t> chunks;
    for (const auto& h : *hits) chunks.push_back(h.chunk);
    auto ids = public_ids(chunks);
    if (!ids.ok()) return ids.status();
    for (size_t i = 0; i < hits->size(); ++i) {
      if (!(*ids)[i]) continue;
      raw_score[*(*ids)[i]] = (*hits)[i].score;
      candidate(*(*ids)[i]).cosine = (*hits)[i].score;
    }
  }
  if (request.mode != RetrievalMode::kVector) {
    auto result = lexical_running.valid() ? lexical_running.get() : lexical_search();
    if (!result.ok()) return result.status();
    std::vector<uint32_t> chunks;
    for (const auto& h : result->hits) chunks.push_back(h.chunk);
    auto ids = public_ids(chunks);
    if (!ids.ok()) return ids.status();
    for (size_t i = 0; i < result->hits.size(); ++i) {
      if (!(*ids)[i]) continue;
      const double score = result->hits[i].score;
      raw_score[*(*ids)[i]] = score;
      candidate(*(*ids)[i]).lexical_relevance =
          result->query_mass > 0 ? score / result->query_mass : 0.0;
    }
    if (rescore_lexical && options_.vector_weight > 0 && !chunks.empty()) {
      auto embedded = embedder_.Embed({request.query});
      if (!embedded.ok()) return embedded.status();
      const std::vector<float>& q = embedded->front();
      auto cosines =
          store_.ScoreChunks(request.tenant, q.data(), static_cast<uint32_t>(q.size()), chunks);
      if (!cosines.ok()) return cosines.status();
      for (size_t i = 0; i < chunks.size(); ++i) {
        if ((*ids)[i] && (*cosines)[i]) candidate(*(*ids)[i]).cosine = *(*cosines)[i];
      }
      if (info) *info = {false, true, chunks.size(), {}};
    }
  }

  // Fused (hybrid) or single-list order; then the relevance floor.
  std::vector<FusedId> ranked;
  if (request.mode == RetrievalMode::kHybrid) {
    ranked = RelativeScoreFusion(found, options_.lexical_weight, options_.vector_weight);
  } else {
    ranked = RelativeScoreFusion(found, request.mode == RetrievalMode::kLexical ? 1.0 : 0.0,
                                 request.mode == RetrievalMode::kVector ? 1.0 : 0.0);
    for (auto& r : ranked) r.score = raw_score[r.id];
  }
  const bool cosine_vouches =
      request.mode == RetrievalMode::kVector ||
      (request.mode == RetrievalMode::kHybrid && options_.vector_vouches_in_hybrid);
  std::erase_if(ranked, [&](const FusedId& r) {
    const bool lexical_ok =
        request.mode != RetrievalMode::kVector && r.lexical_relevance >= options_.min_relevance;
    const bool vector_ok = cosine_vouches && r.cosine >= options_.min_cosine;
    return !lexical_ok && !vector_ok;
  });
  // At most max_chunks_per_document chunks of one document, then the first k.
  std::unordered_map<std::string, size_t> per_document;
  std::vector<FusedId> kept;
  for (auto& r : ranked) {
    if (kept.size() == k) break;
    size_t& n = per_document[r.id.substr(0, r.id.rfind(':'))];
    if (n == options_.max_chunks_per_document) continue;
    ++n;
    kept.push_back(std::move(r));
  }

  std::vector<Passage> passages;
  std::unordered_map<std::string, std::string> titles;
  for (const auto& r : kept) {
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
    p.relevance = r.lexical_relevance;
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
    w.Key("relevance");
    w.Double(p.relevance);
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
