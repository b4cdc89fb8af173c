// healthctl info NAME: the header's facts, and whether a writer is alive.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct InfoOptions {
  std::string segment;
  std::string owner; ///< --owner: empty for the library's default
  bool json = false;
  std::string stale_after; ///< empty: 3 x the writer's promised interval
};

std::string_view state_name(healthtable::SegmentState s) {
  switch (s) {
  case healthtable::SegmentState::creating: return "creating";
  case healthtable::SegmentState::live: return "live";
  case healthtable::SegmentState::retired: return "retired";
  }
  return "live";
}

int run_info(const InfoOptions& o) {
  const auto stale_after = parse_optional_duration(o.stale_after, "--stale-after");
  const healthtable::Table table = healthtable::Table::open(o.segment, open_options(o.owner));
  const healthtable::TableInfo info = table.info();
  const healthtable::Instant now = healthtable::Instant::now();
  const WriterView writer = view_writer(table, info, stale_after, now.mono_ns);
  const auto backoff = std::chrono::nanoseconds(info.backoff_ns);

  if (o.json) {
    nlohmann::ordered_json doc;
    doc["segment"] = info.segment;
    doc["home"] = info.home;
    doc["object"] = info.object;
    doc["state"] = state_name(info.state);
    doc["owner_uid"] = info.owner_uid;
    doc["mode"] = format_mode(info.mode);
    doc["layout_version"] = info.layout_version;
    doc["format"] = format_hex(info.format);
    doc["capacity"] = info.capacity;
    doc["used"] = info.used;
    doc["events_capacity"] = info.events_capacity;
    doc["events"] = info.events;
    doc["reports_dropped"] = info.reports_dropped;
    doc["reports_refused"] = info.reports_refused;
    doc["total_size"] = info.total_size;
    doc["failure_threshold"] = info.failure_threshold;
    doc["backoff"] = static_cast<double>(info.backoff_ns) / 1e9;
    doc["generation"] = info.generation;
    doc["created"] = unix_seconds(info.created_unix_ns);
    doc["updates"] = info.updates;
    doc["writer"] = writer_json(writer);
    fmt::print("{}\n", to_json_text(doc));
    return kExitOk;
  }

  const auto row = [](std::string_view key, const std::string& value) {
    fmt::print("{:<12}{}\n", key, value);
  };
  row("segment", fmt::format("{}, {}", info.segment, state_name(info.state)));
  row("home", info.home);
  row("object", info.object);
  row("access",
      fmt::format("owner {}, mode {}", user_name(info.owner_uid), format_mode(info.mode)));
  row("layout", fmt::format("v{}, format {}", info.layout_version, format_hex(info.format)));
  row("slots", fmt::format("{} of {} used", info.used, info.capacity));
  row("events", fmt::format("{} recorded, the last {} kept", info.events, info.events_capacity));
  row("reports", fmt::format("{} dropped before they arrived, {} refused", info.reports_dropped,
                             info.reports_refused));
  row("size", format_size(info.total_size));
  row("policy", fmt::format("failure threshold {}, backoff {}", info.failure_threshold,
                            healthtable::format_duration(backoff)));
  row("generation", format_hex(info.generation));
  row("created", fmt::format("{} ({} ago)", format_utc(info.created_unix_ns),
                             format_age(now.unix_ns - info.created_unix_ns)));
  std::string who;
  if (writer.attached)
    who = fmt::format("pid {} attached (holds the writer lock)", writer.pid);
  else if (writer.pid > 0)
    who = fmt::format("none attached; the last was pid {}", writer.pid);
  else
    who = "none attached";
  if (writer.pid > 0 && writer.started_unix_ns > 0)
    who += fmt::format(", which attached at {}", format_utc(writer.started_unix_ns));
  row("writer", who);
  std::string beat = writer.heartbeat_age_ns
                         ? fmt::format("{} ago", format_age(*writer.heartbeat_age_ns))
                         : std::string("never");
  if (writer.interval_ns > 0)
    beat += fmt::format(", promised every {}",
                        healthtable::format_duration(std::chrono::nanoseconds(writer.interval_ns)));
  else
    beat += ", no interval promised";
  if (writer.stale_after_ns > 0)
    beat +=
        fmt::format("; {} (stale after {})", writer.stale ? "STALE" : "fresh",
                    healthtable::format_duration(std::chrono::nanoseconds(writer.stale_after_ns)));
  row("heartbeat", beat);
  row("updates", std::to_string(info.updates));
  // Exit 0 all the same (this prints state); `check --writer` is the
  // monitoring answer. The warning is last, where a reader's eye ends.
  if (const std::string warning = writer_warning(writer, o.segment); !warning.empty())
    fmt::print("{}\n", warning);
  return kExitOk;
}

} // namespace

void setup_info(CLI::App& app) {
  auto opt = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand(
      "info", "Show the table's layout, size, policy, and whether its writer is alive");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_flag("--json", opt->json, "Print one JSON object instead of text");
  sub->add_option("--stale-after", opt->stale_after,
                  "Call the writer stale when its last heartbeat is older than this (default: 3 "
                  "of the intervals the writer promised; 0 never)")
      ->type_name("DURATION");
  add_owner_option(*sub, opt->owner);
  sub->callback([opt] { finish(run_info(*opt)); });
}

} // namespace healthctl
