// The end-to-end check: Debian's real Prometheus server scrapes a running
// healthprobe's /metrics every second, a provider trips, and a PromQL query
// through Prometheus's HTTP API (/api/v1/query) returns the tripped series.
// Prometheus listens on 127.0.0.1 only, stores into a scratch directory, and
// is stopped by pid; skipped (exit 77) only where prometheus is missing.
#include "http_get.hpp"
#include "prober_run.hpp"

#include <support/support.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

using namespace healthtable;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPrometheus = "/usr/bin/prometheus";

std::string url_encode(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

/// The result vector of an instant query (empty on any error).
nlohmann::json query(int port, const std::string& promql) {
  const HttpAnswer a = http_request("http://127.0.0.1:" + std::to_string(port) +
                                    "/api/v1/query?query=" + url_encode(promql));
  if (a.status != 200) return nlohmann::json::array();
  const auto doc = nlohmann::json::parse(a.body, nullptr, false);
  if (doc.is_discarded() || doc.value("status", "") != "success") return nlohmann::json::array();
  return doc["data"]["result"];
}

} // namespace

TEST_CASE("Prometheus scrapes /metrics and a PromQL query sees the trip") {
  if (!std::filesystem::exists(kPrometheus)) {
    MESSAGE("no " << kPrometheus << " (Debian's prometheus package): skipped");
    return;
  }
  SegmentName seg("prom");
  HttpServer web;
  MetricsProber prober;
  prober.start(seg, provider_toml("x", web.url("/")), "1s");
  const std::string target = prober.url.substr(std::string("http://").size(),
                                               prober.url.size() - std::string("http://").size() -
                                                   std::string("/metrics").size());

  TempDir dir;
  const auto config = dir.write("prometheus.yml", "global:\n"
                                                  "  scrape_interval: 1s\n"
                                                  "  evaluation_interval: 1s\n"
                                                  "scrape_configs:\n"
                                                  "  - job_name: healthprobe\n"
                                                  "    static_configs:\n"
                                                  "      - targets: ['" +
                                                      target + "']\n");
  std::filesystem::create_directory(dir / "tsdb");
  const int port = refused_port(); // free a moment ago; prometheus binds it
  Child prometheus({kPrometheus, "--config.file=" + config.string(),
                    "--storage.tsdb.path=" + (dir / "tsdb").string(),
                    "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
                   dir.path());
  struct Stop {
    Child& c;
    ~Stop() {
      if (c.running()) {
        c.signal(SIGTERM);
        c.wait(30s);
      }
    }
  } stop{prometheus};

  // Healthy first: the scrape works and the series is 1.
  const std::string series =
      "healthtable_provider_available{provider=\"x\",table=\"" + seg.str() + "\"}";
  INFO(prometheus.err());
  REQUIRE(eventually([&] { return query(port, series + " == 1").size() == 1; }, 90s));
  CHECK(query(port, "up{job=\"healthprobe\"}").at(0)["value"][1] == "1");

  web.set_default_status(503); // the prober trips x
  nlohmann::json r;
  REQUIRE(eventually(
      [&] {
        r = query(port, "healthtable_provider_available{provider=\"x\"} == 0");
        return r.size() == 1;
      },
      60s));
  CHECK(r[0]["metric"]["table"] == seg.str());
  CHECK(r[0]["metric"]["job"] == "healthprobe");
  REQUIRE(eventually(
      [&] {
        return query(port, "healthtable_provider_state{provider=\"x\",state=\"open\"} == 1")
                   .size() == 1;
      },
      30s));
  CHECK(
      query(
          port,
          "increase(healthtable_probe_transitions_total{provider=\"x\",kind=\"tripped\"}[5m]) > 0")
          .size() == 1);
}
