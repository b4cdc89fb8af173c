// What an event of the ring says, built in one place: `healthctl events`
// and `watch` print these lines and objects, and the prober's logs and
// metrics are to use the same, so an operator reads one wording everywhere.
#pragma once

#include <healthtable/table.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace healthtable {

/// "2026-12-03T07:10:02.123Z": UTC, ISO 8601, to the millisecond.
std::string format_event_time(std::int64_t unix_ns);

/// The event as one line, its time first:
///   "2026-12-03T07:10:02.123Z groq tripped (healthy -> unhealthy) after 2
///    consecutive failures, server from report: http 503; until 07:11:02Z"
///   "... groq forced down by uid 1000 (alice) for 2h: maintenance"
/// Names and reasons read from shared memory are made safe for a terminal.
std::string event_text(const EventRecord& e);

/// A JSON value without a JSON library in the public API: null, a bool, a
/// signed or unsigned integer, a number, or a string.
using EventValue =
    std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string>;

struct EventField {
  std::string_view key; ///< a literal: stable across releases
  EventValue value;
};

/// The event as named fields, in the order a JSON object should show them:
/// number, time (Unix seconds), kind, provider (null for the table), from
/// and to (state or override names, null when the kind has none), class,
/// source, until (Unix seconds, null: none), what count means for the kind
/// (consecutive_failures, consecutive_successes, slot, capacity), expired
/// (override: true when it lapsed rather than being set), overrides (reset:
/// "cleared" or "kept"), uid and user (null: nobody said), reason (null:
/// none), and text (event_text()).
std::vector<EventField> event_fields(const EventRecord& e);

} // namespace healthtable
