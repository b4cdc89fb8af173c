// healthctl set NAME PROVIDER down|up|auto: the admin override. The breaker
// keeps counting underneath; `auto` hands the decision back to it.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/override_text.hpp>
#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct SetOptions {
  std::string segment;
  std::string provider;
  std::string mode;         ///< "down", "up" or "auto"
  std::string for_duration; ///< --for: empty, until set back
  std::string reason;
  bool create = false; ///< --create: register a provider the table has not seen
};

/// Refuses a provider the table has never seen, unless --create: a typo
/// must not quietly register a new name that nothing routes to.
void require_known(const SetOptions& o, const healthtable::Table& table) {
  if (!o.create && !table.find(o.provider))
    throw healthtable::override_of_unknown(o.segment, o.provider);
}

healthtable::Override to_override(std::string_view mode) {
  if (mode == "down") return healthtable::Override::forced_down;
  if (mode == "up") return healthtable::Override::forced_up;
  return healthtable::Override::automatic;
}

int set_direct(const SetOptions& o, healthtable::Writer& writer);

int run_set(const SetOptions& o) {
  healthtable::validate_provider_name(o.provider);
  const auto expires = parse_optional_duration(o.for_duration, "--for");
  // The prober must check too, but a reader can refuse a typo before asking.
  try {
    require_known(o, healthtable::Table::open(o.segment));
  } catch (const healthtable::Error& e) {
    if (e.code() == healthtable::Errc::unknown_provider) throw;
    // Not readable here: the writing path reports why.
  }
  // While a prober holds the writer lock, it applies the override for us.
  // create, for= and reason= go as words after the mode (reason= last: it
  // is the rest of the line); a prober that does not know them refuses the
  // request rather than dropping them.
  std::string line = fmt::format("set {} {}", o.provider, o.mode);
  if (o.create) line += " create";
  if (expires) line += " for=" + healthtable::format_duration(*expires);
  if (!o.reason.empty())
    line += " reason=" + healthtable::sanitize_reason(o.reason, healthtable::kReasonMax);
  return write_or_ask_prober(o.segment, line,
                             [&](healthtable::Writer& writer) { return set_direct(o, writer); });
}

int set_direct(const SetOptions& o, healthtable::Writer& writer) {
  require_known(o, writer.table());
  healthtable::OverrideRequest request;
  request.mode = to_override(o.mode);
  request.expires_after = parse_optional_duration(o.for_duration, "--for");
  request.reason = o.reason;
  writer.set_override(o.provider, request);
  fmt::print("{}\n",
             healthtable::describe_override(o.segment, o.provider, request, writer.table()));
  return kExitOk;
}

} // namespace

void setup_set(CLI::App& app) {
  auto opt = std::make_shared<SetOptions>();
  CLI::App* sub = app.add_subcommand(
      "set", "Override a provider: force it down or up, or give it back to the breaker (auto)");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_option("PROVIDER", opt->provider,
                  "Provider name; one the table has not seen is refused unless --create")
      ->required();
  sub->add_option("MODE", opt->mode, "down, up or auto")
      ->required()
      ->check(CLI::IsMember({"down", "up", "auto"}));
  sub->add_flag("--create", opt->create, "Register PROVIDER if the table has not seen it");
  sub->add_option("--for", opt->for_duration,
                  "The override lapses after this long (60s, 2h); default: until set back")
      ->type_name("DURATION");
  sub->add_option("--reason", opt->reason,
                  "Why, kept with the override and shown by dump (at most " +
                      std::to_string(healthtable::kReasonMax) + " bytes)")
      ->type_name("TEXT");
  sub->callback([opt] { finish(run_set(*opt)); });
}

} // namespace healthctl
