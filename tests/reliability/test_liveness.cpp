// Writer liveness and single-writer enforcement: a stopped writer shows as
// stale, a killed one is replaced at once, a forked (or exec'd) child of the
// writer does not hold the lock, and killing any process mid-operation never
// makes the next open hang.
#include "invariant.hpp"
#include "proc.hpp"

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <spawn.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

constexpr auto kInterval = 50ms;

/// What a tool calls stale: the writer promised beats every interval and
/// missed three.
bool stale(const TableInfo& i) {
  if (i.heartbeat_interval_ns <= 0) return false;
  const std::int64_t age = Instant::now().mono_ns - i.heartbeat_mono_ns;
  return age > 3 * i.heartbeat_interval_ns;
}

/// healthctl info --json's verdict, if healthctl exists: "true"/"false".
std::string cli_stale(const std::string& seg) {
  if (!test::kHealthctl) return {};
  const auto r = test::run({test::kHealthctl, "info", seg, "--json"});
  if (!r.status.ok()) return "error: " + r.out;
  const auto at = r.out.find("\"stale\":");
  if (at == std::string::npos) return "no stale field: " + r.out;
  const auto v = r.out.find_first_not_of(' ', at + 8);
  return r.out.substr(v, r.out.compare(v, 4, "true") == 0 ? 4 : 5);
}

struct Beat {
  std::atomic<int> ready{0};
};

/// A prober-like writer: promises kInterval, beats every 10 ms.
int beating_writer(const std::string& seg, Beat& b) {
  auto w = Writer::open(seg);
  w.set_heartbeat_interval(kInterval);
  b.ready = 1;
  for (;;) {
    w.heartbeat();
    w.mark_healthy("groq");
    std::this_thread::sleep_for(10ms);
  }
}

} // namespace

TEST_CASE(
    "liveness: a stopped writer goes stale after 3 intervals, a killed one is replaced at once") {
  test::Watchdog dog(60);
  SegmentName seg("live");
  SegmentName other("other"); // declared first: its guard runs after w lets go
  { auto w = Writer::create(seg.str()); }
  test::Shared<Beat> b;
  const pid_t pid = test::spawn([&] { return beating_writer(seg.str(), *b); });
  auto t = Table::open(seg.str());
  REQUIRE(test::eventually([&] { return b->ready == 1; }));
  CHECK(t.info().writer_pid == pid);
  CHECK(t.info().heartbeat_interval_ns == std::chrono::nanoseconds(kInterval).count());
  CHECK(test::eventually([&] { return !stale(t.info()); }));
  CHECK(t.writer_status() == WriterStatus::attached);
  if (test::kHealthctl) CHECK(cli_stale(seg.str()) == "false");

  ::kill(pid, SIGSTOP);
  std::this_thread::sleep_for(3 * kInterval + 100ms);
  CHECK(stale(t.info()));
  // Stopped is not dead: the kernel still sees the lock held, so nobody else
  // may write; staleness is what tells the operator.
  CHECK(t.writer_status() == WriterStatus::attached);
  CHECK(test::error_of([&] { (void)Writer::open(seg.str()); }) == Errc::writer_busy);
  if (test::kHealthctl) CHECK(cli_stale(seg.str()) == "true");

  ::kill(pid, SIGCONT);
  CHECK(test::eventually([&] { return !stale(t.info()); }));
  if (test::kHealthctl) CHECK(cli_stale(seg.str()) == "false");

  const auto r = test::kill_and_reap(pid);
  CHECK(r.signal == SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(t.writer_status() == WriterStatus::none); // at once: the kernel dropped the lock
  const std::int64_t before_open = Instant::now().mono_ns;
  auto w = Writer::open(seg.str());
  CHECK(std::chrono::steady_clock::now() - t0 < 10s); // no waiting out a timeout
  CHECK(t.writer_status() == WriterStatus::attached);
  CHECK(t.info().writer_pid == ::getpid());
  // Attach stamps a fresh heartbeat (asserted on the stamp itself: "not
  // stale" would give a busy machine only 3 x 50 ms to get here).
  CHECK(t.info().heartbeat_mono_ns >= before_open);
  w.set_heartbeat_interval(kInterval);
  // A clean exit withdraws the promise: no writer is not a stale writer.
  w = Writer::create(other.str()); // destroys the old Writer
  CHECK(t.info().heartbeat_interval_ns == 0);
  CHECK(t.writer_status() == WriterStatus::none);
  CHECK_FALSE(stale(t.info()));
}

TEST_CASE("liveness: a second writer fails at once naming the holder's pid") {
  SegmentName seg("second");
  { auto w = Writer::create(seg.str()); }
  test::Shared<Beat> b;
  const pid_t pid = test::spawn([&] { return beating_writer(seg.str(), *b); });
  REQUIRE(test::eventually([&] { return b->ready == 1; }));
  try {
    (void)Writer::open(seg.str());
    FAIL("two writers");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::writer_busy);
    CHECK(std::string(e.what()).find("pid " + std::to_string(pid)) != std::string::npos);
  }
  // "At once", asserted so load cannot break it: a hundred attempts take
  // milliseconds; an open that waited for the lock even 100 ms each would
  // take 10 s (and one that blocked would wait for the holder's death).
  const auto t0 = std::chrono::steady_clock::now();
  int busy = 0;
  for (int i = 0; i < 100; ++i)
    busy += test::error_of([&] { (void)Writer::open(seg.str()); }) == Errc::writer_busy ? 1 : 0;
  CHECK(busy == 100);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  if (test::kHealthctl) {
    const auto r = test::run({test::kHealthctl, "record", seg.str(), "groq", "failure"});
    CHECK(r.status.code == static_cast<int>(Errc::writer_busy));
    CHECK(r.out.find(std::to_string(pid)) != std::string::npos);
  }
  test::kill_and_reap(pid);
  CHECK_NOTHROW(Writer::open(seg.str()));
}

TEST_CASE("liveness: a forked child of the writer does not hold the writer lock") {
  test::Watchdog dog(60);
  SegmentName seg("forked");
  { auto w = Writer::create(seg.str()); }
  struct State {
    std::atomic<int> writer_ready{0};
    std::atomic<pid_t> grandchild{0};
    std::atomic<int> child_write_before{-1}; // Errc of the child's write while the parent lives
    std::atomic<int> child_open_before{-1};
    std::atomic<int> go_after{0};
    std::atomic<int> child_write_after{-1}; // ... and after the parent died
    std::atomic<int> child_done{0};
  };
  test::Shared<State> s;
  const pid_t writer = test::spawn([&]() -> int {
    auto w = Writer::open(seg.str());
    w.mark_unhealthy("groq", "parent wrote this");
    const auto code = [](auto&& fn) {
      const auto e = test::error_of(fn);
      return e ? static_cast<int>(*e) : 0;
    };
    // The grandchild keeps the parent's Writer object (a copy of its memory).
    s->grandchild = test::spawn([&]() -> int {
      s->child_write_before = code([&] { w.mark_healthy("groq"); });
      s->child_open_before = code([&] { (void)Writer::open(seg.str()); });
      while (!s->go_after)
        std::this_thread::sleep_for(1ms);
      s->child_write_after = code([&] { w.mark_healthy("groq"); });
      s->child_done = 1;
      for (;;)
        std::this_thread::sleep_for(1s); // lives on until killed
    });
    s->writer_ready = 1;
    for (;;)
      std::this_thread::sleep_for(1s);
  });
  REQUIRE(test::eventually([&] { return s->writer_ready && s->child_open_before != -1; }));
  CHECK(s->child_write_before == static_cast<int>(Errc::writer_busy));
  CHECK(s->child_open_before == static_cast<int>(Errc::writer_busy)); // the parent holds it
  test::kill_and_reap(writer);
  // The parent is dead, its child alive: a new writer attaches at once.
  REQUIRE(::kill(s->grandchild, 0) == 0);
  {
    auto w = Writer::open(seg.str());
    CHECK(w.table().get_state("groq")->last_error ==
          "parent wrote this"); // the child wrote nothing
    s->go_after = 1;
    REQUIRE(test::eventually([&] { return s->child_done == 1; }));
    CHECK(s->child_write_after == static_cast<int>(Errc::writer_busy));
    CHECK(w.table().get_state("groq")->last_error == "parent wrote this");
  }
  ::kill(s->grandchild, SIGKILL);
}

TEST_CASE("liveness: an exec'd child of the writer does not hold the lock (O_CLOEXEC)") {
  test::Watchdog dog(60);
  SegmentName seg("exec");
  { auto w = Writer::create(seg.str()); }
  test::Shared<std::atomic<pid_t>> sleeper;
  const pid_t writer = test::spawn([&]() -> int {
    auto w = Writer::open(seg.str());
    pid_t child = 0;
    char arg0[] = "sleep", arg1[] = "30";
    char* argv[] = {arg0, arg1, nullptr};
    if (::posix_spawnp(&child, "sleep", nullptr, nullptr, argv, environ) != 0) return 50;
    *sleeper = child;
    for (;;)
      std::this_thread::sleep_for(1s);
  });
  for (int i = 0; i < 20000 && *sleeper == 0; ++i) {
    int status;
    if (::waitpid(writer, &status, WNOHANG) == writer)
      FAIL("the writer ended before spawning: " << test::decode(status).describe());
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE_MESSAGE(*sleeper != 0, "the writer did not spawn `sleep` within 20 s");
  const auto res = test::kill_and_reap(writer);
  CHECK_MESSAGE(!res.exited, "the writer exited on its own: " << res.describe());
  CHECK(::kill(*sleeper, 0) == 0); // the exec'd child lives on ...
  try {
    auto w = Writer::open(seg.str()); // ... without the lock
  } catch (const Error& e) {
    // Name who holds it: the dead writer (the kernel did not drop its lock),
    // the sleeper (the descriptor leaked across exec), or someone else.
    FAIL_CHECK("Writer::open after the writer died: " << e.what() << " (writer pid " << writer
                                                      << ", sleeper pid " << sleeper->load()
                                                      << ")");
  }
  ::kill(*sleeper, SIGKILL);
}

TEST_CASE("liveness: kill -9 of any process mid-operation never makes the next open hang") {
  test::Watchdog dog(300);
  SegmentName seg("kill-any");
  CreateOptions o;
  o.capacity = 16;
  {
    auto w = Writer::create(seg.str(), o);
    w.add("groq");
  }
  std::mt19937 rng(99);
  std::map<std::string, int> outcomes;
  const int kIterations = 300;
  int recreated = 0;
  // "Never hang" on a busy machine: each open gets 10 s (nothing in the
  // library waits; a scheduler may), and all of them together 30 s, which
  // an open that waited even 50 ms on what the dead left would exceed.
  std::chrono::steady_clock::duration total{0}, longest{0};
  auto timed = [&](auto&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto took = std::chrono::steady_clock::now() - t0;
    total += took;
    longest = std::max(longest, took);
    return took;
  };
  for (int it = 0; it < kIterations; ++it) {
    const int op = static_cast<int>(rng() % (test::kHealthctl ? 9 : 6));
    const pid_t pid = test::spawn([&]() -> int {
      CreateOptions force = o;
      force.replace = true;
      switch (op) {
      case 0: {
        auto w = Writer::create(seg.str(), force);
        for (int k = 0; k < 16; ++k)
          w.mark_unhealthy("p" + std::to_string(k), "x");
        break;
      }
      case 1: {
        auto w = Writer::open(seg.str());
        for (int k = 0; k < 1000; ++k)
          w.mark_unhealthy("groq", "y");
        break;
      }
      case 2: {
        auto w = Writer::open(seg.str());
        for (int k = 0; k < 100; ++k)
          w.reset();
        break;
      }
      case 3: {
        Writer::destroy(seg.str());
        auto w = Writer::create(seg.str(), o);
        break;
      }
      case 4: {
        auto t = Table::open(seg.str());
        for (int k = 0; k < 1000; ++k)
          (void)t.snapshot();
        break;
      }
      case 5: {
        auto w = Writer::open(seg.str());
        for (int k = 0; k < 1000; ++k)
          w.set_override("groq", Override::forced_down);
        break;
      }
      case 6:
        ::execl(test::kHealthctl, test::kHealthctl, "record", seg.str().c_str(), "groq", "failure",
                static_cast<char*>(nullptr));
        break;
      case 7:
        ::execl(test::kHealthctl, test::kHealthctl, "create", seg.str().c_str(), "--force",
                "--slots", "16", static_cast<char*>(nullptr));
        break;
      case 8:
        ::execl(test::kHealthctl, test::kHealthctl, "reset", seg.str().c_str(),
                static_cast<char*>(nullptr));
        break;
      }
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    test::kill_and_reap(pid);
    // The next open, bounded: whatever the killed process left, it answers.
    std::optional<Errc> code;
    CHECK(timed([&] { code = test::error_of([&] { (void)Table::open(seg.str()).snapshot(); }); }) <
          10s);
    ++outcomes[code ? std::string(errc_name(*code)) : "ok"];
    CHECK_MESSAGE((!code || *code == Errc::not_ready || *code == Errc::no_such_segment),
                  "after killing op " << op << ": " << errc_name(*code));
    // The next writer never finds the lock held by the dead.
    CHECK(timed([&] {
            if (code) { // a creator died mid-create (or between destroy and create)
              CreateOptions force = o;
              force.replace = true;
              CHECK_NOTHROW(Writer::create(seg.str(), force).add("groq"));
              ++recreated;
            } else {
              CHECK(test::error_of([&] { (void)Writer::open(seg.str()); }) == std::nullopt);
            }
          }) < 10s);
  }
  using ms = std::chrono::milliseconds;
  MESSAGE("opens after the kills: " << std::chrono::duration_cast<ms>(total).count()
                                    << " ms in all, longest "
                                    << std::chrono::duration_cast<ms>(longest).count() << " ms");
  CHECK(total < 30s);
  std::string summary;
  for (const auto& [k, v] : outcomes)
    summary += k + "=" + std::to_string(v) + " ";
  MESSAGE(kIterations << " kills mid-operation; next open: " << summary << "; recreated "
                      << recreated);
}
