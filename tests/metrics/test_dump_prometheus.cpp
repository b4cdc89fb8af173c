// `healthctl dump NAME --format prometheus`: the table's series for
// node_exporter's textfile collector, as promtool reads them, with the
// writer's lock seen by the kernel; --json and --format json agree.
#include "../cli/run.hpp"
#include "http_get.hpp"
#include "servers.hpp"

#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace healthtable;
using namespace healthtable::test;

TEST_CASE("dump --format prometheus: a tripped provider, the writer attached, promtool-clean") {
  SegmentName seg("dp");
  std::optional<Writer> w;
  w.emplace(Writer::create(seg.str()));
  w->add("ok");
  w->add("bad");
  w->record("ok", Outcome{});
  for (int i = 0; i < 3; ++i)
    w->record("bad", Outcome{FailureClass::timeout, "slow", Source::probe, std::nullopt});
  const std::string t = "table=\"" + seg.str() + "\"";

  Run r = healthctl({"dump", seg.str(), "--format", "prometheus"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(sample(r.out, "healthtable_provider_available{" + t + ",provider=\"bad\"}") == "0");
  CHECK(sample(r.out, "healthtable_provider_available{" + t + ",provider=\"ok\"}") == "1");
  CHECK(sample(r.out, "healthtable_provider_state{" + t + ",provider=\"bad\",state=\"open\"}") ==
        "1");
  CHECK(sample(r.out, "healthtable_provider_consecutive_failures{" + t + ",provider=\"bad\"}") ==
        "3");
  CHECK(sample(r.out, "healthtable_provider_outcomes_total{" + t +
                          ",provider=\"bad\",class=\"timeout\"}") == "3");
  CHECK(sample(r.out, "healthtable_provider_outcomes_total{" + t +
                          ",provider=\"ok\",class=\"success\"}") == "1");
  CHECK(sample(r.out, "healthtable_table_slots_used{" + t + "}") == "2");
  CHECK(sample(r.out, "healthtable_writer_attached{" + t + "}") == "1");
  // Only the prober measures probes: dump has no such series.
  CHECK(r.out.find("healthtable_probe_duration_seconds") == std::string::npos);

  if (std::filesystem::exists("/usr/bin/promtool")) {
    TempDir dir;
    const auto file = dir.write("healthtable.prom", r.out);
    CHECK(std::system(("/usr/bin/promtool check metrics < " + file.string()).c_str()) == 0);
  }

  w.reset(); // the writer goes: the kernel's lock test says so
  r = healthctl({"dump", seg.str(), "--format", "prometheus"});
  REQUIRE(r.status == 0);
  CHECK(sample(r.out, "healthtable_writer_attached{" + t + "}") == "0");

  const Run json = healthctl({"dump", seg.str(), "--json"});
  const Run format_json = healthctl({"dump", seg.str(), "--format", "json"});
  CHECK(json.status == 0);
  CHECK(json.out.find("\"providers\"") != std::string::npos);
  // The same document but for its "time" and the heartbeat age.
  CHECK(format_json.out.substr(0, 40) == json.out.substr(0, 40));
  const Run bad = healthctl({"dump", seg.str(), "--format", "yaml"});
  CHECK(bad.status == 2);
  CHECK(bad.err.find("yaml not in {table,json,prometheus}") != std::string::npos);
}
