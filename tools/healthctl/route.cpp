// healthctl route NAME P1,P2,...: what Table::pick() answers for that chain
// now, and why: the first available provider, or the panic pick, or none
// with the Retry-After a gateway would send. Exit 0 for an available pick,
// kExitPanicPick for a panic pick, kExitNoRoute when nothing is picked.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace healthctl {
namespace {

namespace ht = healthtable;

struct RouteOptions {
  std::string segment;
  std::string owner;            ///< --owner: empty for the library's default
  std::string chain;            ///< "P1,P2,..."
  std::string policy = "panic"; ///< --policy: "panic" or "none"
  bool json = false;
};

ht::PickPolicy policy_of(const RouteOptions& o) {
  return o.policy == "none" ? ht::PickPolicy::none : ht::PickPolicy::panic; // IsMember checked it
}

/// The chain's names, in order, each one a valid provider name.
std::vector<std::string> parse_chain(const std::string& text, const std::string& segment) {
  if (text.find_first_not_of(", ") == std::string::npos)
    throw ht::Error(ht::Errc::invalid_argument,
                    fmt::format("the chain '{}' names no provider; list them in order, comma "
                                "separated: 'healthctl route {} groq,openai'",
                                printable(text), segment));
  std::vector<std::string> names;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    names.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (names.back().empty())
      throw ht::Error(ht::Errc::invalid_name,
                      fmt::format("provider {} of the chain '{}' is empty; separate names with "
                                  "single commas",
                                  names.size(), printable(text)));
    try {
      ht::validate_provider_name(names.back());
    } catch (const ht::Error& e) {
      throw ht::Error(e.code(), fmt::format("provider {} of the chain '{}': {}", names.size(),
                                            printable(text), e.what()));
    }
    if (comma == std::string::npos) return names;
    start = comma + 1;
  }
}

/// One provider of the chain as this process sees it now.
struct Member {
  ht::ProviderState state;
  bool available = false;
  std::optional<std::int64_t> back_in_ns; ///< unavailable: when it is back; nothing: never
};

Member member(const ht::Table& table, ht::Handle h, const ht::Instant& now) {
  Member m;
  m.state = table.get_state(h);
  // The chain of one: the same answer pick() gives for it, ramp included.
  const std::array<ht::Handle, 1> one{h};
  const ht::Pick p = table.pick(one, now, ht::PickPolicy::none);
  m.available = p.available;
  if (p.retry_at) m.back_in_ns = p.retry_at->mono_ns - now.mono_ns;
  return m;
}

/// Why an unavailable provider is unavailable: "tripped after 2
/// consecutive failures, http 503".
std::string cause(const Member& m, const ht::Instant& now, const std::string& segment) {
  const ht::ProviderState& s = m.state;
  const std::string error = s.last_error ? ", " + printable(*s.last_error) : "";
  if (s.override_mode == ht::Override::forced_down &&
      (s.override_info.until_mono_ns == 0 || now.mono_ns < s.override_info.until_mono_ns)) {
    const ht::OverrideInfo& o = s.override_info;
    std::string text = "forced down";
    if (o.uid) text += " by " + user_name(*o.uid);
    if (!o.reason.empty()) text += ", reason '" + printable(o.reason) + "'";
    if (o.until_mono_ns == 0)
      text += fmt::format("; 'healthctl set {} {} auto' undoes it", segment, printable(s.name));
    return text;
  }
  if (s.unhealthy_until_mono_ns > now.mono_ns)
    return s.healthy
               ? fmt::format("cooling down after {}{}", ht::class_name(s.last_class), error)
               : fmt::format("tripped after {}{}", count_failures(s.consecutive_failures), error);
  // Past its deadline (a window's, or an expired override's) yet not back:
  // the slow-start ramp, from this process's offset into it.
  const std::int64_t ended =
      std::max(s.unhealthy_until_mono_ns, s.override_mode == ht::Override::forced_down
                                              ? s.override_info.until_mono_ns
                                              : std::int64_t{0});
  return fmt::format("slow start: its window ended {} ago, and this process's turn in the {} "
                     "ramp comes later",
                     format_age(now.mono_ns - ended), format_age(s.ramp_ns));
}

/// "openai unavailable for 42s more: tripped after 2 consecutive failures".
std::string unavailable(const Member& m, const ht::Instant& now, const std::string& segment) {
  const std::string name = printable(m.state.name);
  const std::string why = cause(m, now, segment);
  if (!m.back_in_ns) return fmt::format("{} unavailable until set back: {}", name, why);
  return fmt::format("{} unavailable for {} more: {}", name, format_age(*m.back_in_ns), why);
}

/// Whole seconds for an HTTP Retry-After: rounded up, at least 1.
std::int64_t retry_after_s(std::int64_t in_ns) {
  return std::max<std::int64_t>(1, (in_ns + 999'999'999) / 1'000'000'000);
}

int exit_for(const ht::Pick& p) {
  if (p.available) return kExitOk;
  return p.panic ? kExitPanicPick : kExitNoRoute;
}

void print_text(const ht::Pick& p, const std::vector<Member>& chain, const ht::Instant& now,
                const std::string& segment) {
  const auto details = [&] {
    for (const Member& m : chain)
      fmt::print("  {}\n", unavailable(m, now, segment));
  };
  switch (p.reason) {
  case ht::PickReason::available: {
    const Member& picked = chain[*p.index];
    std::string skipped;
    for (std::size_t i = 0; i < *p.index; ++i)
      skipped += (skipped.empty() ? "" : "; ") + unavailable(chain[i], now, segment);
    fmt::print(
        "{}: first available of {}{}{}\n", printable(picked.state.name), chain.size(),
        skipped.empty() ? "" : " (" + skipped + ")",
        picked.state.registered
            ? ""
            : fmt::format("; it is not in table '{}', and unknown providers are healthy", segment));
    return;
  }
  case ht::PickReason::panic:
    fmt::print("panic pick: {}, whose window ends first (in {}); every provider of the chain is "
               "unavailable\n",
               printable(chain[*p.index].state.name),
               format_age(p.retry_at->mono_ns - now.mono_ns));
    details();
    return;
  case ht::PickReason::none: {
    // The text's figure is the header's, so the two never disagree by a rounding.
    const std::int64_t after = retry_after_s(p.retry_at->mono_ns - now.mono_ns);
    fmt::print("none: every provider is unavailable; retry in {} (Retry-After: {})\n",
               format_age(after * 1'000'000'000), after);
    details();
    return;
  }
  case ht::PickReason::forced_down:
    fmt::print("none: every provider of the chain is forced down with no expiry, so there is no "
               "time to retry; 'healthctl set {} PROVIDER auto' lifts an override\n",
               segment);
    details();
    return;
  case ht::PickReason::empty: return; // parse_chain() refuses an empty chain
  }
}

nlohmann::ordered_json to_json(const ht::Pick& p, const std::vector<Member>& chain,
                               const ht::Instant& now, const RouteOptions& o) {
  using nlohmann::ordered_json;
  ordered_json doc;
  doc["table"] = o.segment;
  doc["policy"] = o.policy;
  doc["pick"] = p.index ? ordered_json(chain[*p.index].state.name) : ordered_json(nullptr);
  doc["index"] = p.index ? ordered_json(*p.index) : ordered_json(nullptr);
  doc["available"] = p.available;
  doc["panic"] = p.panic;
  doc["reason"] = ht::pick_reason_name(p.reason);
  if (p.retry_at) {
    doc["retry_at"] = unix_seconds(p.retry_at->unix_ns);
    doc["retry_after"] = retry_after_s(p.retry_at->mono_ns - now.mono_ns);
  } else {
    doc["retry_at"] = nullptr;
    doc["retry_after"] = nullptr;
  }
  doc["chain"] = ordered_json::array();
  for (const Member& m : chain) {
    ordered_json j;
    j["name"] = m.state.name;
    j["registered"] = m.state.registered;
    j["available"] = m.available;
    j["available_in"] = m.available    ? ordered_json(0.0)
                        : m.back_in_ns ? ordered_json(static_cast<double>(*m.back_in_ns) / 1e9)
                                       : ordered_json(nullptr); // forced down, no expiry
    j["why"] = m.available ? ordered_json(nullptr) : ordered_json(cause(m, now, o.segment));
    doc["chain"].push_back(std::move(j));
  }
  return doc;
}

int run_route(const RouteOptions& o) {
  // Validate first: an invalid name is never in the table, and "unknown,
  // so healthy" would hide the typo.
  const std::vector<std::string> names = parse_chain(o.chain, o.segment);
  const ht::Table table = ht::Table::open(o.segment, open_options(o.owner));
  std::vector<ht::Handle> handles;
  for (const auto& n : names)
    handles.push_back(table.handle(n));
  const ht::Instant now = ht::Instant::now();
  const ht::Pick p = table.pick(handles, now, policy_of(o));
  std::vector<Member> chain;
  for (const ht::Handle h : handles)
    chain.push_back(member(table, h, now));
  if (o.json)
    fmt::print("{}\n", to_json_text(to_json(p, chain, now, o)));
  else
    print_text(p, chain, now, o.segment);
  return exit_for(p);
}

} // namespace

void setup_route(CLI::App& app) {
  auto opt = std::make_shared<RouteOptions>();
  CLI::App* sub = app.add_subcommand(
      "route", fmt::format("Show which provider of a chain a router would pick now, and why "
                           "(exit 0: an available one; {}: a panic pick; {}: none)",
                           kExitPanicPick, kExitNoRoute));
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_option("CHAIN", opt->chain, "Providers in order of preference: P1,P2,...")->required();
  sub->add_option("--policy", opt->policy,
                  "When none is available: panic (the one whose window ends first) or none")
      ->check(CLI::IsMember({"panic", "none"}));
  sub->add_flag("--json", opt->json, "Print one JSON document");
  add_owner_option(*sub, opt->owner);
  sub->callback([opt] { finish(run_route(*opt)); });
}

} // namespace healthctl
