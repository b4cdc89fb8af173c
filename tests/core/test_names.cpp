// Name rules, durations and reason sanitizing: the input edges of the API.
#include <healthtable/error.hpp>
#include <healthtable/layout.hpp>
#include <healthtable/names.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;

namespace {
Errc code_of(auto&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("no error thrown");
  return Errc::system_error;
}
} // namespace

TEST_CASE("names: segment names") {
  CHECK_NOTHROW(validate_segment_name("gateway"));
  CHECK_NOTHROW(validate_segment_name("a.b_c-D9"));
  CHECK_NOTHROW(validate_segment_name(std::string(kSegmentNameMax, 'x')));
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "../x", "a/b", "with space", "tab\t", "ü",
                                std::string(kSegmentNameMax + 1, 'x'), std::string("nul\0x", 5)})
    CHECK_MESSAGE(code_of([&] { validate_segment_name(bad); }) == Errc::invalid_name, bad);
}

TEST_CASE("names: provider names") {
  CHECK_NOTHROW(validate_provider_name("groq"));
  CHECK_NOTHROW(validate_provider_name("openrouter/anthropic:claude@eu+1.x_y-z"));
  CHECK_NOTHROW(validate_provider_name(std::string(kProviderNameMax, 'p')));
  for (const std::string& bad : std::vector<std::string>{"", "a b", "x\n", "semi;colon", "quote\"",
                                                         std::string(kProviderNameMax + 1, 'p')})
    CHECK_MESSAGE(code_of([&] { validate_provider_name(bad); }) == Errc::invalid_name, bad);
}

TEST_CASE("durations: units, plain seconds, errors") {
  CHECK(parse_duration("60s") == 60s);
  CHECK(parse_duration("60") == 60s);
  CHECK(parse_duration("500ms") == 500ms);
  CHECK(parse_duration("2m") == 2min);
  CHECK(parse_duration("1h") == 1h);
  CHECK(parse_duration("1.5s") == 1500ms);
  CHECK(parse_duration("250us") == 250us);
  CHECK(parse_duration("0") == 0s);
  for (const char* bad : {"", "s", "-1s", "5 s", "5x", "1e999", "abc", "1..2s"})
    CHECK_MESSAGE(code_of([&] { parse_duration(bad, "backoff"); }) == Errc::invalid_argument, bad);
  try {
    parse_duration("5x", "--backoff");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("--backoff") != std::string::npos);
  }
}

TEST_CASE("durations: formatting round-trips") {
  CHECK(format_duration(60s) == "1m");
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(1500ms) == "1.5s");
  CHECK(format_duration(500ms) == "500ms");
  CHECK(format_duration(0s) == "0s");
  CHECK(format_duration(2h) == "2h");
  for (const auto d : {1s, 45s, 3600s})
    CHECK(parse_duration(format_duration(d)) == d);
}

TEST_CASE("ages: tenths under ten seconds, then two units") {
  CHECK(format_age(0) == "0.0s");
  CHECK(format_age(400'000'000) == "0.4s");
  CHECK(format_age(9'940'000'000) == "9.9s");
  CHECK(format_age(12'500'000'000) == "12s");
  CHECK(format_age(303'000'000'000) == "5m03s");
  CHECK(format_age(7'500'000'000'000) == "2h05m");
  CHECK(format_age(3 * 86'400'000'000'000 + 4 * 3'600'000'000'000) == "3d04h");
  CHECK(format_age(-1'000'000'000) == "0.0s");
}

TEST_CASE("reasons: UTF-8 boundaries, invalid bytes, control characters") {
  CHECK(sanitize_reason("plain", 120) == "plain");
  CHECK(sanitize_reason("abc\xE2\x82\xAC", 5) == "abc"); // a 3-byte euro sign does not fit
  CHECK(sanitize_reason("abc\xE2\x82\xAC", 6) == "abc\xE2\x82\xAC");
  CHECK(sanitize_reason("\xF0\x9F\x98\x80!", 4) == "\xF0\x9F\x98\x80");
  CHECK(sanitize_reason("bad\xC0\xAFz", 120) == "bad??z");    // overlong
  CHECK(sanitize_reason("sur\xED\xA0\x80", 120) == "sur???"); // surrogate
  CHECK(sanitize_reason("cut\xE2\x82", 120) == "cut??");      // truncated sequence
  CHECK(sanitize_reason("a\tb\r\nc\x7f", 120) == "a b  c ");
  CHECK(sanitize_reason(std::string(500, 'x'), kReasonMax).size() == kReasonMax);
}
