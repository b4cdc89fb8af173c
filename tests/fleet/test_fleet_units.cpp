// The fleet link's pieces without Redis: the signed message format, the
// replay window, the [fleet] config, and what a peer's outcome may do to
// the breaker (lengthen a deadline, nothing else).
#include "config.hpp"
#include "fleet_message.hpp"
#include "fleet_replay.hpp"
#include "servers.hpp"

#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>
#include <sys/stat.h>

using namespace healthtable;
using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef";

Envelope sample() {
  return Envelope{"prod",
                  "gw-1",
                  "abcd",
                  7,
                  1'764'772'800'000'000'000,
                  Fact{FactKind::cooldown, "openai", FailureClass::rate_limited,
                       1'764'772'830'000'000'000, "http 429"}};
}

Refusal refusal_of(const std::string& payload, const std::string& secret = kSecret) {
  auto d = decode(payload, secret);
  REQUIRE(std::holds_alternative<Refusal>(d));
  return std::get<Refusal>(d);
}

} // namespace

TEST_CASE("a signed fact decodes to what was sent and any change to it is refused") {
  const std::string wire = encode(sample(), kSecret);
  CHECK(wire.rfind("1 ", 0) == 0);
  auto d = decode(wire, kSecret);
  REQUIRE(std::holds_alternative<Envelope>(d));
  const Envelope& e = std::get<Envelope>(d);
  CHECK(e.fleet == "prod");
  CHECK(e.host == "gw-1");
  CHECK(e.instance == "abcd");
  CHECK(e.seq == 7);
  CHECK(e.time_unix_ns == sample().time_unix_ns);
  CHECK(e.fact.kind == FactKind::cooldown);
  CHECK(e.fact.provider == "openai");
  CHECK(e.fact.failure_class == FailureClass::rate_limited);
  CHECK(e.fact.deadline_unix_ns == sample().fact.deadline_unix_ns);
  CHECK(e.fact.reason == "http 429");

  std::string tampered = wire;
  tampered[tampered.find("830")] = '9'; // a later deadline
  CHECK(refusal_of(tampered) == Refusal::bad_mac);
  CHECK(refusal_of(wire, "another secret of enough length") == Refusal::bad_mac);
  CHECK(refusal_of("2" + wire.substr(1)) == Refusal::bad_version);
  CHECK(refusal_of("") == Refusal::malformed);
  CHECK(refusal_of("garbage") == Refusal::malformed);
  CHECK(refusal_of("1 short {}") == Refusal::malformed);
  CHECK(refusal_of(std::string(5000, 'x')) == Refusal::malformed);
  // Authentic but not a fact: the JSON is checked after the MAC.
  for (const std::string body : {"{", "[]", "{\"v\":1}", "{\"v\":2}"}) {
    const std::string signed_junk = "1 " + hmac_hex(kSecret, body) + " " + body;
    CHECK(refusal_of(signed_junk) ==
          (body == "{\"v\":2}" ? Refusal::bad_version : Refusal::malformed));
  }
}

TEST_CASE("the replay window refuses duplicates and the too old but takes a late one") {
  ReplayWindow w;
  CHECK_FALSE(w.accept("a", "i1", 10));
  CHECK(w.accept("a", "i1", 10) == Refusal::duplicate);
  CHECK_FALSE(w.accept("a", "i1", 12));
  CHECK_FALSE(w.accept("a", "i1", 11)); // reordered: still new
  CHECK(w.accept("a", "i1", 11) == Refusal::duplicate);
  CHECK_FALSE(w.accept("a", "i1", 200));
  CHECK(w.accept("a", "i1", 12) == Refusal::old);
  CHECK_FALSE(w.accept("a", "i2", 1));  // a restarted sender: a sequence of its own
  CHECK_FALSE(w.accept("b", "i1", 10)); // another host
  CHECK(w.senders() == 3);
}

TEST_CASE("[fleet] config defaults and a secret others can read is refused") {
  TempDir dir;
  const auto key = dir.write("fleet.key", kSecret + "\n");
  ::chmod(key.c_str(), 0600);
  const std::string base = "segment = \"gw\"\n[[provider]]\nname = \"a\"\nhttp = "
                           "\"http://127.0.0.1:9/\"\nfleet_wide = true\n";
  const auto path = (dir / "healthprobe.toml").string();
  const Config cfg = parse_config(base + "[fleet]\nname = \"prod\"\nsecret_file = \"fleet.key\"\n"
                                         "host_id = \"h1\"\n",
                                  path);
  CHECK(cfg.fleet.enabled);
  CHECK(cfg.fleet.secret == kSecret); // the trailing newline is not the key's
  CHECK(cfg.fleet.share == class_bit(FailureClass::rate_limited));
  CHECK(cfg.fleet.trips);
  CHECK(cfg.fleet.channel() == "healthtable:fleet:prod");
  CHECK(cfg.fleet.redis_port == 6379);
  CHECK(cfg.providers[0].fleet_wide);
  CHECK_FALSE(parse_config(base, path).fleet.enabled); // no section: no fleet

  const auto error_of = [&](const std::string& text) {
    try {
      parse_config(base + text, path);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  ::chmod(key.c_str(), 0644);
  CHECK(error_of("[fleet]\nname = \"prod\"\nsecret_file = \"fleet.key\"\n")
            .find("fleet.secret_file: \"" + key.string() +
                  "\" is open to other users (mode 0644): chmod 0600") != std::string::npos);
  ::chmod(key.c_str(), 0600);
  CHECK(error_of("[fleet]\nname = \"prod\"\n").find("fleet.secret_file: missing") !=
        std::string::npos);
  CHECK(error_of("[fleet]\nsecret_file = \"fleet.key\"\n").find("fleet.name: missing") !=
        std::string::npos);
  CHECK(error_of("[fleet]\nname = \"prod\"\nsecret_file = \"fleet.key\"\nredis = \"nohost\"\n")
            .find("fleet.redis: \"nohost\": expected host:port") != std::string::npos);
  CHECK(error_of("[fleet]\nname = \"prod\"\nsecret_file = \"fleet.key\"\nuser = \"gw\"\n")
            .find("fleet.user: an ACL user needs its password") != std::string::npos);
  CHECK(error_of("[fleet]\nname = \"prod\"\nsecret_file = \"fleet.key\"\nshare = [\"nap\"]\n")
            .find("unknown failure class \"nap\"") != std::string::npos);
}

TEST_CASE("a peer's outcome lengthens a deadline and does nothing else") {
  SegmentName seg("fleet");
  FakeClock clock;
  Writer w = Writer::create(seg.str());
  w.add("p");
  const auto peer = [](FailureClass c, std::optional<std::chrono::nanoseconds> hint) {
    return Outcome{c, "peer h2: x", Source::peer, hint};
  };
  // A peer's success, or a hintless failure, changes nothing.
  CHECK(w.record("p", peer(FailureClass::none, std::nullopt), clock.now()) == Transition::none);
  CHECK(w.record("p", peer(FailureClass::server, std::nullopt), clock.now()) == Transition::none);
  auto s = w.table().get_state("p");
  CHECK(s->last_check_unix_ns == 0);
  CHECK(s->failures == 0);

  // A deadline: the provider is out until then, but nothing counts.
  CHECK(w.record("p", peer(FailureClass::server, 30s), clock.now()) == Transition::cooldown);
  s = w.table().get_state("p");
  CHECK(s->healthy);
  CHECK(s->consecutive_failures == 0);
  CHECK(s->failures == 0);
  CHECK(s->last_source == Source::peer);
  CHECK_FALSE(s->available(clock.mono()));
  const std::int64_t until = s->unhealthy_until_mono_ns;
  CHECK(until == clock.mono() + seconds_ns(30));
  // A shorter one shortens nothing; the policy's max_hint caps a long one.
  CHECK(w.record("p", peer(FailureClass::rate_limited, 5s), clock.now()) == Transition::none);
  CHECK(w.table().get_state("p")->unhealthy_until_mono_ns == until);
  CHECK(w.record("p", peer(FailureClass::rate_limited, 100h), clock.now()) == Transition::cooldown);
  CHECK(w.table().get_state("p")->unhealthy_until_mono_ns == clock.mono() + seconds_ns(3600));

  // Tripped locally: a peer's success does not close it, a peer fact
  // does not count as a failed trial.
  w.record("q", Outcome{FailureClass::server, "503", Source::probe, std::nullopt}, clock.now());
  w.record("q", Outcome{FailureClass::server, "503", Source::probe, std::nullopt}, clock.now());
  REQUIRE_FALSE(w.table().get_state("q")->healthy);
  const auto trips = w.table().get_state("q")->trips;
  CHECK(w.record("q", peer(FailureClass::none, std::nullopt), clock.now()) == Transition::none);
  CHECK_FALSE(w.table().get_state("q")->healthy);
  clock.advance(61s); // half-open
  w.record("q", peer(FailureClass::server, 1s), clock.now());
  CHECK(w.table().get_state("q")->trips == trips);
  CHECK(w.table().get_state("q")->consecutive_failures == 2);
}
