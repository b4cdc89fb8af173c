// healthctl destroy NAME [--force]: removes the table. Refused while a
// writer holds it; readers that have it mapped keep the last state and see
// it retired. Without --force, refuses a home that holds no health table.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/home.hpp>
#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <sys/stat.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct DestroyOptions {
  std::string segment;
  bool force = false;
};

int run_destroy(const DestroyOptions& o) {
  healthtable::Writer::destroy(o.segment, o.force);
  const std::string home = healthtable::home_dir(o.segment);
  struct stat st {};
  // The library leaves a home that still holds files it did not make.
  const std::string what = ::lstat(home.c_str(), &st) == 0
                               ? home + " kept: it holds files that are not the table's"
                               : home + " removed";
  fmt::print("destroyed health table '{}' ({}; mapped readers keep the last state and follow a "
             "table created again under that name)\n",
             o.segment, what);
  return kExitOk;
}

} // namespace

void setup_destroy(CLI::App& app) {
  auto opt = std::make_shared<DestroyOptions>();
  CLI::App* sub =
      app.add_subcommand("destroy", "Remove the table (refused while a writer holds it)");
  sub->add_option("NAME", opt->segment, "Table name")->required();
  sub->add_flag("--force", opt->force,
                "Remove whatever the home holds, even if it is not a health table");
  sub->callback([opt] { finish(run_destroy(*opt)); });
}

} // namespace healthctl
