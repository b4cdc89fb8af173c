// The probe engine against real servers on 127.0.0.1.
#include "probe.hpp"
#include "servers.hpp"

#include <doctest/doctest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <thread>

using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Timing here must hold on a busy machine: a bound is either a lower one (a
// probe waited at least its delay) or one that the behaviour under test
// would miss by seconds (a probe hangs 30 s; the bound is 10 s).

namespace {

/// Default timeout for probes expected to answer at once: long, so a loaded
/// machine never turns an answer into a timeout.
constexpr auto kAnswerTimeout = 10000ms;
/// What a probe that must NOT run to its end is given: far past any bound below.
constexpr auto kHangTimeout = 30000ms;
/// "Well under the hang": what load may add, and not a timeout's worth.
constexpr auto kWellUnder = 10s;

ProbeSpec http(const std::string& url, std::chrono::milliseconds timeout = kAnswerTimeout) {
  ProbeSpec s;
  s.provider = "p";
  s.kind = ProbeKind::http;
  s.target = url;
  s.timeout = timeout;
  return s;
}

ProbeSpec tcp(const std::string& address, std::chrono::milliseconds timeout = kAnswerTimeout) {
  ProbeSpec s = http("", timeout);
  s.kind = ProbeKind::tcp;
  s.target = address;
  return s;
}

/// Runs one tick and returns the outcomes in probe order (each exactly once).
std::vector<ProbeResult> tick(const std::vector<ProbeSpec>& probes, TickStats* stats = nullptr) {
  Engine engine;
  std::vector<ProbeResult> out(probes.size());
  std::vector<int> seen(probes.size(), 0);
  const TickStats s = engine.run(probes, [&](const ProbeResult& o) {
    REQUIRE(o.index < probes.size());
    out[o.index] = o;
    ++seen[o.index];
  });
  for (std::size_t i = 0; i < probes.size(); ++i)
    CHECK_MESSAGE(seen[i] == 1, "probe " << i);
  if (stats) *stats = s;
  return out;
}

ProbeResult one(const ProbeSpec& p) { return tick({p}).at(0); }

} // namespace

TEST_CASE("http 200 and 404 are healthy: the server answered") {
  HttpServer server;
  const auto out = tick({http(server.url("/status/200")), http(server.url("/status/404"))});
  CHECK(out[0].healthy);
  CHECK(out[0].http_status == 200);
  CHECK(out[0].reason.empty());
  CHECK(out[1].healthy);
  CHECK(out[1].http_status == 404);
}

TEST_CASE("http 500 and 503 are failures whose reason gives the status") {
  HttpServer server;
  const auto out = tick({http(server.url("/status/500")), http(server.url("/status/503"))});
  CHECK_FALSE(out[0].healthy);
  CHECK(out[0].reason == "http 500");
  CHECK_FALSE(out[1].healthy);
  CHECK(out[1].reason == "http 503");
}

TEST_CASE("healthy_below moves the bound: 404 fails under 400") {
  HttpServer server;
  ProbeSpec p = http(server.url("/status/404"));
  p.healthy_below = 400;
  const ProbeResult o = one(p);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "http 404");
}

TEST_CASE("a server that accepts and never answers is a timeout, cut at the timeout") {
  HttpServer server;
  const auto t0 = Clock::now();
  const ProbeResult o = one(http(server.url("/hang"), 300ms));
  const auto took = Clock::now() - t0;
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "probe-timeout (>300ms)");
  CHECK(took >= 290ms);
  CHECK(took < kWellUnder); // cut: /hang would hold it until the server stops
  CHECK(server.accepted() == 1);
}

TEST_CASE("connection refused") {
  const ProbeResult o = one(http("http://127.0.0.1:" + std::to_string(refused_port()) + "/"));
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "connect: connection refused");
}

TEST_CASE("a slow answer inside the timeout is healthy") {
  HttpServer server;
  const ProbeResult o = one(http(server.url("/slow/300/200"), kAnswerTimeout));
  CHECK(o.healthy);
  CHECK(o.elapsed >= 290ms);
}

TEST_CASE("a slow answer past the timeout is a timeout") {
  HttpServer server;
  // The answer would come 20 s later: no load brings it inside 200ms.
  const ProbeResult o = one(http(server.url("/slow/20000/200"), 200ms));
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "probe-timeout (>200ms)");
}

TEST_CASE("a connection closed without an answer is an empty reply") {
  HttpServer server;
  const ProbeResult o = one(http(server.url("/close")));
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "http: empty reply from server");
}

TEST_CASE("tcp probes: a listener is healthy, a closed port is refused") {
  TcpListener listener;
  const auto out =
      tick({tcp(listener.address()), tcp("127.0.0.1:" + std::to_string(refused_port()))});
  CHECK(out[0].healthy);
  CHECK_FALSE(out[1].healthy);
  CHECK(out[1].reason == "connect: connection refused");
}

TEST_CASE("configured headers are sent") {
  HttpServer server;
  ProbeSpec p = http(server.url("/status/200"));
  p.headers = {"Authorization: Bearer s3cret", "X-Probe: yes"};
  CHECK(one(p).healthy);
  const auto reqs = server.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].find("GET /status/200 HTTP/1.1") == 0);
  CHECK(reqs[0].find("Authorization: Bearer s3cret") != std::string::npos);
  CHECK(reqs[0].find("X-Probe: yes") != std::string::npos);
  CHECK(reqs[0].find("User-Agent: healthprobe/") != std::string::npos);
}

TEST_CASE("https with a self-signed CA: accepted with ca_file, refused without") {
  TempDir dir;
  TlsServer server(dir);

  ProbeSpec with_ca = http(server.url());
  with_ca.ca_file = server.ca_file();
  ProbeSpec without_ca = http(server.url());
  ProbeSpec unverified = http(server.url());
  unverified.verify = false;
  const auto out = tick({with_ca, without_ca, unverified});

  CHECK_MESSAGE(out[0].healthy, out[0].reason);
  CHECK(out[0].http_status == 200);
  CHECK_FALSE(out[1].healthy);
  CHECK(out[1].reason.rfind("tls: certificate verify failed", 0) == 0);
  CHECK(out[2].healthy); // verify = false: the operator's explicit choice
}

TEST_CASE("ten probes of 1s each run concurrently: one tick takes about 1s, not 10s") {
  HttpServer server;
  std::vector<ProbeSpec> probes;
  for (int i = 0; i < 10; ++i)
    probes.push_back(http(server.url("/slow/1000/200"), kHangTimeout));
  TickStats stats;
  const auto out = tick(probes, &stats);
  for (const auto& o : out) {
    CHECK(o.healthy);
    CHECK(o.elapsed >= 995ms);
  }
  CHECK(stats.healthy == 10);
  CHECK(stats.elapsed >= 995ms);
  // One after another they need 10 s; side by side about 1 s, and load adds
  // scheduling delay, not whole seconds per probe.
  CHECK(stats.elapsed < 6s);
}

TEST_CASE("failing probes, even ones that cannot start, do not stop the others") {
  HttpServer server;
  const std::string refused = "127.0.0.1:" + std::to_string(refused_port());
  // Every probe but the hanging one may take 30 s: none of them fails by
  // running to its timeout, so the tick ends soon after the hang's 300ms.
  const std::vector<ProbeSpec> probes = {
      http(server.url("/status/200"), kHangTimeout),
      http("http://[::1", kHangTimeout), // malformed: curl cannot even start it
      http(server.url("/hang"), 300ms),
      http("http://" + refused + "/", kHangTimeout),
      http(server.url("/status/503"), kHangTimeout),
      tcp(refused, kHangTimeout),
      http(server.url("/slow/50/204"), kHangTimeout),
  };
  TickStats stats;
  const auto out = tick(probes, &stats);
  CHECK(out[0].healthy);
  CHECK_FALSE(out[1].healthy);
  CHECK(out[1].reason.rfind("probe-error: ", 0) == 0);
  CHECK(out[2].reason == "probe-timeout (>300ms)");
  CHECK(out[3].reason == "connect: connection refused");
  CHECK(out[4].reason == "http 503");
  CHECK(out[5].reason == "connect: connection refused");
  CHECK(out[6].healthy);
  CHECK(stats.healthy == 2);
  CHECK(stats.failed == 5);
  CHECK(stats.elapsed >= 290ms);     // the hang's timeout
  CHECK(stats.elapsed < kWellUnder); // not any of the 30 s ones
}

TEST_CASE("outcomes are reported as each probe finishes, not at the end of the tick") {
  HttpServer server;
  Engine engine;
  // The third probe hangs for its whole 30 s timeout. Once the first two
  // outcomes are in, the callback ends the tick through the wake fd: if
  // outcomes were held until the tick ended, they would come only after the
  // hang's 30 s, and the hang would not be abandoned.
  const std::vector<ProbeSpec> probes = {http(server.url("/status/200"), kHangTimeout),
                                         http(server.url("/slow/400/200"), kHangTimeout),
                                         http(server.url("/hang"), kHangTimeout)};
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  const auto t0 = Clock::now();
  std::vector<Clock::duration> at(3);
  std::vector<int> seen(3, 0);
  int reported = 0;
  const TickStats stats = engine.run(
      probes,
      [&](const ProbeResult& o) {
        if (o.index >= probes.size()) {
          FAIL_CHECK("outcome for probe " << o.index);
          return;
        }
        at[o.index] = Clock::now() - t0;
        ++seen[o.index];
        CHECK(o.healthy);
        if (++reported == 2) {
          const std::uint64_t one = 1;
          [[maybe_unused]] auto n = ::write(efd, &one, sizeof one);
        }
      },
      efd,
      [&] {
        std::uint64_t v = 0;
        [[maybe_unused]] auto n = ::read(efd, &v, sizeof v);
        return true;
      });
  const auto took = Clock::now() - t0;
  ::close(efd);
  CHECK(seen[0] == 1);
  CHECK(seen[1] == 1);
  CHECK(seen[2] == 0); // still hanging when the first two were reported
  CHECK(stats.interrupted);
  CHECK(stats.abandoned == 1);
  CHECK(at[1] >= 390ms); // the slow one was reported at its answer, not before
  CHECK(took < kWellUnder);
}

TEST_CASE("the wake fd interrupts a tick at once and abandons what is in flight") {
  HttpServer server;
  Engine engine;
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  // Poked from another thread once the quick probe is in and both hanging
  // requests have reached the server (waited for, not slept for: a busy
  // machine may take longer to get there).
  std::atomic<bool> answered{false};
  std::atomic<bool> poked{false};
  std::thread poke([&] {
    poked = eventually([&] { return answered && server.requests().size() >= 3; }, 10s);
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd, &one, sizeof one);
  });
  const std::vector<ProbeSpec> probes = {http(server.url("/hang"), kHangTimeout),
                                         http(server.url("/hang"), kHangTimeout),
                                         http(server.url("/status/200"))};
  int outcomes = 0;
  int wakes = 0;
  const auto t0 = Clock::now();
  const TickStats stats = engine.run(
      probes,
      [&](const ProbeResult& o) {
        ++outcomes;
        CHECK(o.healthy);
        answered = true;
      },
      efd,
      [&] {
        ++wakes;
        std::uint64_t v = 0;
        [[maybe_unused]] auto n = ::read(efd, &v, sizeof v);
        return true;
      });
  const auto took = Clock::now() - t0;
  poke.join();
  ::close(efd);
  CHECK(poked);
  CHECK(stats.interrupted);
  CHECK(stats.abandoned == 2);
  CHECK(outcomes == 1);
  CHECK(wakes == 1);
  CHECK(took < kWellUnder); // the hanging probes had 30 s left
  // The engine is reusable after an interrupted tick; the abandoned
  // connections were closed (the server saw them go away).
  CHECK(engine
            .run(std::vector<ProbeSpec>{http(server.url("/status/200"))},
                 [](const ProbeResult& o) { CHECK(o.healthy); })
            .healthy == 1);
}

TEST_CASE("one engine runs tick after tick") {
  HttpServer server;
  Engine engine;
  for (int i = 0; i < 20; ++i) {
    const std::vector<ProbeSpec> probes = {http(server.url("/status/200")),
                                           http(server.url("/status/503"))};
    const TickStats s = engine.run(probes, [](const ProbeResult&) {});
    CHECK(s.healthy == 1);
    CHECK(s.failed == 1);
  }
  CHECK(server.accepted() == 40); // a fresh connection per probe
}
