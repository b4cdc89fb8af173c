// healthctl reset NAME [PROVIDER...] [--overrides]: providers back to the
// zero state (healthy, no failures, no error, no window, counters zero).
// Overrides stay unless --overrides: an operator's maintenance override is
// not breaker state. Names stay registered, so readers' handles stay valid.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/reset_text.hpp>
#include <healthtable/writer.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>
#include <string>
#include <vector>

namespace healthctl {
namespace {

struct ResetOptions {
  std::string segment;
  std::vector<std::string> providers; ///< empty: all
  bool overrides = false;
};

int run_reset(const ResetOptions& o) {
  for (const std::string& p : o.providers)
    healthtable::validate_provider_name(p);
  const auto scope = o.overrides ? healthtable::ResetScope::state_and_overrides
                                 : healthtable::ResetScope::state;
  // While a prober holds the writer lock, it resets for us (all or nothing
  // there too). scope= cannot be a provider: names have no '='.
  std::string line = "reset";
  if (o.overrides) line += " scope=overrides";
  if (!o.providers.empty()) line += fmt::format(" {}", fmt::join(o.providers, " "));
  return write_or_ask_prober(o.segment, line, [&](healthtable::Writer& writer) {
    fmt::print("{}\n", healthtable::apply_reset(writer, o.segment, o.providers, scope));
    return kExitOk;
  });
}

} // namespace

void setup_reset(CLI::App& app) {
  auto opt = std::make_shared<ResetOptions>();
  CLI::App* sub =
      app.add_subcommand("reset", "Put providers (all, or those listed) back to the zero state");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_option("PROVIDER", opt->providers, "Providers to reset (default: all)");
  sub->add_flag("--overrides", opt->overrides,
                "Clear their overrides too (kept by default: maintenance is not breaker state)");
  sub->callback([opt] { finish(run_reset(*opt)); });
}

} // namespace healthctl
