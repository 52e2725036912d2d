// ragstream cluster status --cluster FILE [--nats URL]: each shard of the cluster file (the one
// scripts/render_cluster_nginx.sh renders nginx's routing from) with its leader (the lease
// holder), its log's end and copies on the NATS servers, each host's applied sequence and lag
// as the hosts report them, and its tenants. Talks to NATS, not to the HTTP API.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/cluster_file.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "lib/cluster/jetstream_log.h"
#include "lib/cluster/tenant_mover.h"

namespace ragstream::cli {

namespace {

// The shard's log, to look at: a status does not make a shard's log.
Result<std::unique_ptr<cluster::JetStreamLog>> OpenToLook(const std::string& urls,
                                                          const std::string& shard) {
  cluster::LogOptions options;
  options.urls = urls;
  options.shard = shard;
  options.create = false;
  return cluster::JetStreamLog::Open(options);
}

}  // namespace

int RunClusterLeaders(const Context& ctx) {
  if (!ctx.args.Get("--cluster")) return UsageError(ctx, "--cluster FILE is required");
  const auto file = ReadClusterFile(*ctx.args.Get("--cluster"));
  if (!file.ok()) return PrintFailure(file.status());
  const std::string urls = NatsUrls(ctx);
  int failed = 0;
  for (const std::string& shard : file->shards) {
    auto log = OpenToLook(urls, shard);
    auto lease =
        log.ok() ? (*log)->GetLease() : Result<std::optional<cluster::Lease>>(log.status());
    if (!lease.ok()) {
      std::fprintf(stderr, "shard %s: %s\n", shard.c_str(), lease.status().message().c_str());
      ++failed;
      continue;
    }
    std::printf("%s %s\n", shard.c_str(), *lease ? (*lease)->holder.c_str() : "-");
  }
  if (ctx.args.Has("--routes")) {
    // The tenants moved between shards (ragstream cluster move), wherever they are now.
    auto log = OpenToLook(urls, file->shards.front());
    auto routes = log.ok() ? (*log)->MoveKeys(std::string(cluster::kMoveRoutePrefix))
                           : Result<std::vector<std::pair<std::string, std::string>>>(log.status());
    if (!routes.ok()) {
      std::fprintf(stderr, "routes: %s\n", routes.status().message().c_str());
      ++failed;
    } else {
      for (const auto& [key, shard] : *routes) {
        std::printf("route %s %s\n", key.substr(cluster::kMoveRoutePrefix.size()).c_str(),
                    shard.c_str());
      }
    }
  }
  return failed > 0 ? kExitFailed : kExitOk;
}

int RunClusterStatus(const Context& ctx) {
  if (!ctx.args.Get("--cluster")) return UsageError(ctx, "--cluster FILE is required");
  const auto file = ReadClusterFile(*ctx.args.Get("--cluster"));
  if (!file.ok()) return PrintFailure(file.status());
  const std::string urls = NatsUrls(ctx);
  int failed = 0;
  for (const std::string& shard : file->shards) {
    auto log = OpenToLook(urls, shard);
    if (!log.ok()) {
      std::printf("shard %s: %s\n", shard.c_str(), log.status().message().c_str());
      ++failed;
      continue;
    }
    auto lease = (*log)->GetLease();
    auto last = (*log)->LastSeq();
    std::printf("shard %s%s: leader %s, log at %s\n", shard.c_str(),
                shard == file->default_shard ? " (default)" : "",
                !lease.ok() ? "?" : (*lease ? (*lease)->holder.c_str() : "none (the lease lapsed)"),
                last.ok() ? std::to_string(*last).c_str() : "?");
    if (auto copies = (*log)->Copies(); copies.ok()) {
      for (const auto& c : *copies) {
        std::printf("  log copy on %s: %s\n", c.server.c_str(),
                    c.leader    ? "leader"
                    : c.offline ? "offline"
                                : ((c.current ? "current" : "behind") + std::string(", lag ") +
                                   std::to_string(c.lag))
                                      .c_str());
      }
    }
    if (auto hosts = (*log)->HostReports(); hosts.ok()) {
      if (hosts->empty()) std::printf("  hosts: none reporting\n");
      for (const auto& h : *hosts) {
        const uint64_t lag = last.ok() && *last > h.applied ? *last - h.applied : 0;
        const bool leads = lease.ok() && *lease && (*lease)->holder == h.node;
        std::printf("  host %s: applied %llu, lag %llu%s\n", h.node.c_str(),
                    static_cast<unsigned long long>(h.applied),
                    static_cast<unsigned long long>(lag), leads ? " (leader)" : "");
      }
    }
    std::string tenants;
    if (auto it = file->tenants.find(shard); it != file->tenants.end()) {
      for (const auto& t : it->second) tenants += (tenants.empty() ? "" : " ") + t;
    }
    std::printf("  tenants: %s\n", tenants.empty() ? "(none listed)" : tenants.c_str());
  }
  return failed > 0 ? kExitFailed : kExitOk;
}

}  // namespace ragstream::cli
