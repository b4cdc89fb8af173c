// record_outcome(): the one line healthctl prints and the prober replies for
// every kind of outcome (classes, cooldowns, hints, rises, overrides), on a
// fake clock; and parse_failure_class(), the names both accept.
#include <healthtable/outcome_text.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace healthtable;
using namespace std::chrono_literals;
using test::FakeClock;
using test::SegmentName;

namespace {

struct Fixture {
  SegmentName seg{"outcome-text"};
  FakeClock clock;
  Writer w;

  explicit Fixture(const Policy& policy = {}) : w(create(seg, policy)) {}

  static Writer create(const SegmentName& seg, const Policy& policy) {
    CreateOptions o;
    o.policy = policy;
    return Writer::create(seg.str(), o);
  }

  std::string fail(FailureClass cls, std::optional<std::chrono::nanoseconds> hint = {},
                   const std::string& p = "groq") {
    return record_outcome(w, p, Outcome{cls, "http 5xx", Source::report, hint}, clock.now()).reply;
  }
  std::string succeed(const std::string& p = "groq") {
    return record_outcome(w, p, Outcome{FailureClass::none, {}, Source::report, {}}, clock.now())
        .reply;
  }
};

} // namespace

TEST_CASE("outcome text: the reference breaker's lines, word for word") {
  Fixture f;
  CHECK(f.fail(FailureClass::other) == "groq: failure 1 of 2 recorded; still healthy");
  CHECK(f.fail(FailureClass::other) == "groq: tripped (2 consecutive failures); unhealthy for 1m");
  f.clock.advance(10s);
  CHECK(f.fail(FailureClass::other) ==
        "groq: still unhealthy (3 consecutive failures); window re-armed, unhealthy for 1m");
  CHECK(f.succeed() == "groq: recovered; healthy again");
  CHECK(f.succeed() == "groq: healthy (success recorded)");
}

TEST_CASE("outcome text: a counted class says which, a client error never counts") {
  Fixture f;
  CHECK(f.fail(FailureClass::timeout) == "groq: timeout, failure 1 of 2 recorded; still healthy");
  CHECK(f.fail(FailureClass::server) == "groq: tripped (2 consecutive failures); unhealthy for 1m");
  for (int i = 0; i < 5; ++i)
    CHECK(f.fail(FailureClass::client, {}, "ollama") ==
          "ollama: client error (client, not counted); still healthy");
  CHECK(f.w.table().get_state("ollama")->healthy);
  // Not counted while tripped: the window stands, and says how long.
  f.clock.advance(15s);
  CHECK(f.fail(FailureClass::client) ==
        "groq: client error (client, not counted); still unhealthy for 45s");
  f.clock.advance(50s);
  CHECK(f.fail(FailureClass::client) ==
        "groq: client error (client, not counted); still unhealthy (half-open)");
}

TEST_CASE("outcome text: a rate limit cools down for its hint, and a shorter hint says so") {
  Fixture f;
  CHECK(f.fail(FailureClass::rate_limited, 30s) ==
        "groq: rate limited (cooldown); unavailable for 30s");
  f.clock.advance(10s);
  CHECK(f.fail(FailureClass::rate_limited, 5s) ==
        "groq: rate limited (cooldown); still unavailable for 20s");
  f.clock.advance(500ms);
  CHECK(f.fail(FailureClass::rate_limited) ==
        "groq: rate limited (cooldown); still unavailable for 19.5s");
  CHECK(f.w.table().get_state("groq")->healthy);
  // Without a hint, the policy's cooldown (5 s by default).
  CHECK(f.fail(FailureClass::rate_limited, {}, "mistral") ==
        "mistral: rate limited (cooldown); unavailable for 5s");
  // A success closes nothing that was open, and the hint still stands.
  CHECK(f.succeed() == "groq: healthy (success recorded); unavailable for 19.5s (retry hint)");
  // Past the minute, whole seconds, rounded up.
  CHECK(f.fail(FailureClass::rate_limited, 90500ms, "cohere") ==
        "cohere: rate limited (cooldown); unavailable for 91s");
}

TEST_CASE("outcome text: a hint longer than the window is what a trip or re-arm waits for") {
  Fixture f;
  CHECK(f.fail(FailureClass::server, 2min) ==
        "groq: server error, failure 1 of 2 recorded; unavailable for 2m");
  f.clock.advance(30s);
  CHECK(f.fail(FailureClass::server) ==
        "groq: tripped (2 consecutive failures); unhealthy for 90s (retry hint)");
  CHECK(f.fail(FailureClass::timeout, 5min) ==
        "groq: still unhealthy (3 consecutive failures); window re-armed, unhealthy for 5m "
        "(retry hint)");
  CHECK(f.succeed() == "groq: recovered; healthy again; unavailable for 5m (retry hint)");
}

TEST_CASE("outcome text: rising after a trip, and an override that still decides") {
  Policy p;
  p.recover_after = 2;
  Fixture f(p);
  f.fail(FailureClass::other);
  f.fail(FailureClass::other);
  f.clock.advance(61s);
  CHECK(f.succeed() == "groq: success 1 of 2 recorded; still unhealthy");
  CHECK(f.succeed() == "groq: recovered; healthy again");
  f.w.set_override("groq", Override::forced_down);
  CHECK(f.fail(FailureClass::other) ==
        "groq: failure 1 of 2 recorded; still healthy; override 'down' still decides");
}

TEST_CASE("outcome text: the policy's class sets decide the words") {
  Policy p;
  p.counts = class_bit(FailureClass::rate_limited);
  p.cooldowns = class_bit(FailureClass::server);
  Fixture f(p);
  CHECK(f.fail(FailureClass::rate_limited) ==
        "groq: rate limited, failure 1 of 2 recorded; still healthy");
  CHECK(f.fail(FailureClass::server, {}, "b") == "b: server error (cooldown); unavailable for 5s");
  CHECK(f.fail(FailureClass::other, {}, "c") == "c: failure (other, not counted); still healthy");
}

TEST_CASE("outcome text: Recorded carries the transition, the state and the provider's policy") {
  Policy p;
  p.failure_threshold = 1;
  Fixture f;
  f.w.set_policy("groq", p);
  const Recorded r = record_outcome(
      f.w, "groq", Outcome{FailureClass::auth, "http 401", Source::admin, {}}, f.clock.now());
  CHECK(r.transition == Transition::tripped);
  CHECK(r.policy.failure_threshold == 1);
  CHECK(r.state.name == "groq");
  CHECK(r.state.last_class == FailureClass::auth);
  CHECK(r.state.last_source == Source::admin);
  CHECK(r.reply == "groq: tripped (1 consecutive failure); unhealthy for 1m");
}

TEST_CASE("parse_failure_class: class_name()'s names, none and others refused, listing them") {
  for (std::size_t c = 1; c < kFailureClasses; ++c) {
    const auto cls = static_cast<FailureClass>(c);
    CHECK(parse_failure_class(class_name(cls)) == cls);
  }
  const auto message = [](std::string_view name) {
    try {
      parse_failure_class(name, "--class");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_argument);
      return std::string(e.what());
    }
    FAIL("accepted " << name);
    return std::string();
  };
  CHECK(message("bogus") == "--class 'bogus' is not a failure class; use one of timeout, "
                            "connect, server, rate_limited, auth, client, other");
  CHECK(message("none").find("(a success is recorded as success)") != std::string::npos);
  CHECK(message("Timeout").starts_with("--class 'Timeout' is not"));
  CHECK(message("").starts_with("--class '' is not"));
}
