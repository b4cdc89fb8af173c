// Name rules and small parsers shared by the library and the tools.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace healthtable {

/// Throws Error(invalid_name) unless `name` is a valid segment name: 1 to 200
/// bytes of letters, digits, '.', '_', '-', and not "." or "..". The name is
/// the POSIX shared-memory name without its leading '/' (/dev/shm/NAME).
void validate_segment_name(std::string_view name);

/// Throws Error(invalid_name) unless `name` is a valid provider name: 1 to 63
/// bytes of letters, digits and . _ - : / @ +
void validate_provider_name(std::string_view name);

/// Parses a duration: "60s", "500ms", "2m", "1h", "250us", "1.5s"; a plain
/// number is seconds. Throws Error(invalid_argument) naming `what`.
std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view what = "duration");

/// "60s", "1.5s", "500ms", "2m" ...: the shortest exact rendering.
std::string format_duration(std::chrono::nanoseconds d);

/// An elapsed time for humans: "0.4s", "12s", "5m03s", "2h05m", "3d04h"
/// (tenths under ten seconds, then two units); a negative one is "0.0s".
std::string format_age(std::int64_t ns);

/// "0644".
std::string format_mode(std::uint32_t mode);

/// Cuts `text` to at most `max` bytes on a code point boundary, replaces
/// invalid UTF-8 with '?' and control characters with ' '.
std::string sanitize_reason(std::string_view text, std::size_t max);

} // namespace healthtable
