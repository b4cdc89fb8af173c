// healthctl create NAME: a new, empty health table (or, with --force, a
// fresh one in place of whatever has the name).
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/home.hpp>
#include <healthtable/names.hpp>
#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <pwd.h>
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
  std::string events = std::to_string(healthtable::kDefaultEvents);
  std::string owner; ///< root only: the user the table is for
  bool force = false;
};

int run_create(const CreateOptions& o) {
  healthtable::CreateOptions create;
  create.capacity = parse_count(o.slots, "--slots");
  create.policy.failure_threshold = parse_count(o.failure_threshold, "--failure-threshold");
  create.policy.backoff = healthtable::parse_duration(o.backoff, "--backoff");
  create.mode = parse_mode(o.mode);
  // Only the writer writes: a table others could write could be made to lie.
  if ((create.mode & 022) != 0)
    throw healthtable::Error(
        healthtable::Errc::invalid_argument,
        fmt::format("--mode {} lets the group or others write the table, and only its writer may; "
                    "use 0644 (everyone reads) or 0640 (the group reads), and let others change "
                    "it through the prober's control socket",
                    format_mode(create.mode)));
  create.events = parse_count(o.events, "--events");
  create.replace = o.force;
  if (!o.owner.empty()) {
    const std::uint32_t uid = healthtable::parse_user(o.owner);
    create.owner_uid = uid;
    passwd pw{};
    passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(static_cast<uid_t>(uid), &pw, buf, sizeof buf, &found) == 0 && found)
      create.owner_gid = found->pw_gid;
  }

  // Only for the wording: create() itself is atomic (O_EXCL, or unlink and
  // O_EXCL with --force).
  healthtable::validate_segment_name(o.segment);
  struct stat st {};
  const bool existed = ::lstat((healthtable::home_dir(o.segment) + "/table").c_str(), &st) == 0;

  const healthtable::Writer writer = healthtable::Writer::create(o.segment, create);
  const healthtable::TableInfo info = writer.table().info();
  fmt::print("{} health table '{}': {} slot{}, {} events, {}, failure threshold {}, backoff {}, "
             "mode {}, owner {}\n",
             o.force && existed ? "replaced" : "created", o.segment, info.capacity,
             info.capacity == 1 ? "" : "s", info.events_capacity, format_size(info.total_size),
             info.failure_threshold,
             healthtable::format_duration(std::chrono::nanoseconds(info.backoff_ns)),
             format_mode(create.mode), user_name(info.owner_uid));
  fmt::print("home {}, object {}\n", info.home, info.object);
  return kExitOk;
}

} // namespace

void setup_create(CLI::App& app) {
  auto opt = std::make_shared<CreateOptions>();
  CLI::App* sub = app.add_subcommand(
      "create", "Create a health table; fails if NAME exists unless --force is given");
  sub->add_option("NAME", opt->segment, "Table name: its home is RUN_DIR/NAME (letters, digits, . _ -)")
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
  sub->add_option("--events", opt->events,
                  "Events the table keeps (rounded up to a power of two)")
      ->type_name("N")
      ->capture_default_str();
  sub->add_option("--owner", opt->owner,
                  "Root only: the user (name or uid) the table and its home belong to, for a "
                  "prober running as that user")
      ->type_name("USER");
  sub->add_option("--mode", opt->mode,
                  "Permissions in octal, applied exactly whatever the umask (0640: only the "
                  "owner's group can read); group or other write bits are refused")
      ->type_name("OCTAL")
      ->capture_default_str();
  sub->add_flag("--force", opt->force,
                "Replace an existing segment of that name (refused while a writer holds it); "
                "mapped readers keep the old copy until they reopen");
  sub->callback([opt] { finish(run_create(*opt)); });
}

} // namespace healthctl
