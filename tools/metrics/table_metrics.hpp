// The series a health table itself holds, the same whoever reads it:
// healthprobe's /metrics and `healthctl dump --format prometheus` both call
// add_table_metrics(), so the two never name or compute a series
// differently. docs/metrics.md lists every one.
#pragma once

#include "exposition.hpp"

#include <healthtable/clock.hpp>
#include <healthtable/table.hpp>

#include <array>
#include <optional>
#include <span>
#include <string_view>

namespace healthtable::metrics {

/// The breaker states of docs/breaker.md, as the `state` label spells them.
inline constexpr std::array<std::string_view, 5> kStates = {"closed", "cooling", "open",
                                                            "half_open", "recovering"};

/// The state `p` is in at `now_mono_ns` (one of kStates).
std::string_view breaker_state(const ProviderState& p, std::int64_t now_mono_ns) noexcept;

/// What the reader knows of the writer beyond the header: whether a process
/// holds the writer lock now (healthctl asks the kernel; the prober is the
/// writer). Nothing: the series is left out.
struct WriterFacts {
  std::optional<bool> attached;
};

/// Adds the table's families (table-wide, writer, and per provider) for
/// `providers` as read at `now`; every sample is labelled table="SEGMENT",
/// per-provider ones also provider="NAME".
void add_table_metrics(Exposition& out, const TableInfo& info,
                       std::span<const ProviderState> providers, const Instant& now,
                       const WriterFacts& writer = {});

} // namespace healthtable::metrics
