// The one-line summary of a table that the prober shows systemd as its
// STATUS= (systemctl status healthprobe): how many providers, which are
// down, how fresh the writes are.
#pragma once

#include <healthtable/table.hpp>

#include <cstdint>
#include <span>
#include <string>

namespace healthtable::prober {

/// "12 providers: 10 healthy, 1 down (groq), 1 cooling down; last write
/// 0.4s ago" (the age as healthctl prints it: format_age). A provider is *down* when forced down or
/// tripped (half-open included: the breaker has not closed yet), *cooling down* when its breaker is
/// closed but it is unavailable (a cooldown or a retry hint), *not probed yet* when nothing was
/// ever recorded for it, and *healthy* otherwise (a forced-up provider too). At most three down
/// providers are named ("down (a, b, c, +2 more)"), so the line stays one short line. The last
/// write is the newest `last_check` of any provider. Pure: the clock is passed in.
std::string status_line(std::span<const ProviderState> providers, std::int64_t now_mono_ns,
                        std::int64_t now_unix_ns);

} // namespace healthtable::prober
