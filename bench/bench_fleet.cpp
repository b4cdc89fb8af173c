// How long a fact one host publishes takes to reach the other hosts'
// tables: one redis-server on 127.0.0.1 and two healthprobe processes,
// each with its own table of N providers; this program publishes one
// signed rate-limit deadline per provider, as a third host would, and
// polls both tables (is_healthy, from a read-only mapping) until the
// provider is out. Prints p50/p99/max over every (fact, table) pair.
// Not Google Benchmark: one run is N round trips through real processes.
//
//   bench_fleet [--facts=100]
#include "fleet_message.hpp"
#include "servers.hpp"

#include <healthtable/clock.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace healthtable;
using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

const std::string kSecret = "bench-fleet-secret-0123456789abcdef";

struct Proc {
  std::unique_ptr<Child> child;
  ~Proc() {
    if (child && child->running()) {
      child->signal(SIGTERM);
      child->wait(10s);
    }
  }
};

int fail(const std::string& what) {
  std::fprintf(stderr, "bench_fleet: %s\n", what.c_str());
  return 1;
}

} // namespace

int main(int argc, char** argv) {
  int facts = 100;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--facts=", 8) == 0) facts = std::max(1, std::atoi(argv[i] + 8));
  TempDir dir;
  HttpServer web;
  const int port = refused_port();
  Proc redis;
  redis.child = std::make_unique<Child>(
      std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port), "--bind",
                               "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
                               "--dir", dir.path().string()},
      dir.path());
  if (!eventually([&] { return redis.child->out().find("Ready to accept") != std::string::npos; },
                  20s))
    return fail("redis-server did not start");
  const auto key = dir.write("fleet.key", kSecret);
  ::chmod(key.c_str(), 0600);
  const std::string fleet = "bench-" + std::to_string(::getpid());
  std::string providers;
  for (int i = 0; i < facts; ++i)
    providers += "[[provider]]\nname = \"p" + std::to_string(i) + "\"\nhttp = \"" +
                 web.url("/status/200") + "\"\n";
  std::vector<std::string> segs;
  std::vector<Proc> probers(2);
  for (int h = 0; h < 2; ++h) {
    segs.push_back("healthtable-bench-fleet-" + std::to_string(::getpid()) + "-" +
                   std::to_string(h));
    const auto cfg = dir.write(
        "h" + std::to_string(h) + ".toml",
        "segment = \"" + segs[h] + "\"\ninterval = \"30s\"\n[fleet]\n" + "name = \"" + fleet +
            "\"\nredis = \"127.0.0.1:" + std::to_string(port) + "\"\nhost_id = \"h" +
            std::to_string(h) + "\"\nsecret_file = \"fleet.key\"\n" + providers);
    probers[h].child = std::make_unique<Child>(
        std::vector<std::string>{HEALTHPROBE_BIN, "--config", cfg.string()}, dir.path());
  }
  for (auto& p : probers)
    if (!p.child->wait_for_err("connected to Redis", 20s)) return fail("a prober did not connect");
  std::vector<Table> tables;
  for (const auto& s : segs)
    tables.push_back(Table::open(s));
  // Every provider probed healthy once, so an unavailable one is the fact's doing.
  if (!eventually(
          [&] {
            for (auto& t : tables)
              for (const ProviderState& st : t.snapshot())
                if (st.last_check_unix_ns == 0) return false;
            return true;
          },
          30s))
    return fail("the first probes did not finish");

  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) return fail("cannot connect to redis-server");
  const std::string channel = "healthtable:fleet:" + fleet;
  std::vector<double> delays_us;
  for (int i = 0; i < facts; ++i) {
    const std::string name = "p" + std::to_string(i);
    const std::int64_t now = Instant::now().unix_ns;
    const std::string payload =
        encode(Envelope{fleet, "bench", "b1", static_cast<std::uint64_t>(i + 1), now,
                        Fact{FactKind::cooldown, name, FailureClass::rate_limited,
                             now + std::chrono::nanoseconds(10min).count(), "http 429"}},
               kSecret);
    const auto t0 = std::chrono::steady_clock::now();
    auto* r = static_cast<redisReply*>(redisCommand(
        c, "PUBLISH %b %b", channel.data(), channel.size(), payload.data(), payload.size()));
    if (!r) return fail("PUBLISH failed");
    freeReplyObject(r);
    std::vector<bool> seen(tables.size(), false);
    std::size_t left = tables.size();
    const auto limit = t0 + 10s;
    while (left > 0) {
      for (std::size_t t = 0; t < tables.size(); ++t)
        if (!seen[t] && !tables[t].is_healthy(name)) {
          seen[t] = true;
          --left;
          delays_us.push_back(
              std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                  .count());
        }
      if (std::chrono::steady_clock::now() > limit) return fail("a fact never arrived: " + name);
      std::this_thread::sleep_for(50us);
    }
  }
  redisFree(c);
  std::sort(delays_us.begin(), delays_us.end());
  const auto pct = [&](double p) {
    return delays_us[std::min(delays_us.size() - 1,
                              static_cast<std::size_t>(p * static_cast<double>(delays_us.size())))];
  };
  std::printf("fleet delay, PUBLISH to a peer's table (%zu samples: %d facts x %zu tables): "
              "p50 %.0f us, p99 %.0f us, max %.0f us\n",
              delays_us.size(), facts, tables.size(), pct(0.50), pct(0.99), delays_us.back());
  tables.clear();
  probers.clear(); // they hold the writer locks
  for (const auto& s : segs)
    try {
      Writer::destroy(s, true);
    } catch (const Error&) {
    }
  return 0;
}
