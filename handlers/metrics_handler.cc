#include "handlers/metrics_handler.h"

namespace ragstream::handlers {

void HandleMetrics(const AppContext& app, HttpResponse& res) {
  if (!app.metrics) {
    return WriteError(res, Status::Unavailable("metrics_unavailable",
                                               "metrics are not available in this worker"));
  }
  store::Env::Usage usage = app.env->MapUsage();
  std::string extra =
      "# HELP ragstream_lmdb_map_used_bytes Bytes of the LMDB map in use.\n"
      "# TYPE ragstream_lmdb_map_used_bytes gauge\n"
      "ragstream_lmdb_map_used_bytes " +
      std::to_string(usage.used_bytes) +
      "\n"
      "# HELP ragstream_lmdb_map_size_bytes Size of the LMDB map (it grows online by "
      "RAGSTREAM_MAP_GROW_MB).\n"
      "# TYPE ragstream_lmdb_map_size_bytes gauge\n"
      "ragstream_lmdb_map_size_bytes " +
      std::to_string(usage.map_bytes) + "\n";
  if (app.cluster_metrics) extra += app.cluster_metrics();
  res.SetStatus(200);
  res.AddHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  res.AddHeader("Cache-Control", "no-store");
  res.Write(app.metrics->Render(extra));
}

}  // namespace ragstream::handlers
