// healthctl forget NAME PROVIDER: gives the provider's slot back. Readers'
// handles of it answer as for an unknown provider until it registers again.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct ForgetOptions {
  std::string segment;
  std::string provider;
};

int run_forget(const ForgetOptions& o) {
  healthtable::validate_provider_name(o.provider);
  // While a prober holds the writer lock, it forgets for us.
  return write_or_ask_prober(o.segment, fmt::format("forget {}", o.provider),
                             [&](healthtable::Writer& writer) {
                               writer.forget(o.provider);
                               const healthtable::TableInfo info = writer.table().info();
                               fmt::print("forgot {} in '{}'; {} of {} slots used\n", o.provider,
                                          o.segment, info.used, info.capacity);
                               return kExitOk;
                             });
}

} // namespace

void setup_forget(CLI::App& app) {
  auto opt = std::make_shared<ForgetOptions>();
  CLI::App* sub = app.add_subcommand(
      "forget", "Free a provider's slot (its state is dropped; it registers again when seen)");
  sub->add_option("NAME", opt->segment, "Table name")->required();
  sub->add_option("PROVIDER", opt->provider, "Provider name")->required();
  sub->callback([opt] { finish(run_forget(*opt)); });
}

} // namespace healthctl
