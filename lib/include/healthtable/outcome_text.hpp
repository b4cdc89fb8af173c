// `record`, applied and described in one place: healthctl (writing the
// table itself) and the prober (asked over its control socket) feed the
// same Outcome through the breaker and answer with the same line.
#pragma once

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace healthtable {

/// A failure class by the name class_name() gives it ("timeout",
/// "rate_limited", ...). Throws Error(invalid_argument) listing the valid
/// names; "none" is refused too, since a success is recorded as a success.
/// `what` starts the message ("--class", "record: class=").
FailureClass parse_failure_class(std::string_view name, std::string_view what = "class");

/// What one outcome did, as healthctl prints it and the prober replies:
///   groq: failure 1 of 2 recorded; still healthy
///   groq: tripped (2 consecutive failures); unhealthy for 1m
///   groq: rate limited (cooldown); unavailable for 30s
///   groq: client error (client, not counted); still healthy
/// `after` is the provider's state once `transition` happened, `policy` its
/// own, `cls` the outcome's class (none: a success) and `now_mono_ns` the
/// moment the outcome was recorded at, on this process's CLOCK_MONOTONIC, so
/// a deadline the outcome set reads back exactly ("30s", not "29.99s").
std::string describe_outcome(const ProviderState& after, Transition transition,
                             const Policy& policy, FailureClass cls, std::int64_t now_mono_ns);

/// What record_outcome() did.
struct Recorded {
  Transition transition = Transition::none;
  ProviderState state; ///< after the outcome
  Policy policy;       ///< the provider's
  std::string reply;   ///< describe_outcome()
};

/// writer.record(provider, outcome, now), then describes it.
Recorded record_outcome(Writer& writer, std::string_view provider, const Outcome& outcome,
                        Instant now = Instant::now());

} // namespace healthtable
