#include <healthtable/retry_after.hpp>

#include <array>
#include <cstdint>
#include <limits>

namespace healthtable {
namespace {

using std::chrono::nanoseconds;

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
/// The longest wait a nanosecond count holds, in whole seconds.
constexpr std::int64_t kMaxSeconds = std::numeric_limits<std::int64_t>::max() / kNsPerSecond;

constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// Reads the grammar's fixed-width pieces left to right; any mismatch
/// makes the whole value invalid (ok() false), so callers check once.
class Cursor {
public:
  explicit Cursor(std::string_view s) noexcept : s_(s) {}
  bool ok() const noexcept { return ok_; }
  bool done() const noexcept { return ok_ && s_.empty(); }

  void literal(std::string_view lit) noexcept {
    if (ok_ && s_.starts_with(lit))
      s_.remove_prefix(lit.size());
    else
      ok_ = false;
  }
  /// Exactly `width` digits.
  int number(std::size_t width) noexcept {
    int v = 0;
    for (std::size_t i = 0; i < width; ++i) {
      if (!ok_ || s_.empty() || !digit(s_.front())) {
        ok_ = false;
        return 0;
      }
      v = v * 10 + (s_.front() - '0');
      s_.remove_prefix(1);
    }
    return v;
  }
  /// asctime's day: two digits, or a space and one digit.
  int padded_day() noexcept {
    if (ok_ && s_.starts_with(' ')) {
      s_.remove_prefix(1);
      return number(1);
    }
    return number(2);
  }
  /// The index of the name in `names` that the text starts with.
  template <std::size_t N> int name(const std::array<std::string_view, N>& names) noexcept {
    for (std::size_t i = 0; ok_ && i < N; ++i)
      if (s_.starts_with(names[i])) {
        s_.remove_prefix(names[i].size());
        return static_cast<int>(i);
      }
    ok_ = false;
    return 0;
  }

private:
  std::string_view s_;
  bool ok_ = true;
};

struct Civil {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

void time_of_day(Cursor& c, Civil& t) noexcept {
  t.hour = c.number(2);
  c.literal(":");
  t.minute = c.number(2);
  c.literal(":");
  t.second = c.number(2);
}

/// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<Civil> imf_fixdate(std::string_view s) noexcept {
  Cursor c(s);
  Civil t;
  c.name(kDays);
  c.literal(", ");
  t.day = c.number(2);
  c.literal(" ");
  t.month = c.name(kMonths) + 1;
  c.literal(" ");
  t.year = c.number(4);
  c.literal(" ");
  time_of_day(c, t);
  c.literal(" GMT");
  if (!c.done()) return std::nullopt;
  return t;
}

/// "Sunday, 06-Nov-94 08:49:37 GMT"; the century comes from `now_year`.
std::optional<Civil> rfc850_date(std::string_view s, int now_year) noexcept {
  Cursor c(s);
  Civil t;
  c.name(kLongDays);
  c.literal(", ");
  t.day = c.number(2);
  c.literal("-");
  t.month = c.name(kMonths) + 1;
  c.literal("-");
  const int yy = c.number(2);
  c.literal(" ");
  time_of_day(c, t);
  c.literal(" GMT");
  if (!c.done()) return std::nullopt;
  // RFC 9110 5.6.7: the latest year ending in yy that is not more than 50
  // years ahead.
  t.year = now_year - now_year % 100 + yy;
  if (t.year > now_year + 50)
    t.year -= 100;
  else if (t.year + 100 <= now_year + 50)
    t.year += 100;
  return t;
}

/// "Sun Nov  6 08:49:37 1994"
std::optional<Civil> asctime_date(std::string_view s) noexcept {
  Cursor c(s);
  Civil t;
  c.name(kDays);
  c.literal(" ");
  t.month = c.name(kMonths) + 1;
  c.literal(" ");
  t.day = c.padded_day();
  c.literal(" ");
  time_of_day(c, t);
  c.literal(" ");
  t.year = c.number(4);
  if (!c.done()) return std::nullopt;
  return t;
}

/// Seconds since the epoch, or nothing for an impossible date or time
/// (second 60 is a leap second: the grammar allows it).
std::optional<std::int64_t> epoch_seconds(const Civil& t) noexcept {
  using namespace std::chrono;
  const year_month_day ymd{year{t.year}, month{static_cast<unsigned>(t.month)},
                           day{static_cast<unsigned>(t.day)}};
  if (!ymd.ok() || t.hour > 23 || t.minute > 59 || t.second > 60) return std::nullopt;
  const std::int64_t days = sys_days(ymd).time_since_epoch().count();
  return days * 86'400 + t.hour * 3'600 + t.minute * 60 + t.second;
}

std::optional<nanoseconds> until(std::int64_t date_s, std::int64_t now_ns) {
  if (date_s > kMaxSeconds) return std::nullopt;    // after 2262: not a wait anyone can hold
  if (date_s < -kMaxSeconds) return nanoseconds(0); // before 1678: long past
  std::int64_t wait = 0;
  if (__builtin_sub_overflow(date_s * kNsPerSecond, now_ns, &wait)) return std::nullopt;
  return nanoseconds(wait > 0 ? wait : 0);
}

int year_of(std::int64_t unix_ns) {
  using namespace std::chrono;
  return static_cast<int>(
      year_month_day(floor<days>(sys_time<nanoseconds>(nanoseconds(unix_ns)))).year());
}

} // namespace

std::optional<nanoseconds> parse_retry_after(std::string_view value, std::int64_t now_unix_ns) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (digit(value.front())) { // delta-seconds = 1*DIGIT
    std::int64_t s = 0;
    for (const char c : value) {
      if (!digit(c)) return std::nullopt;
      s = s * 10 + (c - '0');
      if (s > kMaxSeconds) return std::nullopt;
    }
    return nanoseconds(s * kNsPerSecond);
  }
  std::optional<Civil> t = imf_fixdate(value);
  if (!t) t = rfc850_date(value, year_of(now_unix_ns));
  if (!t) t = asctime_date(value);
  if (!t) return std::nullopt;
  const std::optional<std::int64_t> s = epoch_seconds(*t);
  if (!s) return std::nullopt;
  return until(*s, now_unix_ns);
}

std::optional<nanoseconds> parse_retry_after_ms(std::string_view value) {
  value = trim(value);
  constexpr std::int64_t kNsPerMs = 1'000'000;
  constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max() / kNsPerMs;
  std::size_t i = 0;
  std::int64_t ms = 0;
  for (; i < value.size() && digit(value[i]); ++i) {
    ms = ms * 10 + (value[i] - '0');
    if (ms > kMaxMs) return std::nullopt;
  }
  if (i == 0) return std::nullopt; // empty, a sign, or a bare fraction
  std::int64_t frac_ns = 0;
  if (i < value.size()) {
    if (value[i] != '.' || i + 1 == value.size()) return std::nullopt;
    std::int64_t scale = kNsPerMs / 10;
    for (++i; i < value.size(); ++i, scale /= 10) {
      if (!digit(value[i])) return std::nullopt;
      frac_ns += (value[i] - '0') * scale; // digits past the nanosecond add nothing
    }
  }
  std::int64_t ns = 0;
  if (__builtin_add_overflow(ms * kNsPerMs, frac_ns, &ns)) return std::nullopt;
  return nanoseconds(ns);
}

} // namespace healthtable
