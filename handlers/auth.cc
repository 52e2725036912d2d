#include "handlers/auth.h"

#include "lib/core/tenant.h"

namespace ragstream::handlers {

bool IsLoopbackAddress(std::string_view address) {
  if (address == "::1") return true;
  constexpr std::string_view kMapped = "::ffff:";
  if (address.substr(0, kMapped.size()) == kMapped) address.remove_prefix(kMapped.size());
  return address.substr(0, 4) == "127.";
}

Result<std::string> Authenticate(const AppContext& app, const HttpRequest& req) {
  if (!app.api_keys) {
    if (!app.trust_loopback) {
      return Status(ErrorKind::kForbidden, "no_api_keys",
                    "this server has no API keys (RAGSTREAM_API_KEYS_FILE) and does not trust "
                    "clients on its own machine without one (RAGSTREAM_TRUST_LOOPBACK=1)");
    }
    // Both the FastCGI peer (checked by the transport: SO_PEERCRED or its address) and the
    // client address it reports must be local; REMOTE_ADDR alone is whatever a peer says.
    if (req.peer_is_local && IsLoopbackAddress(req.remote_addr)) {
      return std::string(kDefaultTenant);
    }
    return Status(ErrorKind::kForbidden, "loopback_only",
                  "this server has no API keys configured (RAGSTREAM_API_KEYS_FILE) and serves "
                  "only clients on its own machine");
  }
  const std::string authorization = req.Header("authorization");
  std::string_view key = BearerToken(authorization);
  if (key.empty()) {
    return Status(ErrorKind::kUnauthorized, "unauthorized",
                  "an API key is required: send Authorization: Bearer <key>");
  }
  if (auto tenant = app.api_keys->TenantOf(key)) return std::move(*tenant);
  return Status(ErrorKind::kUnauthorized, "unauthorized", "the API key is not valid");
}

}  // namespace ragstream::handlers
