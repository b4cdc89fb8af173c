// The fleet's wire format: one fact a prober learned about a provider,
// signed with the fleet's shared secret, as one Redis PUBLISH payload.
//
//   "1 " <64 hex digits: HMAC-SHA256 of the JSON> " " <JSON>
//   {"v":1,"fleet":"prod","host":"gw-1","instance":"9f2c...","seq":42,
//    "time":1764772800123456789,"provider":"openai","kind":"cooldown",
//    "class":"rate_limited","deadline":1764772830123456789,"reason":"http 429"}
//
// Times are wall-clock Unix nanoseconds: the only clock hosts share. The
// MAC covers the exact JSON bytes, so nothing is re-serialised before it is
// checked (docs/fleet.md).
#pragma once

#include <healthtable/layout.hpp>
#include <healthtable/table.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace healthtable::prober {

inline constexpr int kFleetVersion = 1;

/// What a fact says about a provider.
enum class FactKind : std::uint8_t {
  cooldown, ///< a rate limit (or another shared class's retry hint) until `deadline`
  trip,     ///< a fleet-wide provider's breaker tripped; its window ends at `deadline`
};
std::string_view fact_kind_name(FactKind k) noexcept;

struct Fact {
  FactKind kind = FactKind::cooldown;
  std::string provider;
  FailureClass failure_class = FailureClass::rate_limited;
  std::int64_t deadline_unix_ns = 0;
  std::string reason;
};

/// A fact with who sent it, when, and in which order.
struct Envelope {
  std::string fleet;
  std::string host;     ///< the sender's host id
  std::string instance; ///< the sender process's random id: a restart starts a new sequence
  std::uint64_t seq = 0;
  std::int64_t time_unix_ns = 0; ///< when it was sent
  Fact fact;
};

/// Why a message was refused. The names are the `reason` label of
/// healthprobe_fleet_refused_total (docs/fleet.md).
enum class Refusal : std::uint8_t {
  malformed,        ///< not "1 MAC JSON", bad JSON, a field missing or of the wrong type
  bad_version,      ///< a version this prober does not speak
  bad_mac,          ///< the MAC does not match the shared secret
  wrong_fleet,      ///< signed for another fleet on the same channel
  own,              ///< our own message, echoed back
  duplicate,        ///< a sequence number already seen from that sender instance
  old,              ///< a sequence number below the sender's replay window
  skew,             ///< sent further from our clock than max_skew
  expired,          ///< the deadline has passed
  too_far,          ///< the deadline is beyond max_deadline from now
  unknown_provider, ///< a provider this prober does not probe
  not_shared,       ///< a class or kind this prober does not take from peers
};
inline constexpr std::size_t kRefusals = 12;
std::string_view refusal_name(Refusal r) noexcept;

/// HMAC-SHA256 of `data` under `key`, as 64 lower-case hex digits.
std::string hmac_hex(std::string_view key, std::string_view data);

/// The signed payload of `e`.
std::string encode(const Envelope& e, std::string_view secret);

/// Parses and authenticates a payload: the version, the MAC (in constant
/// time) and then the JSON, in that order, so nothing unauthenticated is
/// parsed as JSON.
std::variant<Envelope, Refusal> decode(std::string_view payload, std::string_view secret);

} // namespace healthtable::prober
