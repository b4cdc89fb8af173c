#include "provider_table.hpp"

#include "common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace healthctl {

std::string window_left(const healthtable::ProviderState& p, std::int64_t now_mono_ns) {
  const bool waiting = p.unhealthy_until_mono_ns > now_mono_ns;
  if (p.healthy)
    return waiting ? format_age(p.unhealthy_until_mono_ns - now_mono_ns) + " (cooldown)" : "-";
  if (waiting) return format_age(p.unhealthy_until_mono_ns - now_mono_ns);
  return "half-open";
}

std::vector<std::string> provider_rows(const std::vector<healthtable::ProviderState>& providers,
                                       const healthtable::Instant& now) {
  using Row = std::array<std::string, 8>;
  std::vector<Row> rows;
  rows.push_back({"PROVIDER", "AVAILABLE", "HEALTHY", "FAILURES", "LAST CHECK", "UNAVAILABLE FOR",
                  "OVERRIDE", "LAST ERROR"});
  for (const auto& p : providers) {
    std::string last_check = "never";
    if (!p.registered)
      last_check = "not in table";
    else if (p.last_check_unix_ns > 0)
      last_check = format_age(now.unix_ns - p.last_check_unix_ns) + " ago";
    rows.push_back({printable(p.name), p.available(now.mono_ns) ? "yes" : "no",
                    p.healthy ? "yes" : "no", std::to_string(p.consecutive_failures), last_check,
                    window_left(p, now.mono_ns),
                    std::string(healthtable::override_name(p.override_mode)),
                    p.last_error ? printable(*p.last_error) : "-"});
  }
  std::array<std::size_t, 8> width{};
  for (const Row& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  std::vector<std::string> lines;
  for (const Row& r : rows) {
    std::string line;
    for (std::size_t i = 0; i + 1 < r.size(); ++i)
      line += fmt::format("{:<{}}  ", r[i], width[i]);
    line += r.back();
    lines.push_back(std::move(line));
  }
  return lines;
}

std::vector<std::string> override_lines(const std::vector<healthtable::ProviderState>& providers) {
  std::vector<std::string> lines;
  for (const auto& p : providers) {
    const healthtable::OverrideInfo& v = p.override_info;
    if (v.mode == healthtable::Override::automatic) continue;
    std::string line =
        fmt::format("override {}: {}", printable(p.name), healthtable::override_name(v.mode));
    if (v.uid) line += fmt::format(" by {}", user_name(*v.uid));
    if (v.set_unix_ns > 0) line += fmt::format(" at {}", format_utc(v.set_unix_ns));
    line += v.until_unix_ns > 0 ? fmt::format(", until {}", format_utc(v.until_unix_ns))
                                : std::string(", until set back");
    if (!v.reason.empty()) line += fmt::format("; reason: {}", printable(v.reason));
    lines.push_back(std::move(line));
  }
  return lines;
}

} // namespace healthctl
