#include "fleet_message.hpp"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace healthtable::prober {

namespace {

constexpr std::size_t kMacHex = 64;
/// A payload longer than this is refused before any work: a fact is a
/// few hundred bytes.
constexpr std::size_t kMaxPayload = 4096;

std::optional<FailureClass> class_of(std::string_view name) {
  for (std::size_t c = 1; c < kFailureClasses; ++c)
    if (class_name(static_cast<FailureClass>(c)) == name) return static_cast<FailureClass>(c);
  return std::nullopt;
}

} // namespace

std::string_view fact_kind_name(FactKind k) noexcept {
  return k == FactKind::trip ? "trip" : "cooldown";
}

std::string_view refusal_name(Refusal r) noexcept {
  switch (r) {
  case Refusal::malformed: return "malformed";
  case Refusal::bad_version: return "bad_version";
  case Refusal::bad_mac: return "bad_mac";
  case Refusal::wrong_fleet: return "wrong_fleet";
  case Refusal::own: return "own";
  case Refusal::duplicate: return "duplicate";
  case Refusal::old: return "old";
  case Refusal::skew: return "skew";
  case Refusal::expired: return "expired";
  case Refusal::too_far: return "too_far";
  case Refusal::unknown_provider: return "unknown_provider";
  case Refusal::not_shared: return "not_shared";
  }
  return "unknown";
}

std::string hmac_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += digits[mac[i] >> 4];
    out += digits[mac[i] & 15];
  }
  return out;
}

std::string encode(const Envelope& e, std::string_view secret) {
  const nlohmann::json j = {{"v", kFleetVersion},
                            {"fleet", e.fleet},
                            {"host", e.host},
                            {"instance", e.instance},
                            {"seq", e.seq},
                            {"time", e.time_unix_ns},
                            {"provider", e.fact.provider},
                            {"kind", fact_kind_name(e.fact.kind)},
                            {"class", class_name(e.fact.failure_class)},
                            {"deadline", e.fact.deadline_unix_ns},
                            {"reason", e.fact.reason}};
  // Invalid UTF-8 in a reason is replaced, never thrown on.
  const std::string body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return std::to_string(kFleetVersion) + " " + hmac_hex(secret, body) + " " + body;
}

std::variant<Envelope, Refusal> decode(std::string_view payload, std::string_view secret) {
  if (payload.size() > kMaxPayload) return Refusal::malformed;
  const std::size_t sp = payload.find(' ');
  if (sp == std::string_view::npos || sp == 0) return Refusal::malformed;
  if (payload.substr(0, sp) != std::to_string(kFleetVersion)) {
    const std::string_view v = payload.substr(0, sp);
    const bool digits = v.find_first_not_of("0123456789") == std::string_view::npos;
    return digits ? Refusal::bad_version : Refusal::malformed;
  }
  const std::string_view rest = payload.substr(sp + 1);
  if (rest.size() < kMacHex + 2 || rest[kMacHex] != ' ') return Refusal::malformed;
  const std::string_view mac = rest.substr(0, kMacHex);
  const std::string_view body = rest.substr(kMacHex + 1);
  const std::string want = hmac_hex(secret, body);
  if (CRYPTO_memcmp(want.data(), mac.data(), kMacHex) != 0) return Refusal::bad_mac;

  // Authenticated: a peer with the secret wrote it. Still checked field by
  // field: a peer of another version, or a bug, must not crash us.
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Refusal::malformed;
  const auto str = [&](const char* k) -> const std::string* {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  const auto integer = [&](const char* k) -> std::optional<std::int64_t> {
    auto it = j.find(k);
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<std::int64_t>();
  };
  const auto v = integer("v");
  if (!v) return Refusal::malformed;
  if (*v != kFleetVersion) return Refusal::bad_version;
  const std::string *fleet = str("fleet"), *host = str("host"), *instance = str("instance"),
                    *provider = str("provider"), *kind = str("kind"), *cls = str("class"),
                    *reason = str("reason");
  const auto seq = integer("seq"), time = integer("time"), deadline = integer("deadline");
  if (!fleet || !host || !instance || !provider || !kind || !cls || !reason || !seq || !time ||
      !deadline || *seq < 0 || host->empty() || instance->empty() || provider->empty())
    return Refusal::malformed;
  Envelope e;
  e.fleet = *fleet;
  e.host = *host;
  e.instance = *instance;
  e.seq = static_cast<std::uint64_t>(*seq);
  e.time_unix_ns = *time;
  e.fact.provider = *provider;
  e.fact.deadline_unix_ns = *deadline;
  e.fact.reason = *reason;
  if (*kind == "cooldown")
    e.fact.kind = FactKind::cooldown;
  else if (*kind == "trip")
    e.fact.kind = FactKind::trip;
  else
    return Refusal::malformed;
  const auto c = class_of(*cls);
  if (!c) return Refusal::malformed;
  e.fact.failure_class = *c;
  return e;
}

} // namespace healthtable::prober
