// The provider table `dump` prints and `watch` draws, built once so the two
// never disagree: aligned columns, one line per provider, and the lines that
// say who set each override, until when and why.
#pragma once

#include <healthtable/clock.hpp>
#include <healthtable/table.hpp>

#include <string>
#include <vector>

namespace healthctl {

/// A header row and one row per provider, columns aligned; no newlines.
std::vector<std::string> provider_rows(const std::vector<healthtable::ProviderState>& providers,
                                       const healthtable::Instant& now);

/// "override groq: forced_down by uid 1000 (alice) at ..., until ...;
/// reason: maintenance", one per provider with an override: too wide for a
/// column.
std::vector<std::string> override_lines(const std::vector<healthtable::ProviderState>& providers);

/// "57s" left in the window, "half-open" once it has passed, "12s
/// (cooldown)" for a healthy provider waiting out a rate limit or retry
/// hint, "-" when there is nothing to wait for.
std::string window_left(const healthtable::ProviderState& p, std::int64_t now_mono_ns);

} // namespace healthctl
