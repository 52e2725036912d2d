#include "lib/rag/retrieval_mode.h"

namespace ragstream::rag {

bool ParseRetrievalMode(std::string_view text, RetrievalMode& out) {
  if (text == "hybrid") {
    out = RetrievalMode::kHybrid;
  } else if (text == "vector") {
    out = RetrievalMode::kVector;
  } else if (text == "lexical") {
    out = RetrievalMode::kLexical;
  } else {
    return false;
  }
  return true;
}

const char* RetrievalModeName(RetrievalMode mode) {
  switch (mode) {
    case RetrievalMode::kVector:
      return "vector";
    case RetrievalMode::kLexical:
      return "lexical";
    case RetrievalMode::kHybrid:
      break;
  }
  return "hybrid";
}

}  // namespace ragstream::rag
