// The event ring: every transition, override, registration, forget and
// grow is there to read, in order; a reader that falls behind is told how
// many events it lost.
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <vector>

using namespace healthtable;
using test::SegmentName;

namespace {
std::vector<EventKind> kinds(const EventBatch& b) {
  std::vector<EventKind> k;
  for (const auto& e : b.events)
    k.push_back(e.kind);
  return k;
}
} // namespace

TEST_CASE("transitions, overrides, forgets and grows are events, in order") {
  SegmentName seg("ev-order");
  auto w = Writer::create(seg.str());
  auto t = Table::open(seg.str());
  test::FakeClock clock;
  w.mark_unhealthy("groq", "http 503", clock.now());
  w.mark_unhealthy("groq", "http 503", clock.now());
  w.mark_unhealthy("groq", "http 503", clock.now());
  w.mark_healthy("groq", clock.now());
  OverrideRequest down;
  down.mode = Override::forced_down;
  down.reason = "maintenance";
  down.uid = 1234;
  w.set_override("google", down, clock.now());
  w.forget("google");
  w.grow(128);
  const EventBatch b = t.events();
  CHECK(b.missed == 0);
  CHECK(kinds(b) == std::vector<EventKind>{EventKind::registered, EventKind::tripped,
                                           EventKind::rearmed, EventKind::recovered,
                                           EventKind::registered, EventKind::override,
                                           EventKind::forgotten, EventKind::grown});
  const EventRecord& trip = b.events[1];
  CHECK(trip.provider == "groq");
  CHECK(trip.reason == "http 503");
  CHECK(trip.count == 2);
  CHECK(trip.until_unix_ns == clock.now().unix_ns + kDefaultBackoffNs);
  const EventRecord& ov = b.events[5];
  CHECK(ov.provider == "google");
  CHECK(ov.to == static_cast<std::uint8_t>(Override::forced_down));
  CHECK(ov.reason == "maintenance");
  CHECK(ov.uid == 1234u);
  CHECK(b.events.back().count == 128);
  CHECK(b.next == 8);
  CHECK(t.events(b.next).events.empty()); // nothing new
  for (std::size_t i = 0; i < b.events.size(); ++i)
    CHECK(b.events[i].number == i);
}

TEST_CASE("a reader that falls behind the ring is told how many events it missed") {
  SegmentName seg("ev-lap");
  CreateOptions o;
  o.events = 16;
  auto w = Writer::create(seg.str(), o);
  auto t = Table::open(seg.str());
  for (int i = 0; i < 20; ++i) { // 1 registration + 20 transitions
    w.mark_unhealthy("a", "x");
    w.mark_unhealthy("a", "x");
    w.mark_healthy("a");
  }
  const std::uint64_t total = 1 + 20 * 2; // registered, then tripped + recovered each round
  const EventBatch b = t.events(0);
  CHECK(b.missed == total - 16);
  CHECK(b.events.size() == 16);
  CHECK(b.events.front().number == total - 16);
  CHECK(b.next == total);
  CHECK(t.info().events == total);
}
