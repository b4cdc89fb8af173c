// The continuous scheduler, through the built healthprobe binary: each
// provider keeps its own cadence whatever the others' probes do, the
// heartbeat never lapses while probes are in flight, down_interval probes a
// failing provider faster, and a provider never has two probes at once.
// Every figure is counted at the servers or in the table, over windows of
// seconds with generous margins: a busy machine must not fail these.
#include "servers.hpp"
#include "silent_server.hpp"

#include <healthtable/clock.hpp>
#include <healthtable/report.hpp>
#include <healthtable/table.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>
#include <signal.h>
#include <thread>

using namespace healthtable;
using namespace healthtable::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Run {
  TempDir dir;
  std::unique_ptr<Child> child;

  void start(const std::string& text) {
    const auto config = dir.write("healthprobe.toml", text);
    child = std::make_unique<Child>(
        std::vector<std::string>{HEALTHPROBE_BIN, "--config", config.string()}, dir.path());
  }
  void stop() {
    child->signal(SIGTERM);
    CHECK(child->wait(20s) == 0);
  }
};

std::string provider(const std::string& name, const std::string& url,
                     const std::string& extra = "") {
  return "[[provider]]\nname = \"" + name + "\"\nhttp = \"" + url + "\"\n" + extra;
}

std::uint64_t successes(const std::string& segment, const std::string& name) {
  const auto s = Table::open(segment).get_state(name);
  return s ? s->successes : 0;
}

/// Calls `each` every 100 ms for `span`.
void for_span(std::chrono::milliseconds span, const std::function<void()>& each) {
  const auto end = Clock::now() + span;
  while (Clock::now() < end) {
    each();
    std::this_thread::sleep_for(100ms);
  }
}

} // namespace

TEST_CASE("a fast provider is probed and written on time while a slow one hangs, and the "
          "heartbeat stays fresh") {
  SegmentName seg("sched");
  HttpServer web;
  SilentServer silent;
  Run run;
  // The old tick-based loop waited for the hang's 8 s timeout before the
  // next tick: 3 probes of "fast" in 9 s instead of 9, and no heartbeat for
  // the 8 s (stale after 3 s).
  run.start("segment = \"" + seg.str() + "\"\n" +
            provider("fast", web.url("/status/200"), "interval = \"1s\"\ntimeout = \"1s\"\n") +
            provider("slow", silent.url(), "interval = \"10s\"\ntimeout = \"8s\"\n"));
  REQUIRE(eventually([&] { return silent.accepted() >= 1; }, 10s)); // the slow probe hangs
  REQUIRE(eventually([&] { return successes(seg, "fast") >= 1; }, 10s));
  const std::size_t hits0 = web.requests().size();
  const std::uint64_t written0 = successes(seg, "fast");

  Table table = Table::open(seg.str());
  std::int64_t oldest_beat = 0; // the longest the heartbeat went unstamped, as seen
  std::int64_t promise = 0;
  for_span(9s, [&] {
    const TableInfo info = table.info();
    promise = info.heartbeat_interval_ns;
    oldest_beat = std::max(oldest_beat, Instant::now().mono_ns - info.heartbeat_mono_ns);
  });
  const std::size_t hits = web.requests().size() - hits0;
  const std::uint64_t written = successes(seg, "fast") - written0;
  MESSAGE("in 9 s beside the hang: " << hits << " probes of fast, " << written
                                     << " written; heartbeat at most " << oldest_beat / 1'000'000
                                     << " ms old");
  CHECK(silent.open() <= 1);
  CHECK(hits >= 6); // about 9
  CHECK(written >= 6);
  // healthctl's rule: stale after three promised beats missed.
  CHECK(promise == std::chrono::nanoseconds(1s).count());
  CHECK(oldest_beat < 3 * promise);
  CHECK(table.writer_status() == WriterStatus::attached);
  run.stop();
}

TEST_CASE("down_interval probes a failing provider more often than its interval") {
  SegmentName seg("sched");
  HttpServer failing;
  failing.set_default_status(503);
  HttpServer healthy;
  Run run;
  run.start("segment = \"" + seg.str() + "\"\ninterval = \"30s\"\ntimeout = \"1s\"\n" +
            "[table]\ndown_interval = \"500ms\"\n" + provider("down", failing.url("/")) +
            provider("up", healthy.url("/status/200")));
  REQUIRE(eventually([&] { return failing.requests().size() >= 1; }, 10s));
  REQUIRE(eventually([&] { return healthy.requests().size() >= 1; }, 10s));
  std::this_thread::sleep_for(5s);
  const std::size_t down_hits = failing.requests().size();
  const std::size_t up_hits = healthy.requests().size();
  MESSAGE("in about 5 s: " << down_hits << " probes of the failing provider, " << up_hits
                           << " of the healthy one");
  CHECK(down_hits >= 4); // about 10; one at the 30 s interval
  CHECK(up_hits == 1);   // healthy: its 30 s interval
  const auto s = Table::open(seg.str()).get_state("down");
  REQUIRE(s);
  CHECK_FALSE(s->healthy);
  run.stop();
}

TEST_CASE("a provider is never probed twice at once: not by its window ending, a spread "
          "schedule or a reload") {
  SegmentName seg("sched");
  SilentServer silent;
  Run run;
  // timeout = interval with a spread: its next probe can fall due while the
  // last one hangs; and each report below re-arms a 200 ms window that ends
  // while a probe is in flight (expire() then asks for a probe at once).
  const std::string config = "segment = \"" + seg.str() + "\"\n" +
                             "[table]\nfailure_threshold = 1\nbackoff = \"200ms\"\n" +
                             provider("hang", silent.url(),
                                      "interval = \"1500ms\"\ntimeout = \"1500ms\"\n"
                                      "spread = 0.5\n");
  run.start(config);
  REQUIRE(eventually([&] { return silent.accepted() >= 1; }, 10s));
  Reporter reporter(seg.str());
  bool reloaded = false;
  int turn = 0;
  for_span(7s, [&] {
    // Every half second, so the window a report re-arms ends mid-probe.
    if (++turn % 5 == 0 && silent.open() == 1)
      reporter.failure("hang", "reported while probing", FailureClass::server);
    if (!reloaded && silent.accepted() >= 2) {
      run.child->signal(SIGHUP); // the same file: it keeps its probe in flight
      reloaded = true;
    }
  });
  MESSAGE(silent.accepted() << " probes, at most " << silent.most_open() << " at once");
  CHECK(reloaded);
  CHECK(run.child->wait_for_err("(0 added, 0 removed, 0 changed)", 10s));
  CHECK(silent.accepted() >= 3); // it kept being probed (about 5)
  CHECK(silent.most_open() == 1);
  run.stop();
}
