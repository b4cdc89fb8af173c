// parse_retry_after and parse_retry_after_ms: every form RFC 9110 asks a
// recipient to accept, measured from an explicit now, and the garbage,
// signs and overflows they must refuse.
#include <healthtable/retry_after.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>

using namespace healthtable;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

namespace {

constexpr std::int64_t kS = 1'000'000'000;
/// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example.
constexpr std::int64_t kExample = 784'111'777;
/// 2026-06-01T00:00:00Z.
constexpr std::int64_t kJune2026 = 1'780'272'000;

std::optional<nanoseconds> at(std::string_view v, std::int64_t now_s) {
  return parse_retry_after(v, now_s * kS);
}

} // namespace

TEST_CASE("Retry-After delta-seconds: digits only, from now whatever now is") {
  CHECK(at("120", kJune2026) == 120s);
  CHECK(at("0", kJune2026) == 0s);
  CHECK(at("007", kJune2026) == 7s);
  CHECK(at(" 30\t", kJune2026) == 30s); // optional whitespace around a field value
  CHECK(at("30", 0) == 30s);
  for (const char* bad : {"", " ", "-5", "+5", "1.5", "30s", "3 0", "1e3", "0x10", "30,", "٣"})
    CHECK_MESSAGE(!at(bad, kJune2026), bad);
}

TEST_CASE("Retry-After delta-seconds: more than nanoseconds hold is refused, not wrapped") {
  CHECK(at("9223372036", kJune2026) == nanoseconds(9'223'372'036 * kS));
  CHECK_FALSE(at("9223372037", kJune2026));
  CHECK_FALSE(at("99999999999999999999999999", kJune2026));
}

TEST_CASE("Retry-After IMF-fixdate: the wait until it, exactly, and zero once it passed") {
  const std::string_view date = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(at(date, kExample - 30) == 30s);
  CHECK(parse_retry_after(date, (kExample - 30) * kS + kS / 2) == 29500ms);
  CHECK(at(date, kExample) == 0s);
  CHECK(at(date, kExample + 1) == 0s);
  CHECK(at(date, kJune2026) == 0s);
  CHECK(at("  Sun, 06 Nov 1994 08:49:37 GMT ", kExample - 1) == 1s);
  // A leap second is a second the grammar allows: 23:59:60 is midnight.
  CHECK(at("Wed, 31 Dec 2025 23:59:60 GMT", 1'767'225'600 - 10) == 10s);
  CHECK(at("Thu, 01 Jan 2026 00:00:00 GMT", 1'767'225'600 - 10) == 10s);
  // The weekday is read as a name, not checked against the date.
  CHECK(at("Mon, 06 Nov 1994 08:49:37 GMT", kExample - 30) == 30s);
}

TEST_CASE("Retry-After RFC 850 dates: two-digit years no more than 50 years ahead") {
  CHECK(at("Sunday, 06-Nov-94 08:49:37 GMT", kExample - 30) == 30s);
  // In 2026, 94 is 1994 (2094 would be 68 years ahead): long past.
  CHECK(at("Sunday, 06-Nov-94 08:49:37 GMT", kJune2026) == 0s);
  CHECK(at("Tuesday, 01-Jan-30 00:00:00 GMT", 1'893'456'000 - 3600) == 1h);
  // 76 is 2076, just 50 years ahead of 2026; 77 would be 51, so 1977.
  CHECK(at("Wednesday, 01-Jan-76 00:00:00 GMT", kJune2026) ==
        nanoseconds((3'345'062'400 - kJune2026) * kS));
  CHECK(at("Saturday, 01-Jan-77 00:00:00 GMT", kJune2026) == 0s);
  // In 2090, 10 is 2110, not 2010.
  CHECK(at("Wednesday, 01-Jan-10 00:00:00 GMT", 3'786'912'000) ==
        nanoseconds((4'417'977'600 - 3'786'912'000) * kS));
}

TEST_CASE("Retry-After asctime dates: a space-padded or two-digit day") {
  CHECK(at("Sun Nov  6 08:49:37 1994", kExample - 30) == 30s);
  CHECK(at("Sun Nov 06 08:49:37 1994", kExample - 30) == 30s);
  CHECK(at("Sun Nov  6 08:49:37 1994", kJune2026) == 0s);
}

TEST_CASE("Retry-After: what is not one of the three forms is refused") {
  for (const char* bad : {
           "sun, 06 Nov 1994 08:49:37 GMT",    // names are case-sensitive
           "Sun, 06 nov 1994 08:49:37 GMT",    //
           "Sun, 06 Nov 1994 08:49:37 UTC",    // GMT only
           "Sun, 06 Nov 1994 08:49:37",        //
           "Sun, 6 Nov 1994 08:49:37 GMT",     // two-digit day
           "Sun,  06 Nov 1994 08:49:37 GMT",   //
           "Sun 06 Nov 1994 08:49:37 GMT",     //
           "Sun, 06 Nov 94 08:49:37 GMT",      // four-digit year
           "Sun, 06 Nov 1994 8:49:37 GMT",     //
           "Sun, 06 Nov 1994 08:49 GMT",       //
           "Sun, 06 Nov 1994 08:49:37 GMT x",  // trailing text
           "Sun, 06 Nov 1994 08:49:37 GMT\n",  // not whitespace a field value may end with
           "Sunday, 06 Nov 1994 08:49:37 GMT", // the long name is RFC 850's
           "Sun, 06-Nov-94 08:49:37 GMT",      // and RFC 850 wants it
           "Sunday, 06-Nov-1994 08:49:37 GMT", //
           "Sun Nov 6 08:49:37 1994",          // asctime pads the day to two
           "Sun Nov  6 08:49:37 94",           //
           "Xyz, 06 Nov 1994 08:49:37 GMT",    //
           "Sun, 31 Feb 1994 08:49:37 GMT",    // no such day
           "Sun, 00 Nov 1994 08:49:37 GMT",    //
           "Sun, 29 Feb 1900 08:49:37 GMT",    // not a leap year
           "Sun, 06 Nov 1994 24:00:00 GMT",    // no such time
           "Sun, 06 Nov 1994 08:60:00 GMT",    //
           "Sun, 06 Nov 1994 08:49:61 GMT",    //
           "tomorrow",
           "GMT",
           ",",
       })
    CHECK_MESSAGE(!at(bad, kExample - 30), bad);
  CHECK(at("Thu, 29 Feb 1996 00:00:00 GMT", kJune2026) == 0s); // a leap year's day is a day
}

TEST_CASE("Retry-After dates beyond what nanoseconds hold are refused, long past ones are zero") {
  CHECK(at("Fri, 11 Apr 2262 23:47:16 GMT", 0) == nanoseconds(9'223'372'036 * kS));
  CHECK_FALSE(at("Fri, 11 Apr 2262 23:47:17 GMT", 0));
  CHECK_FALSE(at("Fri, 31 Dec 9999 23:59:59 GMT", kJune2026));
  CHECK(at("Sat, 01 Jan 0000 00:00:00 GMT", kJune2026) == 0s);
  CHECK(at("Sat, 01 Jan 1000 00:00:00 GMT", kJune2026) == 0s);
  // A now far from the date cannot overflow the subtraction either.
  CHECK(parse_retry_after("Fri, 11 Apr 2262 23:47:16 GMT",
                          std::numeric_limits<std::int64_t>::min()) == std::nullopt);
}

TEST_CASE("retry-after-ms: milliseconds, a fraction down to the nanosecond") {
  CHECK(parse_retry_after_ms("1500") == 1500ms);
  CHECK(parse_retry_after_ms("0") == 0ms);
  CHECK(parse_retry_after_ms(" 20 ") == 20ms);
  CHECK(parse_retry_after_ms("250.5") == 250500us);
  CHECK(parse_retry_after_ms("1.123456789") == 1123456ns); // past the nanosecond adds nothing
  CHECK(parse_retry_after_ms("9223372036854.775807") == nanoseconds::max());
  for (const char* bad : {"", " ", "-1", "+1", ".5", "1.", "1.2.3", "1e3", "abc", "1 5", "1,5",
                          "9223372036855", "9223372036854.775808"})
    CHECK_MESSAGE(!parse_retry_after_ms(bad), bad);
}
