// LoadConfig / DescribeConfig with an injected environment.
#include "lib/core/config.h"

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ragstream {
namespace {

using Env = std::map<std::string, std::string>;

Result<Config> Load(const Env& env) {
  return LoadConfig([&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

struct NumericVar {
  const char* name;
  int64_t min;
  int64_t max;
  std::function<int64_t(const Config&)> get;
};

const std::vector<NumericVar>& NumericVars() {
  static const std::vector<NumericVar> vars = {
      {"RAGSTREAM_MAP_SIZE_MB", 1, 1 << 24,
       [](const Config& c) { return static_cast<int64_t>(c.map_size_mb); }},
      {"RAGSTREAM_THREADS", 1, 4096, [](const Config& c) { return int64_t{c.threads}; }},
      {"RAGSTREAM_THREAD_STACK_KB", 64, 8192,
       [](const Config& c) { return int64_t{c.thread_stack_kb}; }},
      {"RAGSTREAM_GRACE_S", 0, 3600, [](const Config& c) { return int64_t{c.grace_s}; }},
      {"RAGSTREAM_MAX_BODY_BYTES", 1024, int64_t{1} << 30,
       [](const Config& c) { return static_cast<int64_t>(c.max_body_bytes); }},
      {"RAGSTREAM_MAX_BATCH_BYTES", 1024, int64_t{1} << 30,
       [](const Config& c) { return static_cast<int64_t>(c.max_batch_bytes); }},
      {"RAGSTREAM_MAX_MESSAGE_CHARS", 1, 1 << 20,
       [](const Config& c) { return int64_t{c.max_message_chars}; }},
      {"RAGSTREAM_CONNECT_TIMEOUT_MS", 100, 600000,
       [](const Config& c) { return int64_t{c.connect_timeout_ms}; }},
      {"RAGSTREAM_FIRST_TOKEN_TIMEOUT_MS", 100, 3600000,
       [](const Config& c) { return int64_t{c.first_token_timeout_ms}; }},
      {"RAGSTREAM_IDLE_TIMEOUT_MS", 100, 3600000,
       [](const Config& c) { return int64_t{c.idle_timeout_ms}; }},
      {"RAGSTREAM_MAX_RETRIES", 0, 10, [](const Config& c) { return int64_t{c.max_retries}; }},
      {"RAGSTREAM_MAX_RETRY_WAIT_MS", 0, 600000,
       [](const Config& c) { return int64_t{c.max_retry_wait_ms}; }},
      {"RAGSTREAM_HISTORY_BUDGET_CHARS", 0, 1 << 24,
       [](const Config& c) { return int64_t{c.history_budget_chars}; }},
      {"RAGSTREAM_PERSIST_INTERVAL_MS", 10, 500,
       [](const Config& c) { return int64_t{c.persist_interval_ms}; }},
      {"RAGSTREAM_PING_INTERVAL_MS", 100, 600000,
       [](const Config& c) { return int64_t{c.ping_interval_ms}; }},
  };
  return vars;
}

void ExpectRejected(const Env& env, const std::string& name) {
  auto r = Load(env);
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().code() == "invalid_config");
  BOOST_TEST(static_cast<int>(r.status().kind()) == static_cast<int>(ErrorKind::kInvalidArgument));
  BOOST_TEST(r.status().message().find(name) != std::string::npos, r.status().message());
}

BOOST_AUTO_TEST_SUITE(config_test)

BOOST_AUTO_TEST_CASE(defaults_with_an_empty_environment) {
  auto r = LoadConfig([](const char*) -> const char* { return nullptr; });
  BOOST_REQUIRE(r.ok());
  const Config& c = r.value();
  BOOST_TEST(c.data_dir == "./ragstream-data");
  BOOST_TEST(c.map_size_mb == 1024u);
  BOOST_TEST(c.threads == 256);
  BOOST_TEST(c.thread_stack_kb == 256);
  BOOST_TEST(c.grace_s == 30);
  BOOST_TEST(static_cast<int>(c.log_level) == static_cast<int>(LogLevel::kInfo));
  BOOST_TEST(c.max_body_bytes >= 1024u);  // value checked against the help below
  BOOST_TEST(c.max_batch_bytes == uint64_t{64} << 20);
  BOOST_TEST(c.max_message_chars == 16000);
  BOOST_TEST(c.openai_base_url.empty());
  BOOST_TEST(c.openai_api_key.empty());
  BOOST_TEST(c.chat_model.empty());
  BOOST_TEST(c.connect_timeout_ms == 5000);
  BOOST_TEST(c.first_token_timeout_ms == 60000);
  BOOST_TEST(c.idle_timeout_ms == 60000);
  BOOST_TEST(c.max_retries == 2);
  BOOST_TEST(c.max_retry_wait_ms == 20000);
  BOOST_TEST(c.history_budget_chars == 8000);
  BOOST_TEST(c.persist_interval_ms == 500);
  BOOST_TEST(c.ping_interval_ms == 5000);
  BOOST_TEST(static_cast<int>(c.on_disconnect) == static_cast<int>(DisconnectPolicy::kCancel));
  BOOST_TEST(!c.upstream_configured());
}

BOOST_AUTO_TEST_CASE(help_documents_the_actual_numeric_defaults) {
  auto r = Load({});
  BOOST_REQUIRE(r.ok());
  const std::string help = ConfigHelp();
  for (const auto& v : NumericVars()) {
    BOOST_TEST_CONTEXT(v.name) {
      size_t line = help.find(std::string("  ") + v.name + " ");
      BOOST_REQUIRE(line != std::string::npos);
      size_t eol = help.find('\n', line);
      size_t open = help.rfind('[', eol);
      BOOST_REQUIRE(open != std::string::npos);
      BOOST_REQUIRE(open > line);
      std::string documented = help.substr(open + 1, help.find(']', open) - open - 1);
      BOOST_TEST(documented == std::to_string(v.get(r.value())));
    }
  }
}

BOOST_AUTO_TEST_CASE(empty_values_count_as_unset) {
  Env env;
  for (const auto& v : NumericVars()) env[v.name] = "";
  env["RAGSTREAM_LOG_LEVEL"] = "";
  env["RAGSTREAM_ON_DISCONNECT"] = "";
  env["OPENAI_BASE_URL"] = "";
  auto r = Load(env);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->threads == 256);
}

BOOST_AUTO_TEST_CASE(numeric_vars_accept_their_bounds) {
  for (const auto& v : NumericVars()) {
    BOOST_TEST_CONTEXT(v.name) {
      for (int64_t value : {v.min, v.max}) {
        auto r = Load({{v.name, std::to_string(value)}});
        BOOST_REQUIRE(r.ok());
        BOOST_TEST(v.get(r.value()) == value);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(numeric_vars_reject_non_numbers_trailing_junk_and_out_of_range) {
  for (const auto& v : NumericVars()) {
    std::vector<std::string> bad = {"abc",
                                    "12x",
                                    "12 ",
                                    " 12",
                                    "1.5",
                                    "0x10",
                                    "+5",
                                    "1e3",
                                    "--1",
                                    "nan",
                                    std::to_string(v.max + 1),
                                    "99999999999999999999999999"};
    if (v.min > 0) bad.push_back(std::to_string(v.min - 1));
    bad.push_back("-1");
    for (const auto& value : bad) {
      BOOST_TEST_CONTEXT(v.name << "='" << value << "'") {
        ExpectRejected({{v.name, value}}, v.name);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(on_disconnect_values) {
  auto finish = Load({{"RAGSTREAM_ON_DISCONNECT", "finish"}});
  BOOST_REQUIRE(finish.ok());
  BOOST_TEST(static_cast<int>(finish->on_disconnect) ==
             static_cast<int>(DisconnectPolicy::kFinish));
  auto cancel = Load({{"RAGSTREAM_ON_DISCONNECT", "cancel"}});
  BOOST_REQUIRE(cancel.ok());
  BOOST_TEST(static_cast<int>(cancel->on_disconnect) ==
             static_cast<int>(DisconnectPolicy::kCancel));
  for (const char* bad : {"Finish", "stop", "cancel ", "1"}) {
    BOOST_TEST_CONTEXT(bad) {
      ExpectRejected({{"RAGSTREAM_ON_DISCONNECT", bad}}, "RAGSTREAM_ON_DISCONNECT");
    }
  }
}

BOOST_AUTO_TEST_CASE(log_level_values) {
  auto debug = Load({{"RAGSTREAM_LOG_LEVEL", "debug"}});
  BOOST_REQUIRE(debug.ok());
  BOOST_TEST(static_cast<int>(debug->log_level) == static_cast<int>(LogLevel::kDebug));
  auto error = Load({{"RAGSTREAM_LOG_LEVEL", "error"}});
  BOOST_REQUIRE(error.ok());
  BOOST_TEST(static_cast<int>(error->log_level) == static_cast<int>(LogLevel::kError));
  for (const char* bad : {"verbose", "trace", "INFO ", "3"}) {
    BOOST_TEST_CONTEXT(bad) {
      ExpectRejected({{"RAGSTREAM_LOG_LEVEL", bad}}, "RAGSTREAM_LOG_LEVEL");
    }
  }
}

BOOST_AUTO_TEST_CASE(base_url_must_be_http_or_https) {
  for (const char* bad :
       {"api.openai.com/v1", "ftp://example.com", "file:///etc/passwd", "httpx://a", "//host/v1"}) {
    BOOST_TEST_CONTEXT(bad) {
      ExpectRejected({{"OPENAI_BASE_URL", bad}, {"RAGSTREAM_CHAT_MODEL", "m"}}, "OPENAI_BASE_URL");
    }
  }
  for (const char* good : {"http://127.0.0.1:8080/v1", "https://api.openai.com/v1"}) {
    auto r = Load({{"OPENAI_BASE_URL", good}, {"RAGSTREAM_CHAT_MODEL", "gpt-4o-mini"}});
    BOOST_REQUIRE(r.ok());
    BOOST_TEST(r->openai_base_url == good);
    BOOST_TEST(r->upstream_configured());
  }
}

BOOST_AUTO_TEST_CASE(base_url_trailing_slashes_are_stripped) {
  auto r = Load({{"OPENAI_BASE_URL", "https://api.openai.com/v1///"},
                 {"RAGSTREAM_CHAT_MODEL", "gpt-4o-mini"}});
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->openai_base_url == "https://api.openai.com/v1");
  BOOST_TEST(r->chat_model == "gpt-4o-mini");
}

BOOST_AUTO_TEST_CASE(base_url_without_model_is_rejected) {
  ExpectRejected({{"OPENAI_BASE_URL", "https://api.openai.com/v1"}}, "RAGSTREAM_CHAT_MODEL");
  // A model alone is harmless (no upstream configured).
  auto r = Load({{"RAGSTREAM_CHAT_MODEL", "m"}});
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->upstream_configured());
}

BOOST_AUTO_TEST_CASE(all_errors_are_reported_together) {
  auto r = Load({{"RAGSTREAM_THREADS", "zero"},
                 {"RAGSTREAM_PERSIST_INTERVAL_MS", "501"},
                 {"RAGSTREAM_LOG_LEVEL", "loud"},
                 {"RAGSTREAM_ON_DISCONNECT", "maybe"},
                 {"OPENAI_BASE_URL", "ftp://x"}});
  BOOST_REQUIRE(!r.ok());
  const std::string& msg = r.status().message();
  for (const char* name :
       {"RAGSTREAM_THREADS", "RAGSTREAM_PERSIST_INTERVAL_MS", "RAGSTREAM_LOG_LEVEL",
        "RAGSTREAM_ON_DISCONNECT", "OPENAI_BASE_URL", "RAGSTREAM_CHAT_MODEL"}) {
    BOOST_TEST(msg.find(name) != std::string::npos, name << " missing from: " << msg);
  }
  BOOST_TEST(msg.find("'zero'") != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(describe_config_hides_the_api_key) {
  const std::string canary = "sk-CANARY-7f3a9b2e11d04c55";
  auto r = Load({{"OPENAI_BASE_URL", "https://api.openai.com/v1"},
                 {"OPENAI_API_KEY", canary},
                 {"RAGSTREAM_CHAT_MODEL", "gpt-4o-mini"}});
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->openai_api_key == canary);
  std::vector<std::string> lines = DescribeConfig(r.value());
  bool key_line = false;
  for (const auto& line : lines) {
    BOOST_TEST(line.find(canary) == std::string::npos, line);
    BOOST_TEST(line.find("CANARY") == std::string::npos, line);
    if (line.rfind("OPENAI_API_KEY=", 0) == 0) {
      key_line = true;
      BOOST_TEST(line.find("(set)") != std::string::npos, line);
    }
  }
  BOOST_TEST(key_line);

  auto unset = Load({});
  BOOST_REQUIRE(unset.ok());
  bool unset_line = false;
  for (const auto& line : DescribeConfig(unset.value())) {
    if (line.rfind("OPENAI_API_KEY=", 0) == 0) {
      unset_line = true;
      BOOST_TEST(line.find("(unset)") != std::string::npos, line);
    }
  }
  BOOST_TEST(unset_line);
}

BOOST_AUTO_TEST_CASE(describe_config_shows_values) {
  auto r = Load({{"RAGSTREAM_THREADS", "17"}, {"RAGSTREAM_ON_DISCONNECT", "finish"}});
  BOOST_REQUIRE(r.ok());
  std::vector<std::string> lines = DescribeConfig(r.value());
  auto has = [&](const std::string& prefix) {
    for (const auto& l : lines) {
      if (l.rfind(prefix, 0) == 0) return true;
    }
    return false;
  };
  BOOST_TEST(has("RAGSTREAM_THREADS=17"));
  BOOST_TEST(has("RAGSTREAM_ON_DISCONNECT=finish"));
}

BOOST_AUTO_TEST_CASE(nats_urls_are_split_and_shown_without_their_passwords) {
  const std::string urls = "nats://a:4222,,nats://user:s3cret@b:4222,nats://tok@c:4222";
  BOOST_TEST(
      (SplitList(urls) == std::vector<std::string>{"nats://a:4222", "nats://user:s3cret@b:4222",
                                                   "nats://tok@c:4222"}));
  BOOST_TEST(SplitList("").empty());
  BOOST_TEST(UrlsWithoutCredentials(urls) == "nats://a:4222,nats://***@b:4222,nats://***@c:4222");
  auto r = Load({{"RAGSTREAM_NATS_URL", urls}});
  BOOST_REQUIRE(r.ok());
  for (const auto& line : DescribeConfig(r.value())) {
    BOOST_TEST(line.find("s3cret") == std::string::npos, line);
    BOOST_TEST(line.find("tok@") == std::string::npos, line);
  }
}

BOOST_AUTO_TEST_CASE(describe_config_has_a_line_for_every_variable_in_help) {
  // DescribeConfig promises "one line per setting"; ConfigHelp lists every setting.
  auto r = Load({});
  BOOST_REQUIRE(r.ok());
  std::vector<std::string> lines = DescribeConfig(r.value());
  std::string help = ConfigHelp();
  size_t pos = 0, names = 0;
  while ((pos = help.find("\n  ", pos)) != std::string::npos) {
    pos += 3;
    size_t end = help.find(' ', pos);
    std::string name = help.substr(pos, end - pos);
    ++names;
    bool found = false;
    for (const auto& l : lines) found = found || l.rfind(name + "=", 0) == 0;
    BOOST_TEST(found, "DescribeConfig has no line for " << name);
  }
  BOOST_TEST(names >= 20u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream
