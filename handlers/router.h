// One route table: method + pattern -> handler. Patterns are literal segments and `{name}`
// placeholders (one non-empty segment each), captured in order. A path that matches no
// pattern is 404; a path that matches only under other methods is 405 with an Allow header.
// A path equal to a literal pattern matches only the routes of that pattern, not placeholder
// patterns that would also take it ("/api/documents/batch" is not "/api/documents/{id}").
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "handlers/app.h"

namespace ragstream::handlers {

using Handler =
    std::function<void(const HttpRequest&, HttpResponse&, const RouteParams&, RequestRecord&)>;

struct Route {
  std::string method;
  std::string pattern;
  Handler handler;
};

class Router {
 public:
  void Add(std::string method, std::string pattern, Handler handler);
  // Finds the route and calls it, or answers 404/405.
  void Dispatch(const HttpRequest& req, HttpResponse& res, RequestRecord& record) const;
  const std::vector<Route>& routes() const { return routes_; }

  // Whether `path` matches `pattern`, capturing placeholders into `params`.
  static bool Match(std::string_view pattern, std::string_view path, RouteParams& params);

 private:
  std::vector<Route> routes_;
};

}  // namespace ragstream::handlers
