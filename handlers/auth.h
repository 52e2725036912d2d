// Who is calling. With RAGSTREAM_API_KEYS_FILE, a request must carry
// `Authorization: Bearer <key>`, and its tenant is the one the key belongs to (401 otherwise).
// Without a key file, only loopback clients are served (403 otherwise), all as the default
// tenant: a fresh install is usable on the machine itself and closed to everyone else.
#pragma once

#include <string>
#include <string_view>

#include "handlers/app.h"

namespace ragstream::handlers {

// The caller's tenant, or 401 unauthorized / 403 loopback_only. Never echoes the key.
Result<std::string> Authenticate(const AppContext& app, const HttpRequest& req);

// 127.0.0.0/8, ::1 and their IPv4-mapped forms.
bool IsLoopbackAddress(std::string_view address);

}  // namespace ragstream::handlers
