// healthctl destroy NAME: removes the segment. Refused while a writer holds
// it; readers that have it mapped keep the last state and see it retired.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct DestroyOptions {
  std::string segment;
};

int run_destroy(const DestroyOptions& o) {
  healthtable::Writer::destroy(o.segment);
  fmt::print("destroyed health table '{}' (/dev/shm/{} removed; mapped readers keep the last "
             "state until they reopen)\n",
             o.segment, o.segment);
  return kExitOk;
}

} // namespace

void setup_destroy(CLI::App& app) {
  auto opt = std::make_shared<DestroyOptions>();
  CLI::App* sub =
      app.add_subcommand("destroy", "Remove the table (refused while a writer holds it)");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->callback([opt] { finish(run_destroy(*opt)); });
}

} // namespace healthctl
