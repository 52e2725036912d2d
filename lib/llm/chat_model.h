// The chat model interface: the OpenAI-compatible client and the offline answerer both
// implement it, and tests inject fakes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"
#include "lib/store/conversation_store.h"

namespace ragstream::llm {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant" | "tool"
  std::string content;
  // An assistant turn that asked for tools: OpenAI's `tool_calls` array, as JSON.
  std::string tool_calls_json = {};
  // A tool turn: the call it answers.
  std::string tool_call_id = {};
};

// The client's tools, relayed to the model as given (OpenAI chat-completions JSON); ragstream
// neither runs nor rewrites them.
struct ToolOptions {
  std::string tools_json;        // the `tools` array; "" for none
  std::string tool_choice_json;  // "" leaves the choice to the model
  std::optional<bool> parallel_tool_calls;
  bool empty() const { return tools_json.empty(); }
};

// A function call the model asked for, whole (arguments is the JSON text it wrote).
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;
};

// A piece of a tool call as it streams: the first piece of call `index` carries its id and
// name, later ones more of its arguments.
struct ToolCallDelta {
  int index = 0;
  std::string id;
  std::string name;
  std::string arguments;
};

// A retrieved passage as the model sees it ([n] in the prompt is its 1-based position).
struct ContextPassage {
  std::string title;
  std::string text;
};

// What retrieval found for a question: passages to answer from, or why there are none.
enum class Grounding {
  kNotSearched,  // no retrieval (the request supplies its own context)
  kPassages,     // passages above the relevance floor
  kNothingFits,  // the documents were searched and nothing is relevant enough to cite
  kNoDocuments,  // the tenant has no documents yet
};

struct ChatRequest {
  std::vector<ChatMessage> messages;  // the full prompt, for models that take messages
  // The same request, structured, for models that work from the parts (the extractive
  // answerer): the question, its language code, and the numbered passages.
  std::string question;
  std::string language;
  std::vector<ContextPassage> passages;
  Grounding grounding = Grounding::kNotSearched;
  ToolOptions tools;  // models that cannot call tools ignore them
};

// Called from the thread running Stream(). Returning false from either stops the stream
// promptly (the transfer is aborted) and Stream() returns a Cancelled status.
struct StreamCallbacks {
  // A piece of the answer, as the upstream sent it (may end mid-UTF-8 character).
  std::function<bool(std::string_view delta)> on_delta;
  // Called at least every ~250 ms while waiting (before the first token and between tokens).
  std::function<bool()> on_tick;
  // A piece of a tool call (may be empty for models without tools).
  std::function<bool(const ToolCallDelta& delta)> on_tool_call = {};
};

struct ChatOutcome {
  Status status;  // Ok, Cancelled (a callback said stop), or an upstream error
  std::string finish_reason;
  store::Usage usage;
  std::vector<ToolCall> tool_calls;  // whole, in index order, when the model asked for tools
  bool got_first_token = false;
  int attempts = 0;
  int http_status = 0;  // the upstream's HTTP status on the last attempt (0: none)
};

class ChatModel {
 public:
  virtual ~ChatModel() = default;
  virtual std::string name() const = 0;
  // Streams the answer to `request`. Thread-safe: called concurrently from many threads.
  virtual ChatOutcome Stream(const ChatRequest& request, const StreamCallbacks& callbacks) = 0;
};

}  // namespace ragstream::llm
