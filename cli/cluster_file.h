// The cluster file (scripts/render_cluster_nginx.sh reads the same): its shards, which tenant
// each routes to, and the default shard; and the one edit the CLI makes, routing a tenant to
// another shard.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "lib/core/status.h"

namespace ragstream::cli {

struct ClusterFile {
  std::vector<std::string> shards;
  std::map<std::string, std::vector<std::string>> tenants;  // shard -> tenants
  std::string default_shard;
  // The shard the file routes `tenant` to: its own line's, or the default.
  std::string ShardOf(const std::string& tenant) const;
};

Result<ClusterFile> ReadClusterFile(const std::string& path);

// Points `tenant`'s line at `shard` (adds one if the tenant had none), by writing a new file
// and renaming it over the old: a reader never sees half of it.
Status RouteTenant(const std::string& path, const std::string& tenant, const std::string& shard);

// --nats, else $RAGSTREAM_NATS_URL, else nats://127.0.0.1:4222.
std::string NatsUrls(const Context& ctx);

}  // namespace ragstream::cli
