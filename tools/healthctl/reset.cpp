// healthctl reset NAME [PROVIDER...]: providers back to the zero state
// (healthy, no failures, no error, no window, no override, counters zero).
// Names stay registered, so handles held by readers stay valid.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
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
};

int reset_direct(const ResetOptions& o, healthtable::Writer& writer);

int run_reset(const ResetOptions& o) {
  for (const std::string& p : o.providers)
    healthtable::validate_provider_name(p);
  // While a prober holds the writer lock, it resets for us (all or nothing
  // there too).
  const std::string line = o.providers.empty()
                               ? std::string("reset")
                               : fmt::format("reset {}", fmt::join(o.providers, " "));
  return write_or_ask_prober(o.segment, line,
                             [&](healthtable::Writer& writer) { return reset_direct(o, writer); });
}

int reset_direct(const ResetOptions& o, healthtable::Writer& writer) {
  if (o.providers.empty()) {
    writer.reset();
    const healthtable::TableInfo info = writer.table().info();
    fmt::print("reset all {} provider{} of '{}'; generation now {}\n", info.used,
               info.used == 1 ? "" : "s", o.segment, format_hex(info.generation));
    return kExitOk;
  }
  // All or nothing: refuse before touching any if one is unknown
  // (Writer::reset(name) throws unknown_provider with the library's message).
  for (const std::string& p : o.providers)
    if (!writer.table().find(p)) writer.reset(p);
  for (const std::string& p : o.providers)
    writer.reset(p);
  fmt::print("reset {} of '{}'\n", fmt::join(o.providers, ", "), o.segment);
  return kExitOk;
}

} // namespace

void setup_reset(CLI::App& app) {
  auto opt = std::make_shared<ResetOptions>();
  CLI::App* sub =
      app.add_subcommand("reset", "Put providers (all, or those listed) back to the zero state");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_option("PROVIDER", opt->providers, "Providers to reset (default: all)");
  sub->callback([opt] { finish(run_reset(*opt)); });
}

} // namespace healthctl
