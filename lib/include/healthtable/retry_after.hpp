// Retry hints as providers send them, turned into the `retry_after` of an
// Outcome: a worker that gets a 429 or 503 passes the header's value here
// and the result to Reporter::failure().
//
//   auto hint = healthtable::parse_retry_after(response.header("Retry-After"),
//                                              healthtable::Instant::now().unix_ns);
//   reporter.failure("groq", "http 429", healthtable::FailureClass::rate_limited, hint);
#pragma once

#include <healthtable/clock.hpp> // Instant, whose unix_ns is the usual now

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace healthtable {

/// A `Retry-After` field value (RFC 9110 §10.2.3): delta-seconds ("120") or
/// an HTTP-date in any of the three forms RFC 9110 §5.6.7 asks recipients
/// to accept: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete
/// RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year more
/// than 50 years ahead of now is the century before) and asctime ("Sun
/// Nov  6 08:49:37 1994"). Surrounding spaces and tabs are ignored. Returns
/// how long to wait from `now_unix_ns` (the wall clock, nanoseconds since
/// the epoch, as Instant::unix_ns): a date in the past is zero. Returns nothing
/// for anything else: empty, a sign, a fraction, trailing text, an
/// impossible date or time, or more than nanoseconds can hold (~292 years).
std::optional<std::chrono::nanoseconds> parse_retry_after(std::string_view value,
                                                          std::int64_t now_unix_ns);

/// A `retry-after-ms` field value (OpenAI, Azure OpenAI): non-negative
/// milliseconds, possibly with a fraction ("1500", "250.5"). Returns nothing
/// for anything else, as parse_retry_after().
std::optional<std::chrono::nanoseconds> parse_retry_after_ms(std::string_view value);

} // namespace healthtable
