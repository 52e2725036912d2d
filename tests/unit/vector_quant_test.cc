// The int8 building blocks: quantisation error bounds, every SIMD kernel equal to the scalar
// one, the bounded top-k, the two-stage search's recall against the exact float scan, and
// the block value's encoding.
#include "lib/store/vector_quant.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "lib/store/vector_index.h"

namespace ragstream::store {
namespace {

std::vector<float> RandomUnit(std::mt19937& rng, uint32_t dim) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(dim);
  double norm = 0;
  for (float& x : v) {
    x = normal(rng);
    norm += static_cast<double>(x) * x;
  }
  for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

std::vector<float> RandomRows(std::mt19937& rng, uint32_t count, uint32_t dim) {
  std::vector<float> rows;
  rows.reserve(size_t{count} * dim);
  for (uint32_t r = 0; r < count; ++r) {
    auto v = RandomUnit(rng, dim);
    rows.insert(rows.end(), v.begin(), v.end());
  }
  return rows;
}

std::vector<int8_t> RandomInt8(std::mt19937& rng, size_t n) {
  std::uniform_int_distribution<int> u(-127, 127);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(u(rng));
  return v;
}

const std::vector<Int8Kernel> kAllKernels = {Int8Kernel::kScalar, Int8Kernel::kAvx2,
                                             Int8Kernel::kAvx512Vnni};

BOOST_AUTO_TEST_SUITE(vector_quant_test)

BOOST_AUTO_TEST_CASE(quantise_then_dequantise_is_within_half_a_step) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (uint32_t dim : {1u, 3u, 37u, 64u, 384u, 1536u}) {
    for (float magnitude : {1e-6f, 1.0f, 1000.0f}) {
      std::vector<float> x(dim), back(dim);
      for (auto& v : x) v = u(rng) * magnitude;
      std::vector<int8_t> q(dim);
      const float scale = QuantizeInt8(x.data(), dim, q.data());
      float max_abs = 0;
      for (float v : x) max_abs = std::max(max_abs, std::fabs(v));
      BOOST_TEST(scale == max_abs / 127.0f);
      DequantizeInt8(q.data(), scale, dim, back.data());
      bool hit_the_end = false;
      for (uint32_t i = 0; i < dim; ++i) {
        BOOST_TEST(q[i] >= -127);
        BOOST_TEST(q[i] <= 127);
        if (std::abs(q[i]) == 127) hit_the_end = true;
        BOOST_TEST(std::fabs(x[i] - back[i]) <= 0.5f * scale * (1 + 1e-5f),
                   "dim " << dim << " i " << i << ": " << x[i] << " vs " << back[i]);
      }
      BOOST_TEST(hit_the_end, "the largest |x| maps to +-127");
    }
  }
}

BOOST_AUTO_TEST_CASE(zero_and_non_finite_vectors_quantise_to_zero) {
  const float zero[] = {0, 0, 0, 0};
  const float nan[] = {1, std::numeric_limits<float>::quiet_NaN(), 0.5f, 0};
  const float inf[] = {1, std::numeric_limits<float>::infinity(), 0.5f, 0};
  for (const float* x : {zero, nan, inf}) {
    int8_t q[4] = {1, 1, 1, 1};
    BOOST_TEST(QuantizeInt8(x, 4, q) == 0.0f);
    for (int8_t v : q) BOOST_TEST(v == 0);
  }
  int8_t none[1] = {5};
  BOOST_TEST(QuantizeInt8(zero, 0, none) == 0.0f);
  BOOST_TEST(none[0] == 5);  // nothing written for dim 0
}

BOOST_AUTO_TEST_CASE(every_simd_kernel_equals_the_scalar_one) {
  std::mt19937 rng(2);
  BOOST_TEST_MESSAGE("DotInt8 runs on " << DotInt8Kernel());
  const std::string picked = DotInt8Kernel();
  BOOST_TEST((picked == "avx512vnni" || picked == "avx2" || picked == "scalar"));
  for (Int8Kernel kernel : kAllKernels) {
    if (!Int8KernelSupported(kernel)) {
      BOOST_TEST_MESSAGE("kernel " << static_cast<int>(kernel) << " not supported here");
      continue;
    }
    for (uint32_t dim : {0u, 1u, 31u, 32u, 33u, 63u, 64u, 65u, 127u, 128u, 129u, 200u, 384u, 1536u,
                         1537u, 4096u, 4097u, 8200u}) {
      // Enough rows that the AVX2 kernel's read-ahead (2 KiB) reaches the end of the rows.
      const uint32_t count = dim < 512 ? 37 : 7;
      const size_t stride = dim + 5;  // rows deliberately not 64-byte aligned
      auto query = RandomInt8(rng, dim);
      auto rows = RandomInt8(rng, stride * count);
      std::vector<int32_t> got(count), want(count);
      DotInt8RowsWith(kernel, query.data(), rows.data(), stride, count, dim, got.data());
      DotInt8RowsWith(Int8Kernel::kScalar, query.data(), rows.data(), stride, count, dim,
                      want.data());
      BOOST_TEST(got == want, "kernel " << static_cast<int>(kernel) << " dim " << dim);
      for (uint32_t r = 0; r < count; ++r) {
        int64_t exact = 0;
        for (uint32_t i = 0; i < dim; ++i) exact += int64_t{query[i]} * rows[r * stride + i];
        BOOST_TEST(want[r] == exact);
      }
    }
    // The extremes: no 16-bit pair sum may saturate.
    for (int8_t qa : {int8_t{127}, int8_t{-127}}) {
      for (int8_t xb : {int8_t{127}, int8_t{-127}}) {
        const uint32_t dim = 1536;
        std::vector<int8_t> a(dim, qa), b(dim, xb);
        int32_t got = 0;
        DotInt8RowsWith(kernel, a.data(), b.data(), 0, 1, dim, &got);
        BOOST_TEST(got == int32_t{qa} * xb * static_cast<int32_t>(dim));
      }
    }
  }
  // The dispatched entry points agree with the reference.
  auto a = RandomInt8(rng, 384), b = RandomInt8(rng, 384);
  BOOST_TEST(DotInt8(a.data(), b.data(), 384) == DotInt8Scalar(a.data(), b.data(), 384));
}

// The int8 score is within the bound its two rounding errors allow of the float score.
BOOST_AUTO_TEST_CASE(quantised_score_is_close_to_the_float_score) {
  std::mt19937 rng(3);
  for (uint32_t dim : {64u, 384u, 1536u}) {
    for (int t = 0; t < 50; ++t) {
      auto x = RandomUnit(rng, dim), y = RandomUnit(rng, dim);
      std::vector<int8_t> qx(dim), qy(dim);
      const float sx = QuantizeInt8(x.data(), dim, qx.data());
      const float sy = QuantizeInt8(y.data(), dim, qy.data());
      const double approx = double{sx} * sy * DotInt8(qx.data(), qy.data(), dim);
      double exact = 0, bound = 0;
      for (uint32_t i = 0; i < dim; ++i) {
        exact += double{x[i]} * y[i];
        // x = qx sx + ex, |ex| <= sx / 2 (the same for y).
        bound += std::fabs(x[i]) * sy / 2 + std::fabs(y[i]) * sx / 2 + double{sx} * sy / 4;
      }
      BOOST_TEST(std::fabs(approx - exact) <= bound * (1 + 1e-4) + 1e-6);
      // And in practice far tighter than the worst case: the errors are not aligned.
      BOOST_TEST(std::fabs(approx - exact) < 0.01);
    }
  }
}

BOOST_AUTO_TEST_CASE(top_k_keeps_the_best_in_order) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> u(0, 50);  // many equal scores
  std::vector<ScoredRow> all;
  for (uint64_t id = 0; id < 1000; ++id) all.push_back({static_cast<float>(u(rng)), id});
  std::shuffle(all.begin(), all.end(), rng);
  for (size_t k : {0u, 1u, 10u, 999u, 1000u, 5000u}) {
    TopK top(k);
    for (const auto& r : all) {
      if (top.Accepts(r.score)) top.Push(r.score, r.id);
    }
    std::vector<ScoredRow> want = all;
    std::sort(want.begin(), want.end(), [](const ScoredRow& a, const ScoredRow& b) {
      return a.score > b.score || (a.score == b.score && a.id < b.id);
    });
    want.resize(std::min(k, want.size()));
    auto got = top.Take();
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      BOOST_TEST(got[i].score == want[i].score);
      BOOST_TEST(got[i].id == want[i].id);
    }
    BOOST_TEST(top.size() == 0u);
  }
  // Merging two halves gives the top of the whole.
  TopK left(10), right(10), whole(10);
  for (size_t i = 0; i < all.size(); ++i) {
    (i % 2 ? left : right).Push(all[i].score, all[i].id);
    whole.Push(all[i].score, all[i].id);
  }
  left.Merge(right);
  auto merged = left.Take(), expected = whole.Take();
  BOOST_REQUIRE_EQUAL(merged.size(), expected.size());
  for (size_t i = 0; i < merged.size(); ++i) BOOST_TEST(merged[i].id == expected[i].id);
}

BOOST_AUTO_TEST_CASE(block_encoding_round_trips_and_rejects_bad_values) {
  std::mt19937 rng(5);
  const uint32_t dim = 100, count = 9;
  auto rows = RandomRows(rng, count, dim);
  const std::string value = EncodeInt8Block(rows.data(), count, dim);
  BOOST_TEST(Int8Stride(dim) == 128u);
  BOOST_TEST(value.size() == kInt8BlockHeaderBytes + count * 128 + count * sizeof(float));
  auto view = DecodeInt8Block(value, dim, 1000);
  BOOST_REQUIRE_MESSAGE(view.ok(), view.status().ToString());
  BOOST_TEST(view->count == count);
  BOOST_TEST(view->first_id == 1000u);
  for (uint32_t r = 0; r < count; ++r) {
    std::vector<int8_t> q(dim);
    const float scale = QuantizeInt8(rows.data() + r * dim, dim, q.data());
    float stored;
    std::memcpy(&stored, view->scales + r * sizeof(float), sizeof stored);
    BOOST_TEST(stored == scale);
    BOOST_TEST(std::memcmp(view->rows + r * view->stride, q.data(), dim) == 0);
    for (size_t pad = dim; pad < view->stride; ++pad) BOOST_TEST(view->rows[r * 128 + pad] == 0);
  }
  BOOST_TEST(!DecodeInt8Block(value, dim + 1, 0).ok());
  BOOST_TEST(!DecodeInt8Block(value.substr(0, value.size() - 1), dim, 0).ok());
  BOOST_TEST(!DecodeInt8Block(value.substr(0, 20), dim, 0).ok());
  std::string bad_magic = value;
  bad_magic[0] ^= 1;
  BOOST_TEST(!DecodeInt8Block(bad_magic, dim, 0).ok());
  std::string huge_count = value;
  const uint32_t big = 0xFFFFFFFFu;
  std::memcpy(huge_count.data() + 4, &big, sizeof big);
  BOOST_TEST(!DecodeInt8Block(huge_count, dim, 0).ok());
  // An empty block is valid and scans to nothing.
  const std::string empty = EncodeInt8Block(nullptr, 0, dim);
  auto empty_view = DecodeInt8Block(empty, dim, 0);
  BOOST_REQUIRE(empty_view.ok());
  TopK none(10);
  const auto q = QuantizeQuery(rows.data(), dim);
  ScanInt8Block(q, *empty_view, none);
  BOOST_TEST(none.size() == 0u);
}

// The int8 stage keeps exactly the rows with the best approximate scores.
BOOST_AUTO_TEST_CASE(int8_scan_keeps_the_best_approximate_scores) {
  std::mt19937 rng(6);
  // 3003 rows: batches of 256, eight scores at a time, and a rest of three.
  const uint32_t dim = 384, count = 3003;
  auto rows = RandomRows(rng, count, dim);
  const std::string value = EncodeInt8Block(rows.data(), count, dim);
  auto view = DecodeInt8Block(value, dim, 50);
  BOOST_REQUIRE(view.ok());
  auto query = RandomUnit(rng, dim);
  const Int8Query q = QuantizeQuery(query.data(), dim);
  TopK top(40);
  ScanInt8Block(q, *view, top);
  auto got = top.Take();
  std::vector<ScoredRow> want;
  for (uint32_t r = 0; r < count; ++r) {
    float scale;
    std::memcpy(&scale, view->scales + r * sizeof(float), sizeof scale);
    const int32_t dot = DotInt8Scalar(q.q.data(), view->rows + r * view->stride, dim);
    want.push_back({static_cast<float>(dot) * (q.scale * scale), 50u + r});
  }
  std::sort(want.begin(), want.end(), [](const ScoredRow& a, const ScoredRow& b) {
    return a.score > b.score || (a.score == b.score && a.id < b.id);
  });
  BOOST_REQUIRE_EQUAL(got.size(), 40u);
  for (size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST(got[i].id == want[i].id);
    BOOST_TEST(got[i].score == want[i].score);
  }
  // A query of another dimension scans nothing.
  TopK other(10);
  ScanInt8Block(QuantizeQuery(query.data(), 64), *view, other);
  BOOST_TEST(other.size() == 0u);
}

// Recall@10 of the two-stage search with the default oversampling against the exact float
// scan, on random unit vectors (the hard case: their scores crowd together), and the
// rescored scores are the exact scan's.
void CheckRecall(uint32_t dim, uint32_t count, int queries, unsigned seed) {
  std::mt19937 rng(seed);
  auto rows = RandomRows(rng, count, dim);
  const std::string value = EncodeInt8Block(rows.data(), count, dim);
  auto view = DecodeInt8Block(value, dim, 0);
  BOOST_REQUIRE(view.ok());
  const size_t k = 10;
  size_t found = 0;
  for (int t = 0; t < queries; ++t) {
    auto query = RandomUnit(rng, dim);
    TopK exact(k);
    for (uint32_t r = 0; r < count; ++r) {
      exact.Push(DotProduct(query.data(), rows.data() + size_t{r} * dim, dim), r);
    }
    auto want = exact.Take();
    auto got = TwoStageSearch(query.data(), *view, rows.data(), k);
    BOOST_REQUIRE_EQUAL(got.size(), k);
    std::set<uint64_t> want_ids;
    for (const auto& w : want) want_ids.insert(w.id);
    for (size_t i = 0; i < got.size(); ++i) {
      found += want_ids.count(got[i].id);
      BOOST_TEST(got[i].score ==
                 DotProduct(query.data(), rows.data() + got[i].id * size_t{dim}, dim));
      if (i > 0) BOOST_TEST(got[i - 1].score >= got[i].score);
    }
  }
  const double recall = static_cast<double>(found) / (k * queries);
  BOOST_TEST_MESSAGE("dim " << dim << " x " << count << ": recall@10 " << recall);
  BOOST_TEST(recall >= 0.99, "recall@10 " << recall << " at dim " << dim);
}

BOOST_AUTO_TEST_CASE(two_stage_recall_at_10_is_at_least_0_99_dim_384) {
  CheckRecall(384, 20000, 50, 7);
}

BOOST_AUTO_TEST_CASE(two_stage_recall_at_10_is_at_least_0_99_dim_1536) {
  CheckRecall(1536, 5000, 30, 8);
}

BOOST_AUTO_TEST_CASE(a_stored_vector_finds_itself_first) {
  std::mt19937 rng(9);
  const uint32_t dim = 64, count = 500;
  auto rows = RandomRows(rng, count, dim);
  const std::string value = EncodeInt8Block(rows.data(), count, dim);
  auto view = DecodeInt8Block(value, dim, 7);
  BOOST_REQUIRE(view.ok());
  for (uint32_t r : {0u, 250u, 499u}) {
    auto got = TwoStageSearch(rows.data() + r * dim, *view, rows.data(), 3);
    BOOST_REQUIRE(!got.empty());
    BOOST_TEST(got[0].id == 7u + r);
    BOOST_TEST(std::fabs(got[0].score - 1.0f) < 1e-5);
  }
  // k = 0 gives nothing; k larger than the block gives every row.
  BOOST_TEST(TwoStageSearch(rows.data(), *view, rows.data(), 0).empty());
  BOOST_TEST(TwoStageSearch(rows.data(), *view, rows.data(), 1000, 1).size() == count);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::store
