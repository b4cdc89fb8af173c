// Handles that follow the table: a name registered later, a slot forgotten
// and reused, a grow, a replace, a destroy and re-create. None of it asks
// the caller for a timer or a re-find.
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <thread>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

/// Polls `pred` for up to 5 s: the library promises well under that, and a
/// busy machine must not fail the test.
template <class Pred> bool eventually(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

void trip(Writer& w, std::string_view p) {
  w.mark_unhealthy(p, "boom");
  w.mark_unhealthy(p, "boom");
}

} // namespace

TEST_CASE("a handle taken before its provider registers answers its real state at once") {
  SegmentName seg("h-late");
  auto w = Writer::create(seg.str());
  auto t = Table::open(seg.str());
  const Handle h = t.handle("groq");
  CHECK(t.is_healthy(h));
  CHECK_FALSE(t.get_state(h).registered);
  CHECK_FALSE(t.find("groq").has_value());
  trip(w, "groq");
  CHECK_FALSE(t.is_healthy(h)); // no re-find: the handle saw the registration
  CHECK(t.get_state(h).registered);
  CHECK(t.get_state(h).consecutive_failures == 2);
  CHECK(t.handle("groq").name() == h.name()); // one name, one handle
}

TEST_CASE("a forgotten slot reused by another provider is never read under the old name") {
  SegmentName seg("h-reuse");
  CreateOptions o;
  o.capacity = 1; // one slot: a reuse is certain
  auto w = Writer::create(seg.str(), o);
  auto t = Table::open(seg.str());
  w.add("a");
  const Handle a = t.handle("a");
  const std::uint32_t gen_a = t.get_state(a).generation;
  w.forget("a");
  CHECK(t.is_healthy(a)); // unknown again: healthy
  CHECK_FALSE(t.get_state(a).registered);
  CHECK_FALSE(t.get_state("a").has_value());

  trip(w, "b"); // takes the same slot
  const Handle b = t.handle("b");
  CHECK(t.get_state(b).slot == 0);
  CHECK(t.get_state(b).generation != gen_a);
  CHECK_FALSE(t.is_healthy(b));
  CHECK(t.is_healthy(a)); // b's trip is not a's
  CHECK_FALSE(t.get_state(a).registered);

  for (int round = 0; round < 50; ++round) { // many reuses of one slot
    w.forget(round % 2 ? "a" : "b");
    const char* next = round % 2 ? "b" : "a";
    w.add(next);
    if (round % 3 == 0) trip(w, next);
    const Handle cur = t.handle(next);
    const Handle other = t.handle(round % 2 ? "a" : "b");
    CHECK(t.get_state(cur).name == next);
    CHECK(t.is_healthy(cur) == (round % 3 != 0));
    CHECK(t.is_healthy(other));
    CHECK_FALSE(t.get_state(other).registered);
  }
}

TEST_CASE("set on forget: a forgotten forced-down provider stops being down") {
  SegmentName seg("h-forget-down");
  auto w = Writer::create(seg.str());
  auto t = Table::open(seg.str());
  w.set_override("typo", Override::forced_down);
  const Handle h = t.handle("typo");
  CHECK_FALSE(t.is_healthy(h));
  w.forget("typo");
  CHECK(t.is_healthy(h));
  CHECK(t.is_healthy("typo"));
  CHECK(t.info().used == 0);
  try {
    w.forget("typo");
    FAIL("forgetting an unknown provider succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unknown_provider);
  }
}

TEST_CASE("a live grow keeps every state, and handles follow into the larger table") {
  SegmentName seg("h-grow");
  CreateOptions o;
  o.capacity = 2;
  auto w = Writer::create(seg.str(), o);
  auto t = Table::open(seg.str());
  trip(w, "a");
  w.mark_healthy("b");
  const Handle a = t.handle("a");
  const Handle b = t.handle("b");
  const auto before_a = t.get_state(a);
  try {
    w.add("c");
    FAIL("a full table registered a third provider");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::table_full);
    CHECK(std::string(e.what()).find("healthctl grow") != std::string::npos);
  }
  w.grow(8);
  w.add("c");
  CHECK(t.info().capacity == 8); // the reader's view moved too
  CHECK_FALSE(t.is_healthy(a));
  CHECK(t.is_healthy(b));
  const auto after_a = t.get_state(a);
  CHECK(after_a.consecutive_failures == before_a.consecutive_failures);
  CHECK(after_a.unhealthy_until_unix_ns == before_a.unhealthy_until_unix_ns);
  CHECK(after_a.last_error == before_a.last_error);
  CHECK(after_a.generation == before_a.generation);
  w.mark_healthy("a"); // written in the new table, seen through the old handle
  CHECK(t.is_healthy(a));
  CHECK(t.snapshot().size() == 3);
}

TEST_CASE("create --force: handles answer from the new table") {
  SegmentName seg("h-replace");
  std::optional<Writer> w = Writer::create(seg.str());
  w->mark_healthy("google");
  auto t = Table::open(seg.str());
  const Handle g = t.handle("google");
  CHECK(t.is_healthy(g));
  w.reset(); // the replacing create needs the writer lock
  CreateOptions o;
  o.replace = true;
  auto w2 = Writer::create(seg.str(), o);
  w2.set_override("google", Override::forced_down);
  CHECK_FALSE(t.is_healthy(g)); // v1 went on answering healthy from the retired table
  CHECK(t.get_state(g).override_mode == Override::forced_down);
  CHECK_FALSE(t.replaced()); // the view followed
}

TEST_CASE("destroy, then create: handles answer from the new table once it exists") {
  SegmentName seg("h-recreate");
  std::optional<Writer> w = Writer::create(seg.str());
  trip(*w, "groq");
  auto t = Table::open(seg.str());
  const Handle h = t.handle("groq");
  CHECK_FALSE(t.is_healthy(h));
  w.reset();
  Writer::destroy(seg.str());
  CHECK(t.is_healthy(h)); // no table: nothing says skip it
  auto w2 = Writer::create(seg.str());
  w2.set_override("groq", Override::forced_down);
  CHECK(eventually([&] { return !t.is_healthy(h); }));
  CHECK(t.get_state(h).override_mode == Override::forced_down);
}

TEST_CASE("a handle of another Table is refused by get_state") {
  SegmentName one("h-one"), two("h-two");
  auto w1 = Writer::create(one.str());
  auto w2 = Writer::create(two.str());
  w1.add("x");
  auto t1 = Table::open(one.str());
  auto t2 = Table::open(two.str());
  const Handle h = t1.handle("x");
  try {
    (void)t2.get_state(h);
    FAIL("a foreign handle was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
  }
}

TEST_CASE("a handle of a big table used on a small one reads its own provider, never a slot of "
          "the small table") {
  SegmentName big("h-big"), small("h-small");
  CreateOptions bo;
  bo.capacity = 4096;
  CreateOptions so;
  so.capacity = 16;
  auto wb = Writer::create(big.str(), bo);
  auto ws = Writer::create(small.str(), so);
  for (int i = 0; i < 3000; ++i)
    wb.add("p" + std::to_string(i));
  trip(wb, "p2999"); // slot 2999: far past the small table's 16
  for (int i = 0; i < 16; ++i)
    ws.add("s" + std::to_string(i)); // all healthy
  auto tb = Table::open(big.str());
  auto ts = Table::open(small.str());
  const Handle h = tb.handle("p2999");
  CHECK_FALSE(tb.is_healthy(h));
  // The handle carries its own table: the small one answers p2999's state
  // (tripped), not slot 2999 of a 16-slot table nor any of its healthy s*.
  CHECK_FALSE(ts.is_healthy(h));
  CHECK_THROWS_AS((void)ts.get_state(h), Error);
}

TEST_CASE("by name: a miss, a hit, a forgotten name, and the same after a grow") {
  SegmentName seg("h-name");
  auto w = Writer::create(seg.str());
  auto t = Table::open(seg.str());
  CHECK(t.is_healthy("nobody-knows"));
  trip(w, "a");
  CHECK_FALSE(t.is_healthy("a"));
  CHECK(t.is_healthy("a", Instant::now().mono_ns + test::seconds_ns(3600))); // half-open
  w.forget("a");
  CHECK(t.is_healthy("a"));
  trip(w, "a");
  w.grow(128);
  CHECK_FALSE(t.is_healthy("a"));
  CHECK(t.get_state("a")->consecutive_failures == 2);
}
