// GET /metrics: Prometheus text format, the totals of every worker process on the host.
#pragma once

#include "handlers/app.h"

namespace ragstream::handlers {

void HandleMetrics(const AppContext& app, HttpResponse& res);

}  // namespace ragstream::handlers
