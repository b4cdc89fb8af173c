// Retry hints as HTTP servers send them, turned into the duration an
// Outcome carries (Outcome::retry_after): the prober reads them from its
// probes' answers, a gateway from its requests'.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace healthtable {

/// A `Retry-After` value (RFC 9110 10.2.3): delta-seconds ("30") or an
/// HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"), measured from `now_unix_ns`
/// (a date already past is zero). nullopt for anything else. Very long
/// hints come back clamped to 365 days; the policy's max_hint cuts them
/// further.
std::optional<std::chrono::nanoseconds> parse_retry_after(std::string_view value,
                                                          std::int64_t now_unix_ns);

/// A `retry-after-ms` value (OpenAI, Azure): non-negative milliseconds,
/// fractions allowed ("1500", "20.5"). nullopt for anything else.
std::optional<std::chrono::nanoseconds> parse_retry_after_ms(std::string_view value);

} // namespace healthtable
