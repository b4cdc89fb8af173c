// healthctl events NAME: the table's event ring (transitions, overrides,
// hints, windows that grew, registrations), oldest first, as lines or JSON
// Lines; --follow keeps reading as a tail -F would, through a recreated or
// destroyed table, until SIGINT or SIGTERM.
#include "commands.hpp"
#include "common.hpp"
#include "follow.hpp"

#include <healthtable/clock.hpp>
#include <healthtable/event_text.hpp>
#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace healthctl {
namespace {

namespace ht = healthtable;

/// How often --follow looks for new events: an operator sees a trip within
/// a tenth of a second, and an idle follower costs one read of the ring's
/// header per poll.
constexpr std::chrono::milliseconds kPoll{100};

struct EventsOptions {
  std::string segment;
  std::string owner;
  bool follow = false;
  bool json = false;
  std::string since;                 ///< DURATION: only events newer than now - DURATION
  std::optional<std::uint32_t> last; ///< only the last N of what --since kept
};

nlohmann::ordered_json event_json(const ht::EventRecord& e) {
  nlohmann::ordered_json j;
  for (const ht::EventField& f : ht::event_fields(e))
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::monostate>)
            j[std::string(f.key)] = nullptr;
          else
            j[std::string(f.key)] = v;
        },
        f.value);
  return j;
}

void print(const ht::EventRecord& e, bool json) {
  if (json)
    fmt::print("{}\n", to_json_text(event_json(e), JsonStyle::line));
  else
    fmt::print("{}\n", ht::event_text(e));
}

// Notes go to stderr (say()), so stdout holds events only.

/// Every event from `from` on, whatever the batch size.
ht::EventBatch read_all(const ht::Table& table, std::uint64_t from) {
  ht::EventBatch all = table.events(from);
  while (!all.events.empty()) {
    ht::EventBatch more = table.events(all.next);
    if (more.events.empty()) break;
    all.missed += more.missed;
    all.next = more.next;
    all.events.insert(all.events.end(), more.events.begin(), more.events.end());
  }
  return all;
}

int run_events(const EventsOptions& o) {
  const auto since = parse_optional_duration(o.since, "--since");
  const ht::Table table = ht::Table::open(o.segment, open_options(o.owner));
  const StopOnSignal stop; // before the first read: a Ctrl-C from now on exits 0
  // What the ring still holds: events older than it are gone, not "missed".
  ht::EventBatch first = read_all(table, 0);
  const ht::Instant now = ht::Instant::now();
  std::deque<const ht::EventRecord*> shown;
  for (const ht::EventRecord& e : first.events) {
    if (since && e.unix_ns < now.unix_ns - since->count()) continue;
    shown.push_back(&e);
    if (o.last && shown.size() > *o.last) shown.pop_front();
  }
  for (const ht::EventRecord* e : shown)
    print(*e, o.json);
  std::fflush(stdout);
  if (!o.follow) return kExitOk;

  std::uint64_t next = first.next;
  bool gone = false;
  while (!stop.sleep_for(kPoll)) {
    switch (follow(table)) {
    case TableMove::same: break;
    case TableMove::recreated:
      say(fmt::format("table '{}' was recreated: following the new table's events from its "
                      "first one",
                      o.segment));
      next = 0;
      gone = false;
      break;
    case TableMove::gone:
      if (!gone)
        say(fmt::format("table '{}' is gone (destroyed); waiting for it to be created again "
                        "(Ctrl-C stops)",
                        o.segment));
      gone = true;
      continue;
    }
    const ht::EventBatch b = read_all(table, next);
    if (b.missed > 0)
      say(fmt::format("{} events were overwritten before they could be read (the ring holds "
                      "{}); they are lost",
                      b.missed, table.info().events_capacity));
    for (const ht::EventRecord& e : b.events)
      print(e, o.json);
    if (!b.events.empty()) std::fflush(stdout);
    next = b.next;
  }
  return kExitOk;
}

} // namespace

void setup_events(CLI::App& app) {
  auto opt = std::make_shared<EventsOptions>();
  CLI::App* sub = app.add_subcommand(
      "events", "Show the table's recent events (trips, recoveries, overrides, hints), oldest "
                "first; --follow waits for more");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_flag("-f,--follow", opt->follow,
                "Keep printing events as they happen, until Ctrl-C or SIGTERM");
  sub->add_flag("--json", opt->json, "One JSON object per event and line (JSON Lines)");
  sub->add_option("--since", opt->since, "Only events of the last DURATION (\"10m\", \"2h\")")
      ->type_name("DURATION");
  sub->add_option("--last", opt->last, "Only the last N events (after --since)")->type_name("N");
  add_owner_option(*sub, opt->owner);
  sub->callback([opt] { finish(run_events(*opt)); });
}

} // namespace healthctl
