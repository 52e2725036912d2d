// API keys and authentication: the key file's format and errors, the Bearer header, the
// constant-time lookup's answers, and who Authenticate lets in as which tenant.
#include "lib/core/api_keys.h"

#include <boost/test/unit_test.hpp>

#include <cctype>
#include <string>

#include "handlers/auth.h"
#include "lib/core/sha256.h"
#include "lib/core/tenant.h"

namespace ragstream {
namespace {

const std::string kKeyA = "rsk_alpha_0123456789abcdef";
const std::string kKeyB = "rsk_bravo_fedcba9876543210";

std::string KeysFile() {
  return "# tenants of the test\n\nalpha:" + Sha256Hex(kKeyA) + "\n  bravo : " + Sha256Hex(kKeyB) +
         "  \r\n";
}

BOOST_AUTO_TEST_SUITE(api_keys_test)

BOOST_AUTO_TEST_CASE(a_key_maps_to_its_tenant_and_nothing_else_does) {
  auto keys = ApiKeys::Parse(KeysFile());
  BOOST_REQUIRE_MESSAGE(keys.ok(), keys.status().ToString());
  BOOST_TEST(keys->size() == 2u);
  BOOST_TEST(keys->tenant_count() == 2u);
  BOOST_TEST(keys->TenantOf(kKeyA).value_or("") == "alpha");
  BOOST_TEST(keys->TenantOf(kKeyB).value_or("") == "bravo");
  BOOST_TEST(!keys->TenantOf("").has_value());
  BOOST_TEST(!keys->TenantOf(kKeyA + "x").has_value());
  BOOST_TEST(!keys->TenantOf(kKeyA.substr(0, kKeyA.size() - 1)).has_value());
  // The file holds hashes: presenting a hash is not presenting the key.
  BOOST_TEST(!keys->TenantOf(Sha256Hex(kKeyA)).has_value());
}

BOOST_AUTO_TEST_CASE(a_key_names_its_tenant_in_its_prefix_and_must_name_the_right_one) {
  const std::string secret(64, 'a');
  const std::string alpha = "rsk_alpha_" + secret;
  const std::string under = "rsk_team_b.x-1_" + secret;  // '_' inside the tenant name
  BOOST_TEST(KeyTenantPrefix(alpha) == "alpha");
  BOOST_TEST(KeyTenantPrefix(under) == "team_b.x-1");
  // No prefix: the keys made before (rsk_ + 64 hex), other shapes, a bad tenant name.
  BOOST_TEST(KeyTenantPrefix("rsk_" + secret).empty());
  BOOST_TEST(KeyTenantPrefix("rsk__" + secret).empty());
  BOOST_TEST(KeyTenantPrefix("rsk_alpha_" + secret.substr(1)).empty());
  BOOST_TEST(KeyTenantPrefix("rsk_alpha_" + std::string(64, 'A')).empty());
  BOOST_TEST(KeyTenantPrefix("rsk_al/pha_" + secret).empty());
  BOOST_TEST(KeyTenantPrefix("xsk_alpha_" + secret).empty());
  BOOST_TEST(KeyTenantPrefix(kKeyA).empty());

  // The file gives each key to a tenant; a key whose prefix names another one is refused,
  // since a front nginx would route it by that name.
  auto keys = ApiKeys::Parse("alpha:" + Sha256Hex(alpha) + "\nteam_b.x-1:" + Sha256Hex(under) +
                             "\nbravo:" + Sha256Hex("rsk_alpha_" + std::string(64, 'b')) + "\n");
  BOOST_REQUIRE_MESSAGE(keys.ok(), keys.status().ToString());
  BOOST_TEST(keys->TenantOf(alpha).value_or("") == "alpha");
  BOOST_TEST(keys->TenantOf(under).value_or("") == "team_b.x-1");
  BOOST_TEST(!keys->TenantOf("rsk_alpha_" + std::string(64, 'b')).has_value());
}

BOOST_AUTO_TEST_CASE(the_hash_may_be_written_in_upper_case) {
  std::string upper = Sha256Hex(kKeyA);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto keys = ApiKeys::Parse("alpha:" + upper + "\n");
  BOOST_REQUIRE_MESSAGE(keys.ok(), keys.status().ToString());
  BOOST_TEST(keys->TenantOf(kKeyA).value_or("") == "alpha");
}

BOOST_AUTO_TEST_CASE(several_keys_may_belong_to_one_tenant) {
  auto keys = ApiKeys::Parse("alpha:" + Sha256Hex("one") + "\nalpha:" + Sha256Hex("two") + "\n");
  BOOST_REQUIRE(keys.ok());
  BOOST_TEST(keys->tenant_count() == 1u);
  BOOST_TEST(keys->TenantOf("one").value_or("") == "alpha");
  BOOST_TEST(keys->TenantOf("two").value_or("") == "alpha");
}

BOOST_AUTO_TEST_CASE(bad_lines_are_rejected_by_line_number_without_their_content) {
  const std::string hash = Sha256Hex("secret-ish");
  struct Case {
    std::string text;
    std::string line;
  };
  const Case cases[] = {
      {"alpha " + hash, "line 1"},                      // no colon
      {"\n:" + hash, "line 2"},                         // empty tenant
      {"al/pha:" + hash, "line 1"},                     // '/' would break key ranges
      {std::string(65, 'a') + ":" + hash, "line 1"},    // too long
      {"alpha:" + hash.substr(1), "line 1"},            // 63 digits
      {"alpha:" + hash.substr(0, 63) + "g", "line 1"},  // not hex
      {"alpha:the-key-itself", "line 1"},               // a key, not its hash
      {"alpha:" + hash + "\nbravo:" + hash, "line 2"},  // one key for two tenants
  };
  for (const auto& c : cases) {
    auto keys = ApiKeys::Parse(c.text);
    BOOST_REQUIRE_MESSAGE(!keys.ok(), c.text);
    BOOST_TEST(keys.status().code() == "invalid_api_keys_file");
    BOOST_TEST(keys.status().message().find(c.line + ":") == 0u, keys.status().message());
    BOOST_TEST(keys.status().message().find(hash.substr(0, 16)) == std::string::npos);
    BOOST_TEST(keys.status().message().find("the-key-itself") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_missing_or_empty_file_is_an_error) {
  BOOST_TEST(!ApiKeys::Load("/nonexistent/ragstream-keys").ok());
  auto empty = ApiKeys::Parse("# nobody yet\n");
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(empty->size() == 0u);
}

BOOST_AUTO_TEST_CASE(bearer_token_parsing) {
  BOOST_TEST(BearerToken("Bearer abc") == "abc");
  BOOST_TEST(BearerToken("bearer   abc  ") == "abc");
  BOOST_TEST(BearerToken("BEARER abc") == "abc");
  BOOST_TEST(BearerToken("Basic YWJjOmRlZg==").empty());
  BOOST_TEST(BearerToken("Bearer").empty());
  BOOST_TEST(BearerToken("Bearer ").empty());
  BOOST_TEST(BearerToken("").empty());
  BOOST_TEST(BearerToken("Bearerabc").empty());
}

BOOST_AUTO_TEST_CASE(tenant_names) {
  BOOST_TEST(ValidTenantName("acme"));
  BOOST_TEST(ValidTenantName("Acme-Corp_2.eu"));
  BOOST_TEST(!ValidTenantName(""));
  BOOST_TEST(!ValidTenantName("a/b"));
  BOOST_TEST(!ValidTenantName("a b"));
  BOOST_TEST(!ValidTenantName("a:b"));
  BOOST_TEST(!ValidTenantName(std::string(65, 'x')));
  BOOST_TEST(ValidTenantName(std::string(64, 'x')));
}

BOOST_AUTO_TEST_CASE(loopback_addresses) {
  using handlers::IsLoopbackAddress;
  BOOST_TEST(IsLoopbackAddress("127.0.0.1"));
  BOOST_TEST(IsLoopbackAddress("127.8.9.10"));
  BOOST_TEST(IsLoopbackAddress("::1"));
  BOOST_TEST(IsLoopbackAddress("::ffff:127.0.0.1"));
  BOOST_TEST(!IsLoopbackAddress("10.0.0.1"));
  BOOST_TEST(!IsLoopbackAddress("1.127.0.0"));
  BOOST_TEST(!IsLoopbackAddress("::ffff:10.0.0.1"));
  BOOST_TEST(!IsLoopbackAddress("::2"));
  BOOST_TEST(!IsLoopbackAddress(""));  // unknown: not trusted
}

BOOST_AUTO_TEST_CASE(authenticate_without_a_key_file_serves_loopback_as_the_default_tenant) {
  handlers::AppContext app;
  app.trust_loopback = true;
  HttpRequest req;
  req.remote_addr = "127.0.0.1";
  req.peer_is_local = true;
  req.headers["authorization"] = "Bearer " + kKeyA;  // ignored: there are no keys
  auto local = handlers::Authenticate(app, req);
  BOOST_REQUIRE(local.ok());
  BOOST_TEST(*local == std::string(kDefaultTenant));
  req.remote_addr = "192.0.2.7";
  auto remote = handlers::Authenticate(app, req);
  BOOST_REQUIRE(!remote.ok());
  BOOST_TEST((remote.status().kind() == ErrorKind::kForbidden));
  BOOST_TEST(remote.status().code() == "loopback_only");
}

// REMOTE_ADDR is whatever the FastCGI peer says: a peer the transport does not vouch for
// (another user's process on the socket, a remote TCP peer) is refused even when it claims
// 127.0.0.1; and without the opt-in nobody is served without a key.
BOOST_AUTO_TEST_CASE(loopback_trust_needs_the_opt_in_and_a_local_peer) {
  handlers::AppContext app;
  HttpRequest req;
  req.remote_addr = "127.0.0.1";
  req.peer_is_local = true;
  auto off = handlers::Authenticate(app, req);
  BOOST_REQUIRE(!off.ok());
  BOOST_TEST(off.status().code() == "no_api_keys");
  app.trust_loopback = true;
  req.peer_is_local = false;
  auto forged = handlers::Authenticate(app, req);
  BOOST_REQUIRE(!forged.ok());
  BOOST_TEST(forged.status().code() == "loopback_only");
  req.peer_is_local = true;
  BOOST_TEST(handlers::Authenticate(app, req).ok());
}

BOOST_AUTO_TEST_CASE(authenticate_with_keys_needs_a_valid_bearer_key_from_anywhere) {
  auto keys = ApiKeys::Parse(KeysFile());
  BOOST_REQUIRE(keys.ok());
  handlers::AppContext app;
  app.api_keys = &*keys;
  HttpRequest req;
  req.remote_addr = "127.0.0.1";  // loopback is no excuse once keys exist
  auto none = handlers::Authenticate(app, req);
  BOOST_REQUIRE(!none.ok());
  BOOST_TEST((none.status().kind() == ErrorKind::kUnauthorized));
  req.headers["authorization"] = "Bearer wrong-key";
  auto wrong = handlers::Authenticate(app, req);
  BOOST_REQUIRE(!wrong.ok());
  BOOST_TEST((wrong.status().kind() == ErrorKind::kUnauthorized));
  BOOST_TEST(wrong.status().message().find("wrong-key") == std::string::npos);
  req.remote_addr = "198.51.100.4";
  req.headers["authorization"] = "Bearer " + kKeyB;
  auto bravo = handlers::Authenticate(app, req);
  BOOST_REQUIRE(bravo.ok());
  BOOST_TEST(*bravo == "bravo");
  // A header naming a tenant changes nothing: only the key counts.
  req.headers["x-tenant"] = "alpha";
  BOOST_TEST(handlers::Authenticate(app, req).value() == "bravo");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream
