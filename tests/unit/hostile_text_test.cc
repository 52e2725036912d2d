// Text built to break the tokenizer, the hash embedder and the lexical index: a CJK
// character carrying thousands of combining marks once overran the embedder's stack array
// and produced LMDB keys over 511 bytes.
#include <boost/test/unit_test.hpp>
#include <string>

#include "lib/core/utf8.h"
#include "lib/rag/hash_embedder.h"
#include "lib/rag/text.h"

using namespace ragstream;

namespace {
std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(hostile_text_test)

BOOST_AUTO_TEST_CASE(terms_stay_short_whatever_the_marks) {
  const std::string acute = "\xCC\x81";  // U+0301
  for (const std::string& text : {"中" + Repeat(acute, 2000) + "文", "中文" + Repeat(acute, 3000),
                                  Repeat("中" + Repeat(acute, 40), 50), "a" + Repeat(acute, 5000),
                                  Repeat("\xD7\xA9\xD6\xB8", 3000)}) {
    auto terms = rag::Tokenize(text);
    BOOST_TEST(!terms.empty());
    for (const auto& t : terms) {
      BOOST_TEST(t.size() <= rag::kMaxTokenBytes);
      BOOST_TEST(IsValidUtf8(t));
    }
  }
}

BOOST_AUTO_TEST_CASE(embedder_survives_and_stays_normalised) {
  rag::HashEmbedder embedder;
  std::vector<float> v(embedder.dimension());
  const std::string text = "中" + Repeat("\xCC\x81", 2000) + "文 and words";
  embedder.EmbedOne(text, v.data());
  double norm = 0;
  for (float x : v) norm += double{x} * x;
  BOOST_TEST(std::abs(norm - 1.0) < 1e-4);
}

BOOST_AUTO_TEST_SUITE_END()
