// Breaker v2 through the healthprobe binary: what each class of probe
// failure does to the table, windows that end being probed at once,
// policies that a reload applies without resetting state, and worker
// reports meeting probe results.
#include "servers.hpp"

#include <healthtable/report.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>
#include <signal.h>

using namespace healthtable;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

struct Run {
  TempDir dir;
  std::filesystem::path config;
  std::unique_ptr<Child> child;

  void start(const std::string& text) {
    config = dir.write("healthprobe.toml", text);
    child = std::make_unique<Child>(
        std::vector<std::string>{HEALTHPROBE_BIN, "--config", config.string(), "--verbose"},
        dir.path());
  }
  void rewrite(const std::string& text) const { dir.write("healthprobe.toml", text); }
  ~Run() {
    if (child && child->running()) {
      child->signal(SIGTERM);
      child->wait(10s);
    }
  }
};

/// A timeout of 5 s, or the interval when shorter (it may not exceed it).
std::string head(const std::string& segment, const std::string& interval = "30s") {
  return "segment = \"" + segment + "\"\ninterval = \"" + interval + "\"\n";
}

std::string provider(const std::string& name, const std::string& url,
                     const std::string& extra = "") {
  return "[[provider]]\nname = \"" + name + "\"\nhttp = \"" + url + "\"\n" + extra;
}

std::optional<ProviderState> state(const std::string& segment, const std::string& name) {
  try {
    return Table::open(segment).get_state(name);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::uint64_t class_count(const std::string& segment, const std::string& name, FailureClass c) {
  const auto s = state(segment, name);
  return s ? s->class_failures[static_cast<std::size_t>(c)] : 0;
}

std::vector<EventRecord> events_of(const std::string& segment, const std::string& name) {
  std::vector<EventRecord> out;
  for (EventRecord& e : Table::open(segment).events().events)
    if (e.provider == name) out.push_back(std::move(e));
  return out;
}

std::int64_t unix_now() { return Instant::now().unix_ns; }

} // namespace

TEST_CASE("429 with Retry-After: 30: unavailable for about 30 s, a rate_limited cooldown") {
  SegmentName seg("bd");
  HttpServer web;
  Run run;
  run.start(head(seg) + provider("llm", web.url("/status/429?Retry-After=30")));
  REQUIRE(run.child->wait_for_err("provider llm rate_limited (http 429): unavailable for", 10s));
  const std::int64_t now = unix_now();
  const auto s = state(seg, "llm");
  REQUIRE(s);
  CHECK(s->last_class == FailureClass::rate_limited);
  CHECK_FALSE(s->available(Instant::now().mono_ns));
  CHECK(s->transitions == 0); // a cooldown, not a trip
  // Set within the last few seconds for 30 s: generous bounds for a busy machine.
  CHECK(s->unhealthy_until_unix_ns > now + std::chrono::nanoseconds(20s).count());
  CHECK(s->unhealthy_until_unix_ns <= now + std::chrono::nanoseconds(31s).count());
  CHECK_FALSE(Table::open(seg.str()).is_healthy("llm"));
  bool cooldown = false;
  for (const EventRecord& e : events_of(seg, "llm"))
    if (e.kind == EventKind::cooldown) {
      cooldown = true;
      CHECK(e.failure_class == FailureClass::rate_limited);
      CHECK(e.until_unix_ns == s->unhealthy_until_unix_ns);
    }
  CHECK(cooldown);
}

TEST_CASE("503 is server and trips at the threshold, and 404 is client and never trips") {
  SegmentName seg("bd");
  HttpServer web;
  Run run;
  run.start(head(seg, "500ms") + "[table]\nfailure_threshold = 2\n" +
            provider("down", web.url("/status/503")) +
            provider("wrong", web.url("/status/404"), "healthy_below = 400\n"));
  REQUIRE(run.child->wait_for_err("provider down marked unhealthy after 2 consecutive failures "
                                  "(http 503); backoff 60s; class server",
                                  10s));
  const auto down = state(seg, "down");
  REQUIRE(down);
  CHECK_FALSE(down->healthy);
  CHECK(down->last_class == FailureClass::server);
  // Many more 404s than the threshold, and still healthy.
  REQUIRE(eventually([&] { return class_count(seg, "wrong", FailureClass::client) >= 5; }, 20s));
  const auto wrong = state(seg, "wrong");
  REQUIRE(wrong);
  CHECK(wrong->healthy);
  CHECK(wrong->transitions == 0);
  CHECK(wrong->consecutive_failures == 0);
  CHECK(wrong->last_class == FailureClass::client);
  CHECK(Table::open(seg.str()).is_healthy("wrong"));
  CHECK(run.child->err().find("provider wrong marked unhealthy") == std::string::npos);
  CHECK(run.child->err().find("class client does not count toward a trip") != std::string::npos);
}

TEST_CASE("401 is auth and counts, and a hanging server is timeout") {
  SegmentName seg("bd");
  HttpServer web;
  Run run;
  run.start("segment = \"" + seg.str() + "\"\ninterval = \"30s\"\ntimeout = \"500ms\"\n" +
            "[table]\nfailure_threshold = 1\n" +
            provider("key", web.url("/status/401"), "healthy_below = 400\n") +
            provider("slow", web.url("/hang")));
  REQUIRE(eventually([&] { return class_count(seg, "key", FailureClass::auth) >= 1; }, 10s));
  REQUIRE(eventually([&] { return class_count(seg, "slow", FailureClass::timeout) >= 1; }, 10s));
  const auto key = state(seg, "key");
  REQUIRE(key);
  CHECK_FALSE(key->healthy); // auth counts by default: threshold 1 trips it
  CHECK(key->last_class == FailureClass::auth);
  REQUIRE(run.child->wait_for_err("provider slow marked unhealthy after 1 consecutive failures "
                                  "(probe-timeout (>500ms)); backoff 60s; class timeout",
                                  10s));
}

TEST_CASE("a window that ends is probed at once, not at the next interval") {
  SegmentName seg("bd");
  HttpServer web;
  web.set_default_status(503);
  Run run;
  // Interval 1 h: any probe after the first comes from a window's end.
  run.start(head(seg, "1h") + "[table]\nfailure_threshold = 1\nbackoff = \"1s\"\n" +
            provider("flaky", web.url("/")));
  REQUIRE(eventually([&] { return web.requests().size() >= 1; }, 10s));
  REQUIRE(eventually(
      [&] {
        const auto s = state(seg, "flaky");
        return s && !s->healthy;
      },
      10s));
  const auto tripped = state(seg, "flaky");
  REQUIRE(tripped);
  // The window ends: the prober probes (another 503: re-armed), and again.
  REQUIRE(eventually([&] { return web.requests().size() >= 3; }, 30s));
  // Now it answers: the next window's end probes it healthy.
  web.set_default_status(200);
  REQUIRE(eventually(
      [&] {
        const auto s = state(seg, "flaky");
        return s && s->healthy;
      },
      30s));
  const auto after = state(seg, "flaky");
  REQUIRE(after);
  CHECK(after->last_check_unix_ns > tripped->unhealthy_until_unix_ns); // probed after the window
  CHECK(run.child->err().find("provider flaky window ended: probing it now") != std::string::npos);
  CHECK(run.child->err().find("<5>provider flaky recovered") != std::string::npos);
}

TEST_CASE("an override that expires is logged, and the breaker decides again") {
  SegmentName seg("bd");
  HttpServer web;
  {
    Writer w = Writer::create(seg.str());
    w.add("web");
    OverrideRequest r;
    r.mode = Override::forced_down;
    r.expires_after = 2s;
    r.reason = "maintenance";
    w.set_override("web", r);
  }
  Run run;
  run.start(head(seg, "1h") + provider("web", web.url("/status/200")));
  REQUIRE(run.child->wait_for_err("<5>provider web: override 'down' expired", 20s));
  const auto s = state(seg, "web");
  REQUIRE(s);
  CHECK(s->override_mode == Override::automatic);
  CHECK(Table::open(seg.str()).is_healthy("web"));
}

TEST_CASE("per-provider policy applies, and a reload that keeps it keeps the state") {
  SegmentName seg("bd");
  HttpServer web;
  Run run;
  const std::string cfg = head(seg, "1h") + "[table]\nfailure_threshold = 3\n" +
                          provider("strict", web.url("/status/503"), "failure_threshold = 1\n") +
                          provider("lenient", web.url("/status/503"));
  run.start(cfg);
  // One probe each: the provider with its own threshold of 1 trips, the other does not.
  REQUIRE(run.child->wait_for_err("provider strict marked unhealthy after 1 consecutive", 10s));
  REQUIRE(eventually([&] { return class_count(seg, "lenient", FailureClass::server) >= 1; }, 10s));
  CHECK(state(seg, "lenient")->healthy);
  CHECK(run.child->err().find("policy of provider strict set to failure threshold 1") !=
        std::string::npos);
  const auto before = state(seg, "strict");
  REQUIRE(before);
  REQUIRE_FALSE(before->healthy);

  run.child->signal(SIGHUP);
  REQUIRE(run.child->wait_for_err("(0 added, 0 removed, 0 changed)", 10s));
  const auto kept = state(seg, "strict");
  REQUIRE(kept);
  CHECK_FALSE(kept->healthy);
  CHECK(kept->unhealthy_until_unix_ns == before->unhealthy_until_unix_ns);
  CHECK(kept->transitions == before->transitions);
  CHECK(kept->failures == before->failures);

  // A changed policy is applied, and still the state stays.
  run.rewrite(cfg + "max_backoff = \"10m\"\n"); // to "lenient", the last provider
  run.child->signal(SIGHUP);
  REQUIRE(run.child->wait_for_err("policy of provider lenient set to failure threshold 3, "
                                  "backoff 60s, max backoff 10m",
                                  10s));
  const auto again = state(seg, "strict");
  REQUIRE(again);
  CHECK_FALSE(again->healthy);
  CHECK(again->unhealthy_until_unix_ns == before->unhealthy_until_unix_ns);
  const auto lenient = state(seg, "lenient");
  REQUIRE(lenient);
  CHECK(lenient->healthy);
  CHECK(lenient->consecutive_failures == 1); // its count survived the policy change
}

TEST_CASE("worker reports and probes together: the probe after a reported trip does not close "
          "it, unless probe_clears_reports") {
  for (const bool clears : {false, true}) {
    CAPTURE(clears);
    SegmentName seg("bd-mix");
    HttpServer web; // the health endpoint answers 200 while the API fails
    Run run;
    // An hour between probes: after the first, the only probe is the one the
    // window's end triggers, so the test sees exactly one probe after the trip.
    run.start(head(seg, "1h") + "[table]\nbackoff = \"2s\"\n" +
              (clears ? "probe_clears_reports = true\n" : "") +
              provider("api", web.url("/status/200")));
    REQUIRE(eventually(
        [&] {
          const auto s = state(seg, "api");
          return s && s->successes == 1;
        },
        10s));

    Reporter reporter(seg.str());
    REQUIRE(reporter.failure("api", "http 502", FailureClass::server));
    REQUIRE(reporter.failure("api", "http 502", FailureClass::server));
    REQUIRE(run.child->wait_for_err("provider api marked unhealthy after 2 consecutive failures "
                                    "(http 502, class server)",
                                    10s));
    REQUIRE(eventually([&] { return state(seg, "api")->successes == 2; }, 30s));
    const auto s = state(seg, "api");
    CHECK(s->last_source == Source::probe);
    if (clears) {
      CHECK(s->healthy); // a probe's success counts as any other
      CHECK(s->consecutive_failures == 0);
    } else {
      // The health endpoint answering is not proof the API works: the
      // workers' failures stand, and the breaker stays open (half-open, its
      // window over) until the next probe or a worker's success decides.
      CHECK_FALSE(s->healthy);
      CHECK(s->consecutive_failures == 2);
      REQUIRE(reporter.success("api"));
      REQUIRE(eventually([&] { return state(seg, "api")->healthy; }, 10s));
    }
    const std::vector<EventRecord> ev = events_of(seg, "api");
    REQUIRE_FALSE(ev.empty());
    CHECK(std::any_of(ev.begin(), ev.end(), [](const EventRecord& e) {
      return e.kind == EventKind::tripped && e.source == Source::report;
    }));
    CHECK(ev.back().kind == EventKind::recovered);
    CHECK(ev.back().source == (clears ? Source::probe : Source::report));
  }
}
