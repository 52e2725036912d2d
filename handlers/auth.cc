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
    if (IsLoopbackAddress(req.remote_addr)) return std::string(kDefaultTenant);
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
