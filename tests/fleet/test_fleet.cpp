// A fleet on one machine: three healthprobe processes ("hosts"), each with
// its own table, and one real redis-server on 127.0.0.1. A 429 that one
// host sees reaches the other tables; Redis killed and restarted loses
// nothing local and sharing resumes; hostile messages are refused, counted,
// and change nothing.
#include "fleet_message.hpp"
#include "servers.hpp"

#include <healthtable/home.hpp>
#include <healthtable/table.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

using namespace healthtable;
using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

const std::string kSecret = "fleet-test-secret-0123456789abcdef";
const std::string kPassword = "fleet-test-password";

/// redis-server on a free loopback port, with a password, no persistence.
struct Redis {
  TempDir dir;
  int port = refused_port();
  std::unique_ptr<Child> child;

  Redis() { start(); }
  void start() {
    child = std::make_unique<Child>(
        std::vector<std::string>{REDIS_SERVER, "--port", std::to_string(port), "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize",
                                 "no", "--requirepass", kPassword, "--dir", dir.path().string()},
        dir.path());
    REQUIRE(eventually(
        [&] { return child->out().find("Ready to accept connections") != std::string::npos; },
        20s));
  }
  void kill9() {
    child->signal(SIGKILL);
    REQUIRE(child->wait(10s));
  }
  /// PUBLISH as the tests' own client (not a prober).
  void publish(const std::string& channel, const std::string& payload) const {
    redisContext* c = redisConnect("127.0.0.1", port);
    REQUIRE(c);
    REQUIRE(c->err == 0);
    auto* a = static_cast<redisReply*>(redisCommand(c, "AUTH %s", kPassword.c_str()));
    REQUIRE(a);
    freeReplyObject(a);
    auto* r = static_cast<redisReply*>(redisCommand(
        c, "PUBLISH %b %b", channel.data(), channel.size(), payload.data(), payload.size()));
    REQUIRE(r);
    CHECK(r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    redisFree(c);
  }
};

/// One "host": a healthprobe with its own table and config.
struct Host {
  TempDir dir;
  SegmentName seg{"fleet"};
  std::string id;
  std::unique_ptr<Child> child;

  Host(std::string host_id, const Redis& redis, const std::string& providers) : id(host_id) {
    const auto key = dir.write("fleet.key", kSecret);
    ::chmod(key.c_str(), 0600);
    const auto pw = dir.write("redis.pw", kPassword);
    ::chmod(pw.c_str(), 0600);
    const auto cfg = dir.write(
        "healthprobe.toml",
        "segment = \"" + seg.str() + "\"\ninterval = \"1s\"\n[fleet]\nname = \"" + fleet() +
            "\"\nredis = \"127.0.0.1:" + std::to_string(redis.port) + "\"\nhost_id = \"" + id +
            "\"\nsecret_file = \"fleet.key\"\npassword_file = \"redis.pw\"\nreconnect_max = "
            "\"1s\"\n" +
            providers);
    child = std::make_unique<Child>(
        std::vector<std::string>{HEALTHPROBE_BIN, "--config", cfg.string(), "--verbose"},
        dir.path());
  }
  ~Host() {
    if (child && child->running()) {
      child->signal(SIGTERM);
      child->wait(10s);
    }
  }
  static std::string fleet() { return "test-" + std::to_string(::getpid()); }
  std::optional<ProviderState> state(const std::string& name) const {
    try {
      return Table::open(seg.str()).get_state(name);
    } catch (const Error&) {
      return std::nullopt;
    }
  }
  /// The fleet status file, or an empty object.
  nlohmann::json stats() const {
    std::ifstream in(home_dir(seg.str()) + "/fleet");
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
  }
  std::uint64_t stat(const std::string& k) const {
    auto j = stats();
    return j.contains(k) && j[k].is_number() ? j[k].get<std::uint64_t>() : 0;
  }
  std::uint64_t refused(const std::string& reason) const {
    auto j = stats();
    return j.contains("refused") && j["refused"].contains(reason)
               ? j["refused"][reason].get<std::uint64_t>()
               : 0;
  }
};

std::string provider(const std::string& name, const std::string& url) {
  return "[[provider]]\nname = \"" + name + "\"\nhttp = \"" + url + "\"\n";
}

bool rate_limited_by_peer(const Host& h) {
  const auto s = h.state("llm");
  return s && s->last_source == Source::peer && s->last_class == FailureClass::rate_limited &&
         !s->available(Instant::now().mono_ns);
}

} // namespace

TEST_CASE(
    "a 429 seen by one host reaches the others and Redis killed and restarted loses nothing") {
  Redis redis;
  HttpServer web;
  Host h1("h1", redis, provider("llm", web.url("/status/429?Retry-After=30")));
  Host h2("h2", redis, provider("llm", web.url("/status/200")));
  Host h3("h3", redis, provider("llm", web.url("/status/200")));
  for (Host* h : {&h1, &h2, &h3})
    REQUIRE(h->child->wait_for_err("connected to Redis at 127.0.0.1:" + std::to_string(redis.port),
                                   20s));

  // The peers' tables get the deadline host 1 set, within the clocks' skew
  // (one machine: the same clock) and a probe interval.
  REQUIRE(eventually([&] { return rate_limited_by_peer(h2) && rate_limited_by_peer(h3); }, 20s));
  const auto own = h1.state("llm");
  REQUIRE(own);
  CHECK(own->last_source == Source::probe);
  for (const Host* h : {&h2, &h3}) {
    const auto s = h->state("llm");
    CHECK(s->healthy);                   // a deadline, not a trip
    CHECK(s->consecutive_failures == 0); // the peer counted nothing here
    CHECK(std::llabs(s->unhealthy_until_unix_ns - own->unhealthy_until_unix_ns) <
          std::chrono::nanoseconds(3s).count());
  }
  // The status file is rewritten at most every 200 ms, so its counters may
  // trail the table by that much: wait for them, as for the table.
  CHECK(eventually([&] { return h2.stat("applied") >= 1 && h3.stat("applied") >= 1; }, 20s));
  CHECK(eventually([&] { return h1.stat("published") >= 1; }, 20s));
  // Its own messages come back, and are not applied.
  CHECK(eventually([&] { return h1.refused("own") >= 1; }, 20s));

  // Redis dies: every prober says so, probing goes on, and local state stays.
  const auto h2_successes = h2.state("llm")->successes;
  const auto h1_limited = h1.state("llm")->class_failures[4];
  redis.kill9();
  for (Host* h : {&h1, &h2, &h3})
    REQUIRE(h->child->wait_for_err("lost Redis at 127.0.0.1", 20s));
  REQUIRE(eventually([&] { return h2.state("llm")->successes >= h2_successes + 2; }, 20s));
  REQUIRE(eventually([&] { return h1.state("llm")->class_failures[4] >= h1_limited + 2; }, 20s));
  CHECK_FALSE(h2.state("llm")->available(Instant::now().mono_ns)); // the peer's deadline stands
  CHECK(h2.state("llm")->healthy);
  for (Host* h : {&h1, &h2, &h3})
    CHECK(h->child->running());
  // One line for the loss, not one per attempt.
  CHECK(h2.child->err().find("cannot reach Redis") == std::string::npos);

  // Redis back on the same port: every prober reconnects and sharing resumes.
  const auto before = h2.state("llm")->unhealthy_until_unix_ns;
  const auto applied = h2.stat("applied");
  redis.start();
  for (Host* h : {&h1, &h2, &h3})
    REQUIRE(h->child->wait_for_err("reconnected to Redis at 127.0.0.1", 30s));
  REQUIRE(eventually(
      [&] {
        return h2.stat("applied") > applied && h2.state("llm")->unhealthy_until_unix_ns > before;
      },
      20s));
  CHECK(h2.stat("reconnects") >= 1);
  CHECK(h2.stats()["connected"] == true);
}

TEST_CASE("hostile and malformed messages are refused and counted and change nothing") {
  Redis redis;
  HttpServer web;
  Host h2("h2", redis,
          provider("llm", web.url("/status/200")) + provider("calm", web.url("/status/200")));
  REQUIRE(h2.child->wait_for_err("connected to Redis", 20s));
  REQUIRE(eventually([&] { return h2.state("calm") && h2.state("calm")->successes > 0; }, 20s));
  const std::string channel = "healthtable:fleet:" + Host::fleet();
  const auto now = Instant::now().unix_ns;
  const auto in = [&](std::chrono::nanoseconds d) { return now + d.count(); };
  const auto msg = [&](const std::string& host, std::uint64_t seq, std::int64_t time,
                       const std::string& prov, std::int64_t deadline) {
    return Envelope{
        Host::fleet(),
        host,
        "i1",
        seq,
        time,
        Fact{FactKind::cooldown, prov, FailureClass::rate_limited, deadline, "http 429"}};
  };
  // One genuine fact, then the same again (a replay).
  const std::string good = encode(msg("h9", 5, now, "llm", in(20s)), kSecret);
  redis.publish(channel, good);
  REQUIRE(eventually([&] { return rate_limited_by_peer(h2); }, 20s));
  redis.publish(channel, good);

  const std::string body = "{\"v\":1";
  std::vector<std::string> hostile = {
      "not a message at all",
      "1 " + hmac_hex(kSecret, body) + " " + body,                             // signed, not JSON
      encode(msg("h9", 6, now, "calm", in(20s)), "wrong secret, long enough"), // bad MAC
      "7" + encode(msg("h9", 7, now, "calm", in(20s)), kSecret).substr(1),     // bad version
      encode(msg("h9", 8, now - std::chrono::nanoseconds(60s).count(), "calm", in(20s)),
             kSecret),                                      // sent a minute ago
      encode(msg("h9", 9, now, "calm", in(10h)), kSecret),  // too far
      encode(msg("h9", 10, now, "calm", now - 1), kSecret), // expired
      encode(msg("h9", 11, now, "nope", in(20s)), kSecret), // not ours
      encode(msg("h2", 1, now, "calm", in(20s)), kSecret),  // claims to be us
      encode(msg("h9", 5, now, "calm", in(20s)), kSecret),  // an old sequence
  };
  Envelope other_fleet = msg("h9", 12, now, "calm", in(20s));
  other_fleet.fleet = "elsewhere";
  hostile.push_back(encode(other_fleet, kSecret));
  for (const std::string& m : hostile)
    redis.publish(channel, m);

  REQUIRE(eventually([&] { return h2.stat("received") >= 2 + hostile.size(); }, 20s));
  REQUIRE(eventually([&] { return h2.stat("refused_total") >= 1 + hostile.size(); }, 20s));
  CHECK(h2.refused("malformed") == 2);
  CHECK(h2.refused("bad_mac") == 1);
  CHECK(h2.refused("bad_version") == 1);
  CHECK(h2.refused("skew") == 1);
  CHECK(h2.refused("too_far") == 1);
  CHECK(h2.refused("expired") == 1);
  CHECK(h2.refused("unknown_provider") == 1);
  CHECK(h2.refused("own") == 1);
  CHECK(h2.refused("duplicate") == 2); // the replayed genuine one, and seq 5 again
  CHECK(h2.refused("wrong_fleet") == 1);
  CHECK(h2.stat("applied") == 1);
  // Nothing changed: "calm" is as its probes left it, "nope" was never registered.
  const auto calm = h2.state("calm");
  REQUIRE(calm);
  CHECK(calm->available(Instant::now().mono_ns));
  CHECK(calm->last_source == Source::probe);
  CHECK_FALSE(Table::open(h2.seg.str()).find("nope"));
  CHECK(h2.child->err().find("refused a message") != std::string::npos);
  CHECK(h2.child->running());
}
