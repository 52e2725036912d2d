// SseParser: the WHATWG event-stream grammar fed in arbitrary pieces.
#include "lib/llm/sse_parser.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <tuple>
#include <vector>

namespace ragstream::llm {
namespace {

using Ev = std::tuple<std::string, std::string, std::string>;  // event, data, id

struct Collected {
  std::vector<Ev> events;
  bool ok = true;
  size_t comments = 0;
};

SseParser::Handler Recorder(std::vector<Ev>& out) {
  return [&out](const SseEvent& e) {
    out.emplace_back(e.event, e.data, e.id);
    return true;
  };
}

Collected FeedPieces(const std::vector<std::string>& pieces) {
  SseParser parser;
  Collected c;
  auto handler = Recorder(c.events);
  for (const auto& p : pieces) c.ok = parser.Feed(p, handler) && c.ok;
  c.comments = parser.comments();
  return c;
}

Collected FeedWhole(const std::string& input) {
  return FeedPieces({input});
}

std::string Describe(const std::vector<Ev>& events) {
  std::string s;
  for (const auto& [e, d, i] : events) s += "[" + e + "|" + d + "|" + i + "]";
  return s;
}

// Several events with every line ending, comments, multi-line data, event and id fields.
const std::string kMultiEvent =
    ": hello comment\n"
    "data: first\n"
    "\n"
    "event: update\r\n"
    "id: 7\r\n"
    "data: line one\r\n"
    "data:line two\r\n"
    "\r\n"
    ": keep-alive\r"
    "data: cr only\r"
    "\r"
    "data: {\"choices\":[{\"delta\":{\"content\":\"\xD7\xA9\xD7\x9C\"}}]}\n"
    "\n"
    "data: [DONE]\r\n"
    "\r\n";

const std::vector<Ev> kExpected = {
    {"", "first", ""},
    {"update", "line one\nline two", "7"},
    {"", "cr only", "7"},  // the last event id persists, the event type does not
    {"", "{\"choices\":[{\"delta\":{\"content\":\"\xD7\xA9\xD7\x9C\"}}]}", "7"},
    {"", "[DONE]", "7"},
};

BOOST_AUTO_TEST_SUITE(sse_parser_test)

BOOST_AUTO_TEST_CASE(whole_input_parses_to_expected_events) {
  Collected c = FeedWhole(kMultiEvent);
  BOOST_TEST(c.ok);
  BOOST_TEST(Describe(c.events) == Describe(kExpected));
  BOOST_TEST(c.comments == 2u);
}

BOOST_AUTO_TEST_CASE(every_two_way_split_gives_identical_events) {
  for (size_t cut = 0; cut <= kMultiEvent.size(); ++cut) {
    Collected c = FeedPieces({kMultiEvent.substr(0, cut), kMultiEvent.substr(cut)});
    BOOST_TEST_CONTEXT("split at " << cut) {
      BOOST_TEST(c.ok);
      BOOST_TEST(Describe(c.events) == Describe(kExpected));
      BOOST_TEST(c.comments == 2u);
    }
  }
}

BOOST_AUTO_TEST_CASE(every_three_way_split_gives_identical_events) {
  const size_t n = kMultiEvent.size();
  size_t tried = 0, mismatches = 0;
  for (size_t a = 0; a <= n; ++a) {
    for (size_t b = a; b <= n; b += 3) {
      Collected c = FeedPieces(
          {kMultiEvent.substr(0, a), kMultiEvent.substr(a, b - a), kMultiEvent.substr(b)});
      ++tried;
      if (Describe(c.events) != Describe(kExpected) || !c.ok || c.comments != 2u) {
        if (++mismatches <= 5) {
          BOOST_TEST_MESSAGE("split at " << a << "," << b << " gave " << Describe(c.events));
        }
      }
    }
  }
  BOOST_TEST(tried > 1000u);
  BOOST_TEST(mismatches == 0u);
}

BOOST_AUTO_TEST_CASE(one_byte_at_a_time_gives_identical_events) {
  std::vector<std::string> pieces;
  for (char ch : kMultiEvent) pieces.emplace_back(1, ch);
  Collected c = FeedPieces(pieces);
  BOOST_TEST(c.ok);
  BOOST_TEST(Describe(c.events) == Describe(kExpected));
  BOOST_TEST(c.comments == 2u);
}

BOOST_AUTO_TEST_CASE(lf_crlf_and_cr_line_endings_are_equivalent) {
  for (const char* eol : {"\n", "\r\n", "\r"}) {
    std::string e(eol);
    std::string input = "event: e" + e + "data: a" + e + "data: b" + e + e + "data: c" + e + e;
    Collected c = FeedWhole(input);
    BOOST_TEST_CONTEXT("eol " << (e == "\n" ? "LF" : e == "\r\n" ? "CRLF" : "CR")) {
      BOOST_TEST(Describe(c.events) == Describe({{"e", "a\nb", ""}, {"", "c", ""}}));
    }
  }
}

BOOST_AUTO_TEST_CASE(cr_at_chunk_end_and_lf_at_next_chunk_start_is_one_line_end) {
  // If the LF were taken as a second (blank) line, "a" would be dispatched on its own.
  Collected c = FeedPieces({"data: a\r", "\ndata: b\r", "\n\r", "\n"});
  BOOST_TEST(Describe(c.events) == Describe({{"", "a\nb", ""}}));
}

BOOST_AUTO_TEST_CASE(cr_at_chunk_end_survives_an_empty_chunk) {
  Collected c = FeedPieces({"data: a\r", "", "\ndata: b\r\n", "\r\n"});
  BOOST_TEST(Describe(c.events) == Describe({{"", "a\nb", ""}}));
}

BOOST_AUTO_TEST_CASE(two_crs_are_two_line_ends) {
  // CR CR is a line end followed by a blank line: the event is dispatched.
  Collected c = FeedPieces({"data: a\r", "\r", "data: b\r\r"});
  BOOST_TEST(Describe(c.events) == Describe({{"", "a", ""}, {"", "b", ""}}));
}

BOOST_AUTO_TEST_CASE(comment_lines_are_counted_and_not_dispatched) {
  SseParser parser;
  std::vector<Ev> events;
  BOOST_TEST(parser.Feed(": ping\n\n:\n\n: another\r\n\r\n", Recorder(events)));
  BOOST_TEST(events.empty());
  BOOST_TEST(parser.comments() == 3u);
  BOOST_TEST(parser.Feed(": x\ndata: y\n\n", Recorder(events)));
  BOOST_TEST(parser.comments() == 4u);
  BOOST_TEST(Describe(events) == Describe({{"", "y", ""}}));
}

BOOST_AUTO_TEST_CASE(multiple_data_lines_join_with_newline) {
  Collected c = FeedWhole("data: one\ndata: two\ndata:\ndata: four\n\n");
  BOOST_TEST(Describe(c.events) == Describe({{"", "one\ntwo\n\nfour", ""}}));
}

BOOST_AUTO_TEST_CASE(data_without_space_after_colon_and_only_one_space_removed) {
  Collected c = FeedWhole("data:tight\n\ndata:  two spaces\n\n");
  BOOST_TEST(Describe(c.events) == Describe({{"", "tight", ""}, {"", " two spaces", ""}}));
}

BOOST_AUTO_TEST_CASE(event_and_id_fields) {
  Collected c = FeedWhole("event: delta\nid: abc\ndata: x\n\nid: def\ndata: y\n\ndata: z\n\n");
  BOOST_TEST(Describe(c.events) ==
             Describe({{"delta", "x", "abc"}, {"", "y", "def"}, {"", "z", "def"}}));
}

BOOST_AUTO_TEST_CASE(unknown_fields_and_retry_are_ignored) {
  Collected c = FeedWhole("retry: 1000\nfoo: bar\nnocolon\ndata: x\n\n");
  BOOST_TEST(Describe(c.events) == Describe({{"", "x", ""}}));
}

BOOST_AUTO_TEST_CASE(blank_line_without_data_dispatches_nothing_and_resets_event_type) {
  Collected c = FeedWhole("\n\n\r\n\revent: stale\n\ndata: x\n\n");
  BOOST_TEST(Describe(c.events) == Describe({{"", "x", ""}}));
}

BOOST_AUTO_TEST_CASE(unterminated_event_is_not_dispatched_and_is_buffered) {
  SseParser parser;
  std::vector<Ev> events;
  BOOST_TEST(parser.Feed("data: partial\ndata: more", Recorder(events)));
  BOOST_TEST(events.empty());
  BOOST_TEST(parser.buffered() > 0u);
  BOOST_TEST(parser.Feed("\n\n", Recorder(events)));
  BOOST_TEST(Describe(events) == Describe({{"", "partial\nmore", ""}}));
}

BOOST_AUTO_TEST_CASE(leading_bom_is_stripped_at_any_split) {
  const std::string input =
      "\xEF\xBB\xBF"
      "data: x\n\n";
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    Collected c = FeedPieces({input.substr(0, cut), input.substr(cut)});
    BOOST_TEST_CONTEXT("split at " << cut) {
      BOOST_TEST(Describe(c.events) == Describe({{"", "x", ""}}));
    }
  }
}

BOOST_AUTO_TEST_CASE(bom_is_only_stripped_at_stream_start) {
  // A BOM in a later line is part of the line: "\xEF\xBB\xBFdata" is not the data field.
  Collected c = FeedWhole(
      "data: a\n\n\xEF\xBB\xBF"
      "data: b\n\n");
  BOOST_TEST(Describe(c.events) == Describe({{"", "a", ""}}));
}

BOOST_AUTO_TEST_CASE(handler_returning_false_stops_parsing) {
  SseParser parser;
  std::vector<std::string> seen;
  auto stop_after_first = [&](const SseEvent& e) {
    seen.push_back(e.data);
    return false;
  };
  BOOST_TEST(!parser.Feed("data: a\n\ndata: b\n\ndata: c\n\n", stop_after_first));
  BOOST_TEST(seen.size() == 1u);
  BOOST_TEST(seen.at(0) == "a");
}

BOOST_AUTO_TEST_CASE(handler_returning_false_after_crlf_still_reports_stop) {
  SseParser parser;
  int calls = 0;
  auto stop = [&](const SseEvent&) {
    ++calls;
    return false;
  };
  BOOST_TEST(!parser.Feed("data: a\r\n\r\n", stop));
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(oversize_unterminated_line_returns_false) {
  SseParser parser;
  std::vector<Ev> events;
  std::string big(SseParser::kMaxLineBytes + 1, 'x');
  BOOST_TEST(!parser.Feed("data: " + big, Recorder(events)));
  BOOST_TEST(events.empty());
}

BOOST_AUTO_TEST_CASE(oversize_unterminated_line_across_chunks_returns_false) {
  SseParser parser;
  std::vector<Ev> events;
  std::string half(SseParser::kMaxLineBytes / 2 + 16, 'x');
  BOOST_TEST(parser.Feed("data: " + half, Recorder(events)));
  BOOST_TEST(!parser.Feed(half, Recorder(events)));
  BOOST_TEST(events.empty());
}

BOOST_AUTO_TEST_CASE(oversize_data_line_in_one_chunk_returns_false) {
  SseParser parser;
  std::vector<Ev> events;
  std::string big(SseParser::kMaxLineBytes + 1, 'x');
  BOOST_TEST(!parser.Feed("data: " + big + "\n\n", Recorder(events)));
  BOOST_TEST(events.empty());
}

BOOST_AUTO_TEST_CASE(oversize_event_line_completed_in_a_later_chunk_returns_false) {
  // The header promises false when "a line exceeded the size limit", whatever its field.
  SseParser parser;
  std::vector<Ev> events;
  std::string part(SseParser::kMaxLineBytes / 2 + 16, 'x');
  BOOST_TEST(parser.Feed("event: " + part, Recorder(events)));
  BOOST_TEST(!parser.Feed(part + "\ndata: x\n\n", Recorder(events)));
  BOOST_TEST(events.empty());
}

BOOST_AUTO_TEST_CASE(oversize_event_line_within_one_chunk_returns_false) {
  SseParser parser;
  std::vector<Ev> events;
  std::string big(SseParser::kMaxLineBytes + 16, 'x');
  BOOST_TEST(!parser.Feed("event: " + big + "\ndata: x\n\n", Recorder(events)));
  BOOST_TEST(events.empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::llm
