// The retrieval modes of the chat and search requests (a small header of its own so request
// validation does not depend on the retriever).
#pragma once

#include <string_view>

namespace ragstream::rag {

enum class RetrievalMode { kHybrid, kVector, kLexical };

// "hybrid" | "vector" | "lexical"; false if unknown.
bool ParseRetrievalMode(std::string_view text, RetrievalMode& out);
const char* RetrievalModeName(RetrievalMode mode);

}  // namespace ragstream::rag
