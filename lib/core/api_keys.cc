#include "lib/core/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "lib/core/hex.h"
#include "lib/core/tenant.h"

namespace ragstream {
namespace {

// A SHA-256 in hex, either case.
bool DecodeHex32(std::string_view hex, std::array<unsigned char, 32>& out) {
  std::string lower(hex), bytes;
  for (char& c : lower) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  if (!HexDecode(lower, bytes) || bytes.size() != out.size()) return false;
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

Result<ApiKeys> ApiKeys::Parse(std::string_view text) {
  ApiKeys keys;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument("invalid_api_keys_file",
                                     "line " + std::to_string(line_no) + ": " + why);
    };
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return bad("expected tenant:sha256hex");
    Entry e;
    e.tenant = std::string(Trim(line.substr(0, colon)));
    if (!ValidTenantName(e.tenant)) {
      return bad("the tenant name must be 1-64 of A-Z a-z 0-9 . _ -");
    }
    if (!DecodeHex32(Trim(line.substr(colon + 1)), e.hash)) {
      return bad("expected the key's SHA-256 as 64 hex digits after the colon (not the key)");
    }
    for (const Entry& other : keys.entries_) {
      if (other.hash == e.hash) return bad("the same key hash appears twice");
    }
    keys.entries_.push_back(std::move(e));
  }
  return keys;
}

Result<ApiKeys> ApiKeys::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("invalid_api_keys_file",
                                   "cannot read RAGSTREAM_API_KEYS_FILE " + path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto keys = Parse(text.str());
  if (!keys.ok()) {
    return Status::InvalidArgument("invalid_api_keys_file", path + ": " + keys.status().message());
  }
  if (keys->size() == 0) {
    return Status::InvalidArgument("invalid_api_keys_file", path + " holds no keys");
  }
  return keys;
}

std::optional<std::string> ApiKeys::TenantOf(std::string_view key) const {
  if (key.empty()) return std::nullopt;
  std::array<unsigned char, 32> hash;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), hash.data());
  // Every entry is compared, and with CRYPTO_memcmp: the time does not depend on where or
  // whether a match is found.
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {
    bool match = CRYPTO_memcmp(e.hash.data(), hash.data(), hash.size()) == 0;
    if (match) found = &e;
  }
  if (!found) return std::nullopt;
  const std::string_view named = KeyTenantPrefix(key);
  if (!named.empty() && named != found->tenant) return std::nullopt;
  return found->tenant;
}

size_t ApiKeys::tenant_count() const {
  std::set<std::string_view> names;
  for (const Entry& e : entries_) names.insert(e.tenant);
  return names.size();
}

std::string_view KeyTenantPrefix(std::string_view key) {
  constexpr std::string_view kHead = "rsk_";
  constexpr size_t kSecretHex = 64;
  // rsk_ + tenant (1-64) + _ + secret: the secret's length finds the separator, so a tenant
  // name may itself contain '_'.
  if (key.size() < kHead.size() + 1 + 1 + kSecretHex || key.substr(0, kHead.size()) != kHead) {
    return {};
  }
  const size_t sep = key.size() - kSecretHex - 1;
  if (key[sep] != '_') return {};
  for (char c : key.substr(sep + 1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return {};
  }
  const std::string_view tenant = key.substr(kHead.size(), sep - kHead.size());
  return ValidTenantName(tenant) ? tenant : std::string_view();
}

std::string_view BearerToken(std::string_view authorization) {
  authorization = Trim(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return {};
  }
  return Trim(authorization.substr(kScheme.size()));
}

}  // namespace ragstream
