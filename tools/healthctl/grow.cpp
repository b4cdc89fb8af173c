// healthctl grow NAME --slots N: moves every provider's state into a new
// object of N slots; readers follow it by themselves.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct GrowOptions {
  std::string segment;
  std::string slots;
};

int run_grow(const GrowOptions& o) {
  const std::uint32_t slots = parse_count(o.slots, "--slots");
  // While a prober holds the writer lock, it grows the table for us.
  return write_or_ask_prober(o.segment, fmt::format("grow {}", slots),
                             [&](healthtable::Writer& writer) {
                               writer.grow(slots);
                               const healthtable::TableInfo info = writer.table().info();
                               fmt::print("grew '{}' to {} slots ({} used), object {}\n",
                                          o.segment, info.capacity, info.used, info.object);
                               return kExitOk;
                             });
}

} // namespace

void setup_grow(CLI::App& app) {
  auto opt = std::make_shared<GrowOptions>();
  CLI::App* sub = app.add_subcommand(
      "grow", "Give the table N slots, keeping every provider's state (readers follow)");
  sub->add_option("NAME", opt->segment, "Table name")->required();
  sub->add_option("--slots", opt->slots, "The new capacity")->type_name("N")->required();
  sub->callback([opt] { finish(run_grow(*opt)); });
}

} // namespace healthctl
