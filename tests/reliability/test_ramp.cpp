// Slow start across processes (issue 9, item 5): when a breaker's window
// ends, reader processes re-admit the provider spread over the policy's ramp,
// each from its own offset, instead of all at the same instant. Sixteen
// forked readers, each with its own Table::open (so its own offset), poll
// is_healthy() across the end of a real window and report the
// CLOCK_MONOTONIC instant each first saw the provider available.
//
// Only lower bounds are tight (the library must never admit early); upper
// bounds carry seconds of slack, because a loaded machine delays polls.
#include "proc.hpp"

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

constexpr int kReaders = 16;
constexpr const char* kProvider = "groq";
// Long enough that every reader is polling before the window ends, even on
// a busy machine: they are already forked and blocked on the barrier.
constexpr auto kBackoff = 2s;
// A loaded machine may delay a reader's poll by this much.
constexpr std::int64_t kSlackNs = 5'000'000'000;

std::int64_t mono_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

/// What a reader writes back through the pipe (one write, < PIPE_BUF, so
/// readers' samples never interleave).
struct Sample {
  std::int32_t reader = -1;
  std::int32_t saw_down = 0; ///< it saw the provider unavailable first
  std::int64_t first_up_ns = 0;
};

class Pipe {
public:
  Pipe() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int read_end() const noexcept { return fds_[0]; }
  int write_end() const noexcept { return fds_[1]; }
  void close_read() noexcept { close_fd(fds_[0]); }
  void close_write() noexcept { close_fd(fds_[1]); }

private:
  static void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int fds_[2] = {-1, -1};
};

/// The forked readers, killed and reaped by pid whatever the test did.
class Children {
public:
  ~Children() {
    for (const pid_t pid : pending_)
      test::kill_and_reap(pid);
  }
  void add(pid_t pid) { pending_.push_back(pid); }
  /// Waits for each (killing one that outlives the limit); returns how each ended.
  std::vector<test::ChildResult> wait_all(std::chrono::milliseconds limit) {
    std::vector<test::ChildResult> out;
    while (!pending_.empty()) {
      out.push_back(test::wait_child(pending_.back(), limit));
      pending_.pop_back();
    }
    return out;
  }

private:
  std::vector<pid_t> pending_;
};

/// Reads exactly `n` bytes within `limit`; false on EOF, error or timeout.
bool read_within(int fd, char* buf, std::size_t n, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  std::size_t done = 0;
  while (done < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    const ssize_t got = ::read(fd, buf + done, n - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    done += static_cast<std::size_t>(got);
  }
  return true;
}

/// How the readers come by their Table.
enum class Opened {
  by_each,     ///< each child opens it after the fork
  before_fork, ///< the parent opened it and read it once; children inherit it
};

/// One reader process: opens the table itself (drawing its own ramp
/// offset), or uses the one its parent opened before forking (gunicorn
/// --preload; the fork draws the child its own offset), says it is ready, waits for the trip, then
/// polls every ~1 ms until it sees the provider available. Exit codes: 0 ok, 10 not healthy before
/// the trip, 11 never available in time, 12 pipe write failed.
int reader(const std::string& seg, const Table* inherited, int index, int ready_fd,
           test::Barrier& go, int out_fd, std::int64_t limit_ns) {
  const std::optional<Table> own = inherited ? std::nullopt : std::optional(Table::open(seg));
  const Table& t = inherited ? *inherited : *own;
  if (!t.is_healthy(kProvider)) return 10;
  if (::write(ready_fd, "r", 1) != 1) return 12;
  go.wait();
  Sample s;
  s.reader = index;
  const std::int64_t stop = mono_ns() + limit_ns;
  for (;;) {
    const bool up = t.is_healthy(kProvider);
    const std::int64_t now = mono_ns(); // after the answer: never earlier than it
    if (up) {
      s.first_up_ns = now;
      break;
    }
    s.saw_down = 1;
    if (now > stop) return 11;
    ::usleep(1000);
  }
  return ::write(out_fd, &s, sizeof s) == sizeof s ? 0 : 12;
}

struct Run {
  std::int64_t deadline_ns = 0; ///< the window's end, this process's CLOCK_MONOTONIC
  std::vector<Sample> samples;
};

/// Trips one provider (threshold 1, a kBackoff window, the given ramp) with
/// kReaders reader processes already polling, and collects when each first
/// saw it available again.
Run run_readers(std::chrono::nanoseconds ramp, Opened opened = Opened::by_each) {
  const test::Watchdog watchdog(120);
  SegmentName seg("ramp");
  CreateOptions o;
  o.policy.failure_threshold = 1;
  o.policy.backoff = kBackoff;
  o.policy.ramp = ramp;
  auto w = Writer::create(seg.str(), o);
  w.add(kProvider);

  std::optional<Table> preloaded;
  if (opened == Opened::before_fork) {
    preloaded.emplace(Table::open(seg.str()));
    REQUIRE(preloaded->is_healthy(kProvider)); // a handle bound, as a preloaded app would
  }
  Pipe ready, out;
  test::Barrier go;
  Children kids; // after the pipes and the barrier: destroyed (killed) first
  const std::int64_t limit_ns =
      std::chrono::nanoseconds(kBackoff + ramp).count() + kSlackNs + 10'000'000'000;
  for (int i = 0; i < kReaders; ++i)
    kids.add(test::spawn(
        [&, i] {
          return reader(seg.str(), preloaded ? &*preloaded : nullptr, i, ready.write_end(), go,
                        out.write_end(), limit_ns);
        },
        90));

  char buf[kReaders];
  REQUIRE_MESSAGE(read_within(ready.read_end(), buf, sizeof buf, 60s),
                  "not every reader opened the table and reported ready");

  REQUIRE(w.mark_unhealthy(kProvider, "http 503") == Transition::tripped);
  const auto st = w.table().get_state(kProvider);
  REQUIRE(st);
  Run run;
  run.deadline_ns = st->unhealthy_until_mono_ns;
  REQUIRE(run.deadline_ns > mono_ns());
  CHECK(st->ramp_ns == ramp.count());
  go.release();

  for (const auto& r : kids.wait_all(60s))
    CHECK_MESSAGE(r.ok(), "a reader " << r.describe());
  out.close_write(); // every child has exited: the pipe ends at their samples
  Sample s;
  while (read_within(out.read_end(), reinterpret_cast<char*>(&s), sizeof s, 5s))
    run.samples.push_back(s);
  REQUIRE(run.samples.size() == kReaders);
  for (const Sample& x : run.samples) {
    CHECK_MESSAGE(x.saw_down == 1, "reader " << x.reader << " never saw the window");
    // Never early: not one reader admits the provider before the window ends.
    CHECK_MESSAGE(x.first_up_ns >= run.deadline_ns,
                  "reader " << x.reader << " saw it available "
                            << (run.deadline_ns - x.first_up_ns) / 1'000'000 << " ms early");
  }
  return run;
}

std::int64_t spread_ns(const Run& r) {
  const auto [lo, hi] =
      std::minmax_element(r.samples.begin(), r.samples.end(), [](const Sample& a, const Sample& b) {
        return a.first_up_ns < b.first_up_ns;
      });
  return hi->first_up_ns - lo->first_up_ns;
}

std::string describe(const Run& r) {
  std::vector<std::int64_t> after;
  for (const Sample& s : r.samples)
    after.push_back((s.first_up_ns - r.deadline_ns) / 1'000'000);
  std::sort(after.begin(), after.end());
  std::string out = "ms after the deadline:";
  for (const auto a : after)
    out += " " + std::to_string(a);
  return out;
}

} // namespace

TEST_CASE("ramp: 16 reader processes re-admit a provider spread over the ramp, not as a herd") {
  constexpr auto kRamp = 4s;
  const Run run = run_readers(kRamp);
  const std::int64_t ramp_ns = std::chrono::nanoseconds(kRamp).count();
  for (const Sample& x : run.samples)
    CHECK_MESSAGE(x.first_up_ns <= run.deadline_ns + ramp_ns + kSlackNs,
                  "reader " << x.reader << " waited past the ramp");
  const std::int64_t spread = spread_ns(run);
  MESSAGE("spread " << spread / 1'000'000 << " ms over a " << ramp_ns / 1'000'000 << " ms ramp; "
                    << describe(run));
  // Each reader's offset is uniform over the ramp, and polling delays only
  // move an instant later. The chance that 16 uniform offsets all fall in a
  // band of a quarter of the ramp is 16 w^15 - 15 w^16 at w = 1/4, about
  // 1.1e-8; the expected range is 15/17 of the ramp (~3.5 s). A herd (one
  // offset shared by every process) would give a spread of polling noise.
  CHECK(spread >= ramp_ns / 4);
}

TEST_CASE("ramp: with no ramp, no reader process sees the provider before the window ends") {
  const Run run = run_readers(0s);
  for (const Sample& x : run.samples)
    CHECK_MESSAGE(x.first_up_ns <= run.deadline_ns + kSlackNs,
                  "reader " << x.reader << " waited long after the window");
  MESSAGE("spread " << spread_ns(run) / 1'000'000 << " ms with no ramp; " << describe(run));
}

TEST_CASE("ramp: readers forked from a process that opened the table first still spread out") {
  // A pre-forking server that opens the table before it forks: without a
  // fresh offset per child, all 16 would come back at the same instant.
  constexpr auto kRamp = 4s;
  const Run run = run_readers(kRamp, Opened::before_fork);
  const std::int64_t spread = spread_ns(run);
  MESSAGE("spread " << spread / 1'000'000 << " ms over a " << kRamp.count() * 1000 << " ms ramp; "
                    << describe(run));
  CHECK(spread >= std::chrono::nanoseconds(kRamp).count() / 4); // the bound argued above
}
