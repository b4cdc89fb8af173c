#include <healthtable/retry_after.hpp>

#include <algorithm>
#include <ctime>
#include <string>

namespace healthtable {
namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
/// As kMaxBackoff: a hint longer than a year is not a rate limit.
constexpr std::int64_t kLongestSeconds = 365LL * 24 * 3600;

std::string_view trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  return v;
}

bool digit(char c) { return c >= '0' && c <= '9'; }

/// Leading digits as a number, saturating at `cap`; how many were read.
std::size_t digits(std::string_view v, std::int64_t cap, std::int64_t& out) {
  std::size_t i = 0;
  out = 0;
  for (; i < v.size() && digit(v[i]); ++i)
    if (out < cap) out = std::min(cap, out * 10 + (v[i] - '0'));
  return i;
}

/// IMF-fixdate, the form RFC 9110 requires senders to use. strptime's %a
/// and %b are the C locale's English names: healthtable never sets a locale.
std::optional<std::int64_t> http_date_unix(std::string_view v) {
  const std::string text(v);
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  const std::time_t t = ::timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return static_cast<std::int64_t>(t);
}

} // namespace

std::optional<std::chrono::nanoseconds> parse_retry_after(std::string_view value,
                                                          std::int64_t now_unix_ns) {
  value = trimmed(value);
  if (value.empty()) return std::nullopt;
  if (digit(value.front())) {
    std::int64_t seconds = 0;
    if (digits(value, kLongestSeconds, seconds) != value.size()) return std::nullopt;
    return std::chrono::seconds(seconds);
  }
  const auto at = http_date_unix(value);
  if (!at) return std::nullopt;
  const std::int64_t now_s = now_unix_ns / kNsPerSecond;
  if (*at <= now_s) return std::chrono::nanoseconds(0);
  const std::int64_t ahead = std::min(*at - now_s, kLongestSeconds);
  // From now exactly, not from the last whole second.
  return std::chrono::nanoseconds(ahead * kNsPerSecond - now_unix_ns % kNsPerSecond);
}

std::optional<std::chrono::nanoseconds> parse_retry_after_ms(std::string_view value) {
  value = trimmed(value);
  std::int64_t ms = 0;
  const std::size_t whole = digits(value, kLongestSeconds * 1000, ms);
  if (whole == 0) return std::nullopt;
  std::int64_t ns = ms * 1'000'000;
  std::string_view rest = value.substr(whole);
  if (!rest.empty()) {
    if (rest.front() != '.' || rest.size() == 1) return std::nullopt;
    rest.remove_prefix(1);
    std::int64_t scale = 100'000; // the first decimal is 100 us
    for (char c : rest) {
      if (!digit(c)) return std::nullopt;
      ns += (c - '0') * scale;
      scale /= 10;
    }
  }
  return std::chrono::nanoseconds(ns);
}

} // namespace healthtable
