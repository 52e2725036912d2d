// OpenAiEmbedder: the response parser (ordering, normalisation, every malformed
// shape), the request body, Create's checks, and Embed against a scripted
// server on loopback.
#include "lib/llm/openai_embedder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

namespace ragstream::llm {
namespace {

using Vectors = std::vector<std::vector<float>>;

Result<Vectors> Parse(const std::string& body, size_t expected, int dim) {
  return ParseEmbeddingsResponse(body, expected, dim);
}

void ExpectBad(const std::string& body, size_t expected, int dim) {
  auto r = Parse(body, expected, dim);
  BOOST_TEST(!r.ok(), "accepted: " << body);
  if (!r.ok()) {
    BOOST_TEST((r.status().kind() == ErrorKind::kUpstream), r.status().ToString());
    BOOST_TEST(r.status().code() == "upstream_bad_embeddings");
  }
}

std::string Item(int index, const std::string& embedding) {
  return "{\"object\":\"embedding\",\"index\":" + std::to_string(index) +
         ",\"embedding\":" + embedding + "}";
}

std::string Response(const std::vector<std::string>& items) {
  std::string s = "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < items.size(); ++i) s += (i ? "," : "") + items[i];
  return s +
         "],\"model\":\"m\",\"usage\":{\"prompt_tokens\":3,\"total_"
         "tokens\":3}}";
}

// A one-thread HTTP/1.1 server on 127.0.0.1 that answers each connection with
// the next scripted response (the last one repeats) and records the requests it
// got.
class ScriptedServer {
 public:
  struct Reply {
    int status;
    std::string body;
  };

  explicit ScriptedServer(std::vector<Reply> replies) : replies_(std::move(replies)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 8) != 0) {
      close(fd_);
      throw std::runtime_error("bind/listen");
    }
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req = ReadRequest(c);
      Reply reply;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
        reply = replies_[std::min(next_++, replies_.size() - 1)];
      }
      std::string out = "HTTP/1.1 " + std::to_string(reply.status) +
                        " X\r\nContent-Type: application/json\r\nContent-Length: " +
                        std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n" +
                        reply.body;
      for (size_t sent = 0; sent < out.size();) {
        ssize_t n = send(c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      close(c);
    }
  }

  static std::string ReadRequest(int c) {
    std::string req;
    char buf[4096];
    size_t want = std::string::npos;
    while (req.size() < want) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 2000) <= 0) break;
      ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
      size_t head = req.find("\r\n\r\n");
      if (want == std::string::npos && head != std::string::npos) {
        size_t cl = req.find("Content-Length: ");
        size_t body_len = cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
        want = head + 4 + body_len;
      }
    }
    return req;
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Reply> replies_;
  size_t next_ = 0;
  std::vector<std::string> requests_;
};

std::unique_ptr<OpenAiEmbedder> MustCreate(OpenAiEmbedderOptions o) {
  auto e = OpenAiEmbedder::Create(std::move(o));
  BOOST_REQUIRE_MESSAGE(e.ok(), e.status().ToString());
  return std::move(e).value();
}

BOOST_AUTO_TEST_SUITE(openai_embedder_test)

BOOST_AUTO_TEST_CASE(out_of_order_indices_are_reordered_and_normalised) {
  auto r =
      Parse(Response({Item(2, "[0, 0, 2]"), Item(0, "[3, 4, 0]"), Item(1, "[-1, 0, 0]")}), 3, 3);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_REQUIRE_EQUAL(r->size(), 3u);
  const Vectors want = {{0.6f, 0.8f, 0.0f}, {-1.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 1.0f}};
  for (size_t i = 0; i < 3; ++i) {
    BOOST_REQUIRE_EQUAL((*r)[i].size(), 3u);
    double norm = 0;
    for (size_t j = 0; j < 3; ++j) {
      BOOST_TEST((*r)[i][j] == want[i][j], boost::test_tools::tolerance(1e-6f));
      norm += static_cast<double>((*r)[i][j]) * (*r)[i][j];
    }
    BOOST_TEST(norm == 1.0, boost::test_tools::tolerance(1e-6));
  }
}

BOOST_AUTO_TEST_CASE(realistic_values_are_normalised) {
  // Typical API output: small decimals, negative, an exponent, not quite unit
  // length.
  auto r = Parse(Response({Item(0, "[-0.0071287183, 0.01932, 2.5e-3, -1.2E-2, 0.9]")}), 1, 5);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  const double raw[] = {-0.0071287183, 0.01932, 2.5e-3, -1.2e-2, 0.9};
  double norm = 0;
  for (double x : raw) norm += x * x;
  norm = std::sqrt(norm);
  for (size_t j = 0; j < 5; ++j) {
    BOOST_TEST((*r)[0][j] == raw[j] / norm, boost::test_tools::tolerance(1e-5));
  }
  // Huge but finite float values normalise without overflow.
  auto big = Parse(Response({Item(0, "[3e38, 3e38, -3e38, 3e38]")}), 1, 4);
  BOOST_REQUIRE(big.ok());
  for (float x : (*big)[0]) BOOST_TEST(std::abs(x) == 0.5f, boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(a_zero_vector_stays_zero) {
  auto r = Parse(Response({Item(0, "[0, 0, 0]")}), 1, 3);
  BOOST_REQUIRE(r.ok());
  for (float x : (*r)[0]) BOOST_TEST(x == 0.0f);
}

BOOST_AUTO_TEST_CASE(an_empty_batch) {
  auto r = Parse(Response({}), 0, 3);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->empty());
}

BOOST_AUTO_TEST_CASE(wrong_count_is_an_upstream_error) {
  ExpectBad(Response({Item(0, "[1, 0]")}), 2, 2);
  ExpectBad(Response({Item(0, "[1, 0]"), Item(1, "[0, 1]")}), 1, 2);
  ExpectBad(Response({}), 1, 2);
}

BOOST_AUTO_TEST_CASE(wrong_dimension_is_an_upstream_error) {
  ExpectBad(Response({Item(0, "[1, 0]")}), 1, 3);
  ExpectBad(Response({Item(0, "[1, 0, 0, 0]")}), 1, 3);
  ExpectBad(Response({Item(0, "[]")}), 1, 3);
  ExpectBad(Response({Item(0, "[1, 0, 0]"), Item(1, "[1, 0]")}), 2, 3);
}

BOOST_AUTO_TEST_CASE(bad_indices_are_upstream_errors) {
  ExpectBad(Response({"{\"embedding\":[1, 0]}"}), 1, 2);  // missing
  ExpectBad(Response({Item(-1, "[1, 0]")}), 1, 2);
  ExpectBad(Response({Item(1, "[1, 0]")}), 1, 2);  // out of range
  ExpectBad(Response({"{\"index\":\"0\",\"embedding\":[1, 0]}"}), 1, 2);
  ExpectBad(Response({"{\"index\":0.5,\"embedding\":[1, 0]}"}), 1, 2);
  ExpectBad(Response({"{\"index\":null,\"embedding\":[1, 0]}"}), 1, 2);
  // The same index twice leaves another input without an embedding.
  ExpectBad(Response({Item(0, "[1, 0]"), Item(0, "[0, 1]")}), 2, 2);
  ExpectBad(Response({Item(1, "[1, 0]"), Item(1, "[0, 1]")}), 2, 2);
}

BOOST_AUTO_TEST_CASE(non_numeric_values_are_upstream_errors) {
  for (const std::string emb :
       {"[1, \"2\"]", "[1, null]", "[true, 0]", "[[1], 0]", "[{}, 0]", "\"1,2\"", "null", "{}"}) {
    BOOST_TEST_CONTEXT(emb) {
      ExpectBad(Response({Item(0, emb)}), 1, 2);
    }
  }
  ExpectBad(Response({"{\"index\":0}"}), 1, 2);  // no embedding at all
}

BOOST_AUTO_TEST_CASE(malformed_documents_are_upstream_errors) {
  for (const std::string& body : std::vector<std::string>{
           "", "not json", "[]", "null", "{}", "{\"data\":{}}", "{\"data\":null}", "{\"data\":[1]}",
           "{\"data\":[[1,2]]}", "{\"data\":[{\"index\":0,\"embedding\":[1,2]}",
           "{\"error\":{\"message\":\"overloaded\"}}", std::string(100, '[')}) {
    BOOST_TEST_CONTEXT(body) {
      ExpectBad(body, 1, 2);
    }
  }
}

BOOST_AUTO_TEST_CASE(exponents_out_of_range_are_errors_not_crashes) {
  // Beyond double, and the RapidJSON exponent-overflow CVE shape: refused.
  for (const std::string& emb : std::vector<std::string>{
           "[1e400, 0]", "[1, -1e999]", "[1e-2147483649, 0]", "[1e2147483648, 0]",
           "[0." + std::string(400, '1') + ", 0]", "[" + std::string(400, '9') + ", 0]"}) {
    BOOST_TEST_CONTEXT(emb.substr(0, 40)) {
      ExpectBad(Response({Item(0, emb)}), 1, 2);
    }
  }
}

// 1e300 is a valid double but overflows float: cast, it becomes inf, the norm
// is inf, and normalising gives inf * 0 = NaN. A vector of NaNs must not be
// returned as a valid embedding (it would poison every dot product in the
// index).
BOOST_AUTO_TEST_CASE(values_beyond_float_are_refused_not_turned_into_nan) {
  for (const std::string emb : {"[1e300, 1]", "[1, -1e39]", "[3.5e38, 0]"}) {
    BOOST_TEST_CONTEXT(emb) {
      auto r = Parse(Response({Item(0, emb)}), 1, 2);
      if (r.ok()) {
        for (float x : (*r)[0]) BOOST_TEST(std::isfinite(x), "a non-finite component: " << x);
      } else {
        BOOST_TEST(r.status().code() == "upstream_bad_embeddings");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(build_body_has_model_input_and_dimensions_only_when_set) {
  const std::vector<std::string> texts = {"hello", "quote \" and \\ backslash", "שלום 世界",
                                          "line\nbreak", ""};
  for (int dims : {0, 256}) {
    OpenAiEmbedderOptions o;
    o.base_url = "http://127.0.0.1:9";
    o.model = "text-embedding-3-small";
    o.dimensions = dims;
    auto e = MustCreate(o);
    const std::string body = e->BuildBody(texts);
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    BOOST_REQUIRE(!doc.HasParseError());
    BOOST_REQUIRE(doc.IsObject());
    BOOST_TEST(std::string(doc["model"].GetString()) == "text-embedding-3-small");
    BOOST_REQUIRE(doc["input"].IsArray());
    BOOST_REQUIRE_EQUAL(doc["input"].Size(), texts.size());
    for (rapidjson::SizeType i = 0; i < texts.size(); ++i) {
      BOOST_TEST(std::string(doc["input"][i].GetString(), doc["input"][i].GetStringLength()) ==
                 texts[i]);
    }
    BOOST_TEST(doc.HasMember("dimensions") == (dims > 0));
    if (dims > 0) BOOST_TEST(doc["dimensions"].GetInt() == dims);
    BOOST_TEST(std::string(doc["encoding_format"].GetString()) == "float");
    BOOST_TEST(e->dimension() == (dims > 0 ? dims : 1536));
  }
}

BOOST_AUTO_TEST_CASE(create_knows_models_and_refuses_unknown_ones_without_dimensions) {
  OpenAiEmbedderOptions o;
  o.base_url = "http://127.0.0.1:9";
  o.model = "text-embedding-3-large";
  auto large = MustCreate(o);
  BOOST_TEST(large->dimension() == 3072);
  BOOST_TEST(large->name() == "openai:text-embedding-3-large");
  o.model = "text-embedding-ada-002";
  BOOST_TEST(MustCreate(o)->dimension() == 1536);

  o.model = "nomic-embed-text";
  o.dimensions = 0;
  auto unknown = OpenAiEmbedder::Create(o);
  BOOST_REQUIRE(!unknown.ok());
  BOOST_TEST((unknown.status().kind() == ErrorKind::kInvalidArgument));
  BOOST_TEST(unknown.status().code() == "invalid_config");
  BOOST_TEST(unknown.status().message().find("nomic-embed-text") != std::string::npos,
             unknown.status().message());
  BOOST_TEST(unknown.status().message().find("RAGSTREAM_EMBED_DIMENSIONS") != std::string::npos);
  o.dimensions = -5;
  BOOST_TEST(!OpenAiEmbedder::Create(o).ok());

  o.dimensions = 768;
  auto known_now = MustCreate(o);
  BOOST_TEST(known_now->dimension() == 768);
  BOOST_TEST(known_now->name() == "openai:nomic-embed-text");
}

BOOST_AUTO_TEST_CASE(embed_of_nothing_makes_no_request) {
  OpenAiEmbedderOptions o;
  o.base_url = "http://127.0.0.1:9";  // nothing listens; must not be contacted
  auto e = MustCreate(o);
  auto r = e->Embed({});
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->empty());
}

BOOST_AUTO_TEST_CASE(embed_posts_the_body_and_parses_the_answer) {
  ScriptedServer server({{200, Response({Item(1, "[0, 2]"), Item(0, "[3, 4]")})}});
  OpenAiEmbedderOptions o;
  o.base_url = server.base_url();
  o.api_key = "sk-test-secret-key";
  o.model = "my-model";
  o.dimensions = 2;
  o.max_retries = 0;
  auto e = MustCreate(o);
  auto r = e->Embed({"first", "second"});
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_REQUIRE_EQUAL(r->size(), 2u);
  BOOST_TEST((*r)[0][0] == 0.6f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST((*r)[1][1] == 1.0f, boost::test_tools::tolerance(1e-6f));

  auto reqs = server.requests();
  BOOST_REQUIRE_EQUAL(reqs.size(), 1u);
  const std::string& req = reqs[0];
  BOOST_TEST(req.rfind("POST /v1/embeddings HTTP/1.1\r\n", 0) == 0u, req);
  BOOST_TEST(req.find("Authorization: Bearer sk-test-secret-key\r\n") != std::string::npos);
  BOOST_TEST(req.find("Content-Type: application/json\r\n") != std::string::npos);
  BOOST_TEST(req.substr(req.find("\r\n\r\n") + 4) == e->BuildBody({"first", "second"}));
}

BOOST_AUTO_TEST_CASE(embed_retries_server_errors_then_succeeds) {
  ScriptedServer server({{503, "{\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}"},
                         {200, Response({Item(0, "[1, 0]")})}});
  OpenAiEmbedderOptions o;
  o.base_url = server.base_url();
  o.model = "m";
  o.dimensions = 2;
  o.max_retries = 2;
  auto r = MustCreate(o)->Embed({"x"});
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(server.requests().size() == 2u);
}

BOOST_AUTO_TEST_CASE(embed_does_not_retry_client_errors_and_scrubs_the_key) {
  ScriptedServer server({{401,
                          "{\"error\":{\"message\":\"Incorrect API key provided: "
                          "sk-test-secret-key\","
                          "\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}"}});
  OpenAiEmbedderOptions o;
  o.base_url = server.base_url();
  o.api_key = "sk-test-secret-key";
  o.model = "m";
  o.dimensions = 2;
  o.max_retries = 3;
  auto r = MustCreate(o)->Embed({"x"});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().kind() == ErrorKind::kUpstream));
  // Our code and words; the upstream's text (which quotes the key) stays out.
  BOOST_TEST(r.status().code() == "upstream_auth");
  BOOST_TEST(r.status().message().find("Incorrect API key") == std::string::npos);
  BOOST_TEST(r.status().message().find("sk-test-secret-key") == std::string::npos,
             r.status().message());
  BOOST_TEST(server.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(embed_reports_a_malformed_200_and_an_unreachable_host) {
  {
    ScriptedServer server({{200, "{\"data\":[]}"}});
    OpenAiEmbedderOptions o;
    o.base_url = server.base_url();
    o.model = "m";
    o.dimensions = 2;
    o.max_retries = 0;
    auto r = MustCreate(o)->Embed({"x"});
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.status().code() == "upstream_bad_embeddings");
  }
  {
    // A port nothing listens on: connection refused, an upstream error.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    const int port = ntohs(addr.sin_port);
    close(fd);  // bound, never listened, now closed: refused
    OpenAiEmbedderOptions o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port);
    o.model = "m";
    o.dimensions = 2;
    o.max_retries = 0;
    o.connect_timeout_ms = 2000;
    auto r = MustCreate(o)->Embed({"x"});
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST((r.status().kind() == ErrorKind::kUpstream));
    BOOST_TEST(r.status().code() == "upstream_unreachable");
  }
}

// After the last attempt there is nothing to wait for: the backoff sleep (250
// ms << attempt) and the "retrying" log line belong between attempts only. With
// max_retries = 0 a refused connection should fail at once, not after 250 ms.
BOOST_AUTO_TEST_CASE(no_backoff_after_the_last_attempt) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  OpenAiEmbedderOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.model = "m";
  o.dimensions = 2;
  o.max_retries = 0;
  auto e = MustCreate(o);
  const auto start = std::chrono::steady_clock::now();
  auto r = e->Embed({"x"});
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(ms < 200, "a refused connection with no retries took " << ms << " ms");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::llm
