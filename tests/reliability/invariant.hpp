// The torn-read invariant shared by the threaded (TSan) and the crash tests.
//
// The writer stamps every outcome of provider P with a per-provider counter
// n, and makes the rest of the record a function of n:
//   last_check_unix_ns == kBaseUnix + n      and   successes + failures == n
//   last_error (when unhealthy) == "n=<n> f=<failures> c=<consecutive>
//                                   t=<transitions> " + (n % 50) x 'x'
//   unhealthy_until_unix_ns - unhealthy_until_mono_ns == kBaseUnix - kBaseMono
// A reader that mixes two writes (fields from one, others or part of the
// reason from another) breaks at least one of these equalities; a record read
// as one unit never does. The padding makes the reason's length change on
// every write, so a torn length/bytes pair is caught too.
#pragma once

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

namespace healthtable::test {

inline constexpr std::int64_t kBaseMono = 5'000'000'000'000'000LL;
inline constexpr std::int64_t kBaseUnix = 1'800'000'000'000'000'000LL;

inline Instant instant_for(std::uint64_t n) {
  return Instant{kBaseMono + static_cast<std::int64_t>(n),
                 kBaseUnix + static_cast<std::int64_t>(n)};
}

/// The reason the writer gives for its n-th outcome, which will leave the
/// record with `failures` total, `consecutive` consecutive failures and
/// `transitions` flips.
inline std::string reason_for(std::uint64_t n, std::uint64_t failures, std::uint32_t consecutive,
                              std::uint64_t transitions) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "n=%llu f=%llu c=%u t=%llu ", static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(failures), consecutive,
                static_cast<unsigned long long>(transitions));
  return std::string(buf) + std::string(n % 50, 'x');
}

/// One outcome for provider `name` whose record currently is `cur`: a
/// failure or a success chosen by `fail`, following the invariant. Returns
/// the new n.
inline std::uint64_t write_outcome(Writer& w, const std::string& name, const ProviderState& cur,
                                   bool fail) {
  const std::uint64_t n = cur.successes + cur.failures + 1;
  if (!fail) {
    w.mark_healthy(name, instant_for(n));
    return n;
  }
  // Predict what mark_unhealthy will store so the reason can name it.
  const std::uint32_t threshold = w.policy().failure_threshold;
  const std::uint32_t consecutive = cur.consecutive_failures + 1;
  std::uint64_t transitions = cur.transitions;
  if (cur.healthy && consecutive >= threshold) ++transitions;
  w.mark_unhealthy(name, reason_for(n, cur.failures + 1, consecutive, transitions), instant_for(n));
  return n;
}

/// Empty if `s` satisfies the invariant, else what is wrong.
inline std::string check_invariant(const ProviderState& s) {
  const std::uint64_t n = s.successes + s.failures;
  if (n == 0) {
    if (s.last_check_unix_ns != 0 || s.last_error || !s.healthy || s.consecutive_failures != 0)
      return "zero record with data";
    return {};
  }
  if (s.last_check_unix_ns != kBaseUnix + static_cast<std::int64_t>(n))
    return "last_check " + std::to_string(s.last_check_unix_ns - kBaseUnix) + " != n " +
           std::to_string(n);
  if (s.consecutive_failures == 0) {
    if (s.last_error) return "success with a last_error";
    if (!s.healthy) return "unhealthy with 0 consecutive failures";
    if (s.unhealthy_until_unix_ns != 0 || s.unhealthy_until_mono_ns != 0)
      return "success with a window";
    return {};
  }
  if (!s.last_error) return "failure without last_error";
  const std::string want = reason_for(n, s.failures, s.consecutive_failures, s.transitions);
  if (*s.last_error != want) return "reason '" + *s.last_error + "' != '" + want + "'";
  if (!s.healthy && s.unhealthy_until_unix_ns - s.unhealthy_until_mono_ns != kBaseUnix - kBaseMono)
    return "window clocks disagree";
  if (s.healthy && s.unhealthy_until_unix_ns != 0) return "healthy with a window";
  return {};
}

} // namespace healthtable::test
