#include "policy.hpp"

#include <healthtable/error.hpp>
#include <healthtable/names.hpp>

#include <algorithm>
#include <string>

namespace healthtable {

namespace pw = policy_word;

namespace {

std::uint64_t ns_word(std::chrono::nanoseconds d) noexcept {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0));
}

/// A stored duration, read as the signed count it was written as and
/// clamped into [0, kMaxBackoff]: a negative one (a corrupt image) is no
/// wait at all, not the longest.
std::chrono::nanoseconds ns_of(std::uint64_t w) noexcept {
  return std::chrono::nanoseconds(
      std::clamp<std::int64_t>(static_cast<std::int64_t>(w), 0, kMaxBackoff.count()));
}

void check_duration(std::chrono::nanoseconds d, const char* field) {
  if (d.count() < 0)
    throw Error(Errc::invalid_argument,
                std::string(field) + " must not be negative, got " + format_duration(d));
  if (d > kMaxBackoff)
    throw Error(Errc::invalid_argument,
                std::string(field) + " must be at most " + format_duration(kMaxBackoff) +
                    ", got " + format_duration(d) +
                    "; to keep a provider down indefinitely use an override ('healthctl set ... "
                    "down')");
}

} // namespace

void validate_policy(const Policy& p) {
  if (p.failure_threshold < 1)
    throw Error(Errc::invalid_argument,
                "failure_threshold must be at least 1, got " + std::to_string(p.failure_threshold));
  if (p.recover_after < 1)
    throw Error(Errc::invalid_argument,
                "recover_after must be at least 1, got " + std::to_string(p.recover_after));
  if (p.jitter_permille > 1000)
    throw Error(Errc::invalid_argument, "jitter must be at most 1000 permille (100%), got " +
                                            std::to_string(p.jitter_permille));
  check_duration(p.backoff, "backoff");
  check_duration(p.max_backoff, "max_backoff");
  check_duration(p.trip_memory, "trip_memory");
  check_duration(p.ramp, "ramp");
  check_duration(p.cooldown, "cooldown");
  check_duration(p.max_hint, "max_hint");
}

namespace detail {

void encode_policy(const Policy& p, std::uint64_t* w) noexcept {
  std::fill(w, w + pw::kCount, 0);
  w[pw::kThresholds] = p.failure_threshold | (std::uint64_t{p.recover_after} << 32);
  w[pw::kMasks] = p.counts | (std::uint64_t{p.cooldowns} << 32) |
                  (p.probe_clears_reports ? kProbeClearsReports : 0);
  w[pw::kBackoff] = ns_word(p.backoff);
  w[pw::kMaxBackoff] = ns_word(p.max_backoff);
  w[pw::kCooldown] = ns_word(p.cooldown);
  w[pw::kMaxHint] = ns_word(p.max_hint);
  w[pw::kTripMemory] = ns_word(p.trip_memory);
  w[pw::kRamp] = ns_word(p.ramp);
  w[pw::kJitter] = p.jitter_permille;
}

Policy decode_policy(const std::uint64_t* w) noexcept {
  Policy p;
  p.failure_threshold = std::max<std::uint32_t>(static_cast<std::uint32_t>(w[pw::kThresholds]), 1);
  p.recover_after = std::max<std::uint32_t>(static_cast<std::uint32_t>(w[pw::kThresholds] >> 32), 1);
  p.counts = static_cast<ClassSet>(w[pw::kMasks]);
  p.cooldowns = static_cast<ClassSet>(w[pw::kMasks] >> 32);
  p.probe_clears_reports = (w[pw::kMasks] & kProbeClearsReports) != 0;
  p.backoff = ns_of(w[pw::kBackoff]);
  p.max_backoff = ns_of(w[pw::kMaxBackoff]);
  p.cooldown = ns_of(w[pw::kCooldown]);
  p.max_hint = ns_of(w[pw::kMaxHint]);
  p.trip_memory = ns_of(w[pw::kTripMemory]);
  p.ramp = ns_of(w[pw::kRamp]);
  p.jitter_permille = static_cast<std::uint32_t>(std::min<std::uint64_t>(w[pw::kJitter], 1000));
  return p;
}

} // namespace detail
} // namespace healthtable
