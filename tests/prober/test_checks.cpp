// The HTTP checks a provider may ask for (method, expected statuses, a body
// match) and the reasons of answers curl rejects: the engine against the
// HTTP test server on 127.0.0.1.
#include "probe.hpp"
#include "probe_once.hpp"
#include "servers.hpp"

#include <healthtable/layout.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>

using namespace healthtable;
using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

ProbeSpec http(const std::string& url) { return http_spec(url); }
ProbeResult one(const ProbeSpec& spec) { return probe_once(spec); }

ProbeSpec expecting(std::vector<StatusRange> expect) {
  ProbeSpec s;
  s.expect = std::move(expect);
  return s;
}

} // namespace

TEST_CASE("status_healthy: below healthy_below by default, else the expected list, never 429") {
  ProbeSpec spec;
  CHECK(status_healthy(spec, 200));
  CHECK(status_healthy(spec, 404));
  CHECK(status_healthy(spec, 499));
  CHECK_FALSE(status_healthy(spec, 500));
  CHECK_FALSE(status_healthy(spec, 429));
  spec.healthy_below = 300;
  CHECK_FALSE(status_healthy(spec, 404));

  spec = expecting({{200, 200}, {300, 399}, {404, 404}});
  CHECK(status_healthy(spec, 200));
  CHECK(status_healthy(spec, 302));
  CHECK(status_healthy(spec, 404));
  CHECK_FALSE(status_healthy(spec, 204));
  CHECK_FALSE(status_healthy(spec, 401));
  CHECK_FALSE(status_healthy(spec, 503));
  spec.healthy_below = 999; // ignored once statuses are listed
  CHECK_FALSE(status_healthy(spec, 204));

  spec = expecting({{400, 499}});
  CHECK(status_healthy(spec, 428));
  CHECK_FALSE(status_healthy(spec, 429)); // a range around 429 still leaves it out
  CHECK(status_healthy(spec, 430));
}

TEST_CASE("HEAD sends a HEAD and is healthy on the headers alone") {
  HttpServer server;
  ProbeSpec spec = http(server.url("/status/200"));
  spec.method = HttpMethod::head;
  const ProbeResult o = one(spec);
  CHECK(o.healthy);
  CHECK(o.http_status == 200);
  const auto heads = server.requests();
  REQUIRE(heads.size() == 1);
  CHECK(heads[0].rfind("HEAD /status/200 HTTP/1.1", 0) == 0);

  spec.target = server.url("/status/503");
  const ProbeResult failed = one(spec);
  CHECK_FALSE(failed.healthy);
  CHECK(failed.reason == "http 503");
  CHECK(failed.failure_class == FailureClass::server);
}

TEST_CASE("GET is the default method") {
  HttpServer server;
  CHECK(one(http(server.url("/status/200"))).healthy);
  const auto heads = server.requests();
  REQUIRE(heads.size() == 1);
  CHECK(heads[0].rfind("GET /status/200 HTTP/1.1", 0) == 0);
}

TEST_CASE("expect: only the listed statuses are healthy, the others keep their reason and class") {
  HttpServer server;
  ProbeSpec spec = http(server.url("/status/204"));
  spec.expect = {{200, 200}};
  ProbeResult o = one(spec);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "http 204");
  CHECK(o.failure_class == FailureClass::other);

  spec.expect = {{200, 299}};
  CHECK(one(spec).healthy);

  // A 404 is healthy under the default rule but not when only 2xx is expected...
  spec.target = server.url("/status/404");
  o = one(spec);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "http 404");
  CHECK(o.failure_class == FailureClass::client);
  // ...and a 503 may be listed (a provider that is "up" when it says so).
  spec.target = server.url("/status/503");
  spec.expect = {{200, 299}, {503, 503}};
  CHECK(one(spec).healthy);
}

TEST_CASE("expect: 429 is rate_limited with its hint even inside an expected range") {
  HttpServer server;
  ProbeSpec spec = http(server.url("/status/429?Retry-After=30"));
  spec.expect = {{200, 499}};
  const ProbeResult o = one(spec);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "http 429");
  CHECK(o.failure_class == FailureClass::rate_limited);
  REQUIRE(o.retry_after);
  CHECK(*o.retry_after == 30s);
}

TEST_CASE("expect_body: found at the start, deep in the body, and across chunk boundaries") {
  HttpServer server;
  ProbeSpec spec = http(server.url("/status/200")); // the body is "ok"
  spec.expect_body = "ok";
  CHECK(one(spec).healthy);

  // 60,000 bytes in: curl hands the body over in several chunks, so the
  // text may straddle two of them; every offset near a chunk's end is tried.
  for (const int pad : {16383, 16384, 16385, 60000}) {
    CAPTURE(pad);
    spec.target = server.url("/body/" + std::to_string(pad) + "/status:%20ready");
    spec.expect_body = "status: ready";
    const ProbeResult o = one(spec);
    CHECK(o.healthy);
    CHECK(o.reason.empty());
  }
}

TEST_CASE("expect_body: missing text is class other with the bytes read") {
  HttpServer server;
  ProbeSpec spec = http(server.url("/status/200"));
  spec.expect_body = "ready";
  ProbeResult o = one(spec);
  CHECK_FALSE(o.healthy);
  CHECK(o.http_status == 200);
  CHECK(o.reason == "body: \"ready\" not found in the first 2 bytes");
  CHECK(o.failure_class == FailureClass::other);
  CHECK_FALSE(o.retry_after);
}

TEST_CASE("expect_body: reads at most kBodyScanLimit bytes, text past it is not found") {
  HttpServer server;
  ProbeSpec spec = http(server.url("/body/" + std::to_string(kBodyScanLimit) + "/ready"));
  spec.expect_body = "ready";
  ProbeResult o = one(spec);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "body: \"ready\" not found in the first 65536 bytes");

  // Ending exactly at the limit still counts.
  spec.target = server.url("/body/" + std::to_string(kBodyScanLimit - 5) + "/ready");
  CHECK(one(spec).healthy);

  // A megabyte body: the probe still stops at the limit, well inside its timeout.
  spec.target = server.url("/body/1048576/ready");
  o = one(spec);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "body: \"ready\" not found in the first 65536 bytes");
}

TEST_CASE("expect_body: an unexpected status fails on its status, not its body") {
  HttpServer server;
  ProbeSpec spec = http(server.url("/status/503"));
  spec.expect_body = "ready";
  const ProbeResult o = one(spec);
  CHECK(o.reason == "http 503");
  CHECK(o.failure_class == FailureClass::server);
}

TEST_CASE("without expect_body the probe stops at the first body byte, with one it reads on") {
  HttpServer server;
  // /stall sends 2 of 102 body bytes and waits: a probe that read on would time out.
  ProbeSpec spec = http(server.url("/stall"));
  CHECK(one(spec).healthy);

  spec.expect_body = "ok";
  CHECK(one(spec).healthy); // found in the 2 bytes: no need for the rest

  spec.expect_body = "ready";
  spec.timeout = 500ms;
  const ProbeResult o = one(spec);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == timeout_reason(500ms));
  CHECK(o.failure_class == FailureClass::timeout);
}

TEST_CASE("a body cut short before the text: the connection closed, class other") {
  HttpServer server;
  ProbeSpec spec = http(server.url("/cut"));
  CHECK(one(spec).healthy); // the status and the first bytes were enough
  spec.expect_body = "ready";
  const ProbeResult o = one(spec);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "connection: closed before the end of the answer");
  CHECK(o.failure_class == FailureClass::other);
}

TEST_CASE("body_reason: short texts as they are, long ones cut, quotes and controls escaped") {
  CHECK(body_reason("ok", 2) == "body: \"ok\" not found in the first 2 bytes");
  CHECK(body_reason("a \"b\"\n\t", 7) ==
        "body: \"a \\\"b\\\"\\n\\x09\" not found in the first 7 bytes");
  const std::string reason = body_reason(std::string(500, 'z'), 65536);
  CHECK(reason == "body: \"" + std::string(40, 'z') + "...\" not found in the first 65536 bytes");
  CHECK(reason.size() <= kReasonMax);
  // Never half a character: "é" is two bytes, and the cut falls inside one.
  std::string accents = std::string(39, 'a');
  for (int i = 0; i < 10; ++i)
    accents += "\xC3\xA9";
  CHECK(body_reason(accents, 1) ==
        "body: \"" + std::string(39, 'a') + "...\" not found in the first 1 bytes");
}

TEST_CASE("an oversized response header is http: response header too large, not out of memory") {
  HttpServer server;
  // One 200 KB line: past libcurl's 100 KiB limit per header.
  ProbeResult o = one(http(server.url("/headers/1/204800")));
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "http: response header too large");
  CHECK(o.failure_class == FailureClass::other);

  // Ordinary lines, 400 KB of them: past the 300 KiB curl takes in all.
  o = one(http(server.url("/headers/400/1000")));
  CHECK_FALSE(o.healthy);
  CHECK(o.reason == "http: response header too large");
  CHECK(o.failure_class == FailureClass::other);

  // 50 KB of them is an ordinary answer.
  CHECK(one(http(server.url("/headers/50/1000"))).healthy);
}

TEST_CASE("a server that hangs up in the TLS handshake is tls:, OpenSSL's name spelt as it is") {
  TcpListener listener; // accepts and closes: the ClientHello gets no answer
  const ProbeResult o = one(http("https://" + listener.address() + "/"));
  CAPTURE(o.reason);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason.rfind("tls: ", 0) == 0);
  CHECK(o.reason.find("openSSL") == std::string::npos);
  CHECK(o.reason.back() != ' '); // curl's message ends in a blank: not ours
  CHECK(o.failure_class == FailureClass::connect);
}

TEST_CASE("a proxy that fails its handshake is proxy:, class connect") {
  // A SOCKS5 proxy that closes every connection: curl's own error code for
  // a proxy (CURLE_PROXY), not a connect failure to the provider.
  TcpListener proxy;
  HttpServer server;
  const char* saved = std::getenv("http_proxy");
  const std::optional<std::string> restore =
      saved ? std::optional<std::string>(saved) : std::nullopt;
  ::setenv("http_proxy", ("socks5://" + proxy.address()).c_str(), 1);
  const ProbeResult o = one(http(server.url("/status/200")));
  if (restore)
    ::setenv("http_proxy", restore->c_str(), 1);
  else
    ::unsetenv("http_proxy");
  CAPTURE(o.reason);
  CHECK_FALSE(o.healthy);
  CHECK(o.reason.rfind("proxy: ", 0) == 0);
  CHECK(o.failure_class == FailureClass::connect);
  CHECK(server.accepted() == 0);
}
