#include <healthtable/reset_text.hpp>

#include <cstdio>

namespace healthtable {
namespace {

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string joined(const std::vector<std::string>& names, const char* sep = ", ") {
  std::string out;
  for (const std::string& n : names)
    out += (out.empty() ? "" : sep) + n;
  return out;
}

/// Providers among `names` (every provider when empty) whose override the
/// reset kept.
std::vector<std::string> kept_overrides(const Table& table,
                                        const std::vector<std::string>& names) {
  std::vector<std::string> kept;
  if (names.empty()) {
    for (const ProviderState& s : table.snapshot())
      if (s.override_mode != Override::automatic) kept.push_back(s.name);
    return kept;
  }
  for (const std::string& n : names)
    if (const auto s = table.get_state(n); s && s->override_mode != Override::automatic)
      kept.push_back(n);
  return kept;
}

} // namespace

std::string apply_reset(Writer& writer, std::string_view segment,
                        const std::vector<std::string>& providers, ResetScope scope) {
  const std::string seg(segment);
  std::string reply;
  if (providers.empty()) {
    writer.reset(scope);
    const TableInfo info = writer.table().info();
    reply = "reset all " + std::to_string(info.used) + " provider" + (info.used == 1 ? "" : "s") +
            " of '" + seg + "'; generation now " + hex(info.generation);
  } else {
    // Writer::reset(name) throws unknown_provider with the library's message.
    for (const std::string& p : providers)
      if (!writer.table().find(p)) writer.reset(p, scope);
    for (const std::string& p : providers)
      writer.reset(p, scope);
    reply = "reset " + joined(providers) + " of '" + seg + "'";
  }
  if (scope == ResetScope::state_and_overrides) return reply;
  const std::vector<std::string> kept = kept_overrides(writer.table(), providers);
  if (kept.empty()) return reply;
  return reply + "; override" + (kept.size() == 1 ? "" : "s") + " kept on " + joined(kept) +
         " ('healthctl reset " + seg + (providers.empty() ? "" : " " + joined(kept, " ")) +
         " --overrides' clears " + (kept.size() == 1 ? "it" : "them") + ")";
}

} // namespace healthtable
