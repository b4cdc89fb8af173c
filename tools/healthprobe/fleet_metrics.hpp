// The fleet link's series on /metrics (docs/fleet.md, "Metrics"): one
// place turns a FleetStats snapshot into healthtable_fleet_* families.
#pragma once

#include "fleet.hpp"

#include <exposition.hpp>

namespace healthtable::prober {

/// Every fleet family, labelled fleet="NAME" and host_id="ID".
void add_fleet_metrics(metrics::Exposition& out, const FleetConfig& cfg, const FleetStats& s);

} // namespace healthtable::prober
