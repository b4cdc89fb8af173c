// The scheduler's cadence keys, `down_interval` and `spread`: in [table]
// for every provider, in a [[provider]] for one, and their errors.
#include "config.hpp"
#include "config_errors.hpp"

#include <doctest/doctest.h>

using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

Config parse(const std::string& text) { return parse_config(text, "probe.toml", process_env); }

const std::string kHead = "segment = \"gw\"\ninterval = \"10s\"\n"; // lines 1-2

void expect_error(const std::string& text, std::uint32_t line, const std::string& key,
                  const std::string& fragment) {
  expect_config_error(parse, text, line, key, fragment);
}

} // namespace

TEST_CASE("down_interval and spread default to no change: the interval, no spread") {
  const Config c = parse(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n"
                                 "[[provider]]\nname = \"b\"\ntcp = \"h:1\"\ninterval = \"2s\"\n");
  CHECK(c.providers[0].down_interval == 10s);
  CHECK(c.providers[1].down_interval == 2s); // its own interval
  CHECK(c.providers[0].spread_permille == 0);
  CHECK(c.providers[1].spread_permille == 0);
}

TEST_CASE("[table] sets the default, a provider its own") {
  const Config c = parse(kHead + "[table]\ndown_interval = \"1s\"\nspread = 0.1\n"
                                 "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n"
                                 "[[provider]]\nname = \"b\"\ntcp = \"h:1\"\n"
                                 "down_interval = \"30s\"\nspread = \"25%\"\n");
  CHECK(c.providers[0].down_interval == 1s);
  CHECK(c.providers[0].spread_permille == 100);
  CHECK(c.providers[1].down_interval == 30s); // longer than its interval: allowed (downinter)
  CHECK(c.providers[1].spread_permille == 250);
}

TEST_CASE("a changed down_interval or spread is a changed cadence on reload") {
  const std::string base = kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n";
  const auto a = parse(base).providers[0];
  CHECK(a.same_as(parse(base).providers[0]));
  CHECK_FALSE(a.same_as(parse(base + "down_interval = \"1s\"\n").providers[0]));
  CHECK_FALSE(a.same_as(parse(base + "spread = 0.2\n").providers[0]));
}

TEST_CASE("bad down_interval and spread values name their key and line") {
  expect_error(kHead + "[table]\ndown_interval = \"0s\"\n", 4, "table.down_interval",
               "greater than zero");
  expect_error(kHead + "[table]\ndown_interval = \"soon\"\n", 4, "table.down_interval", "");
  expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\ndown_interval = true\n", 6,
               "provider.down_interval", "must be a duration");
  expect_error(kHead + "[table]\nspread = 0.8\n", 4, "table.spread", "between 0 and 0.5");
  expect_error(kHead + "[table]\nspread = \"-5%\"\n", 4, "table.spread", "between 0 and 0.5");
  expect_error(kHead + "[table]\nspread = \"2s\"\n", 4, "table.spread", "fraction of the interval");
  expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\nspread = 1\n", 6,
               "provider.spread", "fraction of the interval");
}
