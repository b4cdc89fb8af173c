// The built healthprobe binary, run as a process against loopback servers:
// what it writes to the table, what it logs, how it answers signals, and
// how it refuses bad configurations and a second prober.
#include "prober.hpp"
#include "servers.hpp"

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <algorithm>
#include <doctest/doctest.h>
#include <filesystem>
#include <signal.h>
#include <sys/stat.h>
#include <vector>

using namespace healthtable;
using namespace healthtable::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Run {
  TempDir dir;
  std::filesystem::path config;
  std::unique_ptr<Child> child;

  Run() = default;
  /// Writes the config and starts healthprobe on it.
  void start(const std::string& text, std::vector<std::string> extra = {}) {
    config = dir.write("healthprobe.toml", text);
    std::vector<std::string> argv = {HEALTHPROBE_BIN, "--config", config.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child = std::make_unique<Child>(argv, dir.path());
  }
  void rewrite(const std::string& text) const { dir.write("healthprobe.toml", text); }
};

std::string head(const std::string& segment, const std::string& interval = "300ms",
                 const std::string& timeout = "300ms") {
  return "segment = \"" + segment + "\"\ninterval = \"" + interval + "\"\ntimeout = \"" + timeout +
         "\"\n";
}

std::string http_provider(const std::string& name, const std::string& url,
                          const std::string& extra = "") {
  return "[[provider]]\nname = \"" + name + "\"\nhttp = \"" + url + "\"\n" + extra;
}

std::string tcp_provider(const std::string& name, int port, const std::string& extra = "") {
  return "[[provider]]\nname = \"" + name + "\"\ntcp = \"127.0.0.1:" + std::to_string(port) +
         "\"\n" + extra;
}

std::optional<ProviderState> state(const std::string& segment, const std::string& provider) {
  try {
    return Table::open(segment).get_state(provider);
  } catch (const Error&) {
    return std::nullopt;
  }
}

bool checked(const std::string& segment, const std::string& provider) {
  const auto s = state(segment, provider);
  return s && s->last_check_unix_ns > 0;
}

bool exists(const std::string& segment) {
  struct stat st {};
  return ::stat(("/dev/shm/" + segment).c_str(), &st) == 0;
}

} // namespace

TEST_CASE("one healthy and one tripped provider, the trip logged, the heartbeat stamped") {
  SegmentName seg("probe");
  HttpServer web;
  const int dead = refused_port();
  Run run;
  run.start(head(seg) + "[table]\nfailure_threshold = 2\nbackoff = \"45s\"\n" +
            http_provider("web", web.url("/status/200")) + tcp_provider("dead", dead));

  REQUIRE(run.child->wait_for_err("provider dead marked unhealthy after 2 consecutive failures "
                                  "(connect: connection refused); backoff 45s",
                                  5s));
  const auto w = state(seg, "web");
  REQUIRE(w);
  CHECK(w->healthy);
  CHECK(w->last_check_unix_ns > 0);
  const auto d = state(seg, "dead");
  REQUIRE(d);
  CHECK_FALSE(d->healthy);
  CHECK(d->consecutive_failures >= 2);
  CHECK(d->last_error == "connect: connection refused");
  CHECK(d->unhealthy_until_unix_ns > 0);

  Table table = Table::open(seg.str());
  const TableInfo info = table.info();
  CHECK(info.writer_pid == run.child->pid());
  CHECK(info.heartbeat_interval_ns == std::chrono::nanoseconds(300ms).count());
  CHECK(info.failure_threshold == 2);
  CHECK(info.backoff_ns == std::chrono::nanoseconds(45s).count());
  CHECK(table.writer_status() == WriterStatus::attached);
  // The heartbeat keeps moving while it runs.
  const auto beat = info.heartbeat_unix_ns;
  CHECK(eventually([&] { return table.info().heartbeat_unix_ns > beat; }, 10s));

  const std::string err = run.child->err();
  CHECK(err.find("<6>started: pid " + std::to_string(run.child->pid())) != std::string::npos);
  CHECK(err.find("<5>created segment \"" + seg.str() + "\"") != std::string::npos);
  CHECK(err.find("<4>provider dead marked unhealthy") != std::string::npos);
  CHECK(err.find("web") == std::string::npos); // a healthy provider makes no noise

  run.child->signal(SIGTERM);
  CHECK(run.child->wait(10s) == 0);
  CHECK(table.writer_status() == WriterStatus::none);
  CHECK(run.child->err().find("<6>stopping on SIGTERM") != std::string::npos);
}

TEST_CASE("a provider that comes back is logged as recovered") {
  SegmentName seg("probe");
  HttpServer web;
  web.set_default_status(503);
  Run run;
  run.start(head(seg) + http_provider("web", web.url("/")));
  REQUIRE(run.child->wait_for_err(
      "provider web marked unhealthy after 2 consecutive failures (http 503)", 5s));
  web.set_default_status(200);
  REQUIRE(run.child->wait_for_err("<5>provider web recovered", 5s));
  const auto s = state(seg, "web");
  REQUIRE(s);
  CHECK(s->healthy);
  CHECK(s->consecutive_failures == 0);
  CHECK_FALSE(s->last_error);
}

TEST_CASE("a second prober is refused, naming the first one's pid") {
  SegmentName seg("probe");
  HttpServer web;
  const std::string cfg = head(seg) + http_provider("web", web.url("/status/200"));
  Run first;
  first.start(cfg);
  REQUIRE(eventually([&] { return checked(seg, "web"); }, 5s));

  Run second;
  second.start(cfg);
  CHECK(second.child->wait(5s) == static_cast<int>(Errc::writer_busy));
  const std::string err = second.child->err();
  CHECK(err.find("already has a writer (pid " + std::to_string(first.child->pid()) + ")") !=
        std::string::npos);
  CHECK(first.child->running()); // the first is unharmed
}

TEST_CASE("SIGTERM in the middle of a tick stops within a second, abandoning the probe") {
  SegmentName seg("probe");
  HttpServer web;
  Run run;
  // The probe would hang for its whole 30 s timeout: stopping must not wait
  // for it. (The bound is "well under the hang", not the documented second:
  // a busy machine may delay the exit, not by seconds.)
  run.start(head(seg, "60s", "30s") + http_provider("slow", web.url("/hang")));
  REQUIRE(eventually([&] { return web.requests().size() >= 1; }, 10s)); // the probe is in flight
  const auto t0 = Clock::now();
  run.child->signal(SIGTERM);
  CHECK(run.child->wait(20s) == 0);
  CHECK(Clock::now() - t0 < 10s);
  CHECK(run.child->err().find("1 probe(s) in flight abandoned") != std::string::npos);
  // Nothing was recorded for the abandoned probe, and the lock is free.
  const auto s = state(seg, "slow");
  REQUIRE(s);
  CHECK(s->last_check_unix_ns == 0);
  CHECK_NOTHROW(Writer::open(seg.str()));
}

TEST_CASE("SIGINT between ticks stops promptly too") {
  SegmentName seg("probe");
  HttpServer web;
  Run run;
  // The next tick is 60 s away: stopping must not wait for it.
  run.start(head(seg, "60s", "3s") + http_provider("web", web.url("/status/200")));
  REQUIRE(eventually([&] { return checked(seg, "web"); }, 10s));
  const auto t0 = Clock::now();
  run.child->signal(SIGINT);
  CHECK(run.child->wait(20s) == 0);
  CHECK(Clock::now() - t0 < 10s); // well under the 60 s to the next tick
  CHECK(run.child->err().find("stopping on SIGINT") != std::string::npos);
}

TEST_CASE("SIGHUP reloads: a new provider is probed at once, a removed one no longer") {
  SegmentName seg("probe");
  HttpServer web;
  Run run;
  // "old" is probed every 200ms; the default interval is 30s.
  run.start(head(seg, "30s", "1s") + http_provider("old", web.url("/status/200"),
                                                   "interval = \"200ms\"\ntimeout = \"200ms\"\n"));
  REQUIRE(eventually([&] { return checked(seg, "old"); }, 5s));

  run.rewrite(head(seg, "30s", "1s") + http_provider("new", web.url("/status/200")));
  const auto t0 = Clock::now();
  run.child->signal(SIGHUP);
  REQUIRE(run.child->wait_for_err(
      "reloaded " + run.config.string() + ": 1 providers (1 added, 1 removed, 0 changed)", 10s));
  // Probed at once, not 30s from now.
  REQUIRE(eventually([&] { return checked(seg, "new"); }, 10s));
  CHECK(Clock::now() - t0 < 10s); // well under the 30 s interval
  // "old" is forgotten: its slot is free, and nothing probes it back in.
  CHECK(eventually([&] { return !state(seg, "old"); }, 10s));
  std::this_thread::sleep_for(1s);
  CHECK_FALSE(state(seg, "old"));
  CHECK(run.child->running());
}

TEST_CASE("SIGHUP with a bad config keeps the old one and says why") {
  SegmentName seg("probe");
  HttpServer web;
  Run run;
  run.start(head(seg) + http_provider("web", web.url("/status/200")));
  REQUIRE(eventually([&] { return checked(seg, "web"); }, 5s));

  run.rewrite(head(seg) + http_provider("web", web.url("/status/200"), "colour = \"blue\"\n"));
  run.child->signal(SIGHUP);
  REQUIRE(run.child->wait_for_err("<3>reload failed, keeping the previous configuration: " +
                                      run.config.string() + ":7: provider.colour: unknown key",
                                  10s));
  // Still running, still probing the old providers.
  const auto before = state(seg, "web")->last_check_unix_ns;
  CHECK(eventually([&] { return state(seg, "web")->last_check_unix_ns > before; }, 10s));
  CHECK(run.child->running());
  run.child->signal(SIGTERM);
  CHECK(run.child->wait(10s) == 0);
}

TEST_CASE("a bad config exits 78 with file, line and key, and touches no table") {
  SegmentName fresh("probe");
  SegmentName existing("probe");
  // An existing table with state and a policy of its own.
  {
    CreateOptions opts;
    opts.policy.failure_threshold = 5;
    Writer w = Writer::create(existing.str(), opts);
    w.mark_unhealthy("web", "earlier failure");
  }
  const auto before = Table::open(existing.str()).info();

  struct Case {
    std::string body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"[[provider]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\nport = 3\n",
       ":8: provider.port: unknown key"},
      {"[[provider]]\ntcp = \"127.0.0.1:1\"\n", ":5: provider.name: missing"},
      {"[[provider]]\nname = \"a\"\nhttp = \"htp:/x\"\n", ":7: provider.http: bad URL"},
      {"[[provider]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\ninterval = \"5 furlongs\"\n",
       ":8: provider.interval:"},
      {"[[provider]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\n[[provider]]\nname = \"a\"\ntcp = "
       "\"127.0.0.1:2\"\n",
       ":9: provider.name: duplicate provider \"a\" (first defined at line 6)"},
      {"[[provider]]\nname = \"a\"\nhttp = \"http://127.0.0.1:1/\"\nheaders = { Authorization = "
       "\"${HEALTHPROBE_TEST_UNSET}\" }\n",
       ":8: provider.headers.Authorization: environment variable HEALTHPROBE_TEST_UNSET is not "
       "set"},
      {"[table]\nslots = -1\n[[provider]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\n",
       ":6: table.slots: "},
  };
  for (const auto& segment : {fresh.str(), existing.str()}) {
    for (const auto& c : cases) {
      Run run;
      run.start(head(segment, "1s", "1s") + "\n" + c.body);
      INFO(c.body);
      CHECK(run.child->wait(5s) == prober::kExitConfig);
      const std::string err = run.child->err();
      INFO(err);
      CHECK(err.find("<3>config error: " + run.config.string() + c.message) == 0);
      CHECK(std::count(err.begin(), err.end(), '\n') == 1); // one message
    }
  }
  CHECK_FALSE(exists(fresh));
  const auto after = Table::open(existing.str()).info();
  CHECK(after.updates == before.updates);
  CHECK(after.failure_threshold == 5);
  CHECK(after.writer_start_unix_ns == before.writer_start_unix_ns);
  CHECK(after.used == 1);
}

TEST_CASE("command line: usage errors exit 2, --check validates, --version") {
  TempDir dir;
  {
    Child c({HEALTHPROBE_BIN}, dir.path());
    CHECK(c.wait(5s) == prober::kExitUsage);
    CHECK(c.err().find("--config is required") != std::string::npos);
  }
  {
    Child c({HEALTHPROBE_BIN, "--config", "x.toml", "--bogus"}, dir.path());
    CHECK(c.wait(5s) == prober::kExitUsage);
    CHECK(c.err() == "healthprobe: unknown option '--bogus'; run 'healthprobe --help'\n");
  }
  {
    Child c({HEALTHPROBE_BIN, "-V"}, dir.path());
    CHECK(c.wait(5s) == 0);
    CHECK(c.out().find("healthprobe 0.1.0") != std::string::npos);
  }
  {
    Child c({HEALTHPROBE_BIN, "--config", dir.path().string(), "--check"}, dir.path());
    CHECK(c.wait(5s) == prober::kExitConfig);
    CHECK(c.err().find("is a directory, not a configuration file") != std::string::npos);
  }
  {
    Child c(
        {HEALTHPROBE_BIN, "--config", HEALTHTABLE_SOURCE_DIR "/docs/examples/demo.toml", "--check"},
        dir.path());
    CHECK(c.wait(5s) == 0);
    CHECK(c.out().find("OK, 2 providers, segment \"demo\"") != std::string::npos);
  }
  {
    Child c({HEALTHPROBE_BIN, "--config", "/nonexistent.toml", "--check"}, dir.path());
    CHECK(c.wait(5s) == prober::kExitConfig);
    CHECK(c.err().find("/nonexistent.toml:0: cannot read") != std::string::npos);
  }
  {
    Child c({HEALTHPROBE_BIN, "--version"}, dir.path());
    CHECK(c.wait(5s) == 0);
    CHECK(c.out().find("healthprobe 0.1.0") != std::string::npos);
  }
}

TEST_CASE("table errors exit with the library's code: no such segment, table full without grow") {
  SegmentName seg("probe");
  {
    Run run;
    run.start(head(seg) + "[table]\ncreate = false\n" + tcp_provider("a", 1));
    CHECK(run.child->wait(5s) == static_cast<int>(Errc::no_such_segment));
    CHECK_FALSE(exists(seg));
  }
  {
    Run run;
    run.start(head(seg) + "[table]\nslots = 2\ngrow = false\n" + tcp_provider("a", 1) +
              tcp_provider("b", 1) + tcp_provider("c", 1));
    CHECK(run.child->wait(5s) == static_cast<int>(Errc::table_full));
    CHECK(run.child->err().find("has 2 slots, 0 in use; the config adds 3 new providers") !=
          std::string::npos);
    // Nothing was registered: all or none.
    CHECK(Table::open(seg.str()).info().used == 0);
  }
}

TEST_CASE("an existing table is opened and the configured policy applied to it") {
  SegmentName seg("probe");
  {
    CreateOptions opts;
    opts.capacity = 8;
    Writer::create(seg.str(), opts);
  }
  HttpServer web;
  Run run;
  run.start(head(seg) + "[table]\nslots = 999\nfailure_threshold = 4\n" +
            http_provider("web", web.url("/status/200")));
  INFO(run.child->err());
  REQUIRE(run.child->wait_for_err(
      "policy of \"" + seg.str() + "\" set to failure threshold 4, backoff 60s", 5s));
  const auto info = Table::open(seg.str()).info();
  CHECK(info.capacity == 8); // slots only matter when creating
  CHECK(info.failure_threshold == 4);
  CHECK(info.backoff_ns == std::chrono::nanoseconds(60s).count()); // kept
  CHECK(run.child->err().find("created segment") == std::string::npos);
}

TEST_CASE("SIGHUP re-applies the policy and probes a changed provider at once") {
  SegmentName seg("probe");
  HttpServer web;
  Run run;
  run.start(head(seg, "30s", "1s") + "[table]\nfailure_threshold = 2\n" +
            http_provider("web", web.url("/status/200")));
  REQUIRE(eventually([&] { return checked(seg, "web"); }, 5s));
  REQUIRE(web.requests().size() == 1);

  // Same name, new URL: probed now, not in 30s.
  run.rewrite(head(seg, "30s", "1s") + "[table]\nfailure_threshold = 7\n" +
              http_provider("web", web.url("/status/204")));
  run.child->signal(SIGHUP);
  REQUIRE(run.child->wait_for_err("(0 added, 0 removed, 1 changed)", 10s));
  CHECK(run.child->err().find("<5>policy set to failure threshold 7, backoff 60s") !=
        std::string::npos);
  CHECK(Table::open(seg.str()).info().failure_threshold == 7);
  // Probed now, not in 30s: waited for well under the interval.
  REQUIRE(eventually([&] { return web.requests().size() == 2; }, 10s));
  CHECK(web.requests()[1].find("GET /status/204") == 0);
}

TEST_CASE("more providers than slots: the table grows, and says so") {
  SegmentName seg("probe");
  const int dead = refused_port();
  Run run;
  run.start(head(seg, "30s", "1s") + "[table]\nslots = 2\n" + tcp_provider("a", dead) +
            tcp_provider("b", dead) + tcp_provider("c", dead));
  REQUIRE(run.child->wait_for_err(
      "<5>table \"" + seg.str() + "\" grown from 2 to 4 slots: 3 providers need them", 10s));
  REQUIRE(
      eventually([&] { return checked(seg, "a") && checked(seg, "b") && checked(seg, "c"); }, 10s));
  CHECK(Table::open(seg.str()).info().capacity == 4);

  // SIGHUP adding past the new size grows it again.
  std::string more = head(seg, "30s", "1s") + "[table]\nslots = 2\n";
  for (const char* n : {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"})
    more += tcp_provider(n, dead);
  run.rewrite(more);
  run.child->signal(SIGHUP);
  REQUIRE(run.child->wait_for_err("grown from 4 to 10 slots: 10 providers need them", 10s));
  REQUIRE(eventually([&] { return checked(seg, "j"); }, 10s));
  const auto info = Table::open(seg.str()).info();
  CHECK(info.capacity == 10);
  CHECK(info.used == 10);
  CHECK(checked(seg, "a")); // states came along
  CHECK(run.child->running());
}

TEST_CASE("SIGHUP dropping a provider forgets it: its slot is free for the next one") {
  SegmentName seg("probe");
  const int dead = refused_port();
  Run run;
  run.start(head(seg, "30s", "1s") + "[table]\nslots = 2\ngrow = false\n" +
            tcp_provider("a", dead) + tcp_provider("b", dead));
  REQUIRE(eventually([&] { return checked(seg, "a") && checked(seg, "b"); }, 10s));
  // The table is full and may not grow: only a freed slot lets "c" in.
  run.rewrite(head(seg, "30s", "1s") + "[table]\nslots = 2\ngrow = false\n" +
              tcp_provider("a", dead) + tcp_provider("c", dead));
  run.child->signal(SIGHUP);
  REQUIRE(run.child->wait_for_err(
      "<5>provider b removed from the config: forgotten, its slot is free", 10s));
  REQUIRE(run.child->wait_for_err("(1 added, 1 removed, 0 changed)", 10s));
  REQUIRE(eventually([&] { return checked(seg, "c"); }, 10s));
  CHECK_FALSE(state(seg, "b"));
  const auto info = Table::open(seg.str()).info();
  CHECK(info.capacity == 2);
  CHECK(info.used == 2);
  CHECK(run.child->err().find("reload failed") == std::string::npos);
}

namespace {

/// Starts a prober whose one provider fails its first probe and is not
/// probed again for an hour, so what a recreated table holds can only be the
/// prober's memory of it; returns that provider's state.
ProviderState probe_once(Run& run, const SegmentName& seg) {
  run.start(head(seg, "200ms", "200ms") + "[table]\nfailure_threshold = 2\n" +
            tcp_provider("dead", refused_port(), "interval = \"1h\"\ntimeout = \"1s\"\n"));
  REQUIRE(eventually([&] { return checked(seg, "dead"); }, 10s));
  return *state(seg, "dead");
}

/// The prober says, at error level, that its table `what` ("was unlinked",
/// "was replaced") and recreates it at a new object (none of `old`); the new
/// table holds `before`, and the prober still runs and writes it.
void check_recreated(const Run& run, const SegmentName& seg, const ProviderState& before,
                     const std::string& what, const std::vector<std::string>& old) {
  REQUIRE(run.child->wait_for_err("<3>table " + seg.str() + " " + what +
                                      " under the prober; recreating it from its last state",
                                  20s));
  REQUIRE(eventually(
      [&] {
        const std::string now = seg.path();
        return !now.empty() && std::find(old.begin(), old.end(), now) == old.end();
      },
      20s));
  const auto after = state(seg, "dead");
  REQUIRE(after);
  CHECK(after->consecutive_failures == before.consecutive_failures);
  CHECK(after->failures == before.failures);
  CHECK(after->last_error == before.last_error);
  CHECK(after->last_check_unix_ns == before.last_check_unix_ns);
  CHECK(Table::open(seg.str()).info().writer_pid == run.child->pid());
  CHECK(run.child->running());
}

} // namespace

TEST_CASE(
    "the table unlinked under a running prober comes back with its states, and the log says so") {
  SegmentName seg("probe");
  Run run;
  const auto before = probe_once(run, seg);
  const std::string object = seg.path();
  REQUIRE_FALSE(object.empty());
  REQUIRE(::unlink(object.c_str()) == 0);
  check_recreated(run, seg, before, "was unlinked", {object});
}

TEST_CASE("the table replaced under a running prober (its home pointed at another object) "
          "comes back with the prober's states, and the log says so") {
  SegmentName seg("probe");
  Run run;
  const auto before = probe_once(run, seg);
  // An impostor: a copy of the object under another instance, and the
  // home's link swapped to it (what an operator's mistake, or a writer that
  // lost its lock, would leave).
  const std::string object = seg.path();
  REQUIRE_FALSE(object.empty());
  const std::string impostor = object.substr(0, object.size() - 16) + "00000000feedf00d";
  REQUIRE(std::filesystem::copy_file(object, impostor));
  const std::string tmp = seg.home() + "/table.swap";
  REQUIRE(::symlink(impostor.c_str(), tmp.c_str()) == 0);
  REQUIRE(::rename(tmp.c_str(), (seg.home() + "/table").c_str()) == 0);
  check_recreated(run, seg, before, "was replaced", {object, impostor});
  // The impostor is the prober's own kind of stray (same name, same owner):
  // it goes with the move, as the old object does.
  CHECK(eventually([&] { return ::access(impostor.c_str(), F_OK) != 0; }, 20s));
  CHECK(::access(object.c_str(), F_OK) != 0);
}
