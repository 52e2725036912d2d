// Renderings of one conversation (the object of GET /api/conversations/{id}): a readable
// text for the terminal, indented JSON, and Markdown for export.
#pragma once

#include <string>

#include <rapidjson/document.h>

#include "cli/api_client.h"
#include "lib/core/status.h"

namespace ragstream::cli {

// GET /api/conversations/{id} into `doc` (and its body into `raw` when not null); the
// server's error otherwise.
Status FetchConversation(ApiClient& client, const std::string& id, rapidjson::Document& doc,
                         std::string* raw = nullptr);

// Title, then each message with its role, status and time, its text, its sources and error.
std::string ConversationText(const rapidjson::Value& conversation);

// "# title", then **User:** / **Assistant:** paragraphs; an answer's sources follow it as a
// numbered footnote list matching its [n] markers. Message text is kept verbatim.
std::string ConversationMarkdown(const rapidjson::Value& conversation);

}  // namespace ragstream::cli
