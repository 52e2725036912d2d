// Builds the messages sent to the chat model: instructions (including the answer language),
// recent history (already cut to the budget by the store), then the question.
#pragma once

#include <string>
#include <vector>

#include "lib/llm/chat_model.h"
#include "lib/store/conversation_store.h"

namespace ragstream::rag {

struct PromptInput {
  std::string question;
  std::string language;                 // code, e.g. "he"
  std::vector<store::Message> history;  // oldest first
  size_t history_budget_chars = 8000;
};

// The system instructions, naming the language to answer in.
std::string SystemPrompt(const std::string& language_code);

llm::ChatRequest BuildPrompt(const PromptInput& input);

}  // namespace ragstream::rag
