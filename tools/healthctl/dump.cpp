// healthctl dump NAME: every provider's state, as an aligned table or JSON.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

namespace healthctl {
namespace {

struct DumpOptions {
  std::string segment;
  std::string owner; ///< --owner: empty for the library's default
  bool json = false;
  std::vector<std::string> expect; ///< names to list even if never seen
  std::string stale_after;
};

/// The provider object of `dump --json`: the reference module's field names,
/// times as Unix seconds, plus what the table adds.
nlohmann::ordered_json provider_json(const healthtable::ProviderState& p,
                                     std::int64_t now_mono_ns) {
  nlohmann::ordered_json j;
  j["name"] = p.name;
  j["healthy"] = p.healthy;
  j["available"] = p.available(now_mono_ns);
  j["consecutive_failures"] = p.consecutive_failures;
  j["last_check"] = unix_seconds(p.last_check_unix_ns);
  j["last_error"] =
      p.last_error ? nlohmann::ordered_json(*p.last_error) : nlohmann::ordered_json(nullptr);
  j["unhealthy_until"] = unix_seconds(p.unhealthy_until_unix_ns); // 0: not tripped
  j["override"] = healthtable::override_name(p.override_mode);
  j["transitions"] = p.transitions;
  j["successes"] = p.successes;
  j["failures"] = p.failures;
  j["registered"] = p.registered;
  // Breaker v2 (docs/breaker.md): why it is where it is.
  j["last_class"] = p.last_class == healthtable::FailureClass::none
                        ? nlohmann::ordered_json(nullptr)
                        : nlohmann::ordered_json(healthtable::class_name(p.last_class));
  j["last_source"] = healthtable::source_name(p.last_source);
  j["trips"] = p.trips;
  j["success_run"] = p.success_run;
  j["window"] = static_cast<double>(p.window_ns) / 1e9;
  j["ramp"] = static_cast<double>(p.ramp_ns) / 1e9;
  nlohmann::ordered_json by_class = nlohmann::ordered_json::object();
  for (std::size_t c = 1; c < healthtable::kFailureClasses; ++c)
    by_class[std::string(healthtable::class_name(static_cast<healthtable::FailureClass>(c)))] =
        p.class_failures[c];
  j["failures_by_class"] = by_class;
  const healthtable::OverrideInfo& o = p.override_info;
  if (o.mode != healthtable::Override::automatic) {
    nlohmann::ordered_json by;
    by["set"] = unix_seconds(o.set_unix_ns);
    by["until"] = o.until_unix_ns > 0 ? nlohmann::ordered_json(unix_seconds(o.until_unix_ns))
                                      : nlohmann::ordered_json(nullptr);
    by["uid"] = o.uid ? nlohmann::ordered_json(*o.uid) : nlohmann::ordered_json(nullptr);
    by["user"] = o.user;
    by["reason"] = o.reason;
    j["override_by"] = by;
  } else {
    j["override_by"] = nullptr;
  }
  return j;
}

/// "57s" left in the window, "half-open" once it has passed, "12s
/// (cooldown)" for a healthy provider waiting out a rate limit or retry
/// hint, "-" when there is nothing to wait for.
std::string window_left(const healthtable::ProviderState& p, std::int64_t now_mono_ns) {
  const bool waiting = p.unhealthy_until_mono_ns > now_mono_ns;
  if (p.healthy)
    return waiting ? format_age(p.unhealthy_until_mono_ns - now_mono_ns) + " (cooldown)" : "-";
  if (waiting) return format_age(p.unhealthy_until_mono_ns - now_mono_ns);
  return "half-open";
}

void print_table(const std::vector<healthtable::ProviderState>& providers,
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
  for (const Row& r : rows) {
    std::string line;
    for (std::size_t i = 0; i + 1 < r.size(); ++i)
      line += fmt::format("{:<{}}  ", r[i], width[i]);
    line += r.back();
    fmt::print("{}\n", line);
  }
}

int run_dump(const DumpOptions& o) {
  const auto stale_after = parse_optional_duration(o.stale_after, "--stale-after");
  for (const std::string& name : o.expect)
    healthtable::validate_provider_name(name);
  const healthtable::Table table = healthtable::Table::open(o.segment, open_options(o.owner));
  const healthtable::TableInfo info = table.info();
  const std::vector<healthtable::ProviderState> providers = table.snapshot(o.expect);
  const healthtable::Instant now = healthtable::Instant::now();
  const WriterView writer = view_writer(table, info, stale_after, now.mono_ns);

  if (o.json) {
    nlohmann::ordered_json doc;
    doc["segment"] = info.segment;
    doc["home"] = info.home;
    doc["object"] = info.object;
    doc["generation"] = info.generation;
    doc["time"] = unix_seconds(now.unix_ns);
    doc["capacity"] = info.capacity;
    doc["used"] = info.used;
    doc["failure_threshold"] = info.failure_threshold;
    doc["backoff"] = static_cast<double>(info.backoff_ns) / 1e9;
    doc["events_capacity"] = info.events_capacity;
    doc["events"] = info.events;
    doc["reports_dropped"] = info.reports_dropped;
    doc["reports_refused"] = info.reports_refused;
    doc["writer"] = writer_json(writer);
    doc["providers"] = nlohmann::ordered_json::array();
    for (const auto& p : providers)
      doc["providers"].push_back(provider_json(p, now.mono_ns));
    fmt::print("{}\n", to_json_text(doc));
    return kExitOk;
  }

  fmt::print("table '{}': {} of {} slots used, generation {}, failure threshold {}, backoff {}\n",
             info.segment, info.used, info.capacity, format_hex(info.generation),
             info.failure_threshold,
             healthtable::format_duration(std::chrono::nanoseconds(info.backoff_ns)));
  fmt::print("home: {} -> {}; {} events recorded; reports {} dropped, {} refused\n", info.home,
             info.object, info.events, info.reports_dropped, info.reports_refused);
  fmt::print("writer: {}\n", describe_writer(writer));
  if (providers.empty()) {
    fmt::print("no providers yet\n");
    return kExitOk;
  }
  fmt::print("\n");
  print_table(providers, now);
  // Who set each override, until when, and why: too wide for a column.
  for (const auto& p : providers) {
    const healthtable::OverrideInfo& v = p.override_info;
    if (v.mode == healthtable::Override::automatic) continue;
    std::string line = fmt::format("override {}: {}", printable(p.name),
                                   healthtable::override_name(v.mode));
    if (v.uid) line += fmt::format(" by {}", user_name(*v.uid));
    if (v.set_unix_ns > 0) line += fmt::format(" at {}", format_utc(v.set_unix_ns));
    line += v.until_unix_ns > 0 ? fmt::format(", until {}", format_utc(v.until_unix_ns))
                                : std::string(", until set back");
    if (!v.reason.empty()) line += fmt::format("; reason: {}", printable(v.reason));
    fmt::print("{}\n", line);
  }
  return kExitOk;
}

} // namespace

void setup_dump(CLI::App& app) {
  auto opt = std::make_shared<DumpOptions>();
  CLI::App* sub =
      app.add_subcommand("dump", "Show every provider's state (a table, or JSON with --json)");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_flag("--json", opt->json, "Print one JSON document instead of a table");
  sub->add_option("--expect", opt->expect,
                  "Providers to list even if the table has never seen them (comma separated, "
                  "may repeat); they appear healthy, with registered=false")
      ->type_name("P1,P2,...")
      ->allow_extra_args(false)
      ->delimiter(',');
  sub->add_option("--stale-after", opt->stale_after,
                  "Call the writer stale when its last heartbeat is older than this (default: 3 "
                  "of the intervals the writer promised; 0 never)")
      ->type_name("DURATION");
  add_owner_option(*sub, opt->owner);
  sub->callback([opt] { finish(run_dump(*opt)); });
}

} // namespace healthctl
