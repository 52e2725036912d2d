// Synthetic text for parts 3 and 5 of scripts/bench.sh: pseudo-words with a Zipf-like
// frequency (the generator of tests/bench/retrieval_bench.cc), so that postings lists have a
// realistic spread from a few very common words to many rare ones. Document `n` is the same
// text on every run and every machine (std::mt19937 is specified exactly), so a store built
// in two steps holds the same text as one built in one.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace ragstream::bench {

class Vocabulary {
 public:
  static const Vocabulary& Get() {
    static const Vocabulary v;
    return v;
  }
  size_t size() const { return words_.size(); }
  // Zipf-ish: a cubed uniform draw favours low ranks.
  const std::string& Draw(std::mt19937& rng) const {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return words_[static_cast<size_t>(u * u * u * static_cast<double>(words_.size() - 1))];
  }

 private:
  Vocabulary() {
    std::mt19937 rng(42);
    const char* syllables[] = {"ka",  "lo",  "mi",  "ter", "ran", "bel", "sto", "vin", "dra",
                               "pen", "qui", "zor", "al",  "esh", "ung", "or",  "te",  "ma"};
    for (int i = 0; i < 30000; ++i) {
      std::string w;
      int parts = 1 + static_cast<int>(rng() % 3);
      for (int p = 0; p < parts; ++p) w += syllables[rng() % std::size(syllables)];
      words_.push_back(w + std::to_string(i % 97));
    }
  }
  std::vector<std::string> words_;
};

// Paragraphs of 4 sentences of 8-19 words: ~400 characters, so a chunk of 700 characters
// holds one to two paragraphs.
inline std::string Paragraph(std::mt19937& rng, int sentences = 4) {
  const Vocabulary& vocab = Vocabulary::Get();
  std::string out;
  for (int s = 0; s < sentences; ++s) {
    int n = 8 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      if (i) out += ' ';
      out += vocab.Draw(rng);
    }
    out += ". ";
  }
  return out;
}

// Document `n`: `paragraphs` paragraphs separated by blank lines.
inline std::string Document(uint64_t n, int paragraphs) {
  std::mt19937 rng(static_cast<uint32_t>(n * 2654435761u + 1));
  std::string text;
  for (int p = 0; p < paragraphs; ++p) text += Paragraph(rng) + "\n\n";
  return text;
}

// Question `n`: a few words of the vocabulary, as a user would type them.
inline std::string Question(uint64_t n, int words = 6) {
  std::mt19937 rng(static_cast<uint32_t>(n * 40503u + 7));
  const Vocabulary& vocab = Vocabulary::Get();
  std::string q = "What do the notes say about";
  for (int i = 0; i < words; ++i) q += " " + vocab.Draw(rng);
  return q + "?";
}

}  // namespace ragstream::bench
