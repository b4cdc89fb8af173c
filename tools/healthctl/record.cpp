// healthctl record NAME PROVIDER success|failure: feeds one outcome through
// the circuit breaker, as the prober would. Takes the writer lock for the
// moment it runs; while a prober holds it, asks the prober to record the
// outcome over its control socket instead.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace healthctl {
namespace {

struct RecordOptions {
  std::string segment;
  std::string provider;
  std::string outcome; ///< "success" or "failure"
  std::string reason;
};

constexpr std::string_view kDefaultReason = "recorded with healthctl";

std::string describe(const healthtable::ProviderState& p, healthtable::Transition t,
                     const healthtable::Policy& policy, bool success) {
  const auto backoff = healthtable::format_duration(policy.backoff);
  std::string line;
  switch (t) {
  case healthtable::Transition::tripped:
    line = fmt::format("{}: tripped ({}); unhealthy for {}", p.name,
                       count_failures(p.consecutive_failures), backoff);
    break;
  case healthtable::Transition::rearmed:
    line = fmt::format("{}: still unhealthy ({}); window re-armed, unhealthy for {}", p.name,
                       count_failures(p.consecutive_failures), backoff);
    break;
  case healthtable::Transition::cooldown:
    line = fmt::format("{}: cooling down", p.name);
    break;
  case healthtable::Transition::recovered:
    line = fmt::format("{}: recovered; healthy again", p.name);
    break;
  case healthtable::Transition::none:
    line = success ? fmt::format("{}: healthy (success recorded)", p.name)
                   : fmt::format("{}: failure {} of {} recorded; still healthy", p.name,
                                 p.consecutive_failures, policy.failure_threshold);
    break;
  }
  if (p.override_mode != healthtable::Override::automatic)
    line +=
        fmt::format("; override '{}' still decides", healthtable::override_name(p.override_mode));
  return line;
}

int run_record(const RecordOptions& o) {
  const bool success = o.outcome == "success";
  if (success && !o.reason.empty())
    throw healthtable::Error(healthtable::Errc::invalid_argument,
                             "--reason goes with a failure; a success clears the last error");
  healthtable::validate_provider_name(o.provider);
  const std::string reason(o.reason.empty() ? kDefaultReason : o.reason);
  // The prober gets the reason as the writer would keep it: one printable
  // line, cut to kReasonMax bytes.
  const std::string line =
      success ? fmt::format("record {} success", o.provider)
              : fmt::format("record {} failure {}", o.provider,
                            healthtable::sanitize_reason(reason, healthtable::kReasonMax));
  return write_or_ask_prober(o.segment, line, [&](healthtable::Writer& writer) {
    const healthtable::Transition t =
        success ? writer.mark_healthy(o.provider) : writer.mark_unhealthy(o.provider, reason);
    const auto state = writer.table().get_state(o.provider);
    if (state) fmt::print("{}\n", describe(*state, t, writer.policy(), success));
    return kExitOk;
  });
}

} // namespace

void setup_record(CLI::App& app) {
  auto opt = std::make_shared<RecordOptions>();
  CLI::App* sub = app.add_subcommand(
      "record", "Feed one probe outcome through the circuit breaker (takes the writer lock, or "
                "asks the prober that holds it)");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_option("PROVIDER", opt->provider, "Provider name; registered if new")->required();
  sub->add_option("OUTCOME", opt->outcome, "success or failure")
      ->required()
      ->check(CLI::IsMember({"success", "failure"}));
  sub->add_option("--reason", opt->reason,
                  "The failure's reason, kept as last_error (at most " +
                      std::to_string(healthtable::kReasonMax) + " bytes); default: \"" +
                      std::string(kDefaultReason) + "\"");
  sub->callback([opt] { finish(run_record(*opt)); });
}

} // namespace healthctl
