// healthctl record NAME PROVIDER success|failure: feeds one outcome through
// the circuit breaker, as the prober would. Takes the writer lock for the
// moment it runs; while a prober holds it, asks the prober to record the
// outcome over its control socket instead.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/outcome_text.hpp>
#include <healthtable/report.hpp>
#include <healthtable/retry_after.hpp>
#include <healthtable/writer.hpp>

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>

namespace healthctl {
namespace {

struct RecordOptions {
  std::string segment;
  std::string provider;
  std::string outcome; ///< "success" or "failure"
  std::string reason;
  std::string failure_class; ///< empty: other
  std::string retry_after;   ///< empty: no hint
};

constexpr std::string_view kDefaultReason = "recorded with healthctl";

/// --retry-after: what a Retry-After header says (seconds, an HTTP date) or
/// a duration as everywhere else in healthctl ("30s", "1500ms").
std::chrono::nanoseconds retry_hint(const std::string& value) {
  if (const auto hint = healthtable::parse_retry_after(value, healthtable::Instant::now().unix_ns))
    return *hint;
  try {
    return healthtable::parse_duration(value, "--retry-after");
  } catch (const healthtable::Error&) {
    throw healthtable::Error(
        healthtable::Errc::invalid_argument,
        fmt::format("--retry-after '{}' is not a Retry-After value (seconds, or an HTTP date such "
                    "as 'Sun, 06 Nov 1994 08:49:37 GMT') or a duration (30s, 1500ms, 2m)",
                    printable(value)));
  }
}

int run_record(const RecordOptions& o) {
  const bool success = o.outcome == "success";
  if (success) {
    const char* option = !o.reason.empty()          ? "--reason"
                         : !o.failure_class.empty() ? "--class"
                         : !o.retry_after.empty()   ? "--retry-after"
                                                    : nullptr;
    if (option)
      throw healthtable::Error(healthtable::Errc::invalid_argument,
                               fmt::format("{} goes with a failure; a success clears the last "
                                           "error and carries no class or retry hint",
                                           option));
  }
  healthtable::validate_provider_name(o.provider);
  healthtable::Outcome outcome;
  outcome.source = healthtable::Source::admin;
  std::string line = fmt::format("record {} success", o.provider);
  const std::string reason(o.reason.empty() ? kDefaultReason : o.reason);
  if (!success) {
    outcome.failure_class = o.failure_class.empty()
                                ? healthtable::FailureClass::other
                                : healthtable::parse_failure_class(o.failure_class, "--class");
    if (!o.retry_after.empty()) outcome.retry_after = retry_hint(o.retry_after);
    outcome.reason = reason;
    line = healthtable::failure_request(o.provider, reason, outcome.failure_class,
                                        outcome.retry_after);
  }
  return write_or_ask_prober(o.segment, line, [&](healthtable::Writer& writer) {
    fmt::print("{}\n", healthtable::record_outcome(writer, o.provider, outcome).reply);
    return kExitOk;
  });
}

} // namespace

void setup_record(CLI::App& app) {
  auto opt = std::make_shared<RecordOptions>();
  CLI::App* sub = app.add_subcommand(
      "record", "Feed one outcome through the circuit breaker (takes the writer lock, or asks the "
                "prober that holds it)");
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_option("PROVIDER", opt->provider, "Provider name; registered if new")->required();
  sub->add_option("OUTCOME", opt->outcome, "success or failure")
      ->required()
      ->check(CLI::IsMember({"success", "failure"}));
  sub->add_option("--reason", opt->reason,
                  "The failure's reason, kept as last_error (at most " +
                      std::to_string(healthtable::kReasonMax) + " bytes); default: \"" +
                      std::string(kDefaultReason) + "\"");
  sub->add_option("--class", opt->failure_class,
                  "The failure's class: timeout, connect, server, rate_limited, auth, client or "
                  "other (the default); the table's policy decides whether it counts toward a "
                  "trip or sets a cooldown");
  sub->add_option("--retry-after", opt->retry_after,
                  "A retry hint, as a Retry-After header gives it (seconds, or an HTTP date) or "
                  "a duration (30s): unavailable at least this long, capped by the policy's "
                  "max_hint; never shortens a deadline already set");
  sub->callback([opt] { finish(run_record(*opt)); });
}

} // namespace healthctl
