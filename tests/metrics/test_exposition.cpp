// The exposition builder and the table's series as pure functions: escaping,
// one family per name, values, histograms, and the state each record maps to.
#include <exposition.hpp>
#include <histogram.hpp>
#include <table_metrics.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

using namespace healthtable;
using namespace healthtable::metrics;

TEST_CASE("label values escape backslash, double quote and newline, nothing else") {
  CHECK(escape_label_value(R"(a"b)") == R"(a\"b)");
  CHECK(escape_label_value(R"(c:\dir)") == R"(c:\\dir)");
  CHECK(escape_label_value("two\nlines") == R"(two\nlines)");
  CHECK(escape_label_value("tab\there 'q' {}=,") == "tab\there 'q' {}=,");
  CHECK(escape_help("a \"quoted\" \\ and\nnewline") == "a \"quoted\" \\\\ and\\nnewline");
}

TEST_CASE("values: integers plain, fractions round-trip, NaN and infinities spelled") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(42) == "42");
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(-1.5) == "-1.5");
  CHECK(std::stod(format_value(0.1 + 0.2)) == 0.1 + 0.2);
  CHECK(format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
}

TEST_CASE("one HELP and TYPE per family, samples gathered under it in order") {
  Exposition e;
  e.family("x_total", Type::counter, "Things.").add({{"k", "a"}}, 1);
  e.family("y", Type::gauge, "Why.").add({}, 2);
  e.family("x_total", Type::counter, "Things.").add({{"k", "b\"\n\\"}}, 3);
  CHECK(e.text() == "# HELP x_total Things.\n"
                    "# TYPE x_total counter\n"
                    "x_total{k=\"a\"} 1\n"
                    "x_total{k=\"b\\\"\\n\\\\\"} 3\n"
                    "# HELP y Why.\n"
                    "# TYPE y gauge\n"
                    "y 2\n");
}

TEST_CASE("bad names and conflicting declarations are refused") {
  Exposition e;
  CHECK_THROWS_AS(e.family("1abc", Type::gauge, "h"), std::invalid_argument);
  CHECK_THROWS_AS(e.family("a-b", Type::gauge, "h"), std::invalid_argument);
  CHECK_NOTHROW(e.family("ns:sub_name", Type::gauge, "h"));
  e.family("g", Type::gauge, "h");
  CHECK_THROWS_AS(e.family("g", Type::counter, "h"), std::logic_error);
  CHECK_THROWS_AS(e.family("g", Type::gauge, "other help"), std::logic_error);
  CHECK_THROWS_AS(e.family("g", Type::gauge, "h").add({{"__reserved", "v"}}, 1),
                  std::invalid_argument);
  CHECK_THROWS_AS(e.family("g", Type::gauge, "h").add({{"bad-label", "v"}}, 1),
                  std::invalid_argument);
  CHECK_THROWS_AS(e.family("g", Type::gauge, "h").add_histogram({}, {1}, {0, 0}, 0),
                  std::logic_error);
  CHECK(valid_label_name("provider"));
  CHECK_FALSE(valid_label_name("9x"));
}

TEST_CASE("a histogram: cumulative buckets ending at +Inf, _sum, and _count from the buckets") {
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.1); // le is inclusive
  h.observe(0.5);
  h.observe(7);
  const Histogram::Snapshot s = h.snapshot();
  CHECK(s.cumulative == std::vector<std::uint64_t>{2, 3, 4});
  CHECK(s.sum == doctest::Approx(7.65));
  Exposition e;
  e.family("d_seconds", Type::histogram, "D.")
      .add_histogram({{"p", "a"}}, s.bounds, s.cumulative, s.sum);
  const std::string t = e.text();
  CHECK(t.find("# TYPE d_seconds histogram\n") != std::string::npos);
  CHECK(t.find("d_seconds_bucket{p=\"a\",le=\"0.1\"} 2\n") != std::string::npos);
  CHECK(t.find("d_seconds_bucket{p=\"a\",le=\"1\"} 3\n") != std::string::npos);
  CHECK(t.find("d_seconds_bucket{p=\"a\",le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(t.find("d_seconds_sum{p=\"a\"} 7.65\n") != std::string::npos);
  CHECK(t.find("d_seconds_count{p=\"a\"} 4\n") != std::string::npos);
  CHECK_THROWS_AS(Histogram({1, 0.5}), std::invalid_argument);
}

namespace {

ProviderState provider(const std::string& name) {
  ProviderState p;
  p.name = name;
  p.registered = true;
  return p;
}

} // namespace

TEST_CASE("breaker states from the record and the clock, as docs/breaker.md names them") {
  const std::int64_t now = 1'000'000'000'000;
  ProviderState p = provider("a");
  CHECK(breaker_state(p, now) == "closed");
  p.unhealthy_until_mono_ns = now + 5'000'000'000; // a retry hint on a healthy provider
  CHECK(breaker_state(p, now) == "cooling");
  p.healthy = false;
  CHECK(breaker_state(p, now) == "open");
  p.unhealthy_until_mono_ns = now - 1;
  CHECK(breaker_state(p, now) == "half_open");
  p.success_run = 1;
  CHECK(breaker_state(p, now) == "recovering");
}

TEST_CASE("the table's series: one family each, every provider labelled, values from the record") {
  const Instant now{2'000'000'000'000, 1'700'000'000'000'000'000};
  TableInfo info;
  info.segment = "gw";
  info.capacity = 64;
  info.used = 2;
  info.reports_dropped = 3;
  info.heartbeat_mono_ns = now.mono_ns - 1'500'000'000;
  info.heartbeat_interval_ns = 1'000'000'000;
  ProviderState up = provider("up");
  up.successes = 10;
  ProviderState down = provider("we\"ird");
  down.healthy = false;
  down.consecutive_failures = 4;
  down.unhealthy_until_mono_ns = now.mono_ns + 30'000'000'000;
  down.transitions = 1;
  down.class_failures[static_cast<std::size_t>(FailureClass::server)] = 4;
  down.override_mode = Override::forced_down;
  const std::vector<ProviderState> ps{up, down};
  Exposition e;
  add_table_metrics(e, info, ps, now, WriterFacts{true});
  const std::string t = e.text();
  INFO(t);
  const auto has = [&](const std::string& line) {
    return t.find(line + "\n") != std::string::npos;
  };
  CHECK(has("healthtable_table_slots{table=\"gw\"} 64"));
  CHECK(has("healthtable_table_slots_used{table=\"gw\"} 2"));
  CHECK(has("healthtable_reports_dropped_total{table=\"gw\"} 3"));
  CHECK(has("healthtable_writer_heartbeat_age_seconds{table=\"gw\"} 1.5"));
  CHECK(has("healthtable_writer_attached{table=\"gw\"} 1"));
  CHECK(has("healthtable_provider_available{table=\"gw\",provider=\"up\"} 1"));
  CHECK(has("healthtable_provider_available{table=\"gw\",provider=\"we\\\"ird\"} 0"));
  CHECK(has("healthtable_provider_state{table=\"gw\",provider=\"we\\\"ird\",state=\"open\"} 1"));
  CHECK(has("healthtable_provider_state{table=\"gw\",provider=\"we\\\"ird\",state=\"closed\"} 0"));
  CHECK(has("healthtable_provider_state{table=\"gw\",provider=\"up\",state=\"closed\"} 1"));
  CHECK(has(
      "healthtable_provider_override{table=\"gw\",provider=\"we\\\"ird\",override=\"down\"} 1"));
  CHECK(has("healthtable_provider_consecutive_failures{table=\"gw\",provider=\"we\\\"ird\"} 4"));
  CHECK(
      has("healthtable_provider_window_remaining_seconds{table=\"gw\",provider=\"we\\\"ird\"} 30"));
  CHECK(has("healthtable_provider_window_remaining_seconds{table=\"gw\",provider=\"up\"} 0"));
  CHECK(has(
      "healthtable_provider_outcomes_total{table=\"gw\",provider=\"up\",class=\"success\"} 10"));
  CHECK(has("healthtable_provider_outcomes_total{table=\"gw\",provider=\"we\\\"ird\",class="
            "\"server\"} 4"));
  CHECK(has("healthtable_provider_transitions_total{table=\"gw\",provider=\"we\\\"ird\"} 1"));
  // One family per name: each HELP line appears once.
  std::size_t at = 0, helps = 0;
  while ((at = t.find("# HELP healthtable_provider_state ", at)) != std::string::npos) {
    ++helps;
    ++at;
  }
  CHECK(helps == 1);

  // A table no writer ever served: +Inf, so an age alert fires.
  info.heartbeat_mono_ns = 0;
  Exposition never;
  add_table_metrics(never, info, {}, now);
  CHECK(never.text().find("healthtable_writer_heartbeat_age_seconds{table=\"gw\"} +Inf\n") !=
        std::string::npos);
  CHECK(never.text().find("healthtable_writer_attached") == std::string::npos);
}
