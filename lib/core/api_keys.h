// API keys: the file named by RAGSTREAM_API_KEYS_FILE holds one `tenant:sha256hex(key)` a
// line (`#` comments and blank lines allowed; scripts/make_api_key.sh makes a key and its
// line). Only the hashes are on disk and in memory; a presented key is hashed and compared
// with every entry in constant time, so neither the answer nor its timing tells how much of
// a key was right or which entry came close.
//
// Keys made by scripts/make_api_key.sh carry their tenant in the clear: rsk_<tenant>_<64 hex>,
// so that a front nginx can route a request to its tenant's shard by the Authorization header
// alone, without any secret (docs/operations.md, "Scaling out"). The whole key is still what
// is hashed and checked; a key whose prefix names another tenant than the file gives it is
// refused. Keys without a prefix (rsk_<64 hex>, made before) keep working.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

namespace ragstream {

class ApiKeys {
 public:
  // Parses the file's text. An error names the line number and what is wrong with it, never
  // the line itself.
  static Result<ApiKeys> Parse(std::string_view text);
  static Result<ApiKeys> Load(const std::string& path);

  // The tenant `key` belongs to, or nullopt (also when the key's prefix names another
  // tenant than its entry: routing by that prefix would send it to the wrong shard).
  std::optional<std::string> TenantOf(std::string_view key) const;

  size_t size() const { return entries_.size(); }
  size_t tenant_count() const;

 private:
  struct Entry {
    std::string tenant;
    std::array<unsigned char, 32> hash;
  };
  std::vector<Entry> entries_;
};

// The tenant a key names in its prefix (rsk_<tenant>_<64 hex>), or "" when it names none.
std::string_view KeyTenantPrefix(std::string_view key);

// The token of an `Authorization: Bearer <token>` header value ("" if it is not one).
std::string_view BearerToken(std::string_view authorization);

}  // namespace ragstream
