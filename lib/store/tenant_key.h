// Keys of tenant-owned records begin with the tenant's name and '/': a tenant's records are
// one contiguous key range, scans and listings stay inside it, and a lookup with another
// tenant's id finds nothing -- scoping by construction rather than by a check after loading.
#pragma once

#include <string>
#include <string_view>

namespace ragstream::store {

inline std::string TenantKey(std::string_view tenant, std::string_view rest) {
  std::string key;
  key.reserve(tenant.size() + 1 + rest.size());
  key.append(tenant);
  key.push_back('/');
  key.append(rest);
  return key;
}

// The key range of one tenant: every key starting with this.
inline std::string TenantPrefix(std::string_view tenant) {
  return TenantKey(tenant, {});
}

inline bool HasPrefix(std::string_view key, std::string_view prefix) {
  return key.substr(0, prefix.size()) == prefix;
}

}  // namespace ragstream::store
