#include "handlers/health_handler.h"

#include <unistd.h>

#include "lib/core/ids.h"
#include "lib/core/json.h"

namespace ragstream::handlers {

void HandleHealth(const AppContext& app, HttpResponse& res) {
  bool readable = store::Txn::BeginRead(*app.env).ok();
  store::Env::Usage usage = app.env->MapUsage();
  bool draining = app.draining && app.draining->load();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("status");
  w.String(!readable ? "unavailable" : draining ? "draining" : "ok");
  w.Key("version");
  w.String(RAGSTREAM_VERSION);
  w.Key("uptime_s");
  w.Int64((SteadyMillis() - app.started_at_ms) / 1000);
  w.Key("store");
  w.StartObject();
  w.Key("readable");
  w.Bool(readable);
  // Health is unauthenticated (load balancers probe it). With API keys it says only whether
  // the worker lives: the map's use, a document count or the model would show one tenant
  // the others' activity and the deployment's make-up.
  if (app.api_keys) {
    w.EndObject();
    w.EndObject();
    WriteJson(res, readable && !draining ? 200 : 503, {buf.GetString(), buf.GetSize()});
    return;
  }
  w.Key("map_size_bytes");
  w.Uint64(usage.map_bytes);
  w.Key("map_used_bytes");
  w.Uint64(usage.used_bytes);
  w.Key("map_use_ratio");
  w.Double(usage.map_bytes ? static_cast<double>(usage.used_bytes) / usage.map_bytes : 0.0);
  w.EndObject();
  w.Key("embedder");
  WriteString(w, app.embedder_name);
  if (app.documents) {
    auto count = app.documents->CountAll();
    w.Key("documents");
    if (count.ok()) {
      w.Uint64(*count);
    } else {
      w.Null();
    }
  }
  w.Key("pid");
  w.Int(static_cast<int>(getpid()));
  w.Key("chat_model");
  if (app.chat->model_configured()) {
    WriteString(w, app.chat->model_name());
  } else {
    w.Null();
  }
  w.EndObject();
  WriteJson(res, readable && !draining ? 200 : 503, {buf.GetString(), buf.GetSize()});
}

}  // namespace ragstream::handlers
