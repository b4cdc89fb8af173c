#include <healthtable/override_text.hpp>

#include <healthtable/names.hpp>

namespace healthtable {

std::string describe_override(std::string_view segment, std::string_view provider,
                              const OverrideRequest& request, const Table& table) {
  const std::string p(provider);
  const std::string undo = "'healthctl set " + std::string(segment) + " " + p + " auto'";
  const std::string until =
      request.expires_after ? "for " + format_duration(*request.expires_after) + " or until " + undo
                            : "until " + undo;
  switch (request.mode) {
  case Override::forced_down: return p + ": forced down; unavailable " + until;
  case Override::forced_up: return p + ": forced up; available whatever the breaker says, " + until;
  case Override::automatic: break;
  }
  const auto state = table.get_state(provider);
  const bool available = !state || state->available(Instant::now().mono_ns);
  return p + ": override cleared; the circuit breaker decides (now " +
         (available ? "available" : "unavailable") + ")";
}

Error override_of_unknown(std::string_view segment, std::string_view provider) {
  const std::string seg(segment);
  return Error(Errc::unknown_provider,
               "provider '" + std::string(provider) + "' is not in table '" + seg +
                   "'; 'healthctl dump " + seg +
                   "' lists the providers it has, and --create registers it");
}

} // namespace healthtable
