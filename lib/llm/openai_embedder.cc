#include "lib/llm/openai_embedder.h"

#include <curl/curl.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

#include "lib/core/json.h"
#include "lib/core/log.h"
#include "lib/llm/openai_stream.h"
#include "lib/llm/retry_policy.h"

namespace ragstream::llm {
namespace {

constexpr size_t kMaxResponseBytes = 256 << 20;

struct EasyHandle {
  CURL* easy = curl_easy_init();
  ~EasyHandle() {
    if (easy) curl_easy_cleanup(easy);
  }
};

size_t Collect(char* data, size_t size, size_t nmemb, void* userp) {
  auto* out = static_cast<std::string*>(userp);
  if (out->size() + size * nmemb > kMaxResponseBytes) return 0;
  out->append(data, size * nmemb);
  return size * nmemb;
}

int KnownDimension(const std::string& model) {
  if (model == "text-embedding-3-small" || model == "text-embedding-ada-002") return 1536;
  if (model == "text-embedding-3-large") return 3072;
  return 0;
}

}  // namespace

OpenAiEmbedderOptions OpenAiEmbedder::OptionsFromConfig(const Config& c) {
  OpenAiEmbedderOptions o;
  o.base_url = c.openai_base_url;
  o.api_key = c.openai_api_key;
  o.model = c.embed_model;
  o.dimensions = c.embed_dimensions;
  o.connect_timeout_ms = c.connect_timeout_ms;
  o.max_retries = c.max_retries;
  return o;
}

Result<std::unique_ptr<OpenAiEmbedder>> OpenAiEmbedder::Create(OpenAiEmbedderOptions options) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  int dim = options.dimensions > 0 ? options.dimensions : KnownDimension(options.model);
  if (dim <= 0) {
    return Status::InvalidArgument("invalid_config",
                                   "set RAGSTREAM_EMBED_DIMENSIONS: the dimension of embedding "
                                   "model '" +
                                       options.model + "' is not known");
  }
  return std::unique_ptr<OpenAiEmbedder>(new OpenAiEmbedder(std::move(options), dim));
}

std::string OpenAiEmbedder::BuildBody(const std::vector<std::string>& texts) const {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model");
  WriteString(w, options_.model);
  w.Key("input");
  w.StartArray();
  for (const auto& t : texts) WriteString(w, t);
  w.EndArray();
  if (options_.dimensions > 0) {
    w.Key("dimensions");
    w.Int(options_.dimensions);
  }
  w.Key("encoding_format");
  w.String("float");
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

Result<std::vector<std::vector<float>>> ParseEmbeddingsResponse(std::string_view body,
                                                                size_t expected, int dimension) {
  auto bad = [](const std::string& why) {
    return Status::Upstream("upstream_bad_embeddings", "embeddings response: " + why);
  };
  rapidjson::Document doc;
  JsonLimits limits;
  limits.max_number_chars = 40;
  if (!PrescanJson(body, limits).ok()) return bad("not JSON");
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) return bad("not a JSON object");
  auto data = doc.FindMember("data");
  if (data == doc.MemberEnd() || !data->value.IsArray()) return bad("no data array");
  if (data->value.Size() != expected) return bad("wrong number of embeddings");
  std::vector<std::vector<float>> out(expected);
  for (const auto& item : data->value.GetArray()) {
    if (!item.IsObject()) return bad("data item is not an object");
    auto index = item.FindMember("index");
    auto emb = item.FindMember("embedding");
    if (index == item.MemberEnd() || !index->value.IsUint() || index->value.GetUint() >= expected ||
        emb == item.MemberEnd() || !emb->value.IsArray() ||
        emb->value.Size() != static_cast<unsigned>(dimension)) {
      return bad("malformed data item");
    }
    std::vector<float>& v = out[index->value.GetUint()];
    v.reserve(dimension);
    double norm = 0;
    for (const auto& x : emb->value.GetArray()) {
      if (!x.IsNumber()) return bad("non-numeric embedding value");
      const double d = x.GetDouble();
      // Beyond float range the conversion is undefined and normalising would give NaN.
      if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
        return bad("embedding value out of range");
      }
      v.push_back(static_cast<float>(d));
      norm += static_cast<double>(v.back()) * v.back();
    }
    if (norm > 0) {
      float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (float& f : v) f *= inv;
    }
  }
  for (const auto& v : out) {
    if (v.empty()) return bad("an input has no embedding");
  }
  return out;
}

Result<std::vector<std::vector<float>>> OpenAiEmbedder::Embed(
    const std::vector<std::string>& texts) {
  if (texts.empty()) return std::vector<std::vector<float>>();
  thread_local EasyHandle handle;
  if (!handle.easy) return Status::Internal("curl handle could not be created");
  const std::string url = options_.base_url + "/embeddings";
  const std::string body = BuildBody(texts);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!options_.api_key.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + options_.api_key).c_str());
  }
  Status last;
  for (int attempt = 0; attempt <= options_.max_retries; ++attempt) {
    std::string response;
    CURL* easy = handle.easy;
    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout_ms));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
    CURLcode rc = curl_easy_perform(easy);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status == 200) {
      curl_slist_free_all(headers);
      return ParseEmbeddingsResponse(response, texts.size(), dimension_);
    }
    bool retry;
    if (rc != CURLE_OK) {
      last = Status::Upstream("upstream_unreachable",
                              std::string("embeddings request failed: ") + curl_easy_strerror(rc));
      retry = RetryPolicy::RetryableTransport(rc);
    } else {
      std::string code, message;
      if (!DecodeErrorBody(response, code, message)) message = response.substr(0, 200);
      LogWarn("embedder", "the embeddings server answered with an error",
              {{"http_status", static_cast<int64_t>(status)},
               {"upstream_code", Scrub(code, options_.api_key)},
               {"upstream_message", Scrub(message, options_.api_key)}});
      last = ClientFacingUpstreamError(status, code);
      retry = RetryPolicy::RetryableStatus(status, code);
    }
    if (!retry || attempt == options_.max_retries) break;
    LogWarn("embedder", "retrying an embeddings request",
            {{"code", last.code()}, {"attempt", static_cast<int64_t>(attempt + 1)}});
    std::this_thread::sleep_for(
        std::chrono::milliseconds(RetryPolicy{options_.max_retries}.BackoffMs(attempt, -1)));
  }
  curl_slist_free_all(headers);
  return last;
}

}  // namespace ragstream::llm
