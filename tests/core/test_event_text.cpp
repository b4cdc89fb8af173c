// Every event kind, as the writer stores it, read back and put into words
// and fields: the one wording healthctl and the prober share.
#include <healthtable/event_text.hpp>
#include <healthtable/home.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

// FakeClock's Unix time: 2023-11-14T22:13:20Z.
constexpr const char* kStart = "2023-11-14T22:13:20.000Z ";

/// The line without its time, for events the writer stamps with the real clock.
std::string body(const EventRecord& e) {
  const std::string t = event_text(e);
  const auto space = t.find(' ');
  REQUIRE(space != std::string::npos);
  CHECK(t.substr(0, space) == format_event_time(e.unix_ns));
  return t.substr(space + 1);
}

const EventValue& field(const std::vector<EventField>& f, std::string_view key) {
  for (const auto& x : f)
    if (x.key == key) return x.value;
  FAIL("no field ", std::string(key));
  static const EventValue none;
  return none;
}

std::string str(const EventValue& v) {
  REQUIRE(std::holds_alternative<std::string>(v));
  return std::get<std::string>(v);
}

bool null(const EventValue& v) { return std::holds_alternative<std::monostate>(v); }

} // namespace

TEST_CASE("event times are UTC to the millisecond") {
  CHECK(format_event_time(1'700'000'000'123'456'789LL) == "2023-11-14T22:13:20.123Z");
  CHECK(format_event_time(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_event_time(-1'000'000) == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("every kind the writer stores reads as one line and as fields") {
  SegmentName seg("evtext");
  auto w = Writer::create(seg.str());
  auto t = Table::open(seg.str());
  test::FakeClock clock;

  Outcome fail;
  fail.failure_class = FailureClass::server;
  fail.reason = "http 503";
  fail.source = Source::report;
  w.record("groq", fail, clock.now()); // registered, failure 1
  w.record("groq", fail, clock.now()); // tripped
  clock.advance(1s);
  w.record("groq", fail, clock.now()); // rearmed
  Outcome ok;
  ok.source = Source::report; // a probe's success would not clear workers' reports
  w.record("groq", ok, clock.now()); // recovered
  Outcome limited;
  limited.failure_class = FailureClass::rate_limited;
  limited.reason = "http 429";
  limited.retry_after = 30s;
  limited.source = Source::report;
  w.record("groq", limited, clock.now()); // cooldown
  OverrideRequest down;
  down.mode = Override::forced_down;
  down.expires_after = 2h;
  down.reason = "maintenance";
  down.uid = 0;
  w.set_override("groq", down, clock.now());
  clock.advance(2h);
  w.expire(clock.now()); // override expired
  OverrideRequest up;
  up.mode = Override::forced_up;
  up.uid = 4'000'000'000u; // no user has it
  w.set_override("groq", up, clock.now());
  OverrideRequest clear;
  clear.uid = 0;
  w.set_override("groq", clear, clock.now());
  w.reset("groq");
  w.reset(ResetScope::state_and_overrides);
  w.mark_healthy("ollama", clock.now()); // registered in slot 1
  w.forget("ollama");
  w.grow(128);

  const EventBatch b = t.events();
  REQUIRE(b.missed == 0);
  std::vector<EventKind> kinds;
  std::string names;
  for (const auto& e : b.events) {
    kinds.push_back(e.kind);
    names += std::string(event_name(e.kind)) + " ";
  }
  INFO("events: ", names);
  using K = EventKind;
  REQUIRE(kinds == std::vector<K>{K::registered, K::tripped, K::rearmed, K::recovered, K::cooldown,
                                  K::override, K::override, K::override, K::override, K::reset,
                                  K::reset, K::registered, K::forgotten, K::grown});
  const auto& ev = b.events;

  CHECK(event_text(ev[0]) == std::string(kStart) + "groq registered in slot 0");
  CHECK(event_text(ev[1]) == std::string(kStart) +
                                 "groq tripped (healthy -> unhealthy) after 2 consecutive "
                                 "failures, server from report: http 503; until 22:14:20Z");
  CHECK(event_text(ev[2]) == "2023-11-14T22:13:21.000Z groq rearmed (still unhealthy) after 3 "
                             "consecutive failures, server from report: http 503; until "
                             "22:14:21Z");
  CHECK(event_text(ev[3]) == "2023-11-14T22:13:21.000Z groq recovered (unhealthy -> healthy) "
                             "after 1 consecutive success from report");
  CHECK(event_text(ev[4]) == "2023-11-14T22:13:21.000Z groq cooldown until 22:13:51Z (30s): "
                             "rate_limited from report: http 429");
  CHECK(event_text(ev[5]) == "2023-11-14T22:13:21.000Z groq forced down by uid 0 (root) for 2h: "
                             "maintenance");
  CHECK(event_text(ev[6]) == "2023-11-15T00:13:21.000Z groq override expired (was down); the "
                             "breaker decides");
  CHECK(body(ev[7]) == "groq forced up by uid 4000000000 until set back");
  CHECK(body(ev[8]) == "groq override cleared by uid 0 (root); the breaker decides");
  CHECK(body(ev[9]) == "groq reset to the zero state; override kept");
  CHECK(body(ev[10]) == "table reset: every provider back to the zero state; overrides cleared");
  CHECK(body(ev[11]) == "ollama registered in slot 1");
  CHECK(body(ev[12]) == "ollama forgotten; slot 1 freed");
  CHECK(body(ev[13]) == "table grown to 128 slots");

  SUBCASE("fields") {
    const auto trip = event_fields(ev[1]);
    CHECK(std::get<std::uint64_t>(field(trip, "number")) == 1);
    CHECK(std::get<double>(field(trip, "time")) == doctest::Approx(1.7e9));
    CHECK(str(field(trip, "kind")) == "tripped");
    CHECK(str(field(trip, "provider")) == "groq");
    CHECK(str(field(trip, "from")) == "healthy");
    CHECK(str(field(trip, "to")) == "unhealthy");
    CHECK(str(field(trip, "class")) == "server");
    CHECK(str(field(trip, "source")) == "report");
    CHECK(std::get<double>(field(trip, "until")) == doctest::Approx(1.7e9 + 60));
    CHECK(std::get<std::uint64_t>(field(trip, "consecutive_failures")) == 2);
    CHECK(null(field(trip, "uid")));
    CHECK(str(field(trip, "reason")) == "http 503");
    CHECK(str(field(trip, "text")) == event_text(ev[1]));
    CHECK(trip.front().key == "number");
    CHECK(trip.back().key == "text");

    const auto rec = event_fields(ev[3]);
    CHECK(std::get<std::uint64_t>(field(rec, "consecutive_successes")) == 1);
    CHECK(null(field(rec, "class")));
    CHECK(null(field(rec, "reason")));

    const auto set = event_fields(ev[5]);
    CHECK(null(field(set, "from"))); // the ring keeps no previous mode
    CHECK(str(field(set, "to")) == "down");
    CHECK(std::get<bool>(field(set, "expired")) == false);
    CHECK(std::get<std::uint64_t>(field(set, "uid")) == 0);
    CHECK(str(field(set, "user")) == "root");
    CHECK(std::get<double>(field(set, "until")) == doctest::Approx(1.7e9 + 1 + 7200));

    const auto lapsed = event_fields(ev[6]);
    CHECK(str(field(lapsed, "from")) == "down");
    CHECK(str(field(lapsed, "to")) == "auto");
    CHECK(std::get<bool>(field(lapsed, "expired")) == true);

    const auto nobody = event_fields(ev[7]);
    CHECK(std::get<std::uint64_t>(field(nobody, "uid")) == 4'000'000'000u);
    CHECK(null(field(nobody, "user")));

    CHECK(str(field(event_fields(ev[9]), "overrides")) == "kept");
    const auto table_reset = event_fields(ev[10]);
    CHECK(null(field(table_reset, "provider")));
    CHECK(str(field(table_reset, "overrides")) == "cleared");
    CHECK(std::get<std::uint64_t>(field(event_fields(ev[12]), "slot")) == 1);
    CHECK(std::get<std::uint64_t>(field(event_fields(ev[13]), "capacity")) == 128);
  }
}

TEST_CASE("a cooldown while unhealthy, a deadline on another day, and kinds nothing writes yet") {
  EventRecord e;
  e.unix_ns = 1'700'000'000'000'000'000LL; // 22:13:20Z
  e.kind = EventKind::cooldown;
  e.provider = "groq";
  e.failure_class = FailureClass::rate_limited;
  e.source = Source::probe;
  e.from = e.to = 0; // unhealthy: the hint moved the window out
  e.until_unix_ns = e.unix_ns + 3'600'000'000'000LL;
  CHECK(event_text(e) ==
        "2023-11-14T22:13:20.000Z groq cooldown until 23:13:20Z (1h, while unhealthy): "
        "rate_limited from probe");
  e.until_unix_ns = e.unix_ns + 7'200'000'000'000LL; // past midnight UTC
  CHECK(event_text(e) == "2023-11-14T22:13:20.000Z groq cooldown until 2023-11-15T00:13:20Z (2h, "
                         "while unhealthy): rate_limited from probe");

  EventRecord r;
  r.unix_ns = e.unix_ns;
  r.kind = EventKind::retired;
  CHECK(event_text(r) == "2023-11-14T22:13:20.000Z table retired (destroyed or replaced)");

  SUBCASE("hostile text is made safe for a terminal") {
    EventRecord h;
    h.unix_ns = e.unix_ns;
    h.kind = EventKind::tripped;
    h.provider = "groq";
    h.count = 2;
    h.failure_class = FailureClass::server;
    h.reason = "bad\x1b[2Jthing\n";
    const std::string text = event_text(h);
    CHECK(text.find('\x1b') == std::string::npos);
    CHECK(text.find('\n') == std::string::npos);
    CHECK(text.find("bad [2Jthing") != std::string::npos);
  }
}
