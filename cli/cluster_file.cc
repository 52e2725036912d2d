#include "cli/cluster_file.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ragstream::cli {

std::string ClusterFile::ShardOf(const std::string& tenant) const {
  for (const auto& [shard, names] : tenants) {
    for (const auto& t : names) {
      if (t == tenant) return shard;
    }
  }
  return default_shard;
}

Result<ClusterFile> ReadClusterFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("no_cluster_file", "cannot read " + path);
  ClusterFile out;
  std::string line;
  while (std::getline(in, line)) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string kind, a, b;
    words >> kind >> a >> b;
    if (kind == "shard" && !a.empty()) out.shards.push_back(a);
    if (kind == "tenant" && !b.empty()) out.tenants[b].push_back(a);
    if (kind == "default") out.default_shard = a;
  }
  if (out.shards.empty()) {
    return Status::InvalidArgument("no_shards",
                                   path + " names no shard (shard NAME PRIMARY STANDBY)");
  }
  return out;
}

Status RouteTenant(const std::string& path, const std::string& tenant, const std::string& shard) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("no_cluster_file", "cannot read " + path);
  std::string text, line;
  bool routed = false;
  while (std::getline(in, line)) {
    std::string code = line.substr(0, line.find('#'));
    std::istringstream words(code);
    std::string kind, name;
    words >> kind >> name;
    if (kind == "tenant" && name == tenant) {
      line = "tenant " + tenant + " " + shard;
      routed = true;
    }
    text += line + "\n";
  }
  if (!routed) text += "tenant " + tenant + " " + shard + "\n";
  const std::string tmp = path + ".move.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return Status::Internal("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::Internal("cannot replace " + path);
  }
  return Status::Ok();
}

std::string NatsUrls(const Context& ctx) {
  const char* env_url = std::getenv("RAGSTREAM_NATS_URL");
  return ctx.args.Get("--nats").value_or(
      env_url && *env_url ? std::string(env_url) : std::string("nats://127.0.0.1:4222"));
}

}  // namespace ragstream::cli
