// healthctl create NAME: a new, empty health table (or, with --force, a
// fresh one in place of whatever has the name).
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <sys/stat.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct CreateOptions {
  std::string segment;
  std::string slots = std::to_string(healthtable::kDefaultCapacity);
  std::string failure_threshold = std::to_string(healthtable::kDefaultFailureThreshold);
  std::string backoff = "60s";
  std::string mode = "0644";
  bool force = false;
};

int run_create(const CreateOptions& o) {
  healthtable::CreateOptions create;
  create.capacity = parse_count(o.slots, "--slots");
  create.policy.failure_threshold = parse_count(o.failure_threshold, "--failure-threshold");
  create.policy.backoff = healthtable::parse_duration(o.backoff, "--backoff");
  create.mode = parse_mode(o.mode);
  create.replace = o.force;

  // Only for the wording: create() itself is atomic (O_EXCL, or unlink and
  // O_EXCL with --force).
  healthtable::validate_segment_name(o.segment);
  struct stat st {};
  const bool existed = ::stat(("/dev/shm/" + o.segment).c_str(), &st) == 0;

  const healthtable::Writer writer = healthtable::Writer::create(o.segment, create);
  const healthtable::TableInfo info = writer.table().info();
  fmt::print("{} health table '{}': {} slot{}, {}, failure threshold {}, backoff {}, mode {}\n",
             o.force && existed ? "replaced" : "created", o.segment, info.capacity,
             info.capacity == 1 ? "" : "s", format_size(info.total_size), info.failure_threshold,
             healthtable::format_duration(std::chrono::nanoseconds(info.backoff_ns)),
             format_mode(create.mode));
  return kExitOk;
}

} // namespace

void setup_create(CLI::App& app) {
  auto opt = std::make_shared<CreateOptions>();
  CLI::App* sub = app.add_subcommand(
      "create", "Create a health table; fails if NAME exists unless --force is given");
  sub->add_option("NAME", opt->segment, "Segment name: /dev/shm/NAME (letters, digits, . _ -)")
      ->required();
  sub->add_option("--slots", opt->slots,
                  "Providers the table can hold, 1.." + std::to_string(healthtable::kMaxCapacity))
      ->type_name("N")
      ->capture_default_str();
  sub->add_option("--failure-threshold", opt->failure_threshold,
                  "Consecutive failures that trip a provider (at least 1)")
      ->type_name("N")
      ->capture_default_str();
  sub->add_option("--backoff", opt->backoff,
                  "How long a tripped provider stays unavailable: 60s, 500ms, 2m, 1h; a plain "
                  "number is seconds")
      ->type_name("DURATION")
      ->capture_default_str();
  sub->add_option("--mode", opt->mode,
                  "Permissions in octal, applied exactly whatever the umask (0640: only the "
                  "owner's group can read)")
      ->type_name("OCTAL")
      ->capture_default_str();
  sub->add_flag("--force", opt->force,
                "Replace an existing segment of that name (refused while a writer holds it); "
                "mapped readers keep the old copy until they reopen");
  sub->callback([opt] { finish(run_create(*opt)); });
}

} // namespace healthctl
