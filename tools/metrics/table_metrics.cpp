#include "table_metrics.hpp"

#include <healthtable/layout.hpp>

#include <algorithm>
#include <limits>
#include <string>

namespace healthtable::metrics {

namespace {

double seconds(std::int64_t ns) { return static_cast<double>(ns) / 1e9; }

/// The override label values: the library's names ("auto", "down", "up").
constexpr std::array<Override, 3> kOverrides = {Override::automatic, Override::forced_down,
                                                Override::forced_up};

} // namespace

std::string_view breaker_state(const ProviderState& p, std::int64_t now_mono_ns) noexcept {
  const bool waiting = p.unhealthy_until_mono_ns > now_mono_ns;
  if (p.healthy) return waiting ? "cooling" : "closed";
  if (waiting) return "open";
  return p.success_run > 0 ? "recovering" : "half_open";
}

void add_table_metrics(Exposition& out, const TableInfo& info,
                       std::span<const ProviderState> providers, const Instant& now,
                       const WriterFacts& writer) {
  const Labels table{{"table", info.segment}};

  out.family("healthtable_table_slots", Type::gauge, "Provider slots the table has.")
      .add(table, info.capacity);
  out.family("healthtable_table_slots_used", Type::gauge, "Provider slots in use.")
      .add(table, info.used);
  out.family("healthtable_table_updates_total", Type::counter,
             "Records the writer has published since the table was created.")
      .add(table, static_cast<double>(info.updates));
  out.family("healthtable_table_events_total", Type::counter,
             "Events published to the table's event ring since it was created.")
      .add(table, static_cast<double>(info.events));
  out.family("healthtable_reports_dropped_total", Type::counter,
             "Worker reports dropped before they reached the writer.")
      .add(table, static_cast<double>(info.reports_dropped));
  out.family("healthtable_reports_refused_total", Type::counter,
             "Worker reports the writer refused.")
      .add(table, static_cast<double>(info.reports_refused));

  // Never beaten: +Inf, so "older than N seconds" alerts fire on a table
  // no writer ever served.
  const double age = info.heartbeat_mono_ns > 0
                         ? seconds(std::max<std::int64_t>(now.mono_ns - info.heartbeat_mono_ns, 0))
                         : std::numeric_limits<double>::infinity();
  out.family("healthtable_writer_heartbeat_age_seconds", Type::gauge,
             "Seconds since the writer's last heartbeat (+Inf: never).")
      .add(table, age);
  out.family("healthtable_writer_heartbeat_interval_seconds", Type::gauge,
             "How often the writer promised to beat (0: no promise); readers call it stale "
             "after 3 missed beats.")
      .add(table, seconds(std::max<std::int64_t>(info.heartbeat_interval_ns, 0)));
  if (writer.attached)
    out.family("healthtable_writer_attached", Type::gauge,
               "1 while a process holds the table's writer lock.")
        .add(table, *writer.attached ? 1 : 0);

  Family& available = out.family(
      "healthtable_provider_available", Type::gauge,
      "1 when is_healthy() routes to the provider now (before the half-open ramp), else 0.");
  Family& healthy =
      out.family("healthtable_provider_healthy", Type::gauge,
                 "The breaker's healthy flag: 0 from a trip until a success closes it.");
  Family& state = out.family("healthtable_provider_state", Type::gauge,
                             "1 for the breaker state the provider is in, 0 for the others.");
  Family& override_mode =
      out.family("healthtable_provider_override", Type::gauge,
                 "1 for the provider's override (auto: the breaker decides; down, up: forced).");
  Family& failures = out.family("healthtable_provider_consecutive_failures", Type::gauge,
                                "Consecutive failures of counting classes.");
  Family& trips = out.family("healthtable_provider_trips", Type::gauge,
                             "Trips in a row (failed half-open trials included); sets the window.");
  Family& window = out.family("healthtable_provider_window_remaining_seconds", Type::gauge,
                              "Seconds until the provider's window or cooldown ends (0: none).");
  Family& last_check = out.family("healthtable_provider_last_check_timestamp_seconds", Type::gauge,
                                  "Unix time of the provider's last recorded outcome (0: never).");
  Family& transitions =
      out.family("healthtable_provider_transitions_total", Type::counter,
                 "Healthy/unhealthy flips of the breaker, whoever recorded the outcome.");
  Family& outcomes = out.family("healthtable_provider_outcomes_total", Type::counter,
                                "Outcomes recorded (probes, worker reports, healthctl), by class; "
                                "class=\"success\" for successes.");

  for (const ProviderState& p : providers) {
    const Labels l{{"table", info.segment}, {"provider", p.name}};
    const auto with = [&](const char* key, std::string_view value) {
      Labels x = l;
      x.emplace_back(key, std::string(value));
      return x;
    };
    available.add(l, p.available(now.mono_ns) ? 1 : 0);
    healthy.add(l, p.healthy ? 1 : 0);
    const std::string_view current = breaker_state(p, now.mono_ns);
    for (const std::string_view s : kStates)
      state.add(with("state", s), s == current ? 1 : 0);
    for (const Override o : kOverrides)
      override_mode.add(with("override", override_name(o)), o == p.override_mode ? 1 : 0);
    failures.add(l, p.consecutive_failures);
    trips.add(l, p.trips);
    window.add(l, seconds(std::max<std::int64_t>(p.unhealthy_until_mono_ns - now.mono_ns, 0)));
    last_check.add(l, seconds(p.last_check_unix_ns));
    transitions.add(l, static_cast<double>(p.transitions));
    outcomes.add(with("class", "success"), static_cast<double>(p.successes));
    for (std::size_t c = 1; c < kFailureClasses; ++c)
      outcomes.add(with("class", class_name(static_cast<FailureClass>(c))),
                   static_cast<double>(p.class_failures[c]));
  }
}

} // namespace healthtable::metrics
