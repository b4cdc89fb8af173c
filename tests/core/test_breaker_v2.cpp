// Breaker v2 (docs/breaker.md), driven by a fake clock: failure classes,
// retry hints, growing windows, recover_after, expiring overrides, and how
// worker reports and probe results combine. The reference behaviour these
// extend is tests/core/test_breaker.cpp, unchanged.
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::FakeClock;
using test::SegmentName;

namespace {

Writer make(const SegmentName& seg, const Policy& policy = {}) {
  CreateOptions o;
  o.policy = policy;
  return Writer::create(seg.str(), o);
}

Outcome failure(FailureClass c, Source s = Source::probe,
                std::optional<std::chrono::nanoseconds> retry = {}) {
  Outcome o;
  o.failure_class = c;
  o.reason = "test";
  o.source = s;
  o.retry_after = retry;
  return o;
}

Outcome success(Source s = Source::probe) {
  Outcome o;
  o.source = s;
  return o;
}

ProviderState st(const Table& t, std::string_view p) {
  auto s = t.get_state(p);
  REQUIRE(s);
  return *s;
}

/// The deadline readers see, relative to `clock`'s now.
std::chrono::nanoseconds remaining(const Table& t, std::string_view p, const FakeClock& clock) {
  return std::chrono::nanoseconds(st(t, p).unhealthy_until_mono_ns - clock.mono());
}

/// Trips `p` with `threshold` counting failures.
void trip(Writer& w, std::string_view p, const FakeClock& clock, std::uint32_t threshold = 2) {
  for (std::uint32_t i = 0; i < threshold; ++i)
    w.record(p, failure(FailureClass::server), clock.now());
}

std::vector<EventRecord> events_of(const Table& t, EventKind k) {
  std::vector<EventRecord> out;
  for (const EventRecord& e : t.events().events)
    if (e.kind == k) out.push_back(e);
  return out;
}

} // namespace

// --- 1. Failure classes -----------------------------------------------------

TEST_CASE("classes: client errors never count; the counting classes trip") {
  SegmentName seg("v2-client");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  for (int i = 0; i < 10; ++i)
    CHECK(w.record("groq", failure(FailureClass::client), clock.now()) == Transition::none);
  ProviderState s = st(t, "groq");
  CHECK(s.healthy);
  CHECK(s.available(clock.mono()));
  CHECK(s.consecutive_failures == 0);
  CHECK(s.failures == 10); // counted as outcomes, not toward the threshold
  CHECK(s.class_failures[static_cast<std::size_t>(FailureClass::client)] == 10);
  CHECK(s.last_class == FailureClass::client);

  for (FailureClass c : {FailureClass::timeout, FailureClass::connect, FailureClass::server,
                         FailureClass::auth, FailureClass::other}) {
    const std::string p = "p" + std::to_string(static_cast<int>(c));
    CHECK(w.record(p, failure(c), clock.now()) == Transition::none);
    CHECK(w.record(p, failure(c), clock.now()) == Transition::tripped);
    CHECK_FALSE(st(t, p).available(clock.mono()));
    CHECK(st(t, p).last_class == c);
  }
}

TEST_CASE("classes: a client error between two counting failures does not break the run") {
  SegmentName seg("v2-client-run");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  w.record("groq", failure(FailureClass::server), clock.now());
  w.record("groq", failure(FailureClass::client), clock.now());
  CHECK(st(t, "groq").consecutive_failures == 1);
  CHECK(w.record("groq", failure(FailureClass::timeout), clock.now()) == Transition::tripped);
}

TEST_CASE("classes: rate_limited cools down for the policy's cooldown instead of tripping") {
  SegmentName seg("v2-cooldown");
  Policy p;
  p.cooldown = 7s;
  auto w = make(seg, p);
  auto t = Table::open(seg.str());
  FakeClock clock;
  for (int i = 0; i < 5; ++i)
    w.record("groq", failure(FailureClass::rate_limited), clock.now());
  ProviderState s = st(t, "groq");
  CHECK(s.healthy); // not an outage: no trip, no transition
  CHECK(s.transitions == 0);
  CHECK(s.consecutive_failures == 0);
  CHECK_FALSE(s.available(clock.mono()));
  CHECK(remaining(t, "groq", clock) == 7s);
  CHECK(events_of(t, EventKind::tripped).empty());
  CHECK_FALSE(events_of(t, EventKind::cooldown).empty());

  clock.advance(7s);
  CHECK(st(t, "groq").available(clock.mono()));
  CHECK(t.is_healthy("groq", clock.mono()));
}

TEST_CASE("classes: per-provider policy decides what counts, the table default the rest") {
  SegmentName seg("v2-perprov");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  Policy lenient = w.policy();
  lenient.counts = class_bit(FailureClass::timeout) | class_bit(FailureClass::connect);
  w.set_policy("openai", lenient);
  CHECK(w.policy("openai").counts == lenient.counts);
  CHECK(w.policy().counts == kDefaultCounts); // the table default stays

  for (int i = 0; i < 4; ++i) {
    w.record("openai", failure(FailureClass::server), clock.now());
    w.record("groq", failure(FailureClass::server), clock.now());
  }
  CHECK(st(t, "openai").healthy); // 5xx does not count for openai
  CHECK_FALSE(st(t, "groq").healthy);
  w.record("openai", failure(FailureClass::timeout), clock.now());
  CHECK(w.record("openai", failure(FailureClass::timeout), clock.now()) == Transition::tripped);
}

// --- 2. Deadline hints ------------------------------------------------------

TEST_CASE("hints: a Retry-After makes the provider unavailable until it passes") {
  SegmentName seg("v2-hint");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  CHECK(w.record("groq", failure(FailureClass::rate_limited, Source::report, 30s), clock.now()) ==
        Transition::cooldown);
  CHECK(remaining(t, "groq", clock) == 30s);
  CHECK(st(t, "groq").unhealthy_until_unix_ns == clock.now().unix_ns + test::seconds_ns(30));

  clock.advance(10s); // a later, shorter hint does not shorten it
  w.record("groq", failure(FailureClass::rate_limited, Source::report, 5s), clock.now());
  CHECK(remaining(t, "groq", clock) == 20s);
  w.record("groq", failure(FailureClass::rate_limited, Source::report, 45s), clock.now());
  CHECK(remaining(t, "groq", clock) == 45s); // a longer one extends it

  clock.advance(45s - 1ns);
  CHECK_FALSE(t.is_healthy("groq", clock.mono()));
  clock.advance(1ns);
  CHECK(t.is_healthy("groq", clock.mono()));
}

TEST_CASE("hints: capped by max_hint; a hint on a counting failure adds to its trip") {
  SegmentName seg("v2-hint-cap");
  Policy p;
  p.max_hint = 10min;
  auto w = make(seg, p);
  auto t = Table::open(seg.str());
  FakeClock clock;
  w.record("groq", failure(FailureClass::rate_limited, Source::probe, 5h), clock.now());
  CHECK(remaining(t, "groq", clock) == 10min);

  // A 503 with Retry-After: 120 below the threshold: unavailable for the hint.
  w.record("openai", failure(FailureClass::server, Source::probe, 120s), clock.now());
  CHECK(st(t, "openai").healthy);
  CHECK(remaining(t, "openai", clock) == 120s);
  // The trip's 60 s window does not shorten the hint's 120 s.
  CHECK(w.record("openai", failure(FailureClass::server), clock.now()) == Transition::tripped);
  CHECK(remaining(t, "openai", clock) == 120s);
  // A hint past the window moves it out, and says so.
  w.record("mistral", failure(FailureClass::server), clock.now());
  w.record("mistral", failure(FailureClass::server, Source::probe, 300s), clock.now());
  CHECK(remaining(t, "mistral", clock) == 300s);
}

TEST_CASE("hints: a success closes the breaker but a standing hint still holds") {
  SegmentName seg("v2-hint-success");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  w.record("groq", failure(FailureClass::rate_limited, Source::report, 30s), clock.now());
  clock.advance(1s);
  w.record("groq", success(Source::report), clock.now());
  CHECK(st(t, "groq").healthy);
  CHECK_FALSE(st(t, "groq").available(clock.mono()));
  clock.advance(29s);
  CHECK(st(t, "groq").available(clock.mono()));
  // A shorter hint after a longer one, then a success: the longer one holds.
  w.record("openai", failure(FailureClass::rate_limited, Source::report, 30s), clock.now());
  w.record("openai", failure(FailureClass::rate_limited, Source::report, 5s), clock.now());
  w.record("openai", success(Source::report), clock.now());
  CHECK(remaining(t, "openai", clock) == 30s);
  // Once served, expire() clears it: readers are back on the one-load path.
  w.expire(clock.now());
  CHECK(st(t, "groq").unhealthy_until_mono_ns == 0);
}

// --- 3. Growing windows -----------------------------------------------------

TEST_CASE("windows: by default every trip's window is the backoff (the reference)") {
  SegmentName seg("v2-nogrow");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  trip(w, "groq", clock);
  for (int i = 0; i < 5; ++i) {
    CHECK(remaining(t, "groq", clock) == 60s);
    clock.advance(60s); // half-open
    CHECK(w.record("groq", failure(FailureClass::server), clock.now()) == Transition::rearmed);
  }
  CHECK(remaining(t, "groq", clock) == 60s);
}

TEST_CASE("windows: double with each failed trial up to max_backoff") {
  SegmentName seg("v2-grow");
  Policy p;
  p.backoff = 10s;
  p.max_backoff = 80s;
  auto w = make(seg, p);
  auto t = Table::open(seg.str());
  FakeClock clock;
  trip(w, "groq", clock);
  for (auto expect : {10s, 20s, 40s, 80s, 80s, 80s}) {
    CHECK(remaining(t, "groq", clock) == expect);
    CHECK(st(t, "groq").window_ns == std::chrono::nanoseconds(expect).count());
    clock.advance(expect); // the window ends: the next failure is a failed trial
    w.record("groq", failure(FailureClass::server), clock.now());
  }
  CHECK(st(t, "groq").trips == 7);
}

TEST_CASE("windows: a failure inside the window re-arms it at its length, without growing") {
  SegmentName seg("v2-rearm");
  Policy p;
  p.backoff = 10s;
  p.max_backoff = 80s;
  auto w = make(seg, p);
  auto t = Table::open(seg.str());
  FakeClock clock;
  trip(w, "groq", clock);
  clock.advance(4s);
  CHECK(w.record("groq", failure(FailureClass::server), clock.now()) == Transition::rearmed);
  CHECK(remaining(t, "groq", clock) == 10s);
  CHECK(st(t, "groq").trips == 1);
}

TEST_CASE("windows: trip memory: healthy long enough, the next trip starts from backoff") {
  SegmentName seg("v2-memory");
  Policy p;
  p.backoff = 10s;
  p.max_backoff = 160s;
  p.trip_memory = 5min;
  auto w = make(seg, p);
  auto t = Table::open(seg.str());
  FakeClock clock;
  trip(w, "groq", clock);
  clock.advance(10s);
  w.record("groq", failure(FailureClass::server), clock.now()); // 20 s
  clock.advance(20s);
  w.record("groq", success(), clock.now());
  CHECK(st(t, "groq").healthy);

  // Soon after recovering: the next trip remembers the last ones.
  clock.advance(1min);
  trip(w, "groq", clock);
  CHECK(remaining(t, "groq", clock) == 40s);
  clock.advance(40s);
  w.record("groq", success(), clock.now());

  // Healthy for the whole trip memory: a fresh start.
  clock.advance(5min);
  trip(w, "groq", clock);
  CHECK(remaining(t, "groq", clock) == 10s);
  CHECK(st(t, "groq").trips == 1);
}

TEST_CASE("windows: jitter moves each window within its bounds, and does move it") {
  SegmentName seg("v2-jitter");
  Policy p;
  p.backoff = 100s;
  p.jitter_permille = 100; // +-10%
  auto w = make(seg, p);
  auto t = Table::open(seg.str());
  FakeClock clock;
  std::set<std::int64_t> seen;
  for (int i = 0; i < 20; ++i) {
    const std::string name = "p" + std::to_string(i);
    trip(w, name, clock);
    const auto r = remaining(t, name, clock);
    CHECK(r >= 90s);
    CHECK(r <= 110s);
    seen.insert(r.count());
  }
  // 20 draws from 201 permille steps: all equal has probability 201^-19.
  CHECK(seen.size() > 1);
}

// --- 4. Rise ----------------------------------------------------------------

TEST_CASE("rise: recover_after successes in a row close the breaker; a failure starts over") {
  SegmentName seg("v2-rise");
  Policy p;
  p.recover_after = 3;
  auto w = make(seg, p);
  auto t = Table::open(seg.str());
  FakeClock clock;
  trip(w, "groq", clock);
  clock.advance(60s); // half-open
  CHECK(w.record("groq", success(), clock.now()) == Transition::none);
  CHECK(w.record("groq", success(), clock.now()) == Transition::none);
  CHECK_FALSE(st(t, "groq").healthy);
  CHECK(st(t, "groq").success_run == 2);
  // The trial failed: a new window, and the run starts again.
  CHECK(w.record("groq", failure(FailureClass::server), clock.now()) == Transition::rearmed);
  CHECK(st(t, "groq").success_run == 0);
  CHECK_FALSE(st(t, "groq").available(clock.mono()));
  clock.advance(60s);
  w.record("groq", success(), clock.now());
  w.record("groq", success(), clock.now());
  CHECK(w.record("groq", success(), clock.now()) == Transition::recovered);
  const ProviderState s = st(t, "groq");
  CHECK(s.healthy);
  CHECK(s.consecutive_failures == 0);
  CHECK(s.unhealthy_until_mono_ns == 0);
}

TEST_CASE("rise: the default, 1, closes on the first success (the reference)") {
  SegmentName seg("v2-rise1");
  auto w = make(seg);
  FakeClock clock;
  trip(w, "groq", clock);
  CHECK(w.record("groq", success(), clock.now()) == Transition::recovered);
}

// --- 5. Window ends announced to the prober ---------------------------------

TEST_CASE("expire: names each provider whose window ended, once") {
  SegmentName seg("v2-ended");
  Policy p;
  p.backoff = 10s;
  auto w = make(seg, p);
  FakeClock clock;
  trip(w, "groq", clock);
  clock.advance(5s);
  trip(w, "openai", clock);
  CHECK(w.expire(clock.now()).empty());
  clock.advance(5s);
  CHECK(w.expire(clock.now()) == std::vector<std::string>{"groq"});
  CHECK(w.expire(clock.now()).empty()); // announced already
  clock.advance(5s);
  CHECK(w.expire(clock.now()) == std::vector<std::string>{"openai"});
  // A failed trial sets a new window: its end is announced again.
  w.record("groq", failure(FailureClass::server), clock.now());
  clock.advance(10s);
  CHECK(w.expire(clock.now()) == std::vector<std::string>{"groq"});
}

// --- 7. Overrides that expire and say who ---------------------------------

TEST_CASE("overrides: expire for readers with no writer call, then expire() says so") {
  SegmentName seg("v2-ovr-expire");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  OverrideRequest down;
  down.mode = Override::forced_down;
  down.expires_after = 10min;
  down.reason = "maintenance";
  down.uid = 4321;
  w.set_override("groq", down, clock.now());
  ProviderState s = st(t, "groq");
  CHECK(s.override_mode == Override::forced_down);
  CHECK(s.override_info.reason == "maintenance");
  CHECK(s.override_info.uid == 4321u);
  CHECK(s.override_info.set_unix_ns == clock.now().unix_ns);
  CHECK(s.override_info.until_unix_ns == clock.now().unix_ns + test::seconds_ns(600));
  CHECK_FALSE(t.is_healthy("groq", clock.mono()));

  clock.advance(10min - 1ns);
  CHECK_FALSE(t.is_healthy("groq", clock.mono()));
  clock.advance(1ns); // a reader needs no writer to see it lapse
  CHECK(t.is_healthy("groq", clock.mono()));
  CHECK(st(t, "groq").available(clock.mono()));

  w.expire(clock.now());
  CHECK(st(t, "groq").override_mode == Override::automatic);
  const auto ev = events_of(t, EventKind::override);
  REQUIRE(ev.size() == 2);
  CHECK(ev.back().reason == "expired");
  CHECK(ev.back().from == static_cast<std::uint8_t>(Override::forced_down));
  CHECK(ev.back().to == static_cast<std::uint8_t>(Override::automatic));
}

TEST_CASE("overrides: a forced-up provider's breaker keeps counting underneath") {
  SegmentName seg("v2-ovr-up");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  OverrideRequest up;
  up.mode = Override::forced_up;
  up.expires_after = 1min;
  w.set_override("groq", up, clock.now());
  trip(w, "groq", clock);
  CHECK_FALSE(st(t, "groq").healthy);
  CHECK(t.is_healthy("groq", clock.mono())); // forced up
  clock.advance(1min);
  w.expire(clock.now());
  // The breaker's own window (60 s from the trip) has also just ended.
  CHECK(st(t, "groq").override_mode == Override::automatic);
  CHECK(t.is_healthy("groq", clock.mono()));
}

TEST_CASE("overrides: reset keeps them unless the scope says otherwise") {
  SegmentName seg("v2-ovr-reset");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  w.set_override("groq", Override::forced_down);
  trip(w, "openai", clock);
  w.reset();
  CHECK(st(t, "groq").override_mode == Override::forced_down);
  CHECK(st(t, "openai").healthy);
  w.reset("groq");
  CHECK(st(t, "groq").override_mode == Override::forced_down);
  w.reset("groq", ResetScope::state_and_overrides);
  CHECK(st(t, "groq").override_mode == Override::automatic);
}

// --- 9. Passive and active together ---------------------------------------

TEST_CASE("sources: a probe success does not erase failures workers reported since the last probe") {
  SegmentName seg("v2-sources");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  w.record("groq", failure(FailureClass::server, Source::report), clock.now());
  CHECK(w.record("groq", success(Source::probe), clock.now()) == Transition::none);
  CHECK(st(t, "groq").consecutive_failures == 1); // the health endpoint may not be the API
  CHECK(w.record("groq", failure(FailureClass::server, Source::report), clock.now()) ==
        Transition::tripped);

  // With nothing reported since, the next probe success closes it.
  clock.advance(60s);
  w.record("groq", success(Source::probe), clock.now()); // clears the report count
  CHECK_FALSE(st(t, "groq").healthy);
  CHECK(w.record("groq", success(Source::probe), clock.now()) == Transition::recovered);
}

TEST_CASE("sources: a worker's success, or probe_clears_reports, resets at once") {
  SegmentName seg("v2-sources-clear");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  w.record("groq", failure(FailureClass::server, Source::report), clock.now());
  w.record("groq", success(Source::report), clock.now());
  CHECK(st(t, "groq").consecutive_failures == 0);

  Policy p = w.policy();
  p.probe_clears_reports = true;
  w.set_policy("openai", p);
  w.record("openai", failure(FailureClass::server, Source::report), clock.now());
  w.record("openai", success(Source::probe), clock.now());
  CHECK(st(t, "openai").consecutive_failures == 0);
}

TEST_CASE("sources: with one source the reference semantics hold exactly") {
  SegmentName seg("v2-one-source");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  for (Source src : {Source::probe, Source::report}) {
    const std::string p = src == Source::probe ? "probed" : "reported";
    w.record(p, failure(FailureClass::other, src), clock.now());
    CHECK(w.record(p, success(src), clock.now()) == Transition::none);
    CHECK(st(t, p).consecutive_failures == 0);
    trip(w, p, clock);
    CHECK(remaining(t, p, clock) == 60s);
    clock.advance(30s);
    CHECK(w.record(p, failure(FailureClass::other, src), clock.now()) == Transition::rearmed);
    CHECK(remaining(t, p, clock) == 60s);
    clock.advance(60s);
    CHECK(w.record(p, success(src), clock.now()) == Transition::recovered);
  }
}

// --- 8. Events carry class, source and deadline ----------------------------

TEST_CASE("events: a trip and a cooldown say which class, from where, until when") {
  SegmentName seg("v2-events");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  FakeClock clock;
  w.record("groq", failure(FailureClass::timeout, Source::report), clock.now());
  w.record("groq", failure(FailureClass::timeout, Source::report), clock.now());
  w.record("openai", failure(FailureClass::rate_limited, Source::probe, 30s), clock.now());
  const auto trips = events_of(t, EventKind::tripped);
  REQUIRE(trips.size() == 1);
  CHECK(trips[0].failure_class == FailureClass::timeout);
  CHECK(trips[0].source == Source::report);
  CHECK(trips[0].until_unix_ns == clock.now().unix_ns + kDefaultBackoffNs);
  const auto cools = events_of(t, EventKind::cooldown);
  REQUIRE(cools.size() == 1);
  CHECK(cools[0].provider == "openai");
  CHECK(cools[0].failure_class == FailureClass::rate_limited);
  CHECK(cools[0].until_unix_ns == clock.now().unix_ns + test::seconds_ns(30));
}
