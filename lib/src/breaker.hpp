// detail: the circuit breaker's state machine, one outcome at a time, as a
// pure function of a record, its policy and the time. The writer reads the
// record, runs this, and publishes the result; nothing here touches shared
// memory, so the tests drive it through the Writer with a fake clock.
//
// States (docs/breaker.md has the diagram):
//   closed     healthy flag set; failures of counting classes add up
//   open       tripped, inside the window: unavailable
//   half-open  tripped, the window has passed: available again; a success
//              counts toward recover_after, a failure re-arms a longer window
// Beside the breaker, a retry hint (Retry-After, or a cooldown class such as
// rate_limited) sets a deadline of its own, which nothing but time shortens:
// readers obey the later of the two.
#pragma once

#include "record.hpp"

#include <healthtable/writer.hpp>

#include <cstdint>

namespace healthtable::detail {

struct Step {
  Transition transition = Transition::none;
  /// A hint or cooldown moved the readers' deadline later (it may come with
  /// a trip or re-arm too).
  bool hinted = false;
};

/// The window after `trips` trips in a row: backoff, doubled per trip
/// after the first up to max_backoff (when that is longer), then moved by
/// the jitter, uniformly, from `random`.
std::int64_t window_for(const Policy& p, std::uint32_t trips, std::uint64_t random) noexcept;

/// Applies one outcome to `v`. `o.reason` must already be sanitized;
/// `host_now` is the host's CLOCK_MONOTONIC, `unix_now` the wall clock.
Step apply_outcome(RecordValue& v, const Policy& p, const Outcome& o, std::int64_t host_now,
                   std::int64_t unix_now, std::uint64_t random) noexcept;

std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept;

} // namespace healthtable::detail
