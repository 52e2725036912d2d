// The extractive answerer: the embedded chat model used when no upstream is configured. It
// answers from the retrieved passages alone -- the sentences most similar to the question,
// each marked with its passage number [n] -- streamed word by word, and says (in the
// question's language where it can: English, Hebrew, Arabic, Russian) that it is quoting the
// documents. With nothing relevant it says so. Offline and deterministic.
#pragma once

#include <string>
#include <vector>

#include "lib/llm/chat_model.h"
#include "lib/rag/hash_embedder.h"

namespace ragstream::llm {

struct ExtractiveOptions {
  size_t max_sentences = 3;
  size_t max_sentences_per_passage = 2;
  // A sentence sharing no content word with the question must reach this cosine to count
  // (hash collisions alone reach ~0.15).
  float min_similarity = 0.3f;
  size_t min_sentence_chars = 25;  // shorter pieces are fragments, not quotable sentences
  int word_delay_ms = 15;          // pacing between streamed words (0: as fast as possible)
};

// A sentence picked for the answer.
struct ExtractedSentence {
  size_t passage = 0;  // 1-based passage number
  std::string text;
  float similarity = 0;
};

class ExtractiveAnswerer : public ChatModel {
 public:
  explicit ExtractiveAnswerer(ExtractiveOptions options = {});
  std::string name() const override { return "extractive"; }
  ChatOutcome Stream(const ChatRequest& request, const StreamCallbacks& callbacks) override;

  // The sentences the answer quotes, in passage order (exposed for tests).
  std::vector<ExtractedSentence> Select(const ChatRequest& request) const;
  // The full answer text for `request`.
  std::string Compose(const ChatRequest& request) const;

 private:
  ExtractiveOptions options_;
  rag::HashEmbedder embedder_;
};

// Splits text into sentences: paragraphs (hard-wrapped lines joined), list items and table
// rows are blocks, split at . ! ? … ׃ ؟ followed by whitespace or the end (。！？ anywhere).
// Markdown headings and empty pieces are dropped; list markers are removed.
std::vector<std::string> SplitSentences(std::string_view text);

// The same sentences, each with the text of the Markdown heading it sits under ("" before
// any heading): a sentence under "## Backups" is about backups even if it does not say so.
struct HeadedSentence {
  std::string heading;
  std::string text;
};
std::vector<HeadedSentence> SplitSentencesWithHeadings(std::string_view text);

}  // namespace ragstream::llm
