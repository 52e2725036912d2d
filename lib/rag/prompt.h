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
  std::vector<llm::ContextPassage> passages;  // numbered [1], [2], ... in this order
  llm::Grounding grounding = llm::Grounding::kNotSearched;
  // The client's tool round trip since the question (its calls and their results), sent
  // after the question, as the model produced and received them.
  std::vector<llm::ChatMessage> after_question;
  llm::ToolOptions tools;
};

// The system instructions, naming the language to answer in, and with the passages (if any)
// numbered and fenced as quoted material whose instructions are not to be followed. When the
// documents were searched and nothing fits (or there are none), the model is told to say
// so plainly in that language and to cite nothing.
std::string SystemPrompt(const std::string& language_code,
                         const std::vector<llm::ContextPassage>& passages = {},
                         llm::Grounding grounding = llm::Grounding::kNotSearched);

llm::ChatRequest BuildPrompt(const PromptInput& input);

}  // namespace ragstream::rag
