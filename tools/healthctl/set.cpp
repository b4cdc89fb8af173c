// healthctl set NAME PROVIDER down|up|auto: the admin override. The breaker
// keeps counting underneath; `auto` hands the decision back to it.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct SetOptions {
  std::string segment;
  std::string provider;
  std::string mode; ///< "down", "up" or "auto"
};

healthtable::Override to_override(std::string_view mode) {
  if (mode == "down") return healthtable::Override::forced_down;
  if (mode == "up") return healthtable::Override::forced_up;
  return healthtable::Override::automatic;
}

int set_direct(const SetOptions& o, healthtable::Writer& writer);

int run_set(const SetOptions& o) {
  healthtable::validate_provider_name(o.provider);
  // While a prober holds the writer lock, it applies the override for us.
  return write_or_ask_prober(o.segment, fmt::format("set {} {}", o.provider, o.mode),
                             [&](healthtable::Writer& writer) { return set_direct(o, writer); });
}

int set_direct(const SetOptions& o, healthtable::Writer& writer) {
  const healthtable::Override mode = to_override(o.mode);
  writer.set_override(o.provider, mode);
  switch (mode) {
  case healthtable::Override::forced_down:
    fmt::print("{}: forced down; unavailable until 'healthctl set {} {} auto'\n", o.provider,
               o.segment, o.provider);
    break;
  case healthtable::Override::forced_up:
    fmt::print("{}: forced up; available whatever the breaker says, until 'healthctl set {} {} "
               "auto'\n",
               o.provider, o.segment, o.provider);
    break;
  case healthtable::Override::automatic: {
    const auto state = writer.table().get_state(o.provider);
    const bool available = !state || state->available(healthtable::Instant::now().mono_ns);
    fmt::print("{}: override cleared; the circuit breaker decides (now {})\n", o.provider,
               available ? "available" : "unavailable");
    break;
  }
  }
  return kExitOk;
}

} // namespace

void setup_set(CLI::App& app) {
  auto opt = std::make_shared<SetOptions>();
  CLI::App* sub = app.add_subcommand(
      "set", "Override a provider: force it down or up, or give it back to the breaker (auto)");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_option("PROVIDER", opt->provider, "Provider name; registered if new")->required();
  sub->add_option("MODE", opt->mode, "down, up or auto")
      ->required()
      ->check(CLI::IsMember({"down", "up", "auto"}));
  sub->callback([opt] { finish(run_set(*opt)); });
}

} // namespace healthctl
