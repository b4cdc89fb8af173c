// Table::pick(): the first available provider of a chain, and what happens
// when there is none (panic: the window that ends first; none: when to
// retry). Driven by a fake clock: the writer stamps explicit Instants and
// every pick is asked at an explicit moment, so nothing sleeps.
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::FakeClock;
using test::SegmentName;

namespace {

constexpr std::int64_t ns_of(std::chrono::nanoseconds d) { return d.count(); }

/// A writer with threshold 2 and a 60 s window, a reader, and a fake clock.
struct Fixture {
  SegmentName seg{"pick"};
  Writer w = Writer::create(seg.str());
  Table t = Table::open(seg.str());
  FakeClock clock;

  void trip(std::string_view p) {
    w.mark_unhealthy(p, "http 503", clock.now());
    w.mark_unhealthy(p, "http 503", clock.now());
  }
  void force_down(std::string_view p, std::optional<std::chrono::nanoseconds> for_ = {}) {
    OverrideRequest r;
    r.mode = Override::forced_down;
    r.expires_after = for_;
    w.set_override(p, r, clock.now());
  }
  std::vector<Handle> handles(const std::vector<std::string_view>& names) const {
    std::vector<Handle> hs;
    for (const auto n : names)
      hs.push_back(t.handle(n));
    return hs;
  }
  /// The pick by handle and by name, which must agree, at the clock's now.
  Pick pick(const std::vector<std::string_view>& names, PickPolicy policy = PickPolicy::panic) {
    const auto hs = handles(names);
    const Pick by_handle = t.pick(hs, clock.now(), policy);
    const Pick by_name = t.pick(names, clock.now(), policy);
    CHECK(by_name.index == by_handle.index);
    CHECK(by_name.available == by_handle.available);
    CHECK(by_name.panic == by_handle.panic);
    CHECK(by_name.reason == by_handle.reason);
    CHECK(by_name.retry_at.has_value() == by_handle.retry_at.has_value());
    if (by_name.retry_at && by_handle.retry_at)
      CHECK(by_name.retry_at->mono_ns == by_handle.retry_at->mono_ns);
    return by_handle;
  }
};

} // namespace

TEST_CASE("pick: the first provider of an all-healthy chain, with no retry time") {
  Fixture f;
  for (const auto p : {"groq", "openai", "anthropic"})
    f.w.mark_healthy(p, f.clock.now());
  const Pick p = f.pick({"groq", "openai", "anthropic"});
  CHECK(p.index == 0u);
  CHECK(p.available);
  CHECK_FALSE(p.panic);
  CHECK(p.reason == PickReason::available);
  CHECK_FALSE(p.retry_at);
  // Without an explicit moment: the inline path gives the same answer.
  const auto hs = f.handles({"groq", "openai", "anthropic"});
  CHECK(f.t.pick(hs).index == 0u);
}

TEST_CASE("pick: tripped and forced-down providers are skipped, in chain order") {
  Fixture f;
  f.trip("openai");
  f.force_down("groq");
  f.w.mark_healthy("anthropic", f.clock.now());
  const Pick p = f.pick({"openai", "groq", "anthropic"});
  CHECK(p.index == 2u);
  CHECK(p.available);
  CHECK_FALSE(p.panic);
  CHECK_FALSE(p.retry_at);
  // The pick is what is_healthy() says, provider by provider.
  CHECK_FALSE(f.t.is_healthy(f.t.handle("openai"), f.clock.mono()));
  CHECK_FALSE(f.t.is_healthy(f.t.handle("groq"), f.clock.mono()));
  CHECK(f.t.is_healthy(f.t.handle("anthropic"), f.clock.mono()));
}

TEST_CASE("pick: forced up wins over a tripped breaker") {
  Fixture f;
  f.trip("openai");
  f.w.set_override("openai", Override::forced_up);
  const Pick p = f.pick({"openai", "groq"});
  CHECK(p.index == 0u);
  CHECK(p.available);
}

TEST_CASE("pick: a provider is back once its window has passed (half-open)") {
  Fixture f;
  f.trip("openai");
  f.w.mark_healthy("groq", f.clock.now());
  CHECK(f.pick({"openai", "groq"}).index == 1u);
  f.clock.advance(60s);
  const Pick p = f.pick({"openai", "groq"});
  CHECK(p.index == 0u);
  CHECK(p.available);
}

TEST_CASE("pick: every provider down, panic picks the one whose window ends first") {
  Fixture f;
  const Instant t0 = f.clock.now();
  f.trip("anthropic"); // window ends at t0 + 60 s
  f.clock.advance(10s);
  f.trip("openai");          // t0 + 70 s
  f.force_down("groq", 30s); // t0 + 40 s: an expiry counts as a window's end
  f.trip("mistral");
  f.force_down("mistral"); // no expiry: never, whatever its breaker says
  f.clock.advance(5s);     // now t0 + 15 s
  const Pick p = f.pick({"mistral", "openai", "anthropic", "groq"});
  REQUIRE(p.index);
  CHECK(*p.index == 3u); // groq, back at t0 + 40 s
  CHECK(p.panic);
  CHECK_FALSE(p.available);
  CHECK(p.reason == PickReason::panic);
  REQUIRE(p.retry_at);
  CHECK(p.retry_at->mono_ns == t0.mono_ns + ns_of(40s));
  CHECK(p.retry_at->unix_ns == t0.unix_ns + ns_of(40s));

  // Past groq's expiry the override lapses (no writer needed) and it is
  // simply available.
  f.clock.advance(25s);
  const Pick back = f.pick({"mistral", "openai", "anthropic", "groq"});
  CHECK(back.index == 3u);
  CHECK(back.available);
  CHECK_FALSE(back.panic);
}

TEST_CASE("pick: providers back at the same moment go in chain order") {
  Fixture f;
  f.trip("openai");
  f.trip("groq");
  const Pick p = f.pick({"groq", "openai"});
  CHECK(p.index == 0u);
  CHECK(p.panic);
}

TEST_CASE("pick: a provider forced down with no expiry is never the panic pick") {
  Fixture f;
  f.force_down("openai");
  f.trip("groq");
  Pick p = f.pick({"openai", "groq"});
  CHECK(p.index == 1u);
  CHECK(p.panic);
  REQUIRE(p.retry_at);
  CHECK(p.retry_at->mono_ns == f.clock.mono() + ns_of(60s));

  SUBCASE("and when all are forced down forever there is no pick and no retry time") {
    f.force_down("groq");
    for (const auto policy : {PickPolicy::panic, PickPolicy::none}) {
      p = f.pick({"openai", "groq"}, policy);
      CHECK_FALSE(p.index);
      CHECK_FALSE(p.available);
      CHECK_FALSE(p.panic);
      CHECK(p.reason == PickReason::forced_down);
      CHECK_FALSE(p.retry_at);
    }
  }
}

TEST_CASE("pick: policy none routes nowhere and says when to retry") {
  Fixture f;
  const Instant t0 = f.clock.now();
  f.trip("openai");
  f.clock.advance(20s);
  f.trip("groq");
  f.clock.advance(18s); // openai back in 22 s, groq in 42 s
  const Pick p = f.pick({"groq", "openai"}, PickPolicy::none);
  CHECK_FALSE(p.index);
  CHECK_FALSE(p.available);
  CHECK_FALSE(p.panic);
  CHECK(p.reason == PickReason::none);
  REQUIRE(p.retry_at);
  CHECK(p.retry_at->mono_ns == t0.mono_ns + ns_of(60s));
  CHECK(p.retry_at->mono_ns - f.clock.mono() == ns_of(22s));
  CHECK(p.retry_at->unix_ns - f.clock.now().unix_ns == ns_of(22s));
  // At that moment, openai is the pick.
  f.clock.advance(22s);
  CHECK(f.pick({"groq", "openai"}, PickPolicy::none).index == 1u);
}

TEST_CASE("pick: unknown providers are healthy, by name and by handle") {
  Fixture f;
  f.trip("openai");
  const Pick p = f.pick({"openai", "never-seen", "groq"});
  CHECK(p.index == 1u);
  CHECK(p.available);
  // A name no provider can have is not a reason to route nowhere either.
  const std::array<std::string_view, 2> odd{"openai", ""};
  CHECK(f.t.pick(odd, f.clock.now()).index == 1u);
}

TEST_CASE("pick: an empty chain picks nothing") {
  Fixture f;
  const Pick by_handle = f.t.pick(std::span<const Handle>{});
  const Pick by_name = f.t.pick(std::span<const std::string_view>{});
  for (const Pick& p : {by_handle, by_name}) {
    CHECK_FALSE(p.index);
    CHECK_FALSE(p.available);
    CHECK_FALSE(p.panic);
    CHECK(p.reason == PickReason::empty);
    CHECK_FALSE(p.retry_at);
  }
}

TEST_CASE("pick: the slow-start ramp applies, from this process's own offset") {
  Fixture f;
  Policy ramped = f.w.policy();
  ramped.ramp = 100s;
  f.w.set_policy("openai", ramped);
  f.trip("openai");
  const std::int64_t deadline = f.clock.mono() + ns_of(60s);
  const Handle h = f.t.handle("openai");
  const std::array<Handle, 1> chain{h};
  // Across the ramp, pick() and is_healthy() agree at every moment, and a
  // retry time is exactly where is_healthy() turns true.
  for (std::int64_t k = 0; k <= 20; ++k) {
    const std::int64_t at = deadline - ns_of(5s) + k * ns_of(5s);
    const Instant now{at, 1'700'000'000'000'000'000LL};
    const Pick p = f.t.pick(chain, now, PickPolicy::none);
    CHECK(p.available == f.t.is_healthy(h, at));
    if (!p.available) {
      REQUIRE(p.retry_at);
      CHECK(p.retry_at->mono_ns > at);
      CHECK(p.retry_at->mono_ns >= deadline);
      CHECK(p.retry_at->mono_ns < deadline + ns_of(100s)); // offsets are < 10,000 of 10,000
      CHECK(f.t.is_healthy(h, p.retry_at->mono_ns));
      CHECK_FALSE(f.t.is_healthy(h, p.retry_at->mono_ns - 1'000'000));
    }
  }
  // The whole ramp later, every process has the provider back.
  CHECK(f.t.pick(chain, Instant{deadline + ns_of(100s), 0}).available);
}

TEST_CASE("pick: handles taken before a grow follow the table") {
  SegmentName seg("pick-grow");
  CreateOptions o;
  o.capacity = 2;
  auto w = Writer::create(seg.str(), o);
  auto t = Table::open(seg.str());
  FakeClock clock;
  w.mark_healthy("openai", clock.now());
  w.mark_healthy("groq", clock.now());
  const std::array<Handle, 3> chain{t.handle("openai"), t.handle("groq"), t.handle("anthropic")};
  CHECK(t.pick(chain, clock.now()).index == 0u);
  w.grow(8);
  w.mark_unhealthy("openai", "http 503", clock.now());
  w.mark_unhealthy("openai", "http 503", clock.now());
  w.add("anthropic");
  CHECK(t.pick(chain, clock.now()).index == 1u);
  w.mark_unhealthy("groq", "http 503", clock.now());
  w.mark_unhealthy("groq", "http 503", clock.now());
  CHECK(t.pick(chain, clock.now()).index == 2u); // registered after the grow: healthy
  w.set_override("anthropic", Override::forced_down);
  const Pick p = t.pick(chain, clock.now());
  CHECK(p.index == 0u); // all down: openai's window ends first (tied with groq, earlier in chain)
  CHECK(p.panic);
}
