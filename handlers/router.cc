#include "handlers/router.h"

#include <algorithm>

namespace ragstream::handlers {
namespace {

std::string_view NextSegment(std::string_view& rest) {
  size_t slash = rest.find('/');
  std::string_view seg = rest.substr(0, slash);
  rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  return seg;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler) {
  routes_.push_back({std::move(method), std::move(pattern), std::move(handler)});
}

bool Router::Match(std::string_view pattern, std::string_view path, RouteParams& params) {
  params.clear();
  if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
  // "/api/health/" is not "/api/health": a trailing slash would otherwise vanish below.
  if (path.size() > 1 && path.back() == '/') return false;
  pattern.remove_prefix(1);
  path.remove_prefix(1);
  // Both are consumed segment by segment; they must run out together.
  while (true) {
    bool pattern_done = pattern.empty(), path_done = path.empty();
    if (pattern_done || path_done) return pattern_done && path_done;
    std::string_view want = NextSegment(pattern);
    std::string_view got = NextSegment(path);
    if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
      if (got.empty()) return false;
      params.emplace_back(got);
    } else if (want != got) {
      return false;
    }
  }
}

void Router::Dispatch(const HttpRequest& req, HttpResponse& res, RequestRecord& record) const {
  // A path that is a literal pattern is that resource alone: /api/documents/batch is not a
  // document id of /api/documents/{id}, so its other methods are 405 with its own Allow.
  const bool literal = std::any_of(routes_.begin(), routes_.end(),
                                   [&](const Route& r) { return r.pattern == req.path; });
  RouteParams params;
  std::string allow;
  for (const Route& route : routes_) {
    if (!Match(route.pattern, req.path, params)) continue;
    if (literal && route.pattern != req.path) continue;
    if (route.method == req.method) {
      record.route = route.pattern;
      route.handler(req, res, params, record);
      return;
    }
    allow += (allow.empty() ? "" : ", ") + route.method;
  }
  if (!allow.empty()) {
    record.route = req.path;
    res.AddHeader("Allow", allow);
    WriteError(res, {ErrorKind::kMethodNotAllowed, "method_not_allowed",
                     req.method + " is not allowed here; use " + allow});
    return;
  }
  record.route = "(unmatched)";
  WriteError(res, Status::NotFound("no route for " + req.method + " " + req.path));
}

}  // namespace ragstream::handlers
