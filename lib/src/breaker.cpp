#include "breaker.hpp"

#include <algorithm>
#include <climits>

namespace healthtable::detail {

namespace rw = record_word;

namespace {

std::uint32_t inc(std::uint32_t n) noexcept { return n == UINT32_MAX ? n : n + 1; }

bool in(ClassSet set, FailureClass c) noexcept { return (set & class_bit(c)) != 0; }

} // namespace

std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

std::int64_t window_for(const Policy& p, std::uint32_t trips, std::uint64_t random) noexcept {
  std::int64_t w = p.backoff.count();
  const std::int64_t cap = p.max_backoff.count();
  if (cap > w)
    for (std::uint32_t k = 1; k < trips && w > 0 && w < cap; ++k)
      w = w > cap / 2 ? cap : 2 * w;
  if (p.jitter_permille > 0 && w > 0) {
    const std::int64_t j = p.jitter_permille; // <= 1000 (decode_policy)
    const std::int64_t permille = static_cast<std::int64_t>(random % (2 * j + 1)) - j;
    w += w / 1000 * permille; // w <= 365 d, so no overflow
  }
  return std::max<std::int64_t>(w, 0);
}

Step apply_outcome(RecordValue& v, const Policy& p, const Outcome& o, std::int64_t host_now,
                   std::int64_t unix_now, std::uint64_t random) noexcept {
  Step step;
  // Another host's success says nothing about this host's connectivity:
  // a peer may lengthen a deadline, never close or shorten anything.
  if (o.source == Source::peer && o.failure_class == FailureClass::none) return step;
  const auto to_unix = [&](std::int64_t mono) {
    return mono == 0 ? 0 : saturating_add(unix_now, mono - host_now);
  };
  std::int64_t deadline = v.time(rw::kUnhealthyUntilMono);
  std::int64_t hint = v.time(rw::kHintUntilMono);
  if (hint <= host_now) hint = 0; // served its time
  if (o.source == Source::peer) {
    // A peer's fact (docs/fleet.md) is a deadline only: it counts nothing,
    // interrupts no local rise and moves no window; the local probe alone
    // decides this host's connectivity. One that sets nothing later than
    // what stands writes nothing.
    if (!o.retry_after || o.retry_after->count() <= 0) return step;
    const std::int64_t ns = std::min<std::int64_t>(o.retry_after->count(), p.max_hint.count());
    const std::int64_t peer_hint = saturating_add(host_now, ns);
    if (peer_hint <= std::max(hint, deadline)) return step;
    v.set_time(rw::kLastCheckUnix, unix_now);
    v.set_source(o.source);
    v.set_reason(o.reason);
    v.set_class(o.failure_class <= FailureClass::other ? o.failure_class : FailureClass::other);
    step.hinted = true;
    step.transition = Transition::cooldown;
    v.set_time(rw::kUnhealthyUntilMono, peer_hint);
    v.set_time(rw::kUnhealthyUntilUnix, to_unix(peer_hint));
    v.set_time(rw::kHintUntilMono, peer_hint);
    v.set_time(rw::kHintUntilUnix, to_unix(peer_hint));
    return step;
  }
  v.set_time(rw::kLastCheckUnix, unix_now);
  v.set_source(o.source);

  if (o.failure_class == FailureClass::none) {
    ++v.at(rw::kSuccesses);
    if (o.source == Source::probe) {
      // Worker failures since the last probe outweigh the probe's success
      // unless configured: the probe may reach a health endpoint that works
      // while real requests fail. The next probe decides again.
      const std::uint64_t reported = v.at(rw::kReportFailures);
      v.at(rw::kReportFailures) = 0;
      if (reported != 0 && !p.probe_clears_reports) return step;
    }
    const bool was_healthy = v.healthy();
    const std::uint32_t run = inc(v.success_run());
    v.set_runs(v.trips(), run);
    if (!was_healthy && run < p.recover_after) return step; // rising, still half-open
    v.set_healthy(true);
    v.set_failures(0);
    v.clear_reason();
    v.set_class(FailureClass::none);
    v.set_time(rw::kWindow, 0);
    v.at(rw::kReportFailures) = 0;
    // A success closes the breaker, but a retry hint still stands.
    v.set_time(rw::kUnhealthyUntilMono, hint);
    v.set_time(rw::kUnhealthyUntilUnix, hint == 0 ? 0 : v.time(rw::kHintUntilUnix));
    if (hint == 0) {
      v.set_time(rw::kHintUntilMono, 0);
      v.set_time(rw::kHintUntilUnix, 0);
    }
    if (!was_healthy) {
      ++v.at(rw::kTransitions);
      v.set_time(rw::kHealthySinceMono, host_now);
      step.transition = Transition::recovered;
    }
    return step;
  }

  const FailureClass cls =
      o.failure_class <= FailureClass::other ? o.failure_class : FailureClass::other;
  ++v.at(rw::kFailures);
  ++v.at(rw::kClassFailures + static_cast<std::size_t>(cls));
  v.set_reason(o.reason);
  v.set_class(cls);
  v.set_runs(v.trips(), 0);
  if (o.source == Source::report) v.at(rw::kReportFailures) = v.at(rw::kReportFailures) + 1;
  const bool cools = in(p.cooldowns, cls);
  const bool counts = !cools && in(p.counts, cls);

  // The hint: the outcome's own, else a cooldown class's default.
  std::int64_t hint_ns = -1;
  if (o.retry_after)
    hint_ns = std::clamp<std::int64_t>(o.retry_after->count(), 0, p.max_hint.count());
  else if (cools)
    hint_ns = p.cooldown.count();
  if (hint_ns > 0) hint = std::max(hint, saturating_add(host_now, hint_ns));

  if (counts) {
    const std::uint32_t failures = inc(v.consecutive_failures());
    v.set_failures(failures);
    if (v.healthy()) {
      if (failures >= p.failure_threshold) {
        std::uint32_t trips = v.trips();
        const std::int64_t since = v.time(rw::kHealthySinceMono);
        if (since != 0 && host_now - since >= p.trip_memory.count()) trips = 0; // a fresh start
        trips = inc(trips);
        const std::int64_t window = window_for(p, trips, random);
        v.set_healthy(false);
        ++v.at(rw::kTransitions);
        v.set_runs(trips, 0);
        v.set_time(rw::kWindow, window);
        deadline = std::max(deadline, saturating_add(host_now, window));
        step.transition = Transition::tripped;
      }
    } else {
      // Failing after the window (half-open) is a failed trial: one more
      // trip in a row, and a longer window. Failing inside it re-arms the
      // window from now at the same length.
      std::uint32_t trips = v.trips();
      if (deadline <= host_now) trips = inc(trips);
      const std::int64_t window = window_for(p, trips, random);
      v.set_runs(trips, 0);
      v.set_time(rw::kWindow, window);
      deadline = std::max(deadline, saturating_add(host_now, window));
      step.transition = Transition::rearmed;
    }
  }
  if (hint > deadline) {
    deadline = hint;
    step.hinted = true;
    if (step.transition == Transition::none) step.transition = Transition::cooldown;
  }
  if (v.healthy() && deadline <= host_now) deadline = 0; // nothing left to wait for
  v.set_time(rw::kUnhealthyUntilMono, deadline);
  v.set_time(rw::kUnhealthyUntilUnix, to_unix(deadline));
  v.set_time(rw::kHintUntilMono, hint);
  v.set_time(rw::kHintUntilUnix, to_unix(hint));
  return step;
}

} // namespace healthtable::detail
