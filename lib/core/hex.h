// Lower-case hexadecimal: content hashes, key-file hashes, listing cursors.
#pragma once

#include <string>
#include <string_view>

namespace ragstream {

std::string HexEncode(std::string_view bytes);
// Decodes lower-case hex (an even number of 0-9a-f) into `out`; false for anything else.
bool HexDecode(std::string_view hex, std::string& out);

}  // namespace ragstream
