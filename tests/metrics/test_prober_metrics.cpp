// healthprobe's GET /metrics through the built binary and libcurl: the
// content type, 404 and 405, series that follow a trip and a recovery, the
// [metrics] config errors, and a clear exit when the address is taken.
#include "http_get.hpp"
#include "prober_run.hpp"

#include <config.hpp>
#include <config_errors.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

using namespace healthtable;
using namespace healthtable::test;
using namespace std::chrono_literals;

TEST_CASE("/metrics: the exposition content type, the table's and the prober's series") {
  SegmentName seg("mp");
  HttpServer web;
  MetricsProber run;
  run.start(seg, provider_toml("llm", web.url("/")), "1s");
  const std::string avail =
      "healthtable_provider_available{table=\"" + seg.str() + "\",provider=\"llm\"}";
  HttpAnswer a;
  REQUIRE(eventually(
      [&] {
        a = http_request(run.url);
        return sample(a.body, avail) == "1";
      },
      20s));
  CHECK(a.status == 200);
  CHECK(a.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(sample(a.body, "healthtable_table_slots_used{table=\"" + seg.str() + "\"}") == "1");
  CHECK(sample(a.body, "healthtable_writer_attached{table=\"" + seg.str() + "\"}") == "1");
  CHECK(sample(a.body, "healthtable_provider_state{table=\"" + seg.str() +
                           "\",provider=\"llm\",state=\"closed\"}") == "1");
  CHECK(a.body.find("healthtable_probe_duration_seconds_bucket{table=\"" + seg.str() +
                    "\",provider=\"llm\",le=\"+Inf\"}") != std::string::npos);
  CHECK(a.body.find("healthtable_prober_build_info{version=\"") != std::string::npos);
  // Every family served is documented in docs/metrics.md.
  {
    std::ifstream in(std::string(HEALTHTABLE_SOURCE_DIR) + "/docs/metrics.md");
    std::ostringstream text;
    text << in.rdbuf();
    const std::string doc = text.str();
    REQUIRE(!doc.empty());
    std::size_t families = 0;
    for (std::size_t at = 0; (at = a.body.find("# TYPE ", at)) != std::string::npos; ++at) {
      const std::size_t start = at + 7;
      const std::string name = a.body.substr(start, a.body.find(' ', start) - start);
      INFO(name);
      CHECK(doc.find("| `" + name + "` |") != std::string::npos);
      ++families;
    }
    CHECK(families >= 20);
  }

  // A trip: the upstream answers 503 until the breaker opens.
  web.set_default_status(503);
  REQUIRE(eventually(
      [&] {
        a = http_request(run.url);
        return sample(a.body, avail) == "0";
      },
      30s));
  CHECK(sample(a.body, "healthtable_provider_state{table=\"" + seg.str() +
                           "\",provider=\"llm\",state=\"open\"}") == "1");
  CHECK(sample(a.body, "healthtable_probe_transitions_total{table=\"" + seg.str() +
                           "\",provider=\"llm\",kind=\"tripped\"}") == "1");
  CHECK(sample(a.body, "healthtable_provider_transitions_total{table=\"" + seg.str() +
                           "\",provider=\"llm\"}") == "1");
  const auto server_failures =
      sample(a.body, "healthtable_provider_outcomes_total{table=\"" + seg.str() +
                         "\",provider=\"llm\",class=\"server\"}");
  REQUIRE(server_failures);
  CHECK(std::stod(*server_failures) >= 2);
  const auto window = sample(a.body, "healthtable_provider_window_remaining_seconds{table=\"" +
                                         seg.str() + "\",provider=\"llm\"}");
  REQUIRE(window);
  CHECK(std::stod(*window) > 0);

  CHECK(http_request(run.url, "HEAD").status == 200);
  const std::string base = run.url.substr(0, run.url.size() - std::string("metrics").size());
  CHECK(http_request(base).status == 404);
  CHECK(http_request(base + "metricsx").status == 404);
  CHECK(http_request(run.url, "POST").status == 405);
  CHECK(run.child->running()); // none of it hurt the prober
}

TEST_CASE("an address already in use: one clear line and exit 1, before any probe") {
  SegmentName seg("mb");
  TcpListener taken;
  HttpServer web;
  TempDir dir;
  const auto config = dir.write("healthprobe.toml",
                                "segment = \"" + seg.str() + "\"\n[metrics]\nlisten = \"" +
                                    taken.address() + "\"\n" + provider_toml("a", web.url("/")));
  Child child({HEALTHPROBE_BIN, "--config", config.string()}, dir.path());
  const auto rc = child.wait(20s);
  REQUIRE(rc);
  CHECK(*rc == 1);
  const std::string err = child.err();
  INFO(err);
  CHECK(err.find("cannot listen for metrics on " + taken.address() + ": Address already in use") !=
        std::string::npos);
  CHECK(web.accepted() == 0);
}

TEST_CASE("[metrics] config errors name the file, line and key") {
  const auto parse = [](const std::string& t) { return prober::parse_config(t, "probe.toml"); };
  const std::string head = "segment = \"gw\"\n";
  const std::string prov = "[[provider]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\n";
  expect_config_error(parse, head + "[metrics]\nlisten = \"localhost:9464\"\n" + prov, 3,
                      "metrics.listen", "is not a numeric IPv4 address");
  expect_config_error(parse, head + "[metrics]\nlisten = \"127.0.0.1\"\n" + prov, 3,
                      "metrics.listen", "has no port");
  expect_config_error(parse, head + "[metrics]\nlisten = \"127.0.0.1:70000\"\n" + prov, 3,
                      "metrics.listen", "has a bad port");
  expect_config_error(parse, head + "[metrics]\nlisten = 9464\n" + prov, 3, "metrics.listen",
                      "must be a string");
  expect_config_error(parse, head + "[metrics]\nport = 1\n" + prov, 3, "metrics.port",
                      "unknown key");
  expect_config_error(parse, head + "[metrics]\n" + prov, 2, "metrics.listen", "missing");
  CHECK_FALSE(parse(head + prov).metrics.enabled()); // off by default
  const auto v6 = parse(head + "[metrics]\nlisten = \"[::1]:9464\"\n" + prov).metrics;
  CHECK(v6.ipv6);
  CHECK(v6.host == "::1");
  CHECK(v6.port == 9464);
}
