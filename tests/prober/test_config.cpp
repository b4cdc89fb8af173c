// The configuration parser: what a valid file means, and every error named
// with its file, line and key.
#include "config.hpp"
#include "config_errors.hpp"
#include "servers.hpp"

#include <doctest/doctest.h>

#include <map>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

const std::map<std::string, std::string> kEnv = {
    {"GROQ_API_KEY", "gsk-test"},
    {"OPENROUTER_API_KEY", "or-test"},
    {"TOGETHER_API_KEY", "tg-test"},
    {"GOOGLE_API_KEY", "g-test"},
    {"EMPTY", ""},
};

std::optional<std::string> fake_env(const std::string& name) {
  if (auto it = kEnv.find(name); it != kEnv.end()) return it->second;
  return std::nullopt;
}

Config parse(const std::string& text) { return parse_config(text, "probe.toml", fake_env); }

const std::string kHead = "segment = \"gw\"\n"; // line 1

void expect_error(const std::string& text, std::uint32_t line, const std::string& key,
                  const std::string& fragment) {
  expect_config_error(parse, text, line, key, fragment);
}

} // namespace

TEST_CASE("a full configuration parses with every value") {
  const Config c = parse(R"(segment = "gateway"
interval = "20s"
timeout = "2s"
jitter = "1500ms"

[table]
create = false
slots = 128
mode = "0640"
failure_threshold = 3
backoff = "2m"

[[provider]]
name = "groq"
https = "https://api.groq.com/openai/v1/models"
headers = { Authorization = "Bearer ${GROQ_API_KEY}", X-Literal = "$$5" }
healthy_below = 400
verify = false
timeout = "1s"

[[provider]]
name = "ollama"
tcp = "127.0.0.1:11434"
interval = 10
)");
  CHECK(c.path == "probe.toml");
  CHECK(c.segment == "gateway");
  CHECK(c.interval == 20s);
  CHECK(c.timeout == 2s);
  CHECK(c.jitter == 1500ms);
  CHECK_FALSE(c.table.create);
  CHECK(c.table.slots == 128);
  CHECK(c.table.mode == 0640);
  CHECK(c.table.policy.failure_threshold == 3u);
  CHECK(c.table.policy.backoff == std::chrono::nanoseconds(120s));
  REQUIRE(c.providers.size() == 2);

  const auto& groq = c.providers[0];
  CHECK(groq.name == "groq");
  CHECK(groq.line == 13);
  CHECK(groq.probe.provider == "groq");
  CHECK(groq.probe.kind == ProbeKind::http);
  CHECK(groq.probe.target == "https://api.groq.com/openai/v1/models");
  CHECK(groq.probe.headers ==
        std::vector<std::string>{"Authorization: Bearer gsk-test", "X-Literal: $5"});
  CHECK(groq.probe.healthy_below == 400);
  CHECK_FALSE(groq.probe.verify);
  CHECK(groq.interval == 20s); // the default
  CHECK(groq.timeout == 1s);   // its own
  CHECK(groq.probe.timeout == 1000ms);

  const auto& ollama = c.providers[1];
  CHECK(ollama.probe.kind == ProbeKind::tcp);
  CHECK(ollama.probe.target == "127.0.0.1:11434");
  CHECK(ollama.interval == 10s); // a bare number is seconds
  CHECK(ollama.timeout == 2s);
  CHECK(c.shortest_interval() == 10s);
}

TEST_CASE("defaults: 30s interval, 3s timeout, no jitter, create 64 slots, status < 500") {
  const Config c = parse(kHead + "[[provider]]\nname = \"a\"\nhttp = \"http://127.0.0.1:9/\"\n");
  CHECK(c.interval == 30s);
  CHECK(c.timeout == 3s);
  CHECK(c.jitter == 0s);
  CHECK(c.table.create);
  CHECK(c.table.slots == 64);
  CHECK(c.table.mode == 0644);
  CHECK_FALSE(c.table.policy.failure_threshold);
  CHECK_FALSE(c.table.policy.backoff);
  REQUIRE(c.providers.size() == 1);
  CHECK(c.providers[0].probe.healthy_below == 500);
  CHECK(c.providers[0].probe.method == HttpMethod::get);
  CHECK(c.providers[0].probe.expect.empty());
  CHECK(c.providers[0].probe.expect_body.empty());
  CHECK_FALSE(c.table.method);
  CHECK(c.table.expect.empty());
  CHECK(c.providers[0].probe.verify);
  CHECK(c.providers[0].probe.ca_file.empty());
  CHECK(c.providers[0].probe.timeout == 3000ms);
}

TEST_CASE("the shipped example configurations are valid") {
  const std::string dir = HEALTHTABLE_SOURCE_DIR "/docs/examples/";
  const Config llm = load_config(dir + "healthprobe.toml", fake_env);
  CHECK(llm.segment == "gateway");
  std::vector<std::string> names;
  for (const auto& p : llm.providers)
    names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"ollama", "groq", "openrouter", "together", "google"});
  CHECK(llm.providers[1].probe.headers ==
        std::vector<std::string>{"Authorization: Bearer gsk-test"});
  CHECK(llm.providers[4].probe.headers == std::vector<std::string>{"x-goog-api-key: g-test"});
  CHECK(llm.providers[0].probe.expect == std::vector<StatusRange>{{200, 299}});
  CHECK(llm.providers[0].probe.expect_body == "\"models\"");

  const Config demo = load_config(dir + "demo.toml", fake_env);
  CHECK(demo.segment == "demo");
  CHECK(demo.providers.size() == 2);

  // Without the keys in the environment, the first one missing is named.
  try {
    load_config(dir + "healthprobe.toml", [](const std::string&) { return std::nullopt; });
    FAIL("expected a missing variable");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("GROQ_API_KEY is not set") != std::string::npos);
    CHECK(e.key() == "provider.headers.Authorization");
  }
}

TEST_CASE("unknown keys are refused wherever they are") {
  expect_error(kHead + "intervall = \"5s\"\n", 2, "intervall", "unknown key");
  expect_error(kHead + "[table]\nslot = 4\n", 3, "table.slot", "unknown key");
  expect_error(kHead + "[[provider]]\nname = \"a\"\nurl = \"http://x/\"\n", 4, "provider.url",
               "expected one of: name, http, https, tcp");
}

TEST_CASE("missing names, segments and probes") {
  expect_error("[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n", 1, "segment", "missing");
  expect_error(kHead + "\n[[provider]]\ntcp = \"h:1\"\n", 3, "provider.name", "needs a name");
  expect_error(kHead + "[[provider]]\nname = \"a\"\n", 2, "provider", "has no probe");
  expect_error(kHead + "[[provider]]\nname = \"a\"\nhttp = \"http://h/\"\ntcp = \"h:1\"\n", 5,
               "provider.tcp", "has two probes");
  expect_error(kHead, 1, "provider", "no providers");
  expect_error(kHead + "[provider]\nname = \"a\"\n", 2, "provider", "[[provider]]");
}

TEST_CASE("bad names") {
  expect_error("segment = \"../etc\"\n[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n", 1, "segment",
               "");
  expect_error(kHead + "[[provider]]\nname = \"has space\"\ntcp = \"h:1\"\n", 3, "provider.name",
               "");
  expect_error(kHead + "[[provider]]\nname = 7\ntcp = \"h:1\"\n", 3, "provider.name",
               "must be a string");
}

TEST_CASE("bad URLs") {
  auto with = [](const std::string& key, const std::string& url) {
    return kHead + "[[provider]]\nname = \"a\"\n" + key + " = \"" + url + "\"\n";
  };
  expect_error(with("http", "not a url"), 4, "provider.http", "bad URL");
  expect_error(with("http", "ftp://example.org/"), 4, "provider.http",
               "scheme must be http or https");
  expect_error(with("https", "https://"), 4, "provider.https", "bad URL");
  expect_error(with("http", "127.0.0.1:8080"), 4, "provider.http", "bad URL");
}

TEST_CASE("bad tcp addresses") {
  auto with = [](const std::string& target) {
    return kHead + "[[provider]]\nname = \"a\"\ntcp = \"" + target + "\"\n";
  };
  expect_error(with("localhost"), 4, "provider.tcp", "expected \"host:port\"");
  expect_error(with("localhost:0"), 4, "provider.tcp", "bad port");
  expect_error(with("localhost:70000"), 4, "provider.tcp", "bad port");
  expect_error(with("localhost:http"), 4, "provider.tcp", "bad port");
  expect_error(with("::1:80"), 4, "provider.tcp", "[addr]:port");
  expect_error(with(":80"), 4, "provider.tcp", "no host");
  CHECK(parse(with("[::1]:80")).providers[0].probe.target == "[::1]:80");
}

TEST_CASE("bad durations and cadences") {
  expect_error(kHead + "interval = \"30 parsecs\"\n", 2, "interval", "interval");
  expect_error(kHead + "timeout = \"0s\"\n", 2, "timeout", "greater than zero");
  expect_error(kHead + "jitter = true\n", 2, "jitter", "must be a duration");
  expect_error(kHead + "interval = \"2s\"\ntimeout = \"5s\"\n", 3, "timeout",
               "must not exceed interval");
  expect_error(kHead + "[table]\nbackoff = \"soon\"\n", 3, "table.backoff", "");
  expect_error(
      kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\ninterval = \"1s\"\ntimeout = \"2s\"\n", 2,
      "provider.timeout", "must not exceed its interval");
  // An unset timeout never exceeds the interval: it shrinks to fit.
  const Config c = parse("segment = \"gw\"\ninterval = \"1s\"\n[[provider]]\nname = \"a\"\n"
                         "tcp = \"h:1\"\n[[provider]]\nname = \"b\"\ntcp = \"h:1\"\n"
                         "interval = \"200ms\"\n");
  CHECK(c.timeout == 1s);
  CHECK(c.providers[0].timeout == 1s);
  CHECK(c.providers[1].timeout == 200ms);
  CHECK(c.providers[1].probe.timeout == 200ms);
  expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\ntimeout = \"fast\"\n", 5,
               "provider.timeout", "");
}

TEST_CASE("table values out of range") {
  expect_error(kHead + "[table]\nslots = 0\n", 3, "table.slots", "out of range");
  expect_error(kHead + "[table]\nfailure_threshold = 0\n", 3, "table.failure_threshold",
               "out of range");
  expect_error(kHead + "[table]\nmode = \"0999\"\n", 3, "table.mode", "not an octal mode");
  expect_error(kHead + "[table]\ncreate = \"yes\"\n", 3, "table.create", "true or false");
  expect_error(kHead + "table = 3\n", 2, "table", "must be a table");
}

TEST_CASE("duplicate providers name both lines") {
  expect_error(
      kHead +
          "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n[[provider]]\nname = \"a\"\ntcp = \"h:2\"\n",
      6, "provider.name", "duplicate provider \"a\" (first defined at line 3)");
}

TEST_CASE("headers: env variables, names, and where they apply") {
  const std::string p = kHead + "[[provider]]\nname = \"a\"\nhttp = \"http://h/\"\n";
  expect_error(p + "headers = { Authorization = \"Bearer ${NOPE_KEY}\" }\n", 5,
               "provider.headers.Authorization", "environment variable NOPE_KEY is not set");
  expect_error(p + "headers = { A = \"${GROQ_API_KEY\" }\n", 5, "provider.headers.A", "unclosed");
  expect_error(p + "headers = { \"Bad Name\" = \"x\" }\n", 5, "provider.headers.Bad Name",
               "not a valid HTTP header name");
  expect_error(p + "headers = { A = 5 }\n", 5, "provider.headers.A", "must be a string");
  expect_error(p + "headers = \"Authorization: x\"\n", 5, "provider.headers", "must be a table");
  expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\nheaders = { A = \"b\" }\n", 5,
               "provider.headers", "http/https probes only");
  // An empty variable is set: the header is sent empty.
  CHECK(parse(p + "headers = { A = \"${EMPTY}\" }\n").providers[0].probe.headers ==
        std::vector<std::string>{"A;"});
}

TEST_CASE("http options: healthy_below, verify, ca_file") {
  const std::string p = kHead + "[[provider]]\nname = \"a\"\nhttps = \"https://h/\"\n";
  expect_error(p + "healthy_below = 5000\n", 5, "provider.healthy_below", "out of range");
  expect_error(p + "healthy_below = \"500\"\n", 5, "provider.healthy_below", "must be an integer");
  expect_error(p + "verify = 1\n", 5, "provider.verify", "true or false");
  expect_error(p + "ca_file = \"/nonexistent/ca.pem\"\n", 5, "provider.ca_file", "cannot read");

  TempDir dir;
  dir.write("ca.pem", "not checked here\n");
  const auto path = dir.write("probe.toml", p + "ca_file = \"ca.pem\"\n");
  const Config c = load_config(path.string(), fake_env);
  CHECK(c.providers[0].probe.ca_file == (dir / "ca.pem").string()); // relative to the file
}

TEST_CASE("TOML syntax errors carry their line") {
  expect_error(kHead + "interval = \"5s\n", 2, "", "TOML syntax");
  expect_error(kHead + "segment = \"again\"\n", 2, "", "TOML syntax");
}

TEST_CASE("an unreadable file is a config error") {
  try {
    load_config("/nonexistent/healthprobe.toml");
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == "/nonexistent/healthprobe.toml:0: cannot read: No such file "
                                   "or directory; check the --config path");
  }
}

TEST_CASE("a mode written as a decimal integer says it was read as decimal") {
  expect_error(kHead + "[table]\nmode = 644\n", 3, "table.mode",
               "644 is read as decimal 644 (a TOML integer is decimal unless written 0o...); "
               "write mode = 0o644 or \"0644\"");
  expect_error(kHead + "[table]\nmode = 640\n", 3, "table.mode", "write mode = 0o640 or \"0640\"");
  // 420 is 0644 in decimal: accepted before, and a trap; said the same way.
  expect_error(kHead + "[table]\nmode = 420\n", 3, "table.mode", "write mode = 0o420 or \"0420\"");
  // Digits that are no octal mode get the key's example.
  expect_error(kHead + "[control]\nmode = 999\n", 3, "control.mode",
               "999 is read as decimal 999 (a TOML integer is decimal unless written 0o...); "
               "write mode = 0o660 or \"0660\"");
  // Octal integers and strings are what they say.
  CHECK(parse_config(kHead + "[table]\nmode = 0o640\n" +
                         "[[provider]]\nname = \"a\"\n"
                         "tcp = \"127.0.0.1:1\"\n",
                     "probe.toml", fake_env)
            .table.mode == 0640);
  expect_error(kHead + "[table]\nmode = 0o1777\n", 3, "table.mode", "out of range");
}

TEST_CASE("--config naming a directory, a missing or an unreadable file: one clear line") {
  TempDir dir;
  try {
    load_config(dir.path().string());
    FAIL("a directory parsed");
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what == dir.path().string() +
                      ":0: is a directory, not a configuration file; name the "
                      "TOML file in it (e.g. --config " +
                      (dir / "healthprobe.toml").string() + ")");
    CHECK(what.find("segment") == std::string::npos);
  }
  if (::geteuid() != 0) return; // root reads any file; nobody cannot
  const auto path = dir.write("probe.toml", kHead);
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string what = "parsed";
    if (::setgid(65534) == 0 && ::setuid(65534) == 0) {
      try {
        load_config(path.string());
      } catch (const ConfigError& e) {
        what = e.what();
      }
    } else {
      what = "setuid failed";
    }
    (void)!::write(fds[1], what.data(), what.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string what;
  char buf[1024];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
    what.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  CHECK(what == path.string() + ":0: cannot read: Permission denied; the prober's user needs "
                                "read permission on it (and search permission on its "
                                "directories)");
}

TEST_CASE("expand_env") {
  CHECK(expand_env("plain", fake_env) == "plain");
  CHECK(expand_env("Bearer ${GROQ_API_KEY}!", fake_env) == "Bearer gsk-test!");
  CHECK(expand_env("$$${GROQ_API_KEY}$", fake_env) == "$gsk-test$");
  CHECK(expand_env("cost $5", fake_env) == "cost $5");
  CHECK_THROWS_AS(expand_env("${}", fake_env), std::invalid_argument);
  CHECK_THROWS_AS(expand_env("${MISSING}", fake_env), std::invalid_argument);
}

TEST_CASE("same_as tells a changed provider from an unchanged one") {
  const std::string base = kHead + "[[provider]]\nname = \"a\"\nhttp = \"http://h/\"\n";
  const auto a = parse(base).providers[0];
  CHECK(a.same_as(parse(base).providers[0]));
  CHECK_FALSE(a.same_as(parse(base + "timeout = \"1s\"\n").providers[0]));
  CHECK_FALSE(a.same_as(parse(base + "healthy_below = 400\n").providers[0]));
  CHECK_FALSE(a.same_as(parse(base + "headers = { A = \"b\" }\n").providers[0]));
  CHECK_FALSE(a.same_as(parse(base + "method = \"HEAD\"\n").providers[0]));
  CHECK_FALSE(a.same_as(parse(base + "expect = [200]\n").providers[0]));
  CHECK_FALSE(a.same_as(parse(base + "expect_body = \"ok\"\n").providers[0]));
}

TEST_CASE("http checks: method, expected statuses and a body match, with [table] defaults") {
  const Config c = parse(kHead + R"([table]
method = "HEAD"
expect = ["200-299"]

[[provider]]
name = "inherits"
http = "http://h/"

[[provider]]
name = "own"
http = "http://h/"
method = "GET"
expect = [200, "300-399", 404, "500"]
expect_body = '"status": "ok"'

[[provider]]
name = "bound"
http = "http://h/"
healthy_below = 400
)");
  REQUIRE(c.providers.size() == 3);
  CHECK(c.table.method == HttpMethod::head);
  const ProbeSpec& inherits = c.providers[0].probe;
  CHECK(inherits.method == HttpMethod::head);
  CHECK(inherits.expect == std::vector<StatusRange>{{200, 299}});
  CHECK(inherits.expect_body.empty());
  const ProbeSpec& own = c.providers[1].probe;
  CHECK(own.method == HttpMethod::get);
  CHECK(own.expect == std::vector<StatusRange>{{200, 200}, {300, 399}, {404, 404}, {500, 500}});
  CHECK(own.expect_body == "\"status\": \"ok\"");
  // Its own healthy_below replaces the [table] expect: the provider's word wins.
  const ProbeSpec& bound = c.providers[2].probe;
  CHECK(bound.expect.empty());
  CHECK(bound.healthy_below == 400);
  CHECK(bound.method == HttpMethod::head);
}

TEST_CASE("http check errors: one line naming the key and what is valid") {
  const std::string p = kHead + "[[provider]]\nname = \"a\"\nhttp = \"http://h/\"\n";
  expect_error(p + "method = \"POST\"\n", 5, "provider.method",
               "\"POST\" is not a probe method: must be \"GET\" or \"HEAD\"");
  expect_error(p + "method = \"get\"\n", 5, "provider.method", "must be \"GET\" or \"HEAD\"");
  expect_error(p + "method = 1\n", 5, "provider.method", "must be \"GET\" or \"HEAD\"");
  expect_error(kHead + "[table]\nmethod = \"PUT\"\n", 3, "table.method", "\"PUT\" is not");

  const std::string form = "statuses 100 to 599 and \"a-b\" ranges";
  expect_error(p + "expect = [99]\n", 5, "provider.expect", "99 is not an HTTP status: expected");
  expect_error(p + "expect = [600]\n", 5, "provider.expect", "600 is not an HTTP status");
  expect_error(p + "expect = [\"200-600\"]\n", 5, "provider.expect", "600 is not an HTTP status");
  expect_error(p + "expect = [\"300-200\"]\n", 5, "provider.expect",
               "\"300-200\" runs backwards: write \"200-300\"");
  expect_error(p + "expect = [\"2xx\"]\n", 5, "provider.expect",
               "\"2xx\" is not a status or a range");
  expect_error(p + "expect = [\"200-\"]\n", 5, "provider.expect", "is not a status or a range");
  expect_error(p + "expect = [\" 200\"]\n", 5, "provider.expect", "is not a status or a range");
  expect_error(p + "expect = []\n", 5, "provider.expect", "empty: expected a list of " + form);
  expect_error(p + "expect = 200\n", 5, "provider.expect", "not a list: expected");
  expect_error(p + "expect = [200.5]\n", 5, "provider.expect", form);
  expect_error(p + "expect = [429]\n", 5, "provider.expect", "429 is never healthy");
  expect_error(kHead + "[table]\nexpect = [\"500-400\"]\n", 3, "table.expect", "runs backwards");
  // A range may span 429 (it stays a failure).
  CHECK(parse(p + "expect = [\"200-499\"]\n").providers[0].probe.expect ==
        std::vector<StatusRange>{{200, 499}});

  expect_error(p + "healthy_below = 400\nexpect = [200]\n", 6, "provider.expect",
               "set together with healthy_below (line 5): keep one");

  expect_error(p + "expect_body = \"\"\n", 5, "provider.expect_body", "empty");
  expect_error(p + "expect_body = 5\n", 5, "provider.expect_body", "must be a string");
  expect_error(p + "expect_body = \"" + std::string(kBodyScanLimit + 1, 'x') + "\"\n", 5,
               "provider.expect_body", "longer than the 65536 bytes");
  expect_error(p + "method = \"HEAD\"\nexpect_body = \"ok\"\n", 6, "provider.expect_body",
               "a HEAD probe reads no body: use method = \"GET\"");
  expect_error(kHead + "[table]\nmethod = \"HEAD\"\n" +
                   "[[provider]]\nname = \"a\"\nhttp = \"http://h/\"\nexpect_body = \"ok\"\n",
               7, "provider.expect_body", "set method = \"GET\" here ([table] method is HEAD)");

  for (const std::string key : {"method = \"GET\"", "expect = [200]", "expect_body = \"ok\""})
    expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n" + key + "\n", 5,
                 "provider." + key.substr(0, key.find(' ')), "http/https probes only");
}

TEST_CASE("breaker policy keys in [table] and per provider") {
  const Config c = parse(kHead + R"([table]
failure_threshold = 3
backoff = "30s"
recover_after = 2
max_backoff = "10m"
jitter = 0.1
trip_memory = "1h"
ramp = "5s"
cooldown = "10s"
max_hint = "2m"
count = ["timeout", "connect", "server"]
cooldown_classes = ["rate_limited", "auth"]
probe_clears_reports = true

[[provider]]
name = "groq"
tcp = "h:1"
failure_threshold = 1
jitter = "25%"
count = []
probe_clears_reports = false

[[provider]]
name = "plain"
tcp = "h:2"
)");
  const PolicyKeys& t = c.table.policy;
  CHECK(t.failure_threshold == 3u);
  CHECK(t.backoff == std::chrono::nanoseconds(30s));
  CHECK(t.recover_after == 2u);
  CHECK(t.max_backoff == std::chrono::nanoseconds(10min));
  CHECK(t.jitter_permille == 100u);
  CHECK(t.trip_memory == std::chrono::nanoseconds(1h));
  CHECK(t.ramp == std::chrono::nanoseconds(5s));
  CHECK(t.cooldown == std::chrono::nanoseconds(10s));
  CHECK(t.max_hint == std::chrono::nanoseconds(2min));
  using healthtable::class_bit;
  using healthtable::FailureClass;
  CHECK(t.counts == (class_bit(FailureClass::timeout) | class_bit(FailureClass::connect) |
                     class_bit(FailureClass::server)));
  CHECK(t.cooldowns == (class_bit(FailureClass::rate_limited) | class_bit(FailureClass::auth)));
  CHECK(t.probe_clears_reports == true);

  // A provider's keys lie over the table default; the rest is the default's.
  const healthtable::Policy table = t.over(healthtable::Policy{});
  const healthtable::Policy groq = c.providers[0].policy.over(table);
  CHECK(groq.failure_threshold == 1u);
  CHECK(groq.jitter_permille == 250u);
  CHECK(groq.counts == 0);
  CHECK_FALSE(groq.probe_clears_reports);
  CHECK(groq.backoff == 30s);
  CHECK(groq.max_backoff == 10min);
  CHECK(c.providers[0].policy.any());
  CHECK_FALSE(c.providers[1].policy.any());
  CHECK(c.providers[1].policy.over(table) == table);
}

TEST_CASE("policy keys absent: the defaults, and the reference breaker") {
  const Config c = parse(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n");
  CHECK_FALSE(c.table.policy.any());
  CHECK(c.table.policy.over(healthtable::Policy{}) == healthtable::Policy{});
}

TEST_CASE("jitter: a fraction or a percentage, never a duration") {
  const auto jitter = [](const std::string& v) {
    return parse(kHead + "[table]\njitter = " + v + "\n[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n")
        .table.policy.jitter_permille;
  };
  CHECK(jitter("0.05") == 50u);
  CHECK(jitter("\"12.5%\"") == 125u);
  CHECK(jitter("0") == 0u);
  CHECK(jitter("1") == 1000u);
  expect_error(kHead + "[table]\njitter = \"2s\"\n", 3, "table.jitter", "a percentage such as");
  expect_error(kHead + "[table]\njitter = 10\n", 3, "table.jitter", "a fraction");
  expect_error(kHead + "[table]\njitter = 1.5\n", 3, "table.jitter", "between 0 and 1");
  expect_error(kHead + "[table]\njitter = \"150%\"\n", 3, "table.jitter", "between 0 and 1");
  expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\njitter = true\n", 5,
               "provider.jitter", "a fraction");
}

TEST_CASE("policy errors: validate_policy's message, with the key's line") {
  expect_error(kHead + "[table]\nrecover_after = 0\n", 3, "table.recover_after",
               "recover_after must be at least 1");
  expect_error(kHead + "[table]\nmax_backoff = \"400d\"\n", 3, "table.max_backoff", "");
  expect_error(kHead + "[table]\nmax_backoff = \"9000h\"\n", 3, "table.max_backoff",
               "max_backoff must be at most");
  expect_error(kHead + "[table]\ncooldown = \"9000h\"\n", 3, "table.cooldown",
               "cooldown must be at most");
  expect_error(kHead + "[table]\nramp = \"-1s\"\n", 3, "table.ramp", "");
  expect_error(kHead + "[table]\ntrip_memory = \"long\"\n", 3, "table.trip_memory", "");
  expect_error(kHead + "[table]\nmax_hint = true\n", 3, "table.max_hint", "must be a duration");
  expect_error(kHead + "[table]\nprobe_clears_reports = 1\n", 3, "table.probe_clears_reports",
               "true or false");
  expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\n\nrecover_after = 0\n", 6,
               "provider.recover_after", "recover_after must be at least 1");
  expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\nfailure_threshold = 0\n", 5,
               "provider.failure_threshold", "out of range");
  expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\nbackoff = \"9000h\"\n", 5,
               "provider.backoff", "backoff must be at most");
}

TEST_CASE("class lists: unknown names refused with the valid ones") {
  expect_error(kHead + "[table]\ncount = [\"timeout\", \"5xx\"]\n", 3, "table.count",
               "unknown failure class \"5xx\" (expected one of: timeout, connect, server, "
               "rate_limited, auth, client, other)");
  expect_error(kHead + "[table]\ncount = [\"none\"]\n", 3, "table.count", "unknown failure class");
  expect_error(kHead + "[table]\ncooldown_classes = \"rate_limited\"\n", 3,
               "table.cooldown_classes", "must be a list of failure classes");
  expect_error(kHead + "[table]\ncount = [1]\n", 3, "table.count", "must be a string");
  expect_error(kHead + "[[provider]]\nname = \"a\"\ntcp = \"h:1\"\ncooldown_classes = [\"slow\"]\n",
               5, "provider.cooldown_classes", "expected one of: timeout");
  expect_error(kHead + "[table]\ncolour = 1\n", 3, "table.colour", "probe_clears_reports");
}
