// Re-printing JSON from the server without changing it: numbers are copied as written (a
// parse into doubles and back can change the last digit of a score), strings stay UTF-8.
#pragma once

#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace ragstream::cli {

// `text` (checked with the guards of lib/core/json.h: PrescanJson, UTF-8) re-printed compact
// (indent 0, one line) or indented by `indent` spaces. invalid_response when it is not JSON.
Result<std::string> ReformatJson(std::string_view text, int indent);

}  // namespace ragstream::cli
