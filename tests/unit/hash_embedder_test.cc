// HashEmbedder: shape, norm, determinism, similarity ordering, batch, a fixed output.
#include "lib/rag/hash_embedder.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ragstream::rag {
namespace {

std::vector<float> EmbedText(const HashEmbedder& e, const std::string& text) {
  std::vector<float> v(static_cast<size_t>(e.dimension()));
  e.EmbedOne(text, v.data());
  return v;
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += static_cast<double>(a[i]) * b[i];
  return sum;
}

double Norm(const std::vector<float>& v) {
  return std::sqrt(Dot(v, v));
}

// Vectors are unit length, so cosine similarity is the dot product.
double Similarity(const HashEmbedder& e, const std::string& a, const std::string& b) {
  return Dot(EmbedText(e, a), EmbedText(e, b));
}

BOOST_AUTO_TEST_SUITE(hash_embedder_test)

BOOST_AUTO_TEST_CASE(name_dimension_and_unit_norm) {
  HashEmbedder e;
  BOOST_TEST(e.name() == "hash-v1");
  BOOST_TEST(e.dimension() == 384);
  for (const std::string text : {"hello world", "שלום עולם", "自然语言处理", "x", "a a a a"}) {
    std::vector<float> v = EmbedText(e, text);
    BOOST_TEST(v.size() == 384u);
    BOOST_TEST(Norm(v) == 1.0, boost::test_tools::tolerance(1e-5));
  }
  HashEmbedder small(16);
  BOOST_TEST(small.dimension() == 16);
  BOOST_TEST(Norm(EmbedText(small, "a somewhat longer text than sixteen buckets")) == 1.0,
             boost::test_tools::tolerance(1e-5));
  BOOST_TEST(HashEmbedder(0).dimension() == 1);  // nonsense is raised, not undefined
}

BOOST_AUTO_TEST_CASE(deterministic_bit_for_bit_across_instances) {
  HashEmbedder a, b;
  const std::string text = "The database stores pages in a memory map; מסד הנתונים 数据库.";
  std::vector<float> va = EmbedText(a, text);
  std::vector<float> vb = EmbedText(b, text);
  std::vector<float> va2 = EmbedText(a, text);
  BOOST_TEST(std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0);
  BOOST_TEST(std::memcmp(va.data(), va2.data(), va.size() * sizeof(float)) == 0);
}

BOOST_AUTO_TEST_CASE(self_similarity_is_one) {
  HashEmbedder e;
  for (const std::string text : {"how do I back up the database", "גיבוי מסד הנתונים", "是"}) {
    BOOST_TEST(Similarity(e, text, text) == 1.0, boost::test_tools::tolerance(1e-5));
  }
  // Case and compatibility forms do not matter: they are normalised away.
  BOOST_TEST(Similarity(e, "HELLO World", "hello world") == 1.0,
             boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(overlapping_text_is_closer_than_unrelated_text) {
  HashEmbedder e;
  const std::string q = "how do I back up the database";
  double related = Similarity(e, q, "backing up the database with mdb_copy");
  double unrelated = Similarity(e, q, "the weather in Paris is sunny");
  BOOST_TEST_MESSAGE("related " << related << ", unrelated " << unrelated);
  BOOST_TEST(related > unrelated);
  BOOST_TEST(related > 0.2);

  // Trigrams make a typo or an inflection close to the word.
  double typo = Similarity(e, "replication", "replicaton");
  double other = Similarity(e, "replication", "sunshine");
  BOOST_TEST_MESSAGE("typo " << typo << ", other word " << other);
  BOOST_TEST(typo > 0.3);
  BOOST_TEST(typo > other + 0.25);
}

BOOST_AUTO_TEST_CASE(hebrew_similarity_ordering) {
  HashEmbedder e;
  const std::string q = "איך מגבים את מסד הנתונים";                    // how to back up the db
  double related = Similarity(e, q, "גיבוי מסד הנתונים עם mdb_copy");  // backing up the db
  double unrelated = Similarity(e, q, "מזג האוויר בפריז שמשי");        // weather in Paris
  BOOST_TEST_MESSAGE("related " << related << ", unrelated " << unrelated);
  BOOST_TEST(related > unrelated);
  // Niqqud does not change the vector.
  BOOST_TEST(Similarity(e, "שָׁלוֹם עוֹלָם", "שלום עולם") == 1.0, boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(empty_text_gives_the_zero_vector) {
  HashEmbedder e;
  for (const std::string text : {"", "   \n", "?!... --", "\xFF\xFE"}) {
    std::vector<float> v(384, 7.0f);  // overwritten, not added to
    e.EmbedOne(text, v.data());
    BOOST_TEST(Norm(v) == 0.0);
  }
}

BOOST_AUTO_TEST_CASE(batch_equals_one_by_one) {
  HashEmbedder e;
  const std::vector<std::string> texts = {"first text", "", "שלום", "数据库", "first text"};
  auto batch = e.Embed(texts);
  BOOST_TEST_REQUIRE(batch.ok());
  BOOST_TEST_REQUIRE(batch->size() == texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<float> one = EmbedText(e, texts[i]);
    BOOST_TEST_REQUIRE((*batch)[i].size() == 384u);
    BOOST_TEST(std::memcmp((*batch)[i].data(), one.data(), one.size() * sizeof(float)) == 0);
  }
  auto none = e.Embed({});
  BOOST_TEST_REQUIRE(none.ok());
  BOOST_TEST(none->empty());
}

BOOST_AUTO_TEST_CASE(concurrent_use_gives_the_same_vectors) {
  HashEmbedder e;
  const std::string text = "readers never block writers in LMDB";
  const std::vector<float> expected = EmbedText(e, text);
  std::vector<std::thread> threads;
  std::vector<int> same(8, 0);
  for (size_t t = 0; t < same.size(); ++t) {
    threads.emplace_back([&, t] {
      bool all = true;
      for (int i = 0; i < 200; ++i) {
        all = all && EmbedText(e, text) == expected;
      }
      same[t] = all;
    });
  }
  for (auto& th : threads) th.join();
  for (int s : same) BOOST_TEST(s == 1);
}

BOOST_AUTO_TEST_CASE(fixed_output_regression) {
  // Stored indexes depend on these exact values. If this test fails, the hash, features,
  // weights or tokenizer changed: every stored vector is now wrong, so the embedder's name
  // must change too ("hash-v2") so that old indexes are refused; then update this test.
  //
  // "hello world" has 13 features, none colliding: the words "hello" and "world" (weight
  // 1), the pair "hello world" (0.5) and 5 + 5 padded trigrams (0.3 each), so the norm is
  // sqrt(2 + 0.25 + 10 * 0.09) and the components are +-0.563436, +-0.281718, +-0.169031.
  HashEmbedder e;
  std::vector<float> v = EmbedText(e, "hello world");
  const std::vector<std::pair<size_t, float>> expected = {
      {43, 0.169031f},   {59, -0.281718f},  {62, 0.169031f},   {126, -0.169031f}, {159, -0.169031f},
      {241, 0.169031f},  {256, -0.169031f}, {268, -0.563436f}, {290, -0.169031f}, {308, -0.169031f},
      {335, -0.563436f}, {355, 0.169031f},  {369, -0.169031f}};
  std::vector<float> want(384, 0.0f);
  for (const auto& [index, value] : expected) want[index] = value;
  for (size_t i = 0; i < v.size(); ++i) {
    BOOST_TEST(std::fabs(v[i] - want[i]) < 1e-5f, "component " << i << ": " << v[i]);
  }
  // The largest component (the first of the two word buckets, by index): its place and sign.
  size_t largest = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (std::fabs(v[i]) > std::fabs(v[largest])) largest = i;
  }
  BOOST_TEST(largest == 268u);
  BOOST_TEST(v[largest] < 0.0f);
}

// A feature seen n times weighs 1 + ln(n): "w w ... w" (a one-letter word has no trigrams)
// has two features, the word n times and the pair "w w" n - 1 times. Below and above the
// size of the embedder's table of those weights.
BOOST_AUTO_TEST_CASE(repeated_features_weigh_one_plus_log_count) {
  HashEmbedder e;
  for (int n : {2, 5, 63, 64, 100}) {
    std::string text = "w";
    for (int i = 1; i < n; ++i) text += " w";
    std::vector<float> v = EmbedText(e, text);
    const double word = 1.0 + std::log(static_cast<double>(n));
    const double pair = 0.5 * (1.0 + std::log(static_cast<double>(n - 1)));
    const double norm = std::sqrt(word * word + pair * pair);
    std::vector<float> magnitudes;
    for (float x : v) {
      if (x != 0.0f) magnitudes.push_back(std::fabs(x));
    }
    std::sort(magnitudes.begin(), magnitudes.end());
    BOOST_TEST_CONTEXT("n = " << n) {
      BOOST_REQUIRE_EQUAL(magnitudes.size(), 2u);
      BOOST_TEST(std::fabs(magnitudes[1] - word / norm) < 1e-6);
      BOOST_TEST(std::fabs(magnitudes[0] - pair / norm) < 1e-6);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::rag
