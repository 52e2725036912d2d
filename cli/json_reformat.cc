#include "cli/json_reformat.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "lib/core/json.h"
#include "lib/core/utf8.h"

namespace ragstream::cli {
namespace {

// Numbers as strings: the reader hands each number's text to Writer::RawNumber untouched.
constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
                            rapidjson::kParseNumbersAsStringsFlag;

// RapidJSON 1.1.0's Writer::RawNumber quotes the number (fixed upstream later): write it as
// a raw value instead.
template <typename Base>
class ExactNumbers : public Base {
 public:
  using Base::Base;
  bool RawNumber(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    return Base::RawValue(str, length, rapidjson::kNumberType);
  }
};

template <typename Writer>
bool Copy(const std::string& text, Writer& writer) {
  rapidjson::Reader reader;
  rapidjson::StringStream in(text.c_str());
  return !reader.Parse<kFlags>(in, writer).IsError() && writer.IsComplete();
}

}  // namespace

Result<std::string> ReformatJson(std::string_view text, int indent) {
  Status invalid(ErrorKind::kInternal, "invalid_response", "the server sent malformed JSON");
  // The same guards as ParseUntrustedJson (RapidJSON 1.1.0's known bugs).
  if (!PrescanJson(text).ok() || !IsValidUtf8(text) || text.find('\0') != std::string_view::npos) {
    return invalid;
  }
  const std::string copy(text);  // StringStream needs a terminating NUL
  rapidjson::StringBuffer buf;
  bool ok;
  if (indent > 0) {
    ExactNumbers<rapidjson::PrettyWriter<rapidjson::StringBuffer>> w(buf);
    w.SetIndent(' ', static_cast<unsigned>(indent));
    ok = Copy(copy, w);
  } else {
    ExactNumbers<rapidjson::Writer<rapidjson::StringBuffer>> w(buf);
    ok = Copy(copy, w);
  }
  if (!ok) return invalid;
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace ragstream::cli
