// The probe engine against real servers on 127.0.0.1.
#include "probe.hpp"
#include "servers.hpp"

#include <doctest/doctest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <thread>

using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

ProbeSpec http(const std::string& url, std::chrono::milliseconds timeout = 2000ms) {
  ProbeSpec s;
  s.provider = "p";
  s.kind = ProbeKind::http;
  s.target = url;
  s.timeout = timeout;
  return s;
}

ProbeSpec tcp(const std::string& address, std::chrono::milliseconds timeout = 2000ms) {
  ProbeSpec s = http("", timeout);
  s.kind = ProbeKind::tcp;
  s.target = address;
  return s;
}

/// Runs one tick and returns the outcomes in probe order (each exactly once).
std::vector<Outcome> tick(const std::vector<ProbeSpec>& probes, TickStats* stats = nullptr) {
  Engine engine;
  std::vector<Outcome> out(probes.size());
  std::vector<int> seen(probes.size(), 0);
  const TickStats s = engine.run(probes, [&](const Outcome& o) {
    REQUIRE(o.index < probes.size());
    out[o.index] = o;
    ++seen[o.index];
  });
  for (std::size_t i = 0; i < probes.size(); ++i)
    CHECK_MESSAGE(seen[i] == 1, "probe " << i);
  if (stats) *stats = s;
  return out;
}

Outcome one(const ProbeSpec& p) { return tick({p}).at(0); }

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
  const Outcome o = one(p);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "http 404");
}

TEST_CASE("a server that accepts and never answers is a timeout, cut at the timeout") {
  HttpServer server;
  const auto t0 = Clock::now();
  const Outcome o = one(http(server.url("/hang"), 300ms));
  const auto took = Clock::now() - t0;
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "probe-timeout (>300ms)");
  CHECK(took >= 290ms);
  CHECK(took < 800ms);
  CHECK(server.accepted() == 1);
}

TEST_CASE("connection refused") {
  const Outcome o = one(http("http://127.0.0.1:" + std::to_string(refused_port()) + "/"));
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "connect: connection refused");
}

TEST_CASE("a slow answer inside the timeout is healthy") {
  HttpServer server;
  const Outcome o = one(http(server.url("/slow/300/200"), 1000ms));
  CHECK(o.healthy);
  CHECK(o.elapsed >= 290ms);
}

TEST_CASE("a slow answer past the timeout is a timeout") {
  HttpServer server;
  const Outcome o = one(http(server.url("/slow/800/200"), 200ms));
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "probe-timeout (>200ms)");
}

TEST_CASE("a connection closed without an answer is an empty reply") {
  HttpServer server;
  const Outcome o = one(http(server.url("/close")));
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

TEST_CASE("five probes of 100ms each finish one tick well under 500ms") {
  HttpServer server;
  std::vector<ProbeSpec> probes;
  for (int i = 0; i < 5; ++i)
    probes.push_back(http(server.url("/slow/100/200"), 2000ms));
  TickStats stats;
  const auto out = tick(probes, &stats);
  for (const auto& o : out) {
    CHECK(o.healthy);
    CHECK(o.elapsed >= 95ms);
  }
  CHECK(stats.healthy == 5);
  CHECK(stats.elapsed >= 95ms);
  CHECK(stats.elapsed < 400ms); // well under the 500ms a sequential loop needs
}

TEST_CASE("failing probes, even ones that cannot start, do not stop the others") {
  HttpServer server;
  const std::string refused = "127.0.0.1:" + std::to_string(refused_port());
  const std::vector<ProbeSpec> probes = {
      http(server.url("/status/200")),
      http("http://[::1"), // malformed: curl cannot even start it
      http(server.url("/hang"), 300ms),
      http("http://" + refused + "/"),
      http(server.url("/status/503")),
      tcp(refused),
      http(server.url("/slow/50/204")),
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
  CHECK(stats.elapsed < 800ms);
}

TEST_CASE("outcomes are reported as each probe finishes, not at the end of the tick") {
  HttpServer server;
  Engine engine;
  const std::vector<ProbeSpec> probes = {http(server.url("/status/200")),
                                         http(server.url("/slow/400/200"), 2000ms)};
  const auto t0 = Clock::now();
  std::vector<Clock::duration> at(2);
  engine.run(probes, [&](const Outcome& o) { at[o.index] = Clock::now() - t0; });
  CHECK(at[0] < 200ms);
  CHECK(at[1] >= 390ms);
}

TEST_CASE("the wake fd interrupts a tick at once and abandons what is in flight") {
  HttpServer server;
  Engine engine;
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  std::thread poke([&] {
    std::this_thread::sleep_for(150ms);
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd, &one, sizeof one);
  });
  const std::vector<ProbeSpec> probes = {http(server.url("/hang"), 5000ms),
                                         http(server.url("/hang"), 5000ms),
                                         http(server.url("/status/200"))};
  int outcomes = 0;
  int wakes = 0;
  const auto t0 = Clock::now();
  const TickStats stats = engine.run(
      probes,
      [&](const Outcome& o) {
        ++outcomes;
        CHECK(o.healthy);
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
  CHECK(stats.interrupted);
  CHECK(stats.abandoned == 2);
  CHECK(outcomes == 1);
  CHECK(wakes == 1);
  CHECK(took < 1000ms);
  // The engine is reusable after an interrupted tick; the abandoned
  // connections were closed (the server saw them go away).
  CHECK(engine
            .run(std::vector<ProbeSpec>{http(server.url("/status/200"))},
                 [](const Outcome& o) { CHECK(o.healthy); })
            .healthy == 1);
}

TEST_CASE("one engine runs tick after tick") {
  HttpServer server;
  Engine engine;
  for (int i = 0; i < 20; ++i) {
    const std::vector<ProbeSpec> probes = {http(server.url("/status/200")),
                                           http(server.url("/status/503"))};
    const TickStats s = engine.run(probes, [](const Outcome&) {});
    CHECK(s.healthy == 1);
    CHECK(s.failed == 1);
  }
  CHECK(server.accepted() == 40); // a fresh connection per probe
}
