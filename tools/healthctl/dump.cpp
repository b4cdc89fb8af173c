// healthctl dump NAME: every provider's state, as an aligned table, JSON, or
// the Prometheus text format (for node_exporter's textfile collector).
#include "commands.hpp"
#include "common.hpp"
#include "provider_table.hpp"

#include <table_metrics.hpp>

#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

namespace healthctl {
namespace {

struct DumpOptions {
  std::string segment;
  std::string owner;               ///< --owner: empty for the library's default
  bool json = false;               ///< --json: the same as --format json
  std::string format = "table";    ///< table, json or prometheus
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

int run_dump(const DumpOptions& o) {
  const auto stale_after = parse_optional_duration(o.stale_after, "--stale-after");
  for (const std::string& name : o.expect)
    healthtable::validate_provider_name(name);
  const healthtable::Table table = healthtable::Table::open(o.segment, open_options(o.owner));
  const healthtable::TableInfo info = table.info();
  const std::vector<healthtable::ProviderState> providers = table.snapshot(o.expect);
  const healthtable::Instant now = healthtable::Instant::now();
  const WriterView writer = view_writer(table, info, stale_after, now.mono_ns);

  if (o.format == "prometheus") {
    healthtable::metrics::Exposition out;
    healthtable::metrics::add_table_metrics(out, info, providers, now,
                                            healthtable::metrics::WriterFacts{writer.attached});
    fmt::print("{}", out.text());
    return kExitOk;
  }

  if (o.json || o.format == "json") {
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
  if (const std::string warning = writer_warning(writer, o.segment); !warning.empty())
    fmt::print("{}\n", warning);
  if (providers.empty()) {
    fmt::print("no providers yet\n");
    return kExitOk;
  }
  fmt::print("\n");
  for (const std::string& line : provider_rows(providers, now))
    fmt::print("{}\n", line);
  for (const std::string& line : override_lines(providers))
    fmt::print("{}\n", line);
  return kExitOk;
}

} // namespace

void setup_dump(CLI::App& app) {
  auto opt = std::make_shared<DumpOptions>();
  CLI::App* sub = app.add_subcommand(
      "dump", "Show every provider's state (a table, JSON, or Prometheus metrics)");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  CLI::Option* format =
      sub->add_option("--format", opt->format,
                      "table (the default), json (one JSON document), or prometheus (the text "
                      "exposition format, for node_exporter's textfile collector)")
          ->check(CLI::IsMember({"table", "json", "prometheus"}))
          ->type_name("FORMAT");
  sub->add_flag("--json", opt->json, "Print one JSON document instead of a table (--format json)")
      ->excludes(format);
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
