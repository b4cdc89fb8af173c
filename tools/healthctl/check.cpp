// healthctl check NAME PROVIDER: the routing answer for shell scripts and
// health checks. Exit 0 when the provider is available now (or unknown:
// the table observes, it is not a registry), 1 when it is not.
// healthctl check NAME --writer: the monitoring answer for the table itself.
// Exit 0 when a writer is attached and its heartbeat is fresh, 1 when none
// is attached or it is STALE, with one Nagios-style line.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct CheckOptions {
  std::string segment;
  std::string owner; ///< --owner: empty for the library's default
  std::string provider;
  bool quiet = false;
  bool writer = false;     ///< --writer: check the writer, not a provider
  std::string stale_after; ///< --writer --stale-after; empty: 3 promised intervals
};

std::string explain(const healthtable::ProviderState& p, bool available, std::int64_t now_mono_ns,
                    const std::string& segment) {
  const std::string name = printable(p.name);
  const std::string error =
      p.last_error ? fmt::format("; last error: {}", printable(*p.last_error)) : "";
  switch (p.override_mode) {
  case healthtable::Override::forced_down:
    return fmt::format("{}: unhealthy (forced down by override; 'healthctl set {} {} auto' "
                       "undoes it)",
                       name, segment, name);
  case healthtable::Override::forced_up:
    return fmt::format("{}: healthy (forced up by override)", name);
  case healthtable::Override::automatic: break;
  }
  // Healthy but unavailable: a rate limit or retry hint holds it back.
  if (p.healthy && !available)
    return fmt::format("{}: unavailable (cooling down: a rate limit or retry hint, {} left{})",
                       name, format_age(p.unhealthy_until_mono_ns - now_mono_ns), error);
  if (p.healthy)
    return p.consecutive_failures == 0 ? fmt::format("{}: healthy", name)
                                       : fmt::format("{}: healthy ({}{})", name,
                                                     count_failures(p.consecutive_failures), error);
  if (!available)
    return fmt::format("{}: unhealthy (tripped, {}, {} left{})", name,
                       count_failures(p.consecutive_failures),
                       format_age(p.unhealthy_until_mono_ns - now_mono_ns), error);
  return fmt::format("{}: healthy (half-open: the backoff window has passed, the next call may "
                     "try it{})",
                     name, error);
}

int run_check_writer(const CheckOptions& o) {
  const auto stale_after = parse_optional_duration(o.stale_after, "--stale-after");
  const healthtable::Table table = healthtable::Table::open(o.segment, open_options(o.owner));
  const WriterView w =
      view_writer(table, table.info(), stale_after, healthtable::Instant::now().mono_ns);
  if (!o.quiet) fmt::print("{}\n", writer_check_line(w, o.segment));
  return writer_health(w) == WriterHealth::live ? kExitOk : kExitUnhealthy;
}

int run_check(const CheckOptions& o) {
  // Which question: a provider's, or (--writer) the table's own. Both at
  // once, or neither, is a usage error (exit 2) like a missing argument.
  if (o.writer && !o.provider.empty())
    throw CLI::ValidationError("PROVIDER", "--writer checks the table's writer, not a provider: "
                                           "give one or the other");
  if (o.writer) return run_check_writer(o);
  if (o.provider.empty())
    throw CLI::RequiredError("PROVIDER is required (or --writer to check the table's writer)",
                             CLI::ExitCodes::RequiredError);
  if (!o.stale_after.empty())
    throw CLI::ValidationError("--stale-after", "applies to --writer only");
  // Validate first: an invalid name is never in the table, and "unknown,
  // so healthy" would hide the typo.
  healthtable::validate_provider_name(o.provider);
  const healthtable::Table table = healthtable::Table::open(o.segment, open_options(o.owner));
  const auto state = table.get_state(o.provider);
  if (!state) {
    if (!o.quiet)
      fmt::print("{}: healthy (not in table '{}': never recorded, so not known to be down)\n",
                 o.provider, o.segment);
    return kExitOk;
  }
  const std::int64_t now = healthtable::Instant::now().mono_ns;
  const bool available = state->available(now);
  if (!o.quiet) fmt::print("{}\n", explain(*state, available, now, o.segment));
  return available ? kExitOk : kExitUnhealthy;
}

} // namespace

void setup_check(CLI::App& app) {
  auto opt = std::make_shared<CheckOptions>();
  CLI::App* sub = app.add_subcommand(
      "check", "Exit 0 if PROVIDER is available now (or unknown), 1 if it is not; with --writer, "
               "0 if the table's writer is attached and fresh, 1 if it is gone or STALE");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_option("PROVIDER", opt->provider, "Provider name (not with --writer)");
  sub->add_flag("--writer", opt->writer,
                "Check the table's writer instead of a provider: one line, OK: or CRITICAL:");
  sub->add_option("--stale-after", opt->stale_after,
                  "With --writer: call the writer stale when its last heartbeat is older than "
                  "this (default: 3 of the intervals the writer promised; 0 never)")
      ->type_name("DURATION");
  sub->add_flag("-q,--quiet", opt->quiet, "Print nothing; only the exit code answers");
  add_owner_option(*sub, opt->owner);
  sub->callback([opt] { finish(run_check(*opt)); });
}

} // namespace healthctl
