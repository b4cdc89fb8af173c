#include "status_line.hpp"

#include <healthtable/names.hpp>

#include <algorithm>
#include <vector>

namespace healthtable::prober {

namespace {

constexpr std::size_t kNamedDown = 3;

} // namespace

std::string status_line(std::span<const ProviderState> providers, std::int64_t now_mono_ns,
                        std::int64_t now_unix_ns) {
  std::size_t healthy = 0, cooling = 0, unprobed = 0;
  std::vector<std::string> down;
  std::int64_t last_write = 0;
  for (const ProviderState& p : providers) {
    last_write = std::max(last_write, p.last_check_unix_ns);
    const bool forced_down = p.override_mode == Override::forced_down;
    const bool automatic = p.override_mode == Override::automatic;
    if (forced_down || (automatic && !p.healthy))
      down.push_back(p.name);
    else if (automatic && !p.available(now_mono_ns))
      ++cooling;
    else if (automatic && p.last_check_unix_ns == 0)
      ++unprobed;
    else
      ++healthy;
  }
  std::string out =
      std::to_string(providers.size()) + (providers.size() == 1 ? " provider" : " providers");
  std::vector<std::string> parts;
  if (healthy) parts.push_back(std::to_string(healthy) + " healthy");
  if (!down.empty()) {
    std::string names;
    for (std::size_t i = 0; i < std::min(down.size(), kNamedDown); ++i)
      names += (i ? ", " : "") + down[i];
    if (down.size() > kNamedDown)
      names += ", +" + std::to_string(down.size() - kNamedDown) + " more";
    parts.push_back(std::to_string(down.size()) + " down (" + names + ")");
  }
  if (cooling) parts.push_back(std::to_string(cooling) + " cooling down");
  if (unprobed) parts.push_back(std::to_string(unprobed) + " not probed yet");
  for (std::size_t i = 0; i < parts.size(); ++i)
    out += (i ? ", " : ": ") + parts[i];
  out += last_write > 0 ? "; last write " + format_age(now_unix_ns - last_write) + " ago"
                        : std::string("; nothing written yet");
  return out;
}

} // namespace healthtable::prober
