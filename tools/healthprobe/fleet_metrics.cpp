#include "fleet_metrics.hpp"

#include "fleet_message.hpp"

#include <limits>

namespace healthtable::prober {

void add_fleet_metrics(metrics::Exposition& out, const FleetConfig& cfg, const FleetStats& s) {
  const metrics::Labels l{{"fleet", cfg.name}, {"host_id", cfg.host_id}};
  const auto gauge = [&](const char* name, const char* help, double v) {
    out.family(name, metrics::Type::gauge, help).add(l, v);
  };
  const auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    out.family(name, metrics::Type::counter, help).add(l, static_cast<double>(v));
  };
  gauge("healthtable_fleet_connected",
        "1 while both Redis connections of the fleet link are up and subscribed.",
        s.connected ? 1 : 0);
  counter("healthtable_fleet_connects_total",
          "Successful connections to Redis, the first included.", s.connects);
  counter("healthtable_fleet_connect_failures_total", "Failed attempts to reach Redis.",
          s.connect_failures);
  counter("healthtable_fleet_published_total", "Facts Redis accepted from this prober.",
          s.published);
  counter("healthtable_fleet_publish_dropped_total",
          "Facts never sent: the queue was full, or they went stale before Redis came back.",
          s.publish_dropped);
  counter("healthtable_fleet_received_total", "Messages that arrived on the fleet's channel.",
          s.received);
  counter("healthtable_fleet_applied_total", "Peer facts that moved a local deadline later.",
          s.applied);
  counter("healthtable_fleet_unchanged_total",
          "Peer facts accepted that set nothing later than what stood.", s.unchanged);
  metrics::Family& refused =
      out.family("healthtable_fleet_refused_total", metrics::Type::counter,
                 "Messages refused, by reason (docs/fleet.md, \"What is refused\").");
  for (std::size_t r = 0; r < kRefusals; ++r) {
    metrics::Labels x = l;
    x.emplace_back("reason", std::string(refusal_name(static_cast<Refusal>(r))));
    refused.add(x, static_cast<double>(s.refused[r]));
  }
  // -1 until a fact is applied: NaN, not 0, so "no fact yet" is not "instant".
  gauge("healthtable_fleet_delay_seconds",
        "The last applied peer fact: written here minus sent there (includes clock skew).",
        s.last_delay_ns < 0 ? std::numeric_limits<double>::quiet_NaN()
                            : static_cast<double>(s.last_delay_ns) / 1e9);
}

} // namespace healthtable::prober
