#include "cli/answer_stream.h"

#include <cstdio>

#include "cli/args.h"
#include "cli/format.h"
#include "cli/json_reformat.h"
#include "lib/core/json.h"

namespace ragstream::cli {

bool AnswerStream::OnEvent(const llm::SseEvent& event) {
  rapidjson::Document doc;
  if (!ParseUntrustedJson(event.data, doc).ok() || !doc.IsObject()) {
    bad_event_ = true;
    return false;
  }
  ++events_;
  if (json_lines_) {
    // Re-printed rather than copied so that every event is exactly one line.
    auto line = ReformatJson(event.data, 0);
    if (!line.ok()) {
      bad_event_ = true;
      return false;
    }
    std::fwrite(line->data(), 1, line->size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  if (std::string_view id = JsonStr(doc, "conversation_id"); !id.empty()) {
    conversation_id_ = std::string(id);
  }
  auto done = doc.FindMember("done");
  if (done != doc.MemberEnd() && done->value.IsBool() && done->value.GetBool()) {
    saw_done_ = true;
    done_.Swap(doc);
    return true;
  }
  std::string_view token = JsonStr(doc, "token");
  if (!json_lines_ && !token.empty()) {
    // The server sends whole UTF-8 characters (and the parse above checked them).
    std::fwrite(token.data(), 1, token.size(), stdout);
    std::fflush(stdout);
    printed_text_ = true;
    last_char_ = token.back();
  }
  return true;
}

void AnswerStream::PrintSources() const {
  const rapidjson::Value* sources = JsonArray(done_, "sources");
  if (sources && !sources->Empty()) {
    std::fprintf(stderr, "\nSources:\n");
    int n = 0;
    for (const auto& s : sources->GetArray()) {
      std::string title = Clean(JsonStr(s, "title"), 80);
      std::string excerpt = Clean(JsonStr(s, "text"), 100);
      std::fprintf(stderr, "  [%d] %s — %s\n", ++n, title.empty() ? "(untitled)" : title.c_str(),
                   excerpt.c_str());
    }
  }
}

int AnswerStream::Finish(const std::string& transfer_error) {
  if (printed_text_ && last_char_ != '\n') {
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  const std::string conv =
      conversation_id_.empty() ? "" : " (conversation " + Clean(conversation_id_, 64) + ")";
  if (bad_event_) {
    std::fprintf(stderr, "ragstream: invalid_response: an event of the stream is not JSON%s\n",
                 conv.c_str());
    return kExitFailed;
  }
  if (!saw_done_) {
    std::string why = transfer_error.empty() ? "" : " (" + transfer_error + ")";
    std::fprintf(stderr,
                 "ragstream: cut_off: the answer was cut off: the stream ended without its "
                 "done event%s%s\n",
                 why.c_str(), conv.c_str());
    return kExitFailed;
  }
  std::string status(JsonStr(done_, "status"));
  if (!json_lines_) PrintSources();
  if (status != "complete") {
    auto err = done_.FindMember("error");
    std::string code = "stream_error", message = "the answer ended with status '" + status + "'";
    if (err != done_.MemberEnd() && err->value.IsObject()) {
      if (!JsonStr(err->value, "code").empty()) code = Clean(JsonStr(err->value, "code"), 100);
      message = Clean(JsonStr(err->value, "message"), 2000);
    }
    std::fprintf(stderr, "ragstream: %s: %s%s\n", code.c_str(), message.c_str(), conv.c_str());
    return kExitFailed;
  }
  if (!json_lines_ && !conversation_id_.empty()) {
    std::fprintf(stderr, "\nconversation: %s\n", Clean(conversation_id_, 64).c_str());
  }
  return kExitOk;
}

}  // namespace ragstream::cli
