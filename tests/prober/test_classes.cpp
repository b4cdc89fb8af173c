// What class each probe failure gets, and the retry hint read from a failed
// answer's headers: the engine against real servers on 127.0.0.1.
#include "probe.hpp"
#include "probe_once.hpp"
#include "servers.hpp"

#include <healthtable/table.hpp>

#include <doctest/doctest.h>

#include <ctime>

using namespace healthtable;
using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

ProbeSpec http(const std::string& url, long healthy_below = 500,
               std::chrono::milliseconds timeout = kAnswerTimeout) {
  return http_spec(url, healthy_below, timeout);
}
ProbeResult one(const ProbeSpec& spec) { return probe_once(spec); }

/// An IMF-fixdate `seconds` from now.
std::string http_date_in(std::int64_t seconds) {
  const std::time_t t = std::time(nullptr) + seconds;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a,%%20%d%%20%b%%20%Y%%20%H:%M:%S%%20GMT", &tm);
  return buf;
}

} // namespace

TEST_CASE("status classes: 5xx server, 429 rate_limited, 401/403 auth, other 4xx client") {
  CHECK(status_class(500) == FailureClass::server);
  CHECK(status_class(503) == FailureClass::server);
  CHECK(status_class(599) == FailureClass::server);
  CHECK(status_class(429) == FailureClass::rate_limited);
  CHECK(status_class(401) == FailureClass::auth);
  CHECK(status_class(403) == FailureClass::auth);
  CHECK(status_class(404) == FailureClass::client);
  CHECK(status_class(400) == FailureClass::client);
  CHECK(status_class(301) == FailureClass::other);
  CHECK(status_class(600) == FailureClass::other);
}

TEST_CASE("a healthy answer has no class and no hint") {
  HttpServer server;
  const ProbeResult o = one(http(server.url("/status/200?Retry-After=30")));
  CHECK(o.healthy);
  CHECK(o.failure_class == FailureClass::none);
  CHECK_FALSE(o.retry_after);
}

TEST_CASE("503 is server, and its Retry-After is read too") {
  HttpServer server;
  ProbeResult o = one(http(server.url("/status/503")));
  CHECK_FALSE(o.healthy);
  CHECK(o.failure_class == FailureClass::server);
  CHECK(o.reason == "http 503");
  CHECK_FALSE(o.retry_after);
  o = one(http(server.url("/status/503?Retry-After=120")));
  CHECK(o.failure_class == FailureClass::server);
  REQUIRE(o.retry_after);
  CHECK(*o.retry_after == 120s);
}

TEST_CASE("429 is rate_limited with its Retry-After, even below healthy_below") {
  HttpServer server;
  const ProbeResult o = one(http(server.url("/status/429?Retry-After=30"))); // healthy_below 500
  CHECK_FALSE(o.healthy);
  CHECK(o.failure_class == FailureClass::rate_limited);
  CHECK(o.reason == "http 429");
  REQUIRE(o.retry_after);
  CHECK(*o.retry_after == 30s);
}

TEST_CASE("429 hints: retry-after-ms wins, an HTTP date counts from now, garbage is no hint") {
  HttpServer server;
  ProbeResult o = one(http(server.url("/status/429?Retry-After=30&retry-after-ms=1500")));
  REQUIRE(o.retry_after);
  CHECK(*o.retry_after == 1500ms);

  o = one(http(server.url("/status/429?Retry-After=" + http_date_in(90))));
  REQUIRE(o.retry_after);
  // The date has whole seconds and the probe took a moment: generous bounds.
  CHECK(*o.retry_after > 80s);
  CHECK(*o.retry_after <= 91s);

  o = one(http(server.url("/status/429?Retry-After=soon")));
  CHECK(o.failure_class == FailureClass::rate_limited);
  CHECK_FALSE(o.retry_after);

  o = one(http(server.url("/status/429")));
  CHECK(o.failure_class == FailureClass::rate_limited);
  CHECK_FALSE(o.retry_after);
}

TEST_CASE("401 and 403 are auth, 404 client: failures only under a lower healthy_below") {
  HttpServer server;
  CHECK(one(http(server.url("/status/401"))).healthy); // the reference: the server answered
  CHECK(one(http(server.url("/status/401"), 400)).failure_class == FailureClass::auth);
  CHECK(one(http(server.url("/status/403"), 400)).failure_class == FailureClass::auth);
  const ProbeResult o = one(http(server.url("/status/404"), 400));
  CHECK_FALSE(o.healthy);
  CHECK(o.failure_class == FailureClass::client);
}

TEST_CASE("no answer in time is timeout") {
  HttpServer server;
  const ProbeResult o = one(http(server.url("/hang"), 500, 300ms));
  CHECK_FALSE(o.healthy);
  CHECK(o.failure_class == FailureClass::timeout);
  CHECK(o.reason == timeout_reason(300ms));
}

TEST_CASE("refused connections (HTTP and TCP) and unresolvable names are connect") {
  const int port = refused_port();
  ProbeResult o = one(http("http://127.0.0.1:" + std::to_string(port) + "/"));
  CHECK(o.failure_class == FailureClass::connect);
  CHECK(o.reason.rfind("connect: ", 0) == 0);

  ProbeSpec t = http("127.0.0.1:" + std::to_string(port));
  t.kind = ProbeKind::tcp;
  o = one(t);
  CHECK(o.failure_class == FailureClass::connect);

  // .invalid never resolves (RFC 6761).
  o = one(http("http://no-such-host.invalid/"));
  CHECK(o.failure_class == FailureClass::connect);
  CHECK(o.reason.rfind("dns: ", 0) == 0);
}

TEST_CASE("a closed connection without an answer is other") {
  HttpServer server;
  const ProbeResult o = one(http(server.url("/close")));
  CHECK_FALSE(o.healthy);
  CHECK(o.failure_class == FailureClass::other);
}
