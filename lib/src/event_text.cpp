#include <healthtable/event_text.hpp>

#include <healthtable/home.hpp>
#include <healthtable/names.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace healthtable {

namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

/// Floor division, so times before 1970 still format.
std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  return a / b - (a % b != 0 && (a < 0) != (b < 0) ? 1 : 0);
}

bool utc(std::int64_t unix_ns, std::tm& tm) noexcept {
  const auto t = static_cast<std::time_t>(floor_div(unix_ns, kSecond));
  return ::gmtime_r(&t, &tm) != nullptr;
}

/// A deadline beside the event's own time: "07:11:02Z" on the same UTC day,
/// the whole date otherwise.
std::string format_until(std::int64_t until_ns, std::int64_t event_ns) {
  std::tm u{}, e{};
  if (!utc(until_ns, u)) return "?";
  const bool same_day =
      utc(event_ns, e) && u.tm_year == e.tm_year && u.tm_yday == e.tm_yday;
  char buf[40];
  if (std::strftime(buf, sizeof buf, same_day ? "%H:%M:%SZ" : "%Y-%m-%dT%H:%M:%SZ", &u) == 0)
    return "?";
  return buf;
}

std::string safe(std::string_view text) { return sanitize_reason(text, text.size()); }

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string_view state_name(std::uint8_t healthy) noexcept {
  return healthy != 0 ? "healthy" : "unhealthy";
}

/// An override byte as stored; a hostile image's 3 reads as "auto".
Override override_of(std::uint8_t b) noexcept {
  return b <= static_cast<std::uint8_t>(Override::forced_up) ? static_cast<Override>(b)
                                                             : Override::automatic;
}

/// The ring does not keep the mode an override replaced: a set stores 0 as
/// `from`, an expiry the mode that lapsed (and automatic as `to`).
bool override_expired(const EventRecord& e) noexcept { return e.from != 0 && e.to == 0; }

/// ", server from report: http 503".
std::string cause(const EventRecord& e) {
  std::string s = std::string(class_name(e.failure_class)) + " from " +
                  std::string(source_name(e.source));
  if (!e.reason.empty()) s += ": " + safe(e.reason);
  return s;
}

std::string by_whom(const EventRecord& e) {
  return e.uid ? " by " + safe(describe_uid(*e.uid)) : std::string();
}

std::string body(const EventRecord& e) {
  const std::string who = e.provider.empty() ? "table" : safe(e.provider);
  const std::string until = e.until_unix_ns != 0
                                ? "; until " + format_until(e.until_unix_ns, e.unix_ns)
                                : std::string();
  switch (e.kind) {
  case EventKind::tripped:
    return who + " tripped (healthy -> unhealthy) after " +
           plural(e.count, "consecutive failure", "consecutive failures") + ", " + cause(e) +
           until;
  case EventKind::rearmed:
    return who + " rearmed (still unhealthy) after " +
           plural(e.count, "consecutive failure", "consecutive failures") + ", " + cause(e) +
           until;
  case EventKind::recovered:
    return who + " recovered (unhealthy -> healthy) after " +
           plural(e.count, "consecutive success", "consecutive successes") + " from " +
           std::string(source_name(e.source));
  case EventKind::cooldown: {
    std::string s = who + " cooldown";
    if (e.until_unix_ns != 0) {
      s += " until " + format_until(e.until_unix_ns, e.unix_ns);
      if (e.until_unix_ns > e.unix_ns)
        s += " (" + format_duration(std::chrono::nanoseconds(
                        (e.until_unix_ns - e.unix_ns) / 1'000'000 * 1'000'000)) +
             (e.to == 0 ? ", while unhealthy)" : ")");
    }
    return s + ": " + cause(e);
  }
  case EventKind::override: {
    if (override_expired(e))
      return who + " override expired (was " + std::string(override_name(override_of(e.from))) +
             "); the breaker decides";
    const std::string note = e.reason.empty() ? std::string() : ": " + safe(e.reason);
    const Override mode = override_of(e.to);
    if (mode == Override::automatic)
      return who + " override cleared" + by_whom(e) + note + "; the breaker decides";
    std::string s = who + (mode == Override::forced_down ? " forced down" : " forced up") +
                    by_whom(e);
    if (e.until_unix_ns > e.unix_ns)
      s += " for " + format_duration(std::chrono::nanoseconds(e.until_unix_ns - e.unix_ns));
    else
      s += " until set back";
    return s + note;
  }
  case EventKind::registered: return who + " registered in slot " + std::to_string(e.count);
  case EventKind::forgotten:
    return who + " forgotten; slot " + std::to_string(e.count) + " freed";
  case EventKind::reset: {
    const bool cleared = e.to != 0;
    if (e.provider.empty())
      return std::string("table reset: every provider back to the zero state; overrides ") +
             (cleared ? "cleared" : "kept");
    return who + " reset to the zero state; override " + (cleared ? "cleared" : "kept");
  }
  case EventKind::grown: return who + " grown to " + plural(e.count, "slot", "slots");
  case EventKind::retired: return who + " retired (destroyed or replaced)";
  case EventKind::none: break;
  }
  return who + " " + std::string(event_name(e.kind)) + " event";
}

double seconds(std::int64_t unix_ns) noexcept { return static_cast<double>(unix_ns) / 1e9; }

EventValue text_or_null(std::string_view s) {
  return s.empty() ? EventValue{} : EventValue{safe(s)};
}

} // namespace

std::string format_event_time(std::int64_t unix_ns) {
  std::tm tm{};
  char buf[40];
  if (!utc(unix_ns, tm) || std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    return "?";
  const std::int64_t ms = (unix_ns - floor_div(unix_ns, kSecond) * kSecond) / 1'000'000;
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03lldZ", buf, static_cast<long long>(ms));
  return out;
}

std::string event_text(const EventRecord& e) { return format_event_time(e.unix_ns) + " " + body(e); }

std::vector<EventField> event_fields(const EventRecord& e) {
  std::vector<EventField> f;
  f.push_back({"number", e.number});
  f.push_back({"time", seconds(e.unix_ns)});
  f.push_back({"kind", std::string(event_name(e.kind))});
  f.push_back({"provider", text_or_null(e.provider)});
  EventValue from, to, cls;
  switch (e.kind) {
  case EventKind::tripped:
  case EventKind::rearmed:
  case EventKind::recovered:
  case EventKind::cooldown:
    from = std::string(state_name(e.from));
    to = std::string(state_name(e.to));
    break;
  case EventKind::override:
    if (override_expired(e)) from = std::string(override_name(override_of(e.from)));
    to = std::string(override_name(override_of(e.to)));
    break;
  default: break;
  }
  if (e.failure_class != FailureClass::none) cls = std::string(class_name(e.failure_class));
  f.push_back({"from", from});
  f.push_back({"to", to});
  f.push_back({"class", cls});
  f.push_back({"source", std::string(source_name(e.source))});
  f.push_back({"until", e.until_unix_ns != 0 ? EventValue{seconds(e.until_unix_ns)} : EventValue{}});
  switch (e.kind) {
  case EventKind::tripped:
  case EventKind::rearmed:
  case EventKind::cooldown: f.push_back({"consecutive_failures", e.count}); break;
  case EventKind::recovered: f.push_back({"consecutive_successes", e.count}); break;
  case EventKind::registered:
  case EventKind::forgotten: f.push_back({"slot", e.count}); break;
  case EventKind::grown: f.push_back({"capacity", e.count}); break;
  case EventKind::override: f.push_back({"expired", override_expired(e)}); break;
  case EventKind::reset: f.push_back({"overrides", std::string(e.to != 0 ? "cleared" : "kept")}); break;
  default: break;
  }
  if (e.uid) {
    f.push_back({"uid", std::uint64_t{*e.uid}});
    f.push_back({"user", text_or_null(user_of_uid(*e.uid))});
  } else {
    f.push_back({"uid", EventValue{}});
    f.push_back({"user", EventValue{}});
  }
  f.push_back({"reason", text_or_null(e.reason)});
  f.push_back({"text", event_text(e)});
  return f;
}

} // namespace healthtable
