// libFuzzer harness: request JSON parsing and validation of a send-message body.
#include <cstddef>
#include <cstdint>

#include "handlers/chat_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ragstream::Config config;
  ragstream::HttpRequest req;
  req.method = "POST";
  req.content_type = "application/json";
  req.body.assign(reinterpret_cast<const char*>(data), size);
  auto parsed = ragstream::handlers::ParseChatRequest(req, config);
  if (parsed.ok() && parsed->message.empty()) __builtin_trap();  // validation let "" through
  return 0;
}
