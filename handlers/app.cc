#include "handlers/app.h"

#include "lib/core/json.h"

namespace ragstream::handlers {

int HttpStatusFor(const Status& status) {
  switch (status.kind()) {
    case ErrorKind::kOk:
      return 200;
    case ErrorKind::kInvalidArgument:
      return 400;
    case ErrorKind::kUnauthorized:
      return 401;
    case ErrorKind::kForbidden:
      return 403;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kMethodNotAllowed:
      return 405;
    case ErrorKind::kTooLarge:
      return 413;
    case ErrorKind::kUnsupportedMediaType:
      return 415;
    case ErrorKind::kConflict:
      return 409;
    case ErrorKind::kUnprocessable:
      return 422;
    case ErrorKind::kRateLimited:
      return 429;
    case ErrorKind::kInternal:
      return 500;
    case ErrorKind::kUpstream:
      return 502;
    case ErrorKind::kUnavailable:
      return 503;
    case ErrorKind::kStoreFull:
      return 507;
    case ErrorKind::kCancelled:
      return 499;  // nobody reads it: the client has gone
  }
  return 500;
}

void WriteUsage(JsonWriter& w, const store::Usage& u) {
  w.StartObject();
  w.Key("prompt_tokens");
  w.Int64(u.prompt_tokens);
  w.Key("completion_tokens");
  w.Int64(u.completion_tokens);
  w.Key("total_tokens");
  w.Int64(u.total_tokens);
  w.EndObject();
}

void WriteUsageOrNull(JsonWriter& w, const store::Usage& u) {
  if (u.present) {
    WriteUsage(w, u);
  } else {
    w.Null();
  }
}

bool RetryableCode(std::string_view code) {
  static constexpr std::string_view kRetryable[] = {"upstream_rate_limited",
                                                    "upstream_server_error",
                                                    "upstream_unreachable",
                                                    "upstream_cut",
                                                    "upstream_incomplete",
                                                    "upstream_error",
                                                    "upstream_bad_stream",
                                                    "upstream_first_token_timeout",
                                                    "upstream_idle_timeout",
                                                    "shutting_down",
                                                    "store_busy",
                                                    "store_resized",
                                                    "too_many_streams",
                                                    "overloaded",
                                                    "resume_failed"};
  for (std::string_view c : kRetryable) {
    if (c == code) return true;
  }
  return false;
}

void AddErrorHeaders(HttpResponse& res, const Status& status) {
  // Our 429s are per-tenant stream limits: a slot frees when any answer finishes.
  if (status.kind() == ErrorKind::kRateLimited) res.AddHeader("Retry-After", "1");
}

void WriteError(HttpResponse& res, const Status& status) {
  AddErrorHeaders(res, status);
  WriteJson(res, HttpStatusFor(status), ErrorJson(status));
}

}  // namespace ragstream::handlers
