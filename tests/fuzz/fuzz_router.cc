// libFuzzer harness: the router's path matching against the real route patterns.
#include <cstddef>
#include <cstdint>
#include <string>

#include "handlers/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kPatterns[] = {"/api/chat/message/stream", "/api/conversations",
                                    "/api/conversations/{id}", "/api/chat/messages/{id}/stream"};
  std::string path(reinterpret_cast<const char*>(data), size);
  ragstream::handlers::RouteParams params;
  for (const char* pattern : kPatterns) {
    if (ragstream::handlers::Router::Match(pattern, path, params)) {
      for (const auto& p : params) {
        if (p.empty() || p.find('/') != std::string::npos) __builtin_trap();
      }
    }
  }
  return 0;
}
