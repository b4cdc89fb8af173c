#include <healthtable/outcome_text.hpp>

#include <healthtable/names.hpp>

#include <algorithm>

namespace healthtable {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kMillisecond = 1'000'000;

/// A wait as people read it: whole seconds from a minute up, milliseconds
/// below, rounded up so "unavailable for" never promises less.
std::string wait_text(std::int64_t ns) {
  if (ns <= 0) return "0s";
  const std::int64_t unit = ns >= 60 * kSecond ? kSecond : kMillisecond;
  const std::int64_t rounded = ns % unit == 0 ? ns : (ns / unit + 1) * unit;
  return format_duration(std::chrono::nanoseconds(rounded));
}

std::string count_failures(std::uint32_t n) {
  return std::to_string(n) + (n == 1 ? " consecutive failure" : " consecutive failures");
}

/// A failure of this class, in words.
std::string kind(FailureClass c) {
  switch (c) {
  case FailureClass::timeout: return "timeout";
  case FailureClass::connect: return "connect error";
  case FailureClass::server: return "server error";
  case FailureClass::rate_limited: return "rate limited";
  case FailureClass::auth: return "auth error";
  case FailureClass::client: return "client error";
  case FailureClass::none:
  case FailureClass::other: break;
  }
  return "failure";
}

bool in(ClassSet set, FailureClass c) noexcept { return (set & class_bit(c)) != 0; }

std::string describe_success(const ProviderState& s, Transition t, const Policy& policy,
                             std::int64_t left) {
  const std::string hint =
      left > 0 ? "; unavailable for " + wait_text(left) + " (retry hint)" : std::string();
  if (t == Transition::recovered) return "recovered; healthy again" + hint;
  if (!s.healthy) {
    if (s.success_run == 0) return "success recorded; still unhealthy";
    return "success " + std::to_string(s.success_run) + " of " +
           std::to_string(policy.recover_after) + " recorded; still unhealthy";
  }
  return "healthy (success recorded)" + hint;
}

std::string describe_failure(const ProviderState& s, Transition t, const Policy& policy,
                             FailureClass cls, std::int64_t left) {
  if (t == Transition::tripped || t == Transition::rearmed) {
    const std::int64_t window = s.window_ns;
    std::string wait = "unhealthy for " + wait_text(std::max(window, left));
    if (left > window) wait += " (retry hint)";
    if (t == Transition::tripped)
      return "tripped (" + count_failures(s.consecutive_failures) + "); " + wait;
    return "still unhealthy (" + count_failures(s.consecutive_failures) + "); window re-armed, " +
           wait;
  }
  std::string what;
  if (in(policy.cooldowns, cls))
    what = kind(cls) + " (cooldown)";
  else if (!in(policy.counts, cls))
    what = kind(cls) + " (" + std::string(class_name(cls)) + ", not counted)";
  else
    what = (cls == FailureClass::other ? "" : kind(cls) + ", ") + "failure " +
           std::to_string(s.consecutive_failures) + " of " +
           std::to_string(policy.failure_threshold) + " recorded";
  if (!s.healthy)
    return what + "; still unhealthy" +
           (left > 0 ? " for " + wait_text(left) : std::string(" (half-open)"));
  if (left > 0)
    return what + (t == Transition::cooldown ? "; unavailable for " : "; still unavailable for ") +
           wait_text(left);
  return what + "; still healthy";
}

} // namespace

FailureClass parse_failure_class(std::string_view name, std::string_view what) {
  std::string valid;
  for (std::size_t c = 1; c < kFailureClasses; ++c) {
    const auto cls = static_cast<FailureClass>(c);
    if (class_name(cls) == name) return cls;
    valid += (valid.empty() ? "" : ", ") + std::string(class_name(cls));
  }
  const std::string shown = sanitize_reason(name, 40);
  throw Error(Errc::invalid_argument,
              std::string(what) + " '" + shown + "' is not a failure class" +
                  (name == "none" ? " (a success is recorded as success)" : "") + "; use one of " +
                  valid);
}

std::string describe_outcome(const ProviderState& after, Transition transition,
                             const Policy& policy, FailureClass cls, std::int64_t now_mono_ns) {
  const std::int64_t left =
      after.unhealthy_until_mono_ns == 0 ? 0 : after.unhealthy_until_mono_ns - now_mono_ns;
  std::string line =
      after.name + ": " +
      (cls == FailureClass::none ? describe_success(after, transition, policy, left)
                                 : describe_failure(after, transition, policy, cls, left));
  if (after.override_mode != Override::automatic)
    line += "; override '" + std::string(override_name(after.override_mode)) + "' still decides";
  return line;
}

Recorded record_outcome(Writer& writer, std::string_view provider, const Outcome& outcome,
                        Instant now) {
  Recorded r;
  r.transition = writer.record(provider, outcome, now);
  r.policy = writer.policy(provider);
  if (auto state = writer.table().get_state(provider)) r.state = std::move(*state);
  r.state.name = std::string(provider);
  r.reply = describe_outcome(r.state, r.transition, r.policy, outcome.failure_class, now.mono_ns);
  return r;
}

} // namespace healthtable
