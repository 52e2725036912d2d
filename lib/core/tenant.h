// Tenants: every conversation, message, document, chunk and vector belongs to one. A
// request's tenant is the one its API key proves (handlers/auth), never a header or body
// field; without a key file every (loopback) client is the default tenant.
#pragma once

#include <string_view>

namespace ragstream {

inline constexpr std::string_view kDefaultTenant = "default";

// 1 to 64 of [A-Za-z0-9._-]. Never contains '/', which the store uses to end a tenant's key
// prefix, so one tenant's key range never holds another's keys.
inline bool ValidTenantName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace ragstream
