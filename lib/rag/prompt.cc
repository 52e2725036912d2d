#include "lib/rag/prompt.h"

#include "lib/rag/language.h"

namespace ragstream::rag {

std::string SystemPrompt(const std::string& language_code) {
  std::string name = LanguageDisplayName(language_code);
  return "You are ragstream, a helpful assistant that answers questions about the user's "
         "documents. Be accurate and concise. Always answer in " +
         name + " (language code \"" + language_code +
         "\"), the language of the user's question, even if the conversation or the context "
         "is in another language.";
}

llm::ChatRequest BuildPrompt(const PromptInput& input) {
  llm::ChatRequest req;
  req.messages.push_back({"system", SystemPrompt(input.language)});
  // History arrives oldest first; keep the newest messages that fit the budget, skipping
  // assistant messages that never produced any content.
  std::vector<const store::Message*> kept;
  size_t used = 0;
  for (auto it = input.history.rbegin(); it != input.history.rend(); ++it) {
    if (it->content.empty() || (it->role != "user" && it->role != "assistant")) continue;
    if (used + it->content.size() > input.history_budget_chars) break;
    used += it->content.size();
    kept.push_back(&*it);
  }
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    req.messages.push_back({(*it)->role, (*it)->content});
  }
  req.messages.push_back({"user", input.question});
  return req;
}

}  // namespace ragstream::rag
