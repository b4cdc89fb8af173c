// Many processes on one segment, as in production: forked readers checking
// every record they read against an invariant only a torn read breaks, and
// a writer killed with SIGKILL over and over while readers keep answering.
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

constexpr int kProviders = 4;

std::string provider(int i) { return "provider-" + std::to_string(i); }

/// The reason for update k after `failures` consecutive failures: its
/// number, the count, and a length that depends on k, so a record stitched
/// from two updates disagrees with itself.
std::string reason_for(std::uint64_t k, std::uint32_t failures) {
  std::string r = "k=" + std::to_string(k) + " f=" + std::to_string(failures) + " ";
  r.append(20 + k % 70, static_cast<char>('a' + k % 26));
  return r;
}

/// Checks one record. Returns an empty string when consistent.
std::string check(const ProviderState& s) {
  if (!s.last_error) {
    if (s.consecutive_failures != 0) return "failures without a reason";
    if (!s.healthy) return "unhealthy without a reason";
    return "";
  }
  unsigned long long k = 0;
  unsigned f = 0;
  if (std::sscanf(s.last_error->c_str(), "k=%llu f=%u", &k, &f) != 2) return "unparsable reason";
  if (*s.last_error != reason_for(k, f)) return "reason body torn: " + *s.last_error;
  if (f != s.consecutive_failures) return "failure count does not match reason";
  if (static_cast<std::int64_t>(k) != s.last_check_unix_ns) return "last_check does not match";
  if (!s.healthy && s.unhealthy_until_mono_ns != static_cast<std::int64_t>(k) + 1'000)
    return "window does not match";
  return "";
}

/// The writer's loop: flaps every provider through failures and successes,
/// update k stamped into last_check, the window and the reason.
void write_forever(Writer& w, std::uint64_t k0, std::chrono::steady_clock::time_point until) {
  std::uint64_t k = k0;
  while (std::chrono::steady_clock::now() < until) {
    for (int p = 0; p < kProviders; ++p) {
      ++k;
      const Instant now{static_cast<std::int64_t>(k), static_cast<std::int64_t>(k)};
      if (k % 7 == 0) {
        w.mark_healthy(provider(p), now);
      } else {
        // mark_unhealthy counts first, so the reason carries the new count.
        const auto st = w.table().get_state(provider(p));
        const std::uint32_t f = st ? st->consecutive_failures + 1 : 1;
        w.mark_unhealthy(provider(p), reason_for(k, f), now);
      }
    }
  }
}

/// A reader process: reads every provider for `duration`, returns the
/// number of bad records through its exit status (0 = all good).
pid_t spawn_reader(const std::string& seg, std::chrono::milliseconds duration, int report_fd) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::alarm(30); // a hang fails the test instead of hanging CTest
  int bad = 0;
  unsigned long long reads = 0;
  try {
    auto t = Table::open(seg);
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
      for (int p = 0; p < kProviders; ++p) {
        const auto st = t.get_state(provider(p));
        if (!st) continue;
        ++reads;
        const std::string why = check(*st);
        if (!why.empty() && bad++ < 3) std::fprintf(stderr, "reader: %s\n", why.c_str());
        (void)t.is_healthy(provider(p));
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reader: %s\n", e.what());
    ::_exit(100);
  }
  if (::write(report_fd, &reads, sizeof reads) != sizeof reads) ::_exit(101);
  ::_exit(bad > 99 ? 99 : bad);
}

/// A table with every provider registered; threshold 3 so records flap
/// between healthy and tripped, a 1 us window so check() can pin it.
Writer make_flapping_table(const SegmentName& seg) {
  CreateOptions o;
  o.policy.failure_threshold = 3;
  o.policy.backoff = std::chrono::nanoseconds(1'000);
  auto w = Writer::create(seg.str(), o);
  for (int p = 0; p < kProviders; ++p)
    w.add(provider(p));
  return w;
}

} // namespace

TEST_CASE("processes: forked readers never see a torn record while the writer flaps") {
  SegmentName seg("torn");
  auto w = make_flapping_table(seg);

  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::vector<pid_t> readers;
  for (int r = 0; r < 3; ++r)
    readers.push_back(spawn_reader(seg.str(), 1200ms, fds[1]));
  write_forever(w, 0, std::chrono::steady_clock::now() + 1300ms);

  unsigned long long total_reads = 0;
  for (const pid_t pid : readers) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK_MESSAGE(WEXITSTATUS(status) == 0, "reader saw torn records or failed");
    unsigned long long reads = 0;
    REQUIRE(::read(fds[0], &reads, sizeof reads) == sizeof reads);
    total_reads += reads;
  }
  ::close(fds[0]);
  ::close(fds[1]);
  MESSAGE("consistent reads across 3 readers: " << total_reads << ", writer updates: "
                                                << w.table().info().updates);
  CHECK(total_reads > 10'000);
  CHECK(w.table().info().updates > 10'000);
}

TEST_CASE("processes: a writer SIGKILLed in a loop never blocks readers; the next one repairs") {
  SegmentName seg("kill");
  make_flapping_table(seg); // and release the writer: children take turns
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t reader = spawn_reader(seg.str(), 2500ms, fds[1]);

  std::mt19937 rng(42);
  std::uniform_int_distribution<int> delay_us(0, 3000);
  int kills = 0;
  std::uint32_t repaired = 0;
  const auto until = std::chrono::steady_clock::now() + 2s;
  std::uint64_t k0 = 0;
  while (std::chrono::steady_clock::now() < until) {
    k0 += 10'000'000;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::alarm(30);
      try {
        auto w = Writer::open(seg.str());
        write_forever(w, k0, std::chrono::steady_clock::now() + 60s);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "writer child: %s\n", e.what());
        ::_exit(3);
      }
      ::_exit(0);
    }
    ::usleep(static_cast<useconds_t>(500 + delay_us(rng)));
    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE_MESSAGE(WIFSIGNALED(status), "the writer child exited on its own: it failed to open");
    ++kills;
    // The lock died with the child: a new writer attaches at once.
    auto w = Writer::open(seg.str());
    repaired += w.repaired();
    const auto snap = w.table().snapshot();
    REQUIRE(snap.size() == kProviders); // no registered provider lost
    for (const auto& s : snap)
      CHECK_MESSAGE(check(s).empty(), check(s));
  }
  int status = 0;
  REQUIRE(::waitpid(reader, &status, 0) == reader);
  REQUIRE(WIFEXITED(status));
  CHECK_MESSAGE(WEXITSTATUS(status) == 0, "the reader saw torn records or failed");
  unsigned long long reads = 0;
  REQUIRE(::read(fds[0], &reads, sizeof reads) == sizeof reads);
  ::close(fds[0]);
  ::close(fds[1]);
  MESSAGE("writers killed: " << kills << ", records repaired: " << repaired
                             << ", reader's consistent reads: " << reads);
  CHECK(kills > 50);
  CHECK(reads > 1'000);
}

TEST_CASE("processes: a second writer is refused at once, naming the holder's pid") {
  SegmentName seg("second");
  auto w = Writer::create(seg.str());
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::alarm(10);
    int code = 0;
    try {
      Writer::open(seg.str());
      code = 1;
    } catch (const Error& e) {
      const std::string msg = e.what();
      code = e.code() == Errc::writer_busy &&
                     msg.find("pid " + std::to_string(::getppid())) != std::string::npos
                 ? 0
                 : 2;
    }
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_CASE("processes: a forked child of the writer does not hold the writer lock") {
  SegmentName seg("forkchild");
  auto w = Writer::create(seg.str());
  int go[2];
  REQUIRE(::pipe(go) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::alarm(10);
    char c;
    // The child's copy of the Writer must refuse to write.
    int code = 3;
    try {
      w.mark_healthy("x");
    } catch (const Error& e) {
      code = e.code() == Errc::writer_busy ? 0 : 4;
    }
    // Wait until the parent released its writer, then take the lock: the
    // child's inherited descriptor must not be holding it.
    if (::read(go[0], &c, 1) != 1) ::_exit(5);
    try {
      auto w2 = Writer::open(seg.str());
      w2.mark_healthy("from-child");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      ::_exit(6);
    }
    ::_exit(code);
  }
  { auto drop = std::move(w); } // the parent's writer goes away, the child lives on
  REQUIRE(::write(go[1], "g", 1) == 1);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(Table::open(seg.str()).get_state("from-child").has_value());
  ::close(go[0]);
  ::close(go[1]);
}
