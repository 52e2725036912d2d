#include "handlers/documents_handler.h"

#include <algorithm>

#include "handlers/chat_request.h"
#include "handlers/document_batch.h"
#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/rag/ingester.h"

namespace ragstream::handlers {
namespace {

constexpr size_t kMaxQueryChars = 4000;

void WriteDocumentFields(JsonWriter& w, const store::DocumentRecord& d) {
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
  w.Key("chunks");
  w.Uint(d.chunk_count);
  w.Key("created_at");
  w.Int64(d.created_at);
}

Status ValidDocumentId(const std::string& id) {
  return IsWellFormedId(id, "doc_") ? Status::Ok()
                                    : Status::NotFound("document " + id + " not found");
}

}  // namespace

void HandleAddDocument(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                       HttpResponse& res, RequestRecord& record) {
  std::string title, text;
  const std::string type = MediaType(req.content_type);
  if (type == "application/json") {
    rapidjson::Document doc;
    if (Status s = ParseJsonObject(req.body, doc); !s.ok()) return WriteError(res, s);
    Status field_error;
    auto t = GetString(doc, "title", field_error);
    auto body_text = GetString(doc, "text", field_error);
    if (!field_error.ok()) return WriteError(res, field_error);
    if (!body_text) {
      return WriteError(res, Status::InvalidArgument("missing_field", "field 'text' is required"));
    }
    title = t ? std::string(*t) : std::string();
    text = std::string(*body_text);
  } else if (type == "text/plain" || type == "text/markdown") {
    title = req.QueryParam("title");
    text = req.body;
  } else {
    return WriteError(res, Status(ErrorKind::kUnsupportedMediaType, "unsupported_media_type",
                                  "send JSON {\"title\", \"text\"} or a text/plain or "
                                  "text/markdown body with ?title="));
  }
  auto result = app.ingester->Ingest(tenant, std::move(title), std::move(text));
  if (!result.ok()) {
    record.outcome = "rejected";
    return WriteError(res, result.status());
  }
  record.outcome = result->created ? "created" : "duplicate";
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteDocumentFields(w, result->record);
  w.Key("duplicate");
  w.Bool(!result->created);
  w.EndObject();
  WriteJson(res, result->created ? 201 : 200, {buf.GetString(), buf.GetSize()});
}

void HandleAddDocuments(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                        HttpResponse& res, RequestRecord& record) {
  auto docs = ParseDocumentBatch(MediaType(req.content_type), req.body);
  if (!docs.ok()) {
    record.outcome = "rejected";
    return WriteError(res, docs.status());
  }
  // A document in a batch gets no more room than POST /api/documents would give it alone.
  std::vector<Status> refused(docs->size());
  std::vector<size_t> sent;  // indexes of the documents handed to the ingester
  std::vector<rag::IngestInput> inputs;
  sent.reserve(docs->size());
  inputs.reserve(docs->size());
  for (size_t i = 0; i < docs->size(); ++i) {
    rag::IngestInput& d = (*docs)[i];
    if (d.text.size() > app.config.max_body_bytes) {
      refused[i] =
          Status(ErrorKind::kTooLarge, "document_too_large",
                 "the document is " + std::to_string(d.text.size()) + " bytes; the limit is " +
                     std::to_string(app.config.max_body_bytes) + " (RAGSTREAM_MAX_BODY_BYTES)");
      continue;
    }
    sent.push_back(i);
    inputs.push_back(std::move(d));
  }
  std::vector<Result<rag::IngestResult>> results =
      app.ingester->IngestMany(tenant, std::move(inputs));
  if (results.size() != sent.size()) {
    record.outcome = "error";
    return WriteError(
        res, Status::Internal("the ingester returned " + std::to_string(results.size()) +
                              " results for " + std::to_string(sent.size()) + " documents"));
  }
  record.outcome = "batch";
  uint64_t created = 0, duplicates = 0, failed = 0;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("documents");
  w.StartArray();
  size_t next = 0;  // into `sent` and `results`
  for (size_t i = 0; i < docs->size(); ++i) {
    w.StartObject();
    w.Key("index");
    w.Uint64(i);
    const bool was_sent = next < sent.size() && sent[next] == i;
    const Status& error = was_sent ? results[next].status() : refused[i];
    if (error.ok()) {
      const rag::IngestResult& r = results[next].value();
      WriteDocumentFields(w, r.record);
      w.Key("duplicate");
      w.Bool(!r.created);
      ++(r.created ? created : duplicates);
    } else {
      w.Key("error");
      w.StartObject();
      w.Key("code");
      WriteString(w, error.code());
      w.Key("message");
      WriteString(w, error.message());
      w.EndObject();
      w.Key("status");
      w.Int(HttpStatusFor(error));
      ++failed;
    }
    if (was_sent) ++next;
    w.EndObject();
  }
  w.EndArray();
  w.Key("created");
  w.Uint64(created);
  w.Key("duplicates");
  w.Uint64(duplicates);
  w.Key("failed");
  w.Uint64(failed);
  w.EndObject();
  WriteJson(res, 200, {buf.GetString(), buf.GetSize()});
}

void HandleListDocuments(const AppContext& app, const std::string& tenant, HttpResponse& res) {
  auto docs = app.documents->List(tenant);
  if (!docs.ok()) return WriteError(res, docs.status());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("documents");
  w.StartArray();
  for (const auto& d : *docs) {
    w.StartObject();
    WriteDocumentFields(w, d);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  WriteJson(res, 200, {buf.GetString(), buf.GetSize()});
}

void HandleGetDocument(const AppContext& app, const std::string& tenant, const std::string& id,
                       HttpResponse& res) {
  if (Status s = ValidDocumentId(id); !s.ok()) return WriteError(res, s);
  auto doc = app.documents->Get(tenant, id);
  if (!doc.ok()) return WriteError(res, doc.status());
  auto text = app.documents->GetText(tenant, id);
  if (!text.ok()) return WriteError(res, text.status());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteDocumentFields(w, *doc);
  w.Key("text");
  WriteString(w, *text);
  w.EndObject();
  WriteJson(res, 200, {buf.GetString(), buf.GetSize()});
}

void HandleDeleteDocument(const AppContext& app, const std::string& tenant, const std::string& id,
                          HttpResponse& res) {
  if (Status s = ValidDocumentId(id); !s.ok()) return WriteError(res, s);
  if (Status s = app.documents->Delete(tenant, id); !s.ok()) return WriteError(res, s);
  WriteJson(res, 200, "{\"id\":\"" + id + "\",\"deleted\":true}");
}

void HandleSearch(const AppContext& app, const std::string& tenant, const HttpRequest& req,
                  HttpResponse& res) {
  rapidjson::Document doc;
  if (Status s = ParseJsonRequest(req, doc); !s.ok()) return WriteError(res, s);
  Status field_error;
  auto query = GetString(doc, "query", field_error);
  if (!field_error.ok()) return WriteError(res, field_error);
  if (!query || query->find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return WriteError(res, Status::InvalidArgument("missing_field", "field 'query' is required"));
  }
  if (query->size() > kMaxQueryChars * 4) {
    return WriteError(res, Status(ErrorKind::kTooLarge, "query_too_long", "the query is too long"));
  }
  RetrievalFields fields;
  if (Status s = ParseRetrievalFields(doc, fields); !s.ok()) return WriteError(res, s);
  if (!fields.document_ids.empty()) {
    auto missing = app.documents->Missing(tenant, fields.document_ids);
    if (!missing.ok()) return WriteError(res, missing.status());
    if (!missing->empty()) {
      return WriteError(res,
                        Status(ErrorKind::kUnprocessable, "unknown_document",
                               "unknown document id " + missing->front() + " in document_ids"));
    }
  }
  // How the vector side searches: the tenant's approximate index (when it has one) probing
  // `nprobe` lists, or the exact scan when `exact` is true (to measure the index's recall).
  auto exact = GetBool(doc, "exact", field_error);
  auto nprobe = GetInt(doc, "nprobe", field_error);
  if (!field_error.ok()) return WriteError(res, field_error);
  if (nprobe && (*nprobe < 1 || *nprobe > kMaxNprobe)) {
    return WriteError(res, Status(ErrorKind::kUnprocessable, "invalid_nprobe",
                                  "nprobe must be between 1 and " + std::to_string(kMaxNprobe)));
  }
  const int64_t start_us = SteadyMicros();
  rag::RetrievalRequest request{tenant, std::string(*query),
                                fields.top_k.value_or(app.config.top_k), fields.mode,
                                fields.document_ids};
  request.exact = exact.value_or(false);
  request.nprobe = nprobe ? static_cast<uint32_t>(*nprobe) : 0;
  rag::RetrievalInfo info;
  auto passages = app.retriever->Retrieve(request, &info);
  if (!passages.ok()) return WriteError(res, passages.status());
  const int64_t took_us = SteadyMicros() - start_us;
  std::string sources = rag::SourcesJson(*passages);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("mode");
  w.String(rag::RetrievalModeName(fields.mode));
  w.Key("took_ms");
  w.Int64(took_us / 1000);
  w.Key("took_us");
  w.Int64(took_us);
  if (info.vector_searched) {
    w.Key("vector_search");
    w.StartObject();
    w.Key("index");
    w.String(info.vector.approximate ? "ivf" : "exact");
    if (info.vector.approximate) {
      w.Key("nlist");
      w.Uint(info.vector.ivf.nlist);
      w.Key("nprobe");
      w.Uint(info.vector.ivf.nprobe);
      w.Key("probe");
      w.String(info.vector.ivf.probe);
      w.Key("rows_scanned");
      w.Uint64(info.vector.ivf.rows_scanned);
    }
    w.EndObject();
  } else if (info.vector_rescored) {
    w.Key("vector_search");
    w.StartObject();
    w.Key("index");
    w.String("rescore");
    w.Key("rows_scored");
    w.Uint64(info.rows_scored);
    w.EndObject();
  }
  w.Key("results");
  w.RawValue(sources.data(), sources.size(), rapidjson::kArrayType);
  w.EndObject();
  WriteJson(res, 200, {buf.GetString(), buf.GetSize()});
}

}  // namespace ragstream::handlers
