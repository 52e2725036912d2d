#include "lib/rag/ingester.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "lib/core/ids.h"
#include "lib/core/sha256.h"
#include "lib/core/utf8.h"
#include "lib/rag/analyzer.h"

namespace ragstream::rag {
namespace {

// The nice value of the threads that prepare a batch's documents.
constexpr int kAnalysisNice = 10;

bool LooksBinary(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return true;
  size_t control = 0;
  for (unsigned char c : text) {
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f') ++control;
  }
  return control * 10 > text.size();  // over 10% control characters
}

}  // namespace

void AnalyzeChunks(std::string_view text, const std::vector<Chunk>& chunks,
                   store::NewDocument& doc) {
  // In the document's language, with its title analysed once.
  doc.record.language = DocumentLanguage(text);
  std::vector<std::string_view> texts;
  texts.reserve(chunks.size());
  for (const Chunk& c : chunks) {
    texts.push_back(text.substr(c.start_byte, c.end_byte - c.start_byte));
  }
  std::vector<store::AnalyzedChunk> analysed =
      AnalyzeDocumentChunks(doc.record.title, doc.record.language, texts);
  doc.chunks.clear();
  doc.chunks.reserve(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    store::NewChunk c;
    c.index = static_cast<uint32_t>(i);
    c.start_char = chunks[i].start_char;
    c.end_char = chunks[i].end_char;
    c.start_byte = chunks[i].start_byte;
    c.end_byte = chunks[i].end_byte;
    c.terms = std::move(analysed[i].terms);
    c.length = analysed[i].length;
    doc.chunks.push_back(std::move(c));
  }
}

std::string TitleFromText(std::string_view text, size_t max_chars) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && (line.front() == '#' || line.front() == ' ' || line.front() == '\t')) {
      line.remove_prefix(1);
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    return std::string(Utf8PrefixChars(line, max_chars));
  }
  return "Untitled";
}

Ingester::Ingester(store::DocumentStore& store, Embedder& embedder, IngestOptions options)
    : store_(store), embedder_(embedder), options_(options) {
  options_.embed_batch = std::max<size_t>(1, options_.embed_batch);
  options_.min_group_bytes = std::min(options_.min_group_bytes, options_.max_group_bytes);
  group_bytes_ = options_.max_group_bytes;
}

Status Ingester::Validate(const std::string& title, const std::string& text) const {
  if (text.size() > options_.max_document_bytes) {
    return {ErrorKind::kTooLarge, "document_too_large",
            "the document is " + std::to_string(text.size()) + " bytes; the limit is " +
                std::to_string(options_.max_document_bytes)};
  }
  if (LooksBinary(text)) {
    return {ErrorKind::kUnsupportedMediaType, "binary_content",
            "the document looks binary; send UTF-8 text (.txt or .md)"};
  }
  if (!IsValidUtf8(text)) {
    return Status::InvalidArgument("invalid_text", "the document is not valid UTF-8 text");
  }
  if (text.find_first_not_of(" \t\r\n\f") == std::string::npos) {
    return Status::InvalidArgument("empty_document", "the document has no text");
  }
  if (!IsValidUtf8(title) || Utf8Length(title) > options_.max_title_chars ||
      title.find_first_of("\r\n") != std::string::npos) {
    return Status::InvalidArgument("invalid_title", "the title must be one line of at most " +
                                                        std::to_string(options_.max_title_chars) +
                                                        " characters of UTF-8 text");
  }
  return Status::Ok();
}

Result<store::NewDocument> Ingester::Prepare(std::string title, std::string text) const {
  if (Status s = Validate(title, text); !s.ok()) return s;
  if (title.find_first_not_of(" \t") == std::string::npos) {
    title = TitleFromText(text, options_.max_title_chars);
  }
  store::NewDocument doc;
  doc.record.id = NewId("doc_");
  doc.record.title = std::move(title);
  doc.record.content_hash = Sha256Hex(text);
  doc.record.bytes = text.size();
  doc.record.chars = Utf8Length(text);
  doc.record.created_at = NowMillis();

  std::vector<Chunk> chunks = ChunkText(text, options_.chunker);
  doc.record.chunk_count = static_cast<uint32_t>(chunks.size());
  doc.dimension = static_cast<uint32_t>(embedder_.dimension());
  doc.vectors.reserve(chunks.size() * doc.dimension);
  for (size_t start = 0; start < chunks.size(); start += options_.embed_batch) {
    std::vector<std::string> batch;
    for (size_t i = start; i < std::min(chunks.size(), start + options_.embed_batch); ++i) {
      batch.push_back(chunks[i].text);
    }
    auto vectors = embedder_.Embed(batch);
    if (!vectors.ok()) return vectors.status();
    for (const auto& v : *vectors) {
      if (v.size() != doc.dimension) return Status::Internal("embedder returned a wrong dimension");
      doc.vectors.insert(doc.vectors.end(), v.begin(), v.end());
    }
  }
  AnalyzeChunks(text, chunks, doc);
  doc.text = std::move(text);
  return doc;
}

Result<IngestResult> Ingester::Ingest(std::string_view tenant, std::string title,
                                      std::string text) {
  Preparing preparing(*this);
  auto doc = Prepare(std::move(title), std::move(text));
  if (!doc.ok()) return doc.status();
  preparing.Done();
  auto added = Store(tenant, *doc);
  if (!added.ok()) return added.status();
  return IngestResult{std::move(added->record), added->created};
}

std::vector<Result<IngestResult>> Ingester::IngestMany(std::string_view tenant,
                                                       std::vector<IngestInput> docs) {
  // A pipeline: helper threads prepare the documents (chunk, embed, analyse) in order of
  // their index, while this thread stores them as they become ready, in commits bounded like
  // a group commit's (max_group_documents, max_group_bytes): the write lock is never held for
  // a whole large batch, and the analysis of the next documents overlaps the commit of these.
  const size_t n = docs.size();
  std::vector<std::optional<Result<store::NewDocument>>> prepared(n);
  std::vector<Result<IngestResult>> results(n, Status::Internal("not stored"));
  std::mutex mu;
  std::condition_variable ready, room;
  size_t next = 0;    // the next document to prepare
  size_t stored = 0;  // results[0, stored) are final
  bool stop = false;  // the committing thread gave up (an exception): helpers end
  // The helpers stay at most this far ahead of the commits, so a large batch is not held in
  // memory whole (its text, vectors and terms are several times its size).
  const size_t max_ahead = 2 * std::max<size_t>(1, options_.max_group_documents);
  const uint64_t max_ahead_bytes = 4 * std::max<uint64_t>(1, options_.max_group_bytes);
  uint64_t ahead_bytes = 0;  // text of the documents in [stored, next)
  std::vector<uint64_t> sizes(n);
  auto prepare = [&] {
    // Below the threads that answer questions and commit: a large ingest takes the cores
    // that are idle, and a thread holding the write lock is not preempted by analysis.
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kAnalysisNice);
    for (;;) {
      size_t i;
      {
        std::unique_lock lock(mu);
        room.wait(lock, [&] {
          return stop || next == n || next == stored ||
                 (next - stored < max_ahead && ahead_bytes < max_ahead_bytes);
        });
        if (stop || next == n) return;
        i = next++;
        sizes[i] = docs[i].text.size();
        ahead_bytes += sizes[i];
      }
      Result<store::NewDocument> doc = Status::Internal("not prepared");
      try {
        doc = Prepare(std::move(docs[i].title), std::move(docs[i].text));
      } catch (const std::exception& e) {
        doc = Status::Internal(std::string("preparing the document failed: ") + e.what());
      }
      {
        std::lock_guard lock(mu);
        prepared[i] = std::move(doc);
      }
      ready.notify_all();
    }
  };
  const size_t helpers = std::max<size_t>(1, std::min(options_.analysis_threads, n));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < helpers && n > 0; ++t) threads.emplace_back(prepare);
  auto join = [&] {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    room.notify_all();
    for (auto& t : threads) t.join();
  };

  try {
    while (stored < n) {
      // The documents ready in order from `stored`: at least one, at most the group limits;
      // a refused document goes alone, with its error.
      std::vector<size_t> group;
      {
        std::unique_lock lock(mu);
        ready.wait(lock, [&] { return prepared[stored].has_value(); });
        uint64_t bytes = 0;
        const uint64_t budget = GroupBudget();
        for (size_t i = stored; i < n && prepared[i].has_value(); ++i) {
          if (!prepared[i]->ok()) {
            if (group.empty()) group.push_back(i);
            break;
          }
          const uint64_t size = (**prepared[i]).text.size();
          if (!GroupHasRoom(group.size(), bytes, size, budget)) break;
          bytes += size;
          group.push_back(i);
        }
      }
      if (!prepared[group.front()]->ok()) {
        results[group.front()] = prepared[group.front()]->status();
      } else {
        std::vector<Pending> pending;
        pending.reserve(group.size());
        for (size_t i : group) pending.push_back({tenant, &**prepared[i], std::nullopt});
        std::vector<Pending*> refs;
        for (auto& p : pending) refs.push_back(&p);
        std::vector<Result<store::AddResult>> added = CommitGroup(refs);
        for (size_t g = 0; g < group.size(); ++g) {
          if (added[g].ok()) {
            results[group[g]] = IngestResult{std::move(added[g]->record), added[g]->created};
          } else {
            results[group[g]] = added[g].status();
          }
        }
      }
      {
        std::lock_guard lock(mu);
        for (size_t i : group) {
          ahead_bytes -= sizes[i];
          prepared[i].reset();  // its text and vectors are not needed now
        }
        stored = group.back() + 1;
      }
      room.notify_all();
    }
  } catch (...) {
    join();
    throw;
  }
  join();
  return results;
}

Ingester::Preparing::Preparing(Ingester& ingester) : ingester_(&ingester) {
  std::lock_guard lock(ingester_->commit_mu_);
  ++ingester_->preparing_;
}

void Ingester::Preparing::Done() {
  if (!ingester_) return;
  {
    std::lock_guard lock(ingester_->commit_mu_);
    --ingester_->preparing_;
  }
  ingester_->committed_.notify_all();  // a committer may be waiting for this document
  ingester_ = nullptr;
}

Result<store::AddResult> Ingester::Store(std::string_view tenant, const store::NewDocument& doc) {
  Pending me{tenant, &doc, std::nullopt};
  std::unique_lock lock(commit_mu_);
  waiting_.push_back(&me);
  committed_.notify_all();
  while (!me.result) {
    if (committing_) {
      committed_.wait(lock);
      continue;
    }
    // This thread commits the next group: the oldest waiting documents, up to the limits
    // (its own document is among them, or it waits for the next round). Documents still
    // being chunked and embedded by other threads are worth a short wait: without it, two
    // uploads at a time would take turns, one document per commit.
    committing_ = true;
    if (preparing_ > 0 && waiting_.size() < options_.max_group_documents) {
      committed_.wait_for(lock, std::chrono::microseconds(options_.max_group_wait_us),
                          [&] { return preparing_ == 0; });
    }
    std::vector<Pending*> group;
    uint64_t bytes = 0;
    const uint64_t budget = GroupBudget();
    size_t taken = 0;
    for (; taken < waiting_.size(); ++taken) {
      const uint64_t size = waiting_[taken]->doc->text.size();
      if (!GroupHasRoom(group.size(), bytes, size, budget)) break;
      bytes += size;
      group.push_back(waiting_[taken]);
    }
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<long>(taken));
    lock.unlock();
    std::vector<Result<store::AddResult>> results = CommitGroup(group);
    lock.lock();
    for (size_t i = 0; i < group.size(); ++i) group[i]->result = std::move(results[i]);
    committing_ = false;
    committed_.notify_all();
  }
  return std::move(*me.result);
}

uint64_t Ingester::GroupBudget() const {
  const bool answers_waiting =
      store_.env().AnswersWaitedWithin(std::chrono::milliseconds(options_.answers_window_ms));
  return answers_waiting ? group_bytes() : options_.max_group_bytes;
}

bool Ingester::GroupHasRoom(size_t documents, uint64_t bytes, uint64_t size,
                            uint64_t budget) const {
  return documents == 0 || (documents < options_.max_group_documents && bytes + size <= budget);
}

void Ingester::LearnCommitRate(uint64_t bytes, int64_t held_us) {
  if (bytes == 0 || held_us <= 0 || options_.target_commit_us <= 0) return;
  // A commit costs a fixed part (its fsyncs) plus a part per byte, so scaling by the last
  // rate settles where the two add up to the target. Halfway each time: one slow commit (a
  // page fault storm, a busy disk) does not halve the next group.
  const double fits = static_cast<double>(bytes) * static_cast<double>(options_.target_commit_us) /
                      static_cast<double>(held_us);
  const double next = (static_cast<double>(group_bytes()) + fits) / 2;
  group_bytes_.store(
      static_cast<uint64_t>(std::clamp(next, static_cast<double>(options_.min_group_bytes),
                                       static_cast<double>(options_.max_group_bytes))),
      std::memory_order_relaxed);
}

std::vector<Result<store::AddResult>> Ingester::CommitGroup(const std::vector<Pending*>& group) {
  const uint64_t limit = options_.max_documents_per_tenant;
  std::vector<store::DocumentStore::GroupItem> items;
  uint64_t bytes = 0;
  for (const Pending* p : group) {
    items.push_back({p->tenant, p->doc, limit});
    bytes += p->doc->text.size();
  }
  int64_t held_us = -1;
  auto grouped = store_.AddGroup(items, &held_us);
  if (grouped.ok()) {
    LearnCommitRate(bytes, held_us);
    return std::move(*grouped);
  }
  if (group.size() == 1) return {grouped.status()};
  // The group failed as a whole: one transaction per document.
  std::vector<Result<store::AddResult>> results;
  for (const Pending* p : group) results.push_back(store_.Add(p->tenant, *p->doc, limit));
  return results;
}

}  // namespace ragstream::rag
