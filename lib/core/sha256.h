// SHA-256 (OpenSSL's libcrypto): content hashes for de-duplicating documents.
#pragma once

#include <string>
#include <string_view>

namespace ragstream {

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace ragstream
