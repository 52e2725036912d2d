// ragstream stats: GET /api/health and GET /metrics, readably.
#include <cstdio>
#include <cstdlib>
#include <map>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/format.h"

namespace ragstream::cli {
namespace {

struct Sample {
  std::string labels;  // the text between the braces, or ""
  double value = 0;
};

// The '}' that ends a label set starting at `from`, skipping quoted values ("{id}").
size_t ClosingBrace(const std::string& line, size_t from) {
  bool quoted = false;
  for (size_t i = from; i < line.size(); ++i) {
    if (quoted && line[i] == '\\') {
      ++i;
    } else if (line[i] == '"') {
      quoted = !quoted;
    } else if (!quoted && line[i] == '}') {
      return i;
    }
  }
  return std::string::npos;
}

// Prometheus text format: "name{labels} value" lines; comments and blank lines skipped.
std::multimap<std::string, Sample> ParseMetrics(const std::string& text) {
  std::multimap<std::string, Sample> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string::npos) continue;
    Sample s;
    size_t value_start = name_end;
    if (line[name_end] == '{') {
      size_t close = ClosingBrace(line, name_end + 1);
      if (close == std::string::npos) continue;
      s.labels = line.substr(name_end + 1, close - name_end - 1);
      value_start = close + 1;
    }
    s.value = std::strtod(line.c_str() + value_start, nullptr);
    out.emplace(line.substr(0, name_end), s);
  }
  return out;
}

std::string Label(const std::string& labels, const std::string& name) {
  std::string key = name + "=\"";
  size_t p = labels.find(key);
  if (p == std::string::npos) return "";
  p += key.size();
  size_t e = labels.find('"', p);
  return labels.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

void Row(const char* name, const std::string& value) {
  std::printf("%-16s %s\n", name, value.c_str());
}

std::string Count(double v) {
  return std::to_string(static_cast<long long>(v));
}

void PrintMetrics(const std::multimap<std::string, Sample>& m) {
  auto sum = [&m](const std::string& name) {
    double total = 0;
    auto [b, e] = m.equal_range(name);
    for (auto it = b; it != e; ++it) total += it->second.value;
    return total;
  };
  Row("workers", Count(sum("ragstream_workers")));
  Row("active streams", Count(sum("ragstream_active_streams")));
  std::map<std::string, double> by_route;
  double total = 0, errors_4xx = 0, errors_5xx = 0;
  auto [b, e] = m.equal_range("ragstream_requests_total");
  for (auto it = b; it != e; ++it) {
    const Sample& s = it->second;
    total += s.value;
    by_route[Label(s.labels, "route")] += s.value;
    std::string status = Label(s.labels, "status");
    if (!status.empty() && status[0] == '4') errors_4xx += s.value;
    if (!status.empty() && status[0] == '5') errors_5xx += s.value;
  }
  Row("requests",
      Count(total) + " total (" + Count(errors_4xx) + " 4xx, " + Count(errors_5xx) + " 5xx)");
  for (const auto& [route, n] : by_route) {
    std::printf("  %-30s %s\n", Clean(route, 30).c_str(), Count(n).c_str());
  }
  Row("tokens relayed", Count(sum("ragstream_tokens_relayed_total")));
  Row("answers", Count(sum("ragstream_stream_duration_seconds_count")) + " streamed, " +
                     Count(sum("ragstream_disconnect_cancels_total")) +
                     " cancelled by a departed client");
  Row("upstream errors", Count(sum("ragstream_upstream_errors_total")));
}

}  // namespace

int RunStats(const Context& ctx) {
  ApiClient client(ctx.url, ctx.api_key);
  auto health_response = client.Send("GET", "/api/health");
  if (!health_response.ok()) return PrintFailure(health_response.status());
  rapidjson::Document health;
  // A draining or unreadable store answers 503 with the same body: show it, then fail.
  Result<ApiResponse> as_ok = *health_response;
  if (health_response->status == 503) as_ok->status = 200;
  if (Status s = JsonFromResponse(as_ok, health); !s.ok()) return PrintFailure(s);

  std::string status = Clean(JsonStr(health, "status"), 40);
  Row("server", client.DisplayUrl() + " (" + status + ", version " +
                    Clean(JsonStr(health, "version"), 40) + ", up " +
                    std::to_string(JsonInt(health, "uptime_s")) + " s)");
  auto docs = health.FindMember("documents");
  Row("documents", docs != health.MemberEnd() && docs->value.IsUint64()
                       ? std::to_string(docs->value.GetUint64())
                       : std::string("unknown"));
  auto store = health.FindMember("store");
  if (store != health.MemberEnd() && store->value.IsObject()) {
    const auto& st = store->value;
    double used = JsonNumber(st, "map_used_bytes"), size = JsonNumber(st, "map_size_bytes");
    char pct[32];
    std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * JsonNumber(st, "map_use_ratio"));
    Row("map use", std::string(pct) + " (" + HumanBytes(static_cast<uint64_t>(used)) + " of " +
                       HumanBytes(static_cast<uint64_t>(size)) + ")");
  }
  std::string model = Clean(JsonStr(health, "chat_model"), 80);
  Row("chat model", model.empty() ? "none (offline extractive answerer)" : model);
  Row("embedder", Clean(JsonStr(health, "embedder"), 80));

  auto metrics = client.Send("GET", "/metrics");
  if (!metrics.ok()) {
    Row("metrics", "unavailable (" + metrics.status().message() + ")");
  } else if (!metrics->ok()) {
    Status s = ErrorFromResponse(*metrics);
    Row("metrics", "unavailable (" + s.code() + ": " + s.message() + ")");
  } else {
    PrintMetrics(ParseMetrics(metrics->body));
  }
  if (status != "ok") {
    return PrintFailure(
        Status(ErrorKind::kUnavailable, "unhealthy", "the server reports status '" + status + "'"));
  }
  return kExitOk;
}

}  // namespace ragstream::cli
