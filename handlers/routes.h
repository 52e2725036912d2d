// The route table of the API.
#pragma once

#include "handlers/app.h"
#include "handlers/router.h"

namespace ragstream::handlers {

// Every route, one line each. `app` must outlive the router.
Router BuildRouter(const AppContext& app);

}  // namespace ragstream::handlers
