// The OpenAI-compatible embedder: POST {base}/embeddings with a batch of inputs. Blocking;
// each thread reuses its own curl handle. Retries 429/5xx and connection failures with
// backoff. The API key is sent in one header and never logged.
#pragma once

#include <memory>
#include <string>

#include "lib/core/config.h"
#include "lib/rag/embedder.h"

namespace ragstream::llm {

struct OpenAiEmbedderOptions {
  std::string base_url;
  std::string api_key;
  std::string model = "text-embedding-3-small";
  int dimensions = 0;  // 0: the model's own (known models only)
  int connect_timeout_ms = 5000;
  int timeout_ms = 60000;
  int max_retries = 2;
};

class OpenAiEmbedder : public rag::Embedder {
 public:
  // InvalidArgument when the dimension is unknown (an unknown model without `dimensions`).
  static Result<std::unique_ptr<OpenAiEmbedder>> Create(OpenAiEmbedderOptions options);
  static OpenAiEmbedderOptions OptionsFromConfig(const Config& config);

  std::string name() const override { return "openai:" + options_.model; }
  int dimension() const override { return dimension_; }
  Result<std::vector<std::vector<float>>> Embed(const std::vector<std::string>& texts) override;

  // The request body for `texts` (exposed for tests).
  std::string BuildBody(const std::vector<std::string>& texts) const;

 private:
  OpenAiEmbedder(OpenAiEmbedderOptions options, int dimension)
      : options_(std::move(options)), dimension_(dimension) {}
  OpenAiEmbedderOptions options_;
  int dimension_;
};

// Parses an embeddings response into one vector per input (ordered by "index"),
// L2-normalised. InvalidArgument-free: malformed input is an Upstream error.
Result<std::vector<std::vector<float>>> ParseEmbeddingsResponse(std::string_view body,
                                                                size_t expected, int dimension);

}  // namespace ragstream::llm
