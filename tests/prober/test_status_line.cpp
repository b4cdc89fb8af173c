// status_line(): the STATUS= summary healthprobe shows systemd, built from
// provider states and a clock passed in.
#include "status_line.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace healthtable;
using namespace healthtable::prober;

namespace {

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::int64_t kNowMono = 5'000 * kSec;
constexpr std::int64_t kNowUnix = 1'800'000'000 * kSec;

ProviderState checked(const std::string& name, std::int64_t ago_ns = kSec) {
  ProviderState p;
  p.name = name;
  p.registered = true;
  p.last_check_unix_ns = kNowUnix - ago_ns;
  return p;
}

ProviderState tripped(const std::string& name) {
  ProviderState p = checked(name);
  p.healthy = false;
  p.consecutive_failures = 2;
  p.unhealthy_until_mono_ns = kNowMono + 60 * kSec;
  return p;
}

ProviderState cooling(const std::string& name) {
  ProviderState p = checked(name);
  p.unhealthy_until_mono_ns = kNowMono + 30 * kSec; // a cooldown: the breaker stays closed
  return p;
}

std::string line(const std::vector<ProviderState>& ps) {
  return status_line(ps, kNowMono, kNowUnix);
}

} // namespace

TEST_CASE("the issue's example: healthy, one down by name, one cooling down, the last write") {
  std::vector<ProviderState> ps;
  for (int i = 0; i < 10; ++i)
    ps.push_back(checked("p" + std::to_string(i), 2 * kSec));
  ps.push_back(tripped("groq"));
  ps.push_back(cooling("openai"));
  ps.back().last_check_unix_ns = kNowUnix - 400'000'000;
  CHECK(line(ps) == "12 providers: 10 healthy, 1 down (groq), 1 cooling down; last write 0.4s ago");
}

TEST_CASE("all healthy, and one provider is singular") {
  CHECK(line({checked("web", 3'210'000'000)}) == "1 provider: 1 healthy; last write 3.2s ago");
  CHECK(line({checked("a"), checked("b")}) == "2 providers: 2 healthy; last write 1.0s ago");
}

TEST_CASE("a half-open provider (window over, breaker still open) is down, not healthy") {
  ProviderState p = tripped("groq");
  p.unhealthy_until_mono_ns = kNowMono - kSec;
  CHECK(line({p, checked("web")}) == "2 providers: 1 healthy, 1 down (groq); last write 1.0s ago");
}

TEST_CASE("overrides: forced down is down whatever the breaker says, forced up is healthy") {
  ProviderState down = checked("google");
  down.override_mode = Override::forced_down;
  ProviderState up = tripped("groq");
  up.override_mode = Override::forced_up;
  CHECK(line({down, up}) == "2 providers: 1 healthy, 1 down (google); last write 1.0s ago");
}

TEST_CASE("at most three down providers are named, the rest counted") {
  std::vector<ProviderState> ps;
  for (const char* n : {"a", "b", "c", "d", "e"})
    ps.push_back(tripped(n));
  CHECK(line(ps) == "5 providers: 5 down (a, b, c, +2 more); last write 1.0s ago");
}

TEST_CASE("never-probed providers and an untouched table say so") {
  ProviderState fresh;
  fresh.name = "new";
  fresh.registered = true;
  CHECK(line({fresh, checked("web")}) ==
        "2 providers: 1 healthy, 1 not probed yet; last write 1.0s ago");
  CHECK(line({fresh}) == "1 provider: 1 not probed yet; nothing written yet");
  CHECK(line({}) == "0 providers; nothing written yet");
}

TEST_CASE("ages as healthctl prints them, and a clock that stepped back is no negative age") {
  CHECK(line({checked("w", 0)}) == "1 provider: 1 healthy; last write 0.0s ago");
  CHECK(line({checked("w", 42'700'000'000)}) == "1 provider: 1 healthy; last write 42s ago");
  CHECK(line({checked("w", 1234 * kSec)}) == "1 provider: 1 healthy; last write 20m34s ago");
  CHECK(line({checked("w", -5 * kSec)}) == "1 provider: 1 healthy; last write 0.0s ago");
}
