// The reference module's test file (../shared/seed), ported case by case to
// the shared-memory table: every Python test has a counterpart here, named
// after it, driven by a fake clock instead of sleeping.
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::FakeClock;
using test::SegmentName;

namespace {

Writer make(const SegmentName& seg, std::uint32_t threshold = 2,
            std::chrono::nanoseconds backoff = 60s) {
  CreateOptions o;
  o.policy.failure_threshold = threshold;
  o.policy.backoff = backoff;
  return Writer::create(seg.str(), o);
}

} // namespace

// --- Construction -----------------------------------------------------------

TEST_CASE("construction: defaults are threshold 2 and backoff 60s") {
  SegmentName seg("defaults");
  auto w = Writer::create(seg.str());
  CHECK(w.policy().failure_threshold == 2);
  CHECK(w.policy().backoff == 60s);
  const auto info = w.table().info();
  CHECK(info.failure_threshold == 2);
  CHECK(info.backoff_ns == 60'000'000'000);
  CHECK(info.capacity == 64);
}

TEST_CASE("construction: invalid threshold rejected") {
  SegmentName seg("thr0");
  CreateOptions o;
  o.policy.failure_threshold = 0;
  try {
    Writer::create(seg.str(), o);
    FAIL("threshold 0 was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    CHECK(std::string(e.what()).find("failure_threshold") != std::string::npos);
  }
  // Nothing was left behind.
  CHECK_THROWS_AS(Table::open(seg.str()), Error);
}

TEST_CASE("construction: invalid backoff rejected") {
  SegmentName seg("negbackoff");
  CreateOptions o;
  o.policy.backoff = -1s;
  try {
    Writer::create(seg.str(), o);
    FAIL("negative backoff was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    CHECK(std::string(e.what()).find("backoff") != std::string::npos);
  }
}

// --- Default-healthy behaviour ------------------------------------------------

TEST_CASE("defaults: unknown provider is healthy") {
  SegmentName seg("unknown");
  auto w = make(seg);
  auto t = Table::open(seg.str());
  CHECK(t.is_healthy("ollama"));
  CHECK_FALSE(t.find("ollama").has_value());
}

TEST_CASE("defaults: unknown provider has no state") {
  SegmentName seg("nostate");
  auto w = make(seg);
  CHECK_FALSE(w.table().get_state("ollama").has_value());
}

TEST_CASE("defaults: snapshot includes expected names as zero state") {
  SegmentName seg("snapexp");
  auto w = make(seg);
  const std::vector<std::string> expected{"ollama", "groq"};
  const auto snap = w.table().snapshot(expected);
  REQUIRE(snap.size() == 2);
  CHECK(snap[0].name == "ollama");
  CHECK(snap[1].name == "groq");
  for (const auto& s : snap) {
    CHECK(s.healthy);
    CHECK(s.consecutive_failures == 0);
    CHECK_FALSE(s.registered);
  }
}

// --- Failure -> unhealthy state machine ---------------------------------------

TEST_CASE("failure: first failure does not trip") {
  SegmentName seg("first");
  auto w = make(seg, 2);
  FakeClock clock;
  CHECK(w.mark_unhealthy("ollama", "boom", clock.now()) == Transition::none);
  auto t = Table::open(seg.str());
  CHECK(t.is_healthy("ollama", clock.mono()));
  const auto st = t.get_state("ollama");
  REQUIRE(st.has_value());
  CHECK(st->consecutive_failures == 1);
  CHECK(st->healthy);
  CHECK(st->last_error == "boom");
}

TEST_CASE("failure: reaching the threshold trips the breaker") {
  SegmentName seg("trip");
  auto w = make(seg, 2, 60s);
  FakeClock clock;
  w.mark_unhealthy("ollama", "fail-1", clock.now());
  CHECK(w.mark_unhealthy("ollama", "fail-2", clock.now()) == Transition::tripped);
  auto t = Table::open(seg.str());
  CHECK_FALSE(t.is_healthy("ollama", clock.mono()));
  const auto st = t.get_state("ollama");
  REQUIRE(st.has_value());
  CHECK_FALSE(st->healthy);
  CHECK(st->last_error == "fail-2");
  CHECK(st->unhealthy_until_unix_ns == clock.now().unix_ns + test::seconds_ns(60));
  CHECK(st->unhealthy_until_mono_ns == clock.mono() + test::seconds_ns(60));
  CHECK(st->transitions == 1);
}

TEST_CASE("failure: threshold 1 trips immediately") {
  SegmentName seg("thr1");
  auto w = make(seg, 1);
  FakeClock clock;
  CHECK(w.mark_unhealthy("ollama", "boom", clock.now()) == Transition::tripped);
  CHECK_FALSE(w.table().is_healthy("ollama", clock.mono()));
}

TEST_CASE("failure: mark_healthy clears the state") {
  SegmentName seg("clear");
  auto w = make(seg, 2);
  FakeClock clock;
  w.mark_unhealthy("ollama", "x", clock.now());
  w.mark_unhealthy("ollama", "x", clock.now());
  CHECK_FALSE(w.table().is_healthy("ollama", clock.mono()));
  clock.advance(1s);
  CHECK(w.mark_healthy("ollama", clock.now()) == Transition::recovered);
  CHECK(w.table().is_healthy("ollama", clock.mono()));
  const auto st = w.table().get_state("ollama");
  REQUIRE(st.has_value());
  CHECK(st->healthy);
  CHECK(st->consecutive_failures == 0);
  CHECK(st->unhealthy_until_unix_ns == 0);
  CHECK(st->unhealthy_until_mono_ns == 0);
  CHECK_FALSE(st->last_error.has_value());
  CHECK(st->last_check_unix_ns == clock.now().unix_ns);
  CHECK(st->transitions == 2);
}

// --- Backoff window -------------------------------------------------------------

TEST_CASE("backoff: unhealthy during the window") {
  SegmentName seg("window");
  auto w = make(seg, 1, 60s);
  FakeClock clock;
  w.mark_unhealthy("ollama", "boom", clock.now());
  auto t = Table::open(seg.str());
  const auto h = t.find("ollama");
  REQUIRE(h.has_value());
  CHECK_FALSE(t.is_healthy(*h, clock.mono()));
  clock.advance(30s);
  CHECK_FALSE(t.is_healthy(*h, clock.mono()));
  CHECK_FALSE(t.is_healthy("ollama", clock.mono()));
}

TEST_CASE("backoff: healthy (half-open) once the window has passed") {
  SegmentName seg("halfopen");
  auto w = make(seg, 1, 60s);
  FakeClock clock;
  w.mark_unhealthy("ollama", "boom", clock.now());
  clock.advance(61s);
  auto t = Table::open(seg.str());
  CHECK(t.is_healthy("ollama", clock.mono()));
  // Half-open: the breaker's flag stays down until a success.
  const auto st = t.get_state("ollama");
  REQUIRE(st.has_value());
  CHECK_FALSE(st->healthy);
  CHECK(st->available(clock.mono()));
  // A failure in half-open re-arms from now; a success resets.
  CHECK(w.mark_unhealthy("ollama", "still down", clock.now()) == Transition::rearmed);
  CHECK_FALSE(t.is_healthy("ollama", clock.mono()));
  clock.advance(61s);
  CHECK(w.mark_healthy("ollama", clock.now()) == Transition::recovered);
  CHECK(t.is_healthy("ollama", clock.mono()));
}

TEST_CASE("backoff: the window boundary is exclusive of now (until > now is unhealthy)") {
  SegmentName seg("boundary");
  auto w = make(seg, 1, 60s);
  FakeClock clock;
  w.mark_unhealthy("ollama", "boom", clock.now());
  const auto until = clock.mono() + test::seconds_ns(60);
  CHECK_FALSE(w.table().is_healthy("ollama", until - 1));
  CHECK(w.table().is_healthy("ollama", until));
}

TEST_CASE("backoff: a failure during the window extends it") {
  SegmentName seg("extend");
  auto w = make(seg, 1, 60s);
  FakeClock clock;
  w.mark_unhealthy("ollama", "first", clock.now());
  const auto original = w.table().get_state("ollama")->unhealthy_until_unix_ns;
  clock.advance(20s);
  CHECK(w.mark_unhealthy("ollama", "second", clock.now()) == Transition::rearmed);
  const auto st = w.table().get_state("ollama");
  CHECK(st->unhealthy_until_unix_ns > original);
  CHECK(st->unhealthy_until_unix_ns == clock.now().unix_ns + test::seconds_ns(60));
  CHECK(st->consecutive_failures == 2);
  CHECK(st->transitions == 1); // re-arming is not a transition
}

TEST_CASE("backoff: recovery is reported only once") {
  // The reference module logs "recovered" once; here mark_healthy says so.
  SegmentName seg("recover1");
  auto w = make(seg, 1, 60s);
  FakeClock clock;
  w.mark_unhealthy("ollama", "boom", clock.now());
  int recovered = 0;
  for (int i = 0; i < 3; ++i)
    recovered += w.mark_healthy("ollama", clock.now()) == Transition::recovered;
  CHECK(recovered == 1);
  CHECK(w.table().get_state("ollama")->transitions == 2);
}

TEST_CASE("backoff: zero backoff trips but is immediately half-open") {
  SegmentName seg("zero");
  auto w = make(seg, 1, 0s);
  FakeClock clock;
  CHECK(w.mark_unhealthy("ollama", "boom", clock.now()) == Transition::tripped);
  CHECK(w.table().is_healthy("ollama", clock.mono()));
  CHECK_FALSE(w.table().get_state("ollama")->healthy);
}

// --- Snapshot shape -------------------------------------------------------------

TEST_CASE("snapshot: returns copies") {
  SegmentName seg("copies");
  auto w = make(seg, 1);
  FakeClock clock;
  w.mark_unhealthy("ollama", "x", clock.now());
  auto snap = w.table().snapshot();
  REQUIRE(snap.size() == 1);
  snap[0].healthy = true;
  snap[0].consecutive_failures = 0;
  CHECK_FALSE(w.table().is_healthy("ollama", clock.mono()));
  CHECK(w.table().get_state("ollama")->consecutive_failures == 1);
}

TEST_CASE("snapshot: matches the recorded state") {
  SegmentName seg("matches");
  auto w = make(seg, 2, 60s);
  FakeClock clock;
  w.mark_unhealthy("groq", "rate-limit", clock.now());
  const auto snap = Table::open(seg.str()).snapshot();
  REQUIRE(snap.size() == 1);
  CHECK(snap[0].name == "groq");
  CHECK(snap[0].registered);
  CHECK(snap[0].consecutive_failures == 1);
  CHECK(snap[0].last_error == "rate-limit");
  CHECK(snap[0].last_check_unix_ns == clock.now().unix_ns);
}

TEST_CASE("snapshot: expected names do not overwrite real state") {
  SegmentName seg("noover");
  auto w = make(seg, 1);
  FakeClock clock;
  w.mark_unhealthy("ollama", "real-boom", clock.now());
  const std::vector<std::string> expected{"ollama", "groq"};
  const auto snap = w.table().snapshot(expected);
  REQUIRE(snap.size() == 2);
  CHECK(snap[0].name == "ollama");
  CHECK(snap[0].consecutive_failures == 1);
  CHECK(snap[0].registered);
  CHECK(snap[1].name == "groq");
  CHECK(snap[1].consecutive_failures == 0);
  CHECK_FALSE(snap[1].registered);
}

// --- What the table adds ----------------------------------------------------------

TEST_CASE("override: forced down and up win over the breaker, auto returns to it") {
  SegmentName seg("override");
  auto w = make(seg, 2, 60s);
  FakeClock clock;
  auto t = Table::open(seg.str());
  w.set_override("groq", Override::forced_down);
  CHECK_FALSE(t.is_healthy("groq", clock.mono()));
  w.mark_healthy("groq", clock.now()); // the breaker keeps counting underneath
  CHECK_FALSE(t.is_healthy("groq", clock.mono()));
  CHECK(t.get_state("groq")->override_mode == Override::forced_down);

  w.mark_unhealthy("groq", "a", clock.now());
  w.mark_unhealthy("groq", "b", clock.now()); // tripped underneath
  w.set_override("groq", Override::forced_up);
  CHECK(t.is_healthy("groq", clock.mono()));
  w.set_override("groq", Override::automatic);
  CHECK_FALSE(t.is_healthy("groq", clock.mono()));
  clock.advance(60s);
  CHECK(t.is_healthy("groq", clock.mono()));
}

TEST_CASE("reset: one provider or all return to the zero state, names stay") {
  SegmentName seg("reset");
  auto w = make(seg, 1, 60s);
  FakeClock clock;
  auto t = Table::open(seg.str());
  w.mark_unhealthy("a", "x", clock.now());
  w.mark_unhealthy("b", "y", clock.now());
  w.set_override("c", Override::forced_down);
  const auto handle_a = t.find("a");
  REQUIRE(handle_a.has_value());
  const auto gen = t.info().generation;

  w.reset("a");
  CHECK(t.is_healthy(*handle_a, clock.mono()));
  CHECK_FALSE(t.is_healthy("b", clock.mono()));
  CHECK(t.info().generation == gen);

  w.reset(ResetScope::state_and_overrides);
  CHECK(t.info().generation == gen + 1);
  for (const auto& s : t.snapshot()) {
    CHECK(s.healthy);
    CHECK(s.consecutive_failures == 0);
    CHECK_FALSE(s.last_error.has_value());
    CHECK(s.override_mode == Override::automatic);
    CHECK(t.is_healthy(s.name, clock.mono()));
  }
  CHECK(t.snapshot().size() == 3);
  CHECK(t.get_state(*handle_a).slot == t.get_state("a")->slot); // handles stay bound

  try {
    w.reset("never-seen");
    FAIL("reset of an unknown provider succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unknown_provider);
  }
}

TEST_CASE("last_error: cut to kReasonMax bytes on a UTF-8 boundary, control chars blanked") {
  SegmentName seg("reason");
  auto w = make(seg, 5);
  std::string reason(kReasonMax - 1, 'a');
  reason += "\xC3\xA9"; // 'é' straddles the limit: dropped whole
  w.mark_unhealthy("p", reason);
  auto st = w.table().get_state("p");
  CHECK(st->last_error == std::string(kReasonMax - 1, 'a'));
  w.mark_unhealthy("p", "line1\nline2\xFF");
  st = w.table().get_state("p");
  CHECK(st->last_error == "line1 line2?");
}

TEST_CASE("policy: set_policy changes what future outcomes do") {
  SegmentName seg("policy");
  auto w = make(seg, 3, 10s);
  FakeClock clock;
  w.mark_unhealthy("p", "1", clock.now());
  Policy p;
  p.failure_threshold = 2;
  p.backoff = 5s;
  w.set_policy(p);
  CHECK(w.mark_unhealthy("p", "2", clock.now()) == Transition::tripped);
  CHECK(w.table().get_state("p")->unhealthy_until_mono_ns == clock.mono() + test::seconds_ns(5));
  Policy bad;
  bad.failure_threshold = 0;
  CHECK_THROWS_AS(w.set_policy(bad), Error);
}

TEST_CASE("counters: successes, failures and the table's update count") {
  SegmentName seg("counters");
  auto w = make(seg, 2);
  w.mark_healthy("p");
  w.mark_unhealthy("p", "x");
  w.mark_healthy("p");
  const auto st = w.table().get_state("p");
  CHECK(st->successes == 2);
  CHECK(st->failures == 1);
  CHECK(w.table().info().updates == 3);
}
