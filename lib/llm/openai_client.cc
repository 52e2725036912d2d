#include "lib/llm/openai_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <mutex>
#include <thread>

#include "lib/core/ids.h"
#include "lib/core/json.h"
#include "lib/core/log.h"
#include "lib/core/random.h"
#include "lib/llm/openai_stream.h"
#include "lib/llm/retry_policy.h"
#include "lib/llm/sse_parser.h"

namespace ragstream::llm {
namespace {

void LogUpstreamText(std::string_view what, long http_status, const std::string& code,
                     const std::string& message, const std::string& api_key) {
  LogWarn("upstream", what,
          {{"http_status", static_cast<int64_t>(http_status)},
           {"upstream_code", Scrub(code, api_key)},
           {"upstream_message", Scrub(message, api_key)}});
}

constexpr int kSliceMs = 100;
constexpr size_t kMaxErrorBody = 64 * 1024;

// One per thread: the handles (and so the warm connection) outlive a request.
struct ThreadCurl {
  CURL* easy = nullptr;
  CURLM* multi = nullptr;
  ThreadCurl() {
    easy = curl_easy_init();
    multi = curl_multi_init();
  }
  ~ThreadCurl() {
    if (multi) curl_multi_cleanup(multi);
    if (easy) curl_easy_cleanup(easy);
  }
  ThreadCurl(const ThreadCurl&) = delete;
  ThreadCurl& operator=(const ThreadCurl&) = delete;
};

ThreadCurl& ThisThreadCurl() {
  thread_local ThreadCurl handles;
  return handles;
}

struct CurlSlist {
  curl_slist* list = nullptr;
  void Add(const std::string& s) { list = curl_slist_append(list, s.c_str()); }
  ~CurlSlist() { curl_slist_free_all(list); }
};

// What one attempt saw.
struct Attempt {
  const StreamCallbacks* callbacks = nullptr;
  CURL* easy = nullptr;
  SseParser parser;
  long http_status = 0;
  std::string error_body;
  int retry_after_ms = -1;
  bool got_first_token = false;
  bool saw_done = false;
  bool cancelled = false;  // a callback asked to stop
  std::string finish_reason;
  store::Usage usage;
  std::vector<ToolCall> tool_calls;                     // assembled from the deltas, by index
  std::string stream_error_code, stream_error_message;  // an {"error": ...} event
  int64_t last_activity_ms = 0;
};

size_t OnHeader(char* data, size_t size, size_t nitems, void* userp) {
  auto* a = static_cast<Attempt*>(userp);
  std::string_view line(data, size * nitems);
  constexpr std::string_view kRetryAfter = "retry-after:";
  if (line.size() > kRetryAfter.size()) {
    std::string lower(line.substr(0, kRetryAfter.size()));
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (lower == kRetryAfter) {
      std::string_view v = line.substr(kRetryAfter.size());
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      double seconds = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
      // Clamped before converting: a huge or infinite value must not overflow the int.
      if (ec == std::errc() && std::isfinite(seconds) && seconds >= 0) {
        a->retry_after_ms = static_cast<int>(std::min(seconds, 86400.0) * 1000);
      }
    }
  }
  return size * nitems;
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* userp) {
  auto* a = static_cast<Attempt*>(userp);
  const size_t n = size * nmemb;
  if (a->http_status == 0) curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &a->http_status);
  if (a->http_status != 200) {
    if (a->error_body.size() < kMaxErrorBody) {
      a->error_body.append(data, std::min(n, kMaxErrorBody - a->error_body.size()));
    }
    return n;
  }
  a->last_activity_ms = SteadyMillis();
  bool ok = a->parser.Feed(std::string_view(data, n), [a](const SseEvent& ev) {
    ChunkInfo chunk = DecodeChunk(ev.data);
    switch (chunk.kind) {
      case ChunkInfo::Kind::kDone:
        a->saw_done = true;
        return true;
      case ChunkInfo::Kind::kError:
        a->stream_error_code = chunk.error_code;
        a->stream_error_message = chunk.error_message;
        return false;
      case ChunkInfo::Kind::kInvalid:
        LogWarn("upstream", "ignored an undecodable stream event",
                {{"bytes", static_cast<int64_t>(ev.data.size())}});
        return true;
      case ChunkInfo::Kind::kChunk:
        break;
    }
    if (chunk.usage.present) a->usage = chunk.usage;
    if (!chunk.finish_reason.empty()) a->finish_reason = chunk.finish_reason;
    if (!chunk.content.empty()) {
      a->got_first_token = true;
      if (!a->callbacks->on_delta(chunk.content)) {
        a->cancelled = true;
        return false;
      }
    }
    for (const ToolCallDelta& d : chunk.tool_calls) {
      a->got_first_token = true;
      if (a->tool_calls.size() <= static_cast<size_t>(d.index)) a->tool_calls.resize(d.index + 1);
      ToolCall& call = a->tool_calls[d.index];
      if (!d.id.empty()) call.id = d.id;
      call.name += d.name;
      call.arguments += d.arguments;
      if (a->callbacks->on_tool_call && !a->callbacks->on_tool_call(d)) {
        a->cancelled = true;
        return false;
      }
    }
    return true;
  });
  if (!ok && !a->cancelled && a->stream_error_code.empty()) {
    a->stream_error_code = "upstream_bad_stream";
    a->stream_error_message = "the upstream sent an event larger than the parser accepts";
  }
  return ok ? n : 0;  // 0 aborts the transfer
}

}  // namespace

OpenAiOptions OpenAiOptions::FromConfig(const Config& c) {
  OpenAiOptions o;
  o.base_url = c.openai_base_url;
  o.api_key = c.openai_api_key;
  o.model = c.chat_model;
  o.connect_timeout_ms = c.connect_timeout_ms;
  o.first_token_timeout_ms = c.first_token_timeout_ms;
  o.idle_timeout_ms = c.idle_timeout_ms;
  o.max_retries = c.max_retries;
  o.max_retry_wait_ms = c.max_retry_wait_ms;
  o.max_tokens = c.max_tokens;
  return o;
}

OpenAiChatModel::OpenAiChatModel(OpenAiOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string OpenAiChatModel::BuildBody(const ChatRequest& request) const {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model");
  WriteString(w, options_.model);
  w.Key("messages");
  w.StartArray();
  for (const auto& m : request.messages) {
    w.StartObject();
    w.Key("role");
    WriteString(w, m.role);
    w.Key("content");
    if (m.content.empty() && !m.tool_calls_json.empty()) {
      w.Null();  // a turn that only called tools
    } else {
      WriteString(w, m.content);
    }
    WriteToolFields(w, m.tool_calls_json, m.tool_call_id);
    w.EndObject();
  }
  w.EndArray();
  const ToolOptions& tools = request.tools;
  if (!tools.empty()) {
    w.Key("tools");
    w.RawValue(tools.tools_json.data(), tools.tools_json.size(), rapidjson::kArrayType);
    if (!tools.tool_choice_json.empty()) {
      w.Key("tool_choice");
      w.RawValue(tools.tool_choice_json.data(), tools.tool_choice_json.size(),
                 rapidjson::kObjectType);
    }
    if (tools.parallel_tool_calls) {
      w.Key("parallel_tool_calls");
      w.Bool(*tools.parallel_tool_calls);
    }
  }
  if (options_.max_tokens > 0) {
    w.Key("max_tokens");
    w.Int(options_.max_tokens);
  }
  w.Key("stream");
  w.Bool(true);
  w.Key("stream_options");
  w.StartObject();
  w.Key("include_usage");
  w.Bool(true);
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

ChatOutcome OpenAiChatModel::Stream(const ChatRequest& request, const StreamCallbacks& callbacks) {
  ChatOutcome out;
  ThreadCurl& tc = ThisThreadCurl();
  if (!tc.easy || !tc.multi) {
    out.status = Status::Internal("curl handles could not be created");
    return out;
  }
  const std::string url = options_.base_url + "/chat/completions";
  const std::string body = BuildBody(request);
  CurlSlist headers;
  headers.Add("Content-Type: application/json");
  headers.Add("Accept: text/event-stream");
  if (!options_.api_key.empty()) headers.Add("Authorization: Bearer " + options_.api_key);

  for (int attempt_no = 0;; ++attempt_no) {
    out.attempts = attempt_no + 1;
    Attempt a;
    a.callbacks = &callbacks;
    a.easy = tc.easy;
    CURL* easy = tc.easy;
    curl_easy_reset(easy);  // keeps the connection cache; clears the previous request's options
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.list);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout_ms));
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    // Stream deltas are small: a 4 KiB receive buffer instead of curl's 16 KiB, per thread.
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 4096L);

    curl_multi_add_handle(tc.multi, easy);
    const int64_t started = SteadyMillis();
    a.last_activity_ms = started;
    std::string timeout_code;
    CURLcode result = CURLE_OK;
    bool finished = false;
    while (!finished) {
      int running = 0;
      curl_multi_perform(tc.multi, &running);
      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(tc.multi, &queued)) {
        if (msg->msg == CURLMSG_DONE) {
          result = msg->data.result;
          finished = true;
        }
      }
      if (finished || a.cancelled || !a.stream_error_code.empty()) break;
      if (callbacks.on_tick && !callbacks.on_tick()) {
        a.cancelled = true;
        break;
      }
      const int64_t now = SteadyMillis();
      if (!a.got_first_token && now - started > options_.first_token_timeout_ms) {
        timeout_code = "upstream_first_token_timeout";
        break;
      }
      if (a.got_first_token && now - a.last_activity_ms > options_.idle_timeout_ms) {
        timeout_code = "upstream_idle_timeout";
        break;
      }
      curl_multi_poll(tc.multi, nullptr, 0, kSliceMs, nullptr);
    }
    curl_multi_remove_handle(tc.multi, easy);
    if (a.http_status == 0) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &a.http_status);

    out.got_first_token = a.got_first_token;
    out.http_status = static_cast<int>(a.http_status);
    out.finish_reason = a.finish_reason;
    out.usage = a.usage;
    out.tool_calls = a.tool_calls;
    if (a.cancelled) {
      out.status = Status::Cancelled("stopped by the caller");
      return out;
    }
    if (!timeout_code.empty()) {
      out.status = Status::Upstream(timeout_code, "the upstream model did not answer in time");
      return out;
    }
    if (!a.stream_error_code.empty()) {
      LogUpstreamText("the upstream sent an error event", a.http_status, a.stream_error_code,
                      a.stream_error_message, options_.api_key);
      out.status = Status::Upstream("upstream_error",
                                    "the model's service reported an error while answering");
      return out;
    }
    if (result == CURLE_OK && a.http_status == 200) {
      if (a.saw_done || !a.finish_reason.empty()) {
        if (out.finish_reason.empty()) out.finish_reason = "stop";
        out.status = Status::Ok();
        return out;
      }
      out.status = Status::Upstream("upstream_incomplete", "the upstream stream ended early");
      if (a.got_first_token) return out;
    }

    // Failed before any token: decide whether to try again.
    std::string code, message;
    bool retry = false;
    if (result != CURLE_OK && (a.http_status == 0 || a.http_status == 200)) {
      code = a.got_first_token ? "upstream_cut" : "upstream_unreachable";
      message = std::string("upstream transfer failed: ") + curl_easy_strerror(result);
      retry = RetryPolicy::RetryableTransport(result);
    } else if (a.http_status != 200) {
      std::string upstream_code, upstream_message;
      if (!DecodeErrorBody(a.error_body, upstream_code, upstream_message)) {
        upstream_message = a.error_body.substr(0, 200);
      }
      LogUpstreamText("the upstream answered with an error", a.http_status, upstream_code,
                      upstream_message, options_.api_key);
      const Status ours = ClientFacingUpstreamError(a.http_status, upstream_code);
      code = ours.code();
      message = ours.message();
      retry = RetryPolicy::RetryableStatus(a.http_status, upstream_code);
    } else {
      code = "upstream_incomplete";
      message = "the upstream stream ended before its [DONE]";
      retry = true;
    }
    out.status = Status::Upstream(Scrub(code, options_.api_key), Scrub(message, options_.api_key));
    if (a.got_first_token || !retry || attempt_no >= options_.max_retries) return out;

    const RetryPolicy policy{options_.max_retries, options_.base_backoff_ms,
                             options_.max_retry_wait_ms};
    const int wait_ms = policy.BackoffMs(attempt_no, a.retry_after_ms);
    LogWarn("upstream", "retrying after an upstream failure",
            {{"code", code},
             {"http_status", static_cast<int64_t>(a.http_status)},
             {"attempt", static_cast<int64_t>(attempt_no + 1)},
             {"wait_ms", static_cast<int64_t>(wait_ms)}});
    for (int64_t until = SteadyMillis() + wait_ms; SteadyMillis() < until;) {
      if (callbacks.on_tick && !callbacks.on_tick()) {
        out.status = Status::Cancelled("stopped by the caller");
        return out;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::min<int64_t>(kSliceMs, std::max<int64_t>(1, until - SteadyMillis()))));
    }
  }
}

}  // namespace ragstream::llm
