// Errors are values: a Status carries a kind (mapped to HTTP only at the handler edge), a
// stable machine-readable code for the API ("invalid_json", "not_found", ...) and a message
// meant for a human. Result<T> is a value or a Status.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace ragstream {

enum class ErrorKind {
  kOk,
  kInvalidArgument,       // 400
  kUnauthorized,          // 401
  kForbidden,             // 403
  kNotFound,              // 404
  kMethodNotAllowed,      // 405
  kTooLarge,              // 413
  kUnsupportedMediaType,  // 415
  kConflict,              // 409
  kUnprocessable,         // 422
  kRateLimited,           // 429
  kInternal,              // 500
  kUpstream,              // 502
  kUnavailable,           // 503
  kStoreFull,             // 507
  kCancelled,             // the client left; no HTTP answer is possible
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorKind kind, std::string code, std::string message)
      : kind_(kind), code_(std::move(code)), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string code, std::string message) {
    return {ErrorKind::kInvalidArgument, std::move(code), std::move(message)};
  }
  static Status NotFound(std::string message) {
    return {ErrorKind::kNotFound, "not_found", std::move(message)};
  }
  static Status Internal(std::string message) {
    return {ErrorKind::kInternal, "internal_error", std::move(message)};
  }
  static Status Upstream(std::string code, std::string message) {
    return {ErrorKind::kUpstream, std::move(code), std::move(message)};
  }
  static Status Unavailable(std::string code, std::string message) {
    return {ErrorKind::kUnavailable, std::move(code), std::move(message)};
  }
  static Status StoreFull(std::string message) {
    return {ErrorKind::kStoreFull, "store_full", std::move(message)};
  }
  static Status Cancelled(std::string message) {
    return {ErrorKind::kCancelled, "cancelled", std::move(message)};
  }

  bool ok() const { return kind_ == ErrorKind::kOk; }
  ErrorKind kind() const { return kind_; }
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : code_ + ": " + message_; }

 private:
  ErrorKind kind_ = ErrorKind::kOk;
  std::string code_;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ragstream
