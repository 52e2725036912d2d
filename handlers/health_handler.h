// GET /api/health: store readable, map use, configured model (never a secret), version,
// uptime.
#pragma once

#include "handlers/app.h"

namespace ragstream::handlers {

void HandleHealth(const AppContext& app, HttpResponse& res);

}  // namespace ragstream::handlers
