// HTTPS trust is read once per CA setting and shared by every handshake,
// while each probe still makes its own full handshake with its server.
//
// The system's trust cannot hold a test CA, so the large bundle here is a
// ca_file: the system bundle with the test CA appended, which is what a
// provider signed by a public CA meets under system trust. Counts and
// behaviour only, with timeouts far beyond need: nothing here is timed.
#include "probe.hpp"
#include "servers.hpp"

#include <doctest/doctest.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace healthtable::prober;
using namespace healthtable::test;
using namespace std::chrono_literals;

namespace {

constexpr auto kGenerous = 60s;
constexpr const char* kSystemBundle = "/etc/ssl/certs/ca-certificates.crt";

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

ProbeSpec https(const TlsServer& server, const std::string& ca_file) {
  ProbeSpec s;
  s.provider = "p";
  s.target = server.url();
  s.ca_file = ca_file;
  s.timeout = kGenerous;
  return s;
}

/// The system bundle (~150 CAs, ~200 KiB on Debian) with `ca` appended.
std::filesystem::path big_bundle(const TempDir& dir, const TlsServer& server) {
  const std::string system = slurp(kSystemBundle);
  REQUIRE_MESSAGE(system.size() > 100'000,
                  kSystemBundle << " is missing or small: install ca-certificates");
  return dir.write("bundle.pem", system + "\n" + slurp(server.ca_file()));
}

/// Counts the opens of one file, by anyone, from now on: the process's own
/// view of how often a bundle is read, whoever in it reads it (us or curl).
class OpenCounter {
public:
  explicit OpenCounter(const std::filesystem::path& file)
      : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    REQUIRE(fd_ >= 0);
    // Closes too: inotify merges an event into an identical unread one, so
    // opens are only told apart with a close between them.
    REQUIRE(::inotify_add_watch(fd_, file.c_str(), IN_OPEN | IN_CLOSE) >= 0);
  }
  ~OpenCounter() { ::close(fd_); }
  std::size_t opens() {
    alignas(inotify_event) char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        if (ev->mask & IN_OPEN) ++opens_;
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    }
    return opens_;
  }

private:
  int fd_;
  std::size_t opens_ = 0;
};

struct Tally {
  std::size_t healthy = 0;
  std::vector<std::string> reasons; ///< one per failed probe
};

Tally run_tick(Engine& engine, const std::vector<ProbeSpec>& probes) {
  Tally t;
  engine.run(probes, [&](const ProbeResult& o) {
    if (o.healthy)
      ++t.healthy;
    else
      t.reasons.push_back(o.reason);
  });
  return t;
}

} // namespace

TEST_CASE("200 https probes over 3 ticks read their large CA bundle once; all reach the server") {
  raise_file_limit();
  TempDir dir;
  TlsServer server(dir);
  const auto bundle = big_bundle(dir, server);
  // Beside them, probes on the system's trust (which lacks the test CA) and
  // unverified ones, in the same ticks: each setting keeps its own store.
  std::vector<ProbeSpec> probes;
  for (int i = 0; i < 200; ++i)
    probes.push_back(https(server, bundle.string()));
  for (int i = 0; i < 20; ++i)
    probes.push_back(https(server, ""));
  for (int i = 0; i < 20; ++i) {
    probes.push_back(https(server, ""));
    probes.back().verify = false;
  }

  OpenCounter bundle_opens(bundle);
  Engine engine;
  for (int tick = 1; tick <= 3; ++tick) {
    CAPTURE(tick);
    const Tally t = run_tick(engine, probes);
    CHECK(t.healthy == 220);
    REQUIRE(t.reasons.size() == 20);
    for (const auto& r : t.reasons)
      CHECK_MESSAGE(r.rfind("tls: certificate verify failed", 0) == 0, r);
  }
  // The bundle once, the system's trust once; verify = false reads nothing.
  CHECK(bundle_opens.opens() == 1);
  CHECK(engine.trust_loads() == 2);
  // Every verified-or-not probe that could succeed made its own handshake
  // and request; the 20 on system trust stopped at verification.
  CHECK(server.requests() == 3 * 220);
  CHECK(server.handshakes() == 3 * 220);
  CHECK(server.accepted() == 3 * 240);
  CHECK(server.resumed() == 0); // a full handshake each time, no session reuse
}

TEST_CASE("a ca_file that changes on disk is read again at the next tick") {
  TempDir dir, other_dir;
  TlsServer server(dir);
  TlsServer other(other_dir); // only for its CA, which did not sign `server`
  const auto ca = dir.write("trust.pem", slurp(server.ca_file()));
  const std::vector<ProbeSpec> probes(5, https(server, ca.string()));
  Engine engine;

  CHECK(run_tick(engine, probes).healthy == 5);
  CHECK(run_tick(engine, probes).healthy == 5);
  CHECK(engine.trust_loads() == 1);

  dir.write("trust.pem", slurp(other.ca_file())); // a new file in its place
  const Tally refused = run_tick(engine, probes);
  CHECK(refused.healthy == 0);
  REQUIRE(refused.reasons.size() == 5);
  CHECK(refused.reasons[0].rfind("tls: certificate verify failed", 0) == 0);
  CHECK(engine.trust_loads() == 2);

  dir.write("trust.pem", slurp(server.ca_file()));
  CHECK(run_tick(engine, probes).healthy == 5);
  CHECK(engine.trust_loads() == 3);
}

TEST_CASE("a ca_file that cannot be read fails its probes, and is tried once per tick") {
  TempDir dir;
  TlsServer server(dir);
  const auto junk = dir.write("junk.pem", "not a certificate\n");
  const std::vector<ProbeSpec> probes(5, https(server, junk.string()));
  Engine engine;
  for (int tick = 1; tick <= 2; ++tick) {
    const Tally t = run_tick(engine, probes);
    CHECK(t.healthy == 0);
    REQUIRE(t.reasons.size() == 5);
    for (const auto& r : t.reasons)
      CHECK(r == "tls: error setting certificate file: " + junk.string());
  }
  CHECK(engine.trust_loads() == 2);
  CHECK(server.requests() == 0);

  // Fixed on disk: the next tick reads it and the probes pass.
  dir.write("junk.pem", slurp(server.ca_file()));
  CHECK(run_tick(engine, probes).healthy == 5);
  CHECK(engine.trust_loads() == 3);
}
