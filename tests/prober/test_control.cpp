// The prober's control socket, end to end: a real healthprobe process on a
// table, healthctl's record/set/reset routed through it while it holds the
// writer lock, worker reports (Reporter) authorized by uid, hostile
// datagrams, and the client side with no prober at all. Every probe goes to
// 127.0.0.1; every wait is bounded.
#include "config.hpp"
#include "control.hpp"
#include "servers.hpp"

#include <healthtable/detail/datagram.hpp>
#include <healthtable/home.hpp>
#include <healthtable/report.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <cli/run.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <thread>
#include <tuple>

using namespace healthtable;
using namespace healthtable::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

/// A healthprobe process on `seg`: one TCP probe to a 127.0.0.1 port nobody
/// listens on ("dead"), every `interval`, plus `extra` config text.
struct Prober {
  TempDir dir;
  std::unique_ptr<Child> child;

  std::string seg;
  std::string interval;
  int port = refused_port();

  Prober(const std::string& segment, const std::string& extra = "", const std::string& every = "1h")
      : seg(segment), interval(every) {
    const auto config = write(extra);
    child = std::make_unique<Child>(
        std::vector<std::string>{HEALTHPROBE_BIN, "--config", config.string(), "--verbose"},
        dir.path());
  }
  /// Writes the config file with `extra` (a [control] section, say).
  std::filesystem::path write(const std::string& extra) const {
    return dir.write(
        "healthprobe.toml",
        "segment = \"" + seg + "\"\ninterval = \"" + interval + "\"\ntimeout = \"" +
            (interval == "1h" ? "1s" : interval) + "\"\n" + extra +
            "\n[[provider]]\nname = \"dead\"\ntcp = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  }
  /// Waits until the prober has started and its first tick has probed.
  bool ready(const std::string& segment) const {
    return child->wait_for_err("started: pid", 5s) &&
           eventually(
               [&] {
                 try {
                   auto s = Table::open(segment).get_state("dead");
                   return s && s->last_check_unix_ns > 0;
                 } catch (const Error&) {
                   return false;
                 }
               },
               5s);
  }
};

std::optional<ProviderState> state(const std::string& seg, const std::string& provider) {
  return Table::open(seg).get_state(provider);
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

/// Sends raw bytes to the prober's control socket from an autobound socket
/// and returns its reply ("" when none came within `wait`).
std::string raw_request(const std::string& seg, const std::string& bytes,
                        std::chrono::milliseconds wait = 10s) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un self{};
  self.sun_family = AF_UNIX;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&self), sizeof(sa_family_t)) == 0);
  const std::string address = control_address(seg);
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  std::memcpy(to.sun_path, address.data(), address.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  const ssize_t sent =
      ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), len);
  CHECK(sent == static_cast<ssize_t>(bytes.size()));
  timeval tv{};
  tv.tv_sec = wait.count() / 1000;
  tv.tv_usec = (wait.count() % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

/// Runs `fn` in a forked child under uid/gid `id` (all of real, effective
/// and saved); returns the child's exit code. Needs root.
int as_user(std::uint32_t id, const std::function<int()>& fn) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(id, id, id) != 0 ||
        ::setresuid(id, id, id) != 0)
      _exit(100);
    int rc = 101;
    try {
      rc = fn();
    } catch (...) {
    }
    _exit(rc);
  }
  int st = 0;
  const auto end = Clock::now() + 30s;
  while (::waitpid(pid, &st, WNOHANG) == 0) {
    if (Clock::now() > end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(5ms);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::uint32_t nobody() {
  const passwd* pw = ::getpwnam("nobody");
  return pw ? pw->pw_uid : 65534;
}

Errc error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("no error thrown");
  return Errc::system_error;
}

} // namespace

TEST_CASE("healthctl set/record/reset while the prober runs go through its control socket") {
  SegmentName seg("ctl");
  Prober prober(seg);
  REQUIRE(prober.ready(seg));

  // Forced down: exit 0, the table says so, the prober logs who did it.
  // google is not in the prober's config: --create registers it.
  Run r = healthctl({"set", seg, "google", "down"});
  CHECK(r.status == 14);
  CHECK(r.err.find("--create registers it") != std::string::npos);
  CHECK_FALSE(state(seg, "google"));
  r = healthctl({"set", seg, "google", "down", "--create"});
  CHECK(r.status == 0);
  CHECK(r.out ==
        "google: forced down; unavailable until 'healthctl set " + seg.str() + " google auto'\n");
  CHECK(r.err.empty());
  auto s = state(seg, "google");
  REQUIRE(s);
  CHECK(s->override_mode == Override::forced_down);
  CHECK_FALSE(Table::open(seg.str()).is_healthy("google"));
  CHECK(prober.child->wait_for_err("<5>provider google forced down by pid ", 10s));

  // Two failures trip it, as they would if the prober had seen them.
  r = healthctl({"record", seg, "groq", "failure", "--reason", "http 503"});
  CHECK(r.status == 0);
  CHECK(r.out == "groq: failure 1 of 2 recorded; still healthy\n");
  r = healthctl({"record", seg, "groq", "failure", "--reason", "http 503"});
  CHECK(r.status == 0);
  CHECK(r.out == "groq: tripped (2 consecutive failures); unhealthy for 1m\n");
  s = state(seg, "groq");
  REQUIRE(s);
  CHECK_FALSE(s->healthy);
  CHECK(s->consecutive_failures == 2);
  CHECK(s->last_error == "http 503");
  CHECK_FALSE(Table::open(seg.str()).is_healthy("groq"));
  CHECK(prober.child->wait_for_err("<4>provider groq marked unhealthy after 2 consecutive "
                                   "failures (http 503); backoff 60s; reported by pid ",
                                   10s));

  r = healthctl({"record", seg, "groq", "success"});
  CHECK(r.status == 0);
  CHECK(r.out == "groq: recovered; healthy again\n");
  CHECK(state(seg, "groq")->healthy);

  r = healthctl({"set", seg, "google", "auto"});
  CHECK(r.status == 0);
  CHECK(r.out == "google: override cleared; the circuit breaker decides (now available)\n");
  CHECK(state(seg, "google")->override_mode == Override::automatic);

  // reset: unknown providers refused before anything changes (14), then one, then all.
  REQUIRE(healthctl({"set", seg, "groq", "up"}).status == 0);
  r = healthctl({"reset", seg, "groq", "nope"});
  CHECK(r.status == 14);
  CHECK(r.err == "healthctl: provider 'nope' is not in table '" + seg.str() +
                     "'; 'healthctl dump " + seg.str() + "' lists the providers it has\n");
  CHECK(state(seg, "groq")->override_mode == Override::forced_up);
  // A reset keeps an operator's override and says how to clear it too.
  r = healthctl({"reset", seg, "groq"});
  CHECK(r.status == 0);
  CHECK(r.out == "reset groq of '" + seg.str() + "'; override kept on groq ('healthctl reset " +
                     seg.str() + " groq --overrides' clears it)\n");
  CHECK(state(seg, "groq")->override_mode == Override::forced_up);
  r = healthctl({"reset", seg, "groq", "--overrides"});
  CHECK(r.status == 0);
  CHECK(r.out == "reset groq of '" + seg.str() + "'\n");
  CHECK(state(seg, "groq")->override_mode == Override::automatic);
  CHECK(prober.child->wait_for_err("<5>provider groq reset with overrides by pid ", 10s));
  const auto generation = Table::open(seg.str()).info().generation;
  r = healthctl({"reset", seg});
  CHECK(r.status == 0);
  CHECK(r.out.starts_with("reset all 3 providers of '" + seg.str() + "'; generation now 0x"));
  CHECK(Table::open(seg.str()).info().generation == generation + 1);
  CHECK(prober.child->wait_for_err("<5>all 3 providers reset by pid ", 10s));

  // grow and forget go through the prober too; a reader's handle follows
  // the grow without re-opening.
  REQUIRE(healthctl({"set", seg, "groq", "down"}).status == 0);
  const auto reader = Table::open(seg.str());
  const Handle groq = reader.handle("groq");
  CHECK_FALSE(reader.is_healthy(groq));
  const auto capacity = Table::open(seg.str()).info().capacity;
  r = healthctl({"grow", seg, "--slots", std::to_string(capacity * 2)});
  CHECK(r.status == 0);
  CHECK(r.out == "'" + seg.str() + "' now has " + std::to_string(capacity * 2) + " slots (was " +
                     std::to_string(capacity) + "); readers follow\n");
  CHECK(prober.child->wait_for_err("slots by pid ", 10s));
  CHECK(Table::open(seg.str()).info().capacity == capacity * 2);
  CHECK(state(seg, "groq")->override_mode == Override::forced_down);
  CHECK(eventually([&] { return reader.info().capacity == capacity * 2; }, 10s));
  CHECK_FALSE(reader.is_healthy(groq));
  r = healthctl({"forget", seg, "google"});
  CHECK(r.status == 0);
  CHECK(r.out.starts_with("google: forgotten; its slot is free"));
  CHECK_FALSE(state(seg, "google"));

  // The prober still holds the lock and still runs.
  CHECK(Table::open(seg.str()).info().writer_pid == prober.child->pid());
  CHECK(prober.child->running());
}

TEST_CASE("a request is served while a tick's probe hangs, not after its timeout") {
  SegmentName seg("ctl");
  HttpServer web;
  TempDir dir;
  // The probe hangs for its whole 30 s timeout; the request must not wait
  // for it (healthctl itself waits only 1 s for the prober's answer).
  const auto config = dir.write(
      "healthprobe.toml", "segment = \"" + seg.str() +
                              "\"\ninterval = \"60s\"\ntimeout = \"30s\"\n[[provider]]\nname = "
                              "\"slow\"\nhttp = \"" +
                              web.url("/hang") + "\"\n");
  Child child({HEALTHPROBE_BIN, "--config", config.string()}, dir.path());
  REQUIRE(eventually([&] { return web.requests().size() >= 1; }, 10s)); // the tick is in flight
  const auto t0 = Clock::now();
  const Run r = healthctl({"set", seg, "slow", "down"});
  CHECK(r.status == 0);
  CHECK(Clock::now() - t0 < 10s); // well under the probe's 30 s
  CHECK(state(seg, "slow")->override_mode == Override::forced_down);
  CHECK(state(seg, "slow")->last_check_unix_ns == 0); // the probe is still hanging
}

TEST_CASE("worker reports: refused for a uid not allowed, applied for report_uids, never admin") {
  if (::geteuid() != 0) {
    MESSAGE("needs root to send as another uid");
    return;
  }
  const std::uint32_t uid = nobody();

  SUBCASE("outside the socket's group: nothing is even queued, root's reports all arrive") {
    SegmentName seg("ctl");
    Prober prober(seg);
    REQUIRE(prober.ready(seg));
    struct stat st {};
    REQUIRE(::stat(control_address(seg.str()).c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0660);
    const auto before = *state(seg, "dead");
    // A flood from nobody: every sendto is refused by the kernel, before
    // the prober reads anything.
    CHECK(as_user(uid, [&] {
            const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            const std::string address = control_address(seg.str());
            sockaddr_un to{};
            to.sun_family = AF_UNIX;
            std::memcpy(to.sun_path, address.data(), address.size());
            const auto len =
                static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1);
            const std::string line = "record dead failure flood";
            for (int i = 0; i < 1000; ++i)
              if (::sendto(fd, line.data(), line.size(), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&to), len) >= 0 ||
                  errno != EACCES)
                return 1;
            return Reporter(seg.str()).failure("dead", "flood") ? 2 : 0;
          }) == 0);
    // Root (in the group, and an admin) gets every report through.
    Reporter reporter(seg.str());
    for (int i = 0; i < 200; ++i) // a full queue (max_dgram_qlen) waits for the prober to drain it
      REQUIRE(eventually([&] { return reporter.success("dead"); }, 10s));
    CHECK(eventually([&] { return state(seg, "dead")->successes == before.successes + 200; }, 10s));
    CHECK(state(seg, "dead")->failures == before.failures);
    CHECK(prober.child->err().find("flood") == std::string::npos);
  }

  SUBCASE("not allowed: refused, the table unchanged, one log line a second") {
    SegmentName seg("ctl");
    Prober prober(seg, "[control]\nmode = \"0666\"\n");
    REQUIRE(prober.ready(seg));
    const auto before = *state(seg, "dead");
    // Sending works (mode 0666 opens the socket to every local user); the
    // prober refuses what it reads.
    CHECK(as_user(uid, [&] {
            Reporter reporter(seg.str());
            bool sent = true;
            for (int i = 0; i < 5; ++i)
              sent = reporter.failure("dead", "http 503") && sent;
            return sent ? 0 : 1;
          }) == 0);
    const std::string refusal = "<4>control: refused a request from pid ";
    REQUIRE(prober.child->wait_for_err(refusal, 10s));
    CHECK(prober.child->err().find(" uid " + std::to_string(uid) + " gid ") != std::string::npos);
    std::this_thread::sleep_for(200ms);
    CHECK(count(prober.child->err(), refusal) == 1); // five refusals, one line
    const auto after = *state(seg, "dead");
    CHECK(after.failures == before.failures);
    CHECK(after.last_error == before.last_error);

    // A second later the next refusal is logged, with the count it held back.
    std::this_thread::sleep_for(1s);
    CHECK(as_user(uid, [&] { return Reporter(seg.str()).success("dead") ? 0 : 1; }) == 0);
    CHECK(prober.child->wait_for_err("; 4 more from this uid not logged", 10s));
    CHECK(count(prober.child->err(), refusal) == 2);
    CHECK(state(seg, "dead")->consecutive_failures == before.consecutive_failures);

    // A sender with an address is told why.
    CHECK(as_user(uid, [&] {
            try {
              request(seg.str(), "record dead success", 10s);
            } catch (const Error& e) {
              return e.code() == Errc::permission_denied &&
                             std::string(e.what()).find("may not use the control socket of "
                                                        "healthprobe (pid ") != std::string::npos
                         ? 0
                         : 2;
            }
            return 1;
          }) == 0);
  }

  SUBCASE("report_uids: record applied, set and reset refused, no new names") {
    SegmentName seg("ctl");
    Prober prober(seg, "[control]\ngroup = " + std::to_string(uid) + "\nreport_uids = [" +
                           std::to_string(uid) + "]\n");
    REQUIRE(prober.ready(seg));
    CHECK(as_user(uid, [&] {
            Reporter reporter(seg.str());
            return reporter.success("dead") ? 0 : 1;
          }) == 0);
    REQUIRE(eventually([&] { return state(seg, "dead")->healthy; }, 10s));
    CHECK(as_user(uid, [&] {
            Reporter reporter(seg.str());
            return reporter.failure("dead", "upstream said 502") &&
                           reporter.failure("dead", "upstream said 502")
                       ? 0
                       : 1;
          }) == 0);
    REQUIRE(eventually([&] { return !state(seg, "dead")->healthy; }, 10s));
    CHECK(state(seg, "dead")->last_error == "upstream said 502");
    CHECK(prober.child->wait_for_err("<4>provider dead marked unhealthy after 2 consecutive "
                                     "failures (upstream said 502); backoff 60s; reported by pid ",
                                     10s));
    CHECK(prober.child->err().find("reported by pid") != std::string::npos);
    CHECK(prober.child->err().find(" uid " + std::to_string(uid)) != std::string::npos);

    // Admin requests and unknown names are refused with a reason.
    CHECK(as_user(uid, [&] {
            int rc = 0;
            try {
              request(seg.str(), "set dead up", 10s);
              rc |= 1;
            } catch (const Error& e) {
              if (e.code() != Errc::permission_denied) rc |= 2;
            }
            try {
              request(seg.str(), "reset", 10s);
              rc |= 4;
            } catch (const Error& e) {
              if (e.code() != Errc::permission_denied) rc |= 8;
            }
            try {
              request(seg.str(), "record made-up success", 10s);
              rc |= 16;
            } catch (const Error& e) {
              if (e.code() != Errc::unknown_provider) rc |= 32;
            }
            return rc;
          }) == 0);
    CHECK(state(seg, "dead")->override_mode == Override::automatic);
    CHECK_FALSE(state(seg, "made-up"));
    CHECK(prober.child->wait_for_err("control: refused 'set' from pid ", 10s));
  }

  SUBCASE("allow_gid: a sender whose gid is listed may administer") {
    SegmentName seg("ctl");
    Prober prober(seg, "[control]\ngroup = " + std::to_string(uid) +
                           "\nallow_gid = " + std::to_string(uid) + "\n");
    REQUIRE(prober.ready(seg));
    CHECK(as_user(uid, [&] {
            return request(seg.str(), "set dead up", 10s).starts_with("dead: forced up") ? 0 : 1;
          }) == 0);
    CHECK(state(seg, "dead")->override_mode == Override::forced_up);

    // healthctl as that user cannot open the root-owned table for writing
    // (permission denied), but a writer is attached, so it asks the prober,
    // which accepts the group.
    CHECK(as_user(uid, [&] {
            const Run r = healthctl({"set", seg, "dead", "down"});
            return r.status == 0 && r.out.starts_with("dead: forced down") ? 0 : 1;
          }) == 0);
    CHECK(state(seg, "dead")->override_mode == Override::forced_down);
  }

  SUBCASE("healthctl as a user the prober does not allow: exit 7, saying what to change") {
    SegmentName seg("ctl");
    Prober prober(seg, "[control]\nmode = \"0666\"\n");
    REQUIRE(prober.ready(seg));
    CHECK(as_user(uid, [&] {
            const Run r = healthctl({"set", seg, "dead", "down"});
            const bool told =
                r.err.find("may not use the control socket of healthprobe (pid " +
                           std::to_string(prober.child->pid()) +
                           "): add its uid to [control] allow_uids") != std::string::npos;
            return r.status == 7 && told ? 0 : 1;
          }) == 0);
    CHECK(state(seg, "dead")->override_mode == Override::automatic);
  }
}

TEST_CASE("hostile datagrams get an error or nothing; the prober keeps probing") {
  SegmentName seg("ctl");
  Prober prober(seg, "", "200ms");
  REQUIRE(prober.ready(seg));

  auto error_reply = [&](const std::string& bytes, const std::string& prefix) {
    CAPTURE(bytes.substr(0, 40));
    const std::string reply = raw_request(seg, bytes);
    CAPTURE(reply);
    CHECK(reply.starts_with(prefix));
  };
  error_reply("garbage", "error invalid_argument unknown request 'garbage'");
  error_reply("", "error invalid_argument empty request");
  error_reply(std::string(4096, 'x'), "error invalid_argument request longer than 512 bytes");
  error_reply(std::string(513, 'x'), "error invalid_argument request longer than 512 bytes");
  error_reply("record dead failure \xff\xfe\xfd", "error invalid_argument request is not one line");
  error_reply("set dead down\nreset", "error invalid_argument request is not one line");
  error_reply(std::string("set dead\0 down", 14), "error invalid_argument");
  error_reply("frobnicate dead", "error invalid_argument unknown request 'frobnicate'");
  error_reply("record bad\\name failure",
              "error invalid_name provider name 'bad\\name' may contain only");
  error_reply("record " + std::string(64, 'p') + " success", "error invalid_name");
  error_reply("set dead sideways", "error invalid_argument set: mode 'sideways'");
  error_reply("set dead", "error invalid_argument usage: set PROVIDER down|up|auto");
  error_reply("record dead maybe", "error invalid_argument record: outcome 'maybe'");
  error_reply("record  dead success", "error invalid_name provider name is empty");
  error_reply("record dead success extra", "error invalid_argument");
  // A trailing newline is allowed: `echo ... | socat` sends one.
  CHECK(raw_request(seg, "record dead success\n") == "ok dead: healthy (success recorded)");

  // Fire-and-forget garbage, faster than the queue drains: no reply, no harm.
  {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const std::string address = control_address(seg.str());
    sockaddr_un to{};
    to.sun_family = AF_UNIX;
    std::memcpy(to.sun_path, address.data(), address.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    std::string junk;
    for (int i = 0; i < 500; ++i) {
      junk.assign(static_cast<std::size_t>(i * 7 % 600), static_cast<char>(i * 31));
      ::sendto(fd, junk.data(), junk.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), len);
    }
    ::close(fd);
  }

  // Still alive, still answering, still probing.
  CHECK(prober.child->running());
  CHECK(raw_request(seg, "set dead down").starts_with("ok dead: forced down"));
  const auto checked = state(seg, "dead")->last_check_unix_ns;
  CHECK(eventually([&] { return state(seg, "dead")->last_check_unix_ns > checked; }, 10s));
  CHECK(prober.child->running());
  prober.child->signal(SIGTERM);
  CHECK(prober.child->wait(10s) == 0);
}

TEST_CASE(
    "no prober: request() is writer_busy within its timeout; Reporter returns false at once") {
  SegmentName seg("ctl");

  // Nothing bound: refused at once, not after the 30 s it may wait.
  auto t0 = Clock::now();
  try {
    request(seg.str(), "set x down", 30s);
    FAIL("request() without a prober returned");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::writer_busy);
    CHECK(std::string(e.what()).find("no prober is listening on " + control_address(seg.str())) !=
          std::string::npos);
    CHECK(std::string(e.what()).find("nothing is bound to it") != std::string::npos);
  }
  CHECK(Clock::now() - t0 < 10s);

  // Reporter never waits: two thousand calls with nobody listening take
  // milliseconds; a wait of even 5 ms per call would add up to 10 s.
  Reporter reporter(seg.str());
  t0 = Clock::now();
  bool any = false;
  for (int i = 0; i < 1000; ++i) {
    any = reporter.failure("groq", "http 503") || any;
    any = reporter.success("groq") || any;
  }
  CHECK_FALSE(any);
  CHECK(Clock::now() - t0 < 10s);

  // Bound by something that never answers (or never reads): the timeout
  // holds, and a full queue makes Reporter return false instead of blocking.
  // (The home must exist for anything to bind there; the writer has no
  // control socket of its own.)
  Writer held = Writer::create(seg.str());
  const int mute = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(mute >= 0);
  const std::string address = control_address(seg.str());
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, address.data(), address.size());
  REQUIRE(::bind(mute, reinterpret_cast<sockaddr*>(&sa),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size())) == 0);
  t0 = Clock::now();
  CHECK(error_of([&] { request(seg.str(), "set x down", 300ms); }) == Errc::writer_busy);
  const auto waited = Clock::now() - t0;
  CHECK(waited >= 290ms);
  // At its 300ms, not some longer default, and not never: the socket would
  // stay silent until the test ends. Load delays the wake-up, not by seconds.
  CHECK(waited < 5s);

  t0 = Clock::now();
  int sent = 0;
  while (reporter.failure("groq", "http 503") && sent < 100000)
    ++sent;
  CHECK(sent < 100000); // the queue filled, and the call said so
  CHECK(Clock::now() - t0 < 10s);
  ::close(mute);

  // Invalid names never reach the socket.
  CHECK_FALSE(reporter.success("bad name"));
  CHECK(error_of([&] { Reporter("../x"); }) == Errc::invalid_name);
  CHECK(error_of([&] { request(seg.str(), std::string(513, 'x'), 100ms); }) ==
        Errc::invalid_argument);
}

TEST_CASE("healthctl against a writer that does not answer: exit 11, saying so") {
  SegmentName seg("ctl");
  Writer held = Writer::create(seg.str());
  const auto t0 = Clock::now();
  const Run r = healthctl({"set", seg, "groq", "down", "--create"});
  CHECK(r.status == 11);
  CHECK(r.err.find("already has a writer (pid " + std::to_string(::getpid()) + ")") !=
        std::string::npos);
  CHECK(r.err.find("; the writer did not answer its control socket either: no prober is "
                   "listening on " +
                   control_address(seg.str())) != std::string::npos);
  // Refused at once (nothing is bound), not after waiting for an answer.
  CHECK(r.err.find("(nothing is bound to it") != std::string::npos);
  CHECK(Clock::now() - t0 < 10s);
  CHECK_FALSE(held.table().get_state("groq"));
}

TEST_CASE("[control] enabled = false: no socket, healthctl gets writer_busy") {
  SegmentName seg("ctl");
  Prober prober(seg, "[control]\nenabled = false\n");
  REQUIRE(prober.ready(seg));
  CHECK(prober.child->err().find("control socket") == std::string::npos);
  const Run r = healthctl({"record", seg, "dead", "success"});
  CHECK(r.status == 11);
  CHECK(r.err.find("did not answer its control socket") != std::string::npos);
}

TEST_CASE("SIGHUP applies [control]: the socket closes and opens again, new lists at once") {
  SegmentName seg("ctl");
  Prober prober(seg);
  REQUIRE(prober.ready(seg));
  CHECK(healthctl({"set", seg, "dead", "down"}).status == 0);

  prober.write("[control]\nenabled = false\n");
  prober.child->signal(SIGHUP);
  REQUIRE(prober.child->wait_for_err("<6>control socket " + control_address(seg.str()) +
                                         " closed ([control] enabled = false)",
                                     10s));
  CHECK(healthctl({"set", seg, "dead", "up"}).status == 11);
  CHECK(state(seg, "dead")->override_mode == Override::forced_down);

  // Back on, but root is no longer an admin: only the listed uid is.
  prober.write("[control]\nallow_uids = [12345]\n");
  prober.child->signal(SIGHUP);
  REQUIRE(prober.child->wait_for_err("<6>control socket " + control_address(seg.str()) + " opened",
                                     10s));
  const Run r = healthctl({"set", seg, "dead", "up"});
  if (::getuid() != 12345) {
    CHECK(r.status == 7);
    CHECK(state(seg, "dead")->override_mode == Override::forced_down);
  }
  CHECK(prober.child->running());
}

TEST_CASE("the control socket cannot be squatted: nobody cannot bind or create in the home") {
  if (::geteuid() != 0) {
    MESSAGE("needs root to act as nobody");
    return;
  }
  const std::uint32_t uid = nobody();
  SegmentName seg("ctl");
  { Writer::create(seg.str()); } // the home exists, root's, 0755; no prober yet
  const std::string address = control_address(seg.str());
  CHECK(as_user(uid, [&] {
          const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
          sockaddr_un sa{};
          sa.sun_family = AF_UNIX;
          std::memcpy(sa.sun_path, address.data(), address.size());
          const int rc =
              ::bind(fd, reinterpret_cast<sockaddr*>(&sa),
                     static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1));
          if (rc == 0 || errno != EACCES) return 1;
          const int file = ::open(address.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
          if (file >= 0 || errno != EACCES) return 2;
          if (::symlink("/tmp", address.c_str()) == 0 || errno != EACCES) return 3;
          return 0;
        }) == 0);

  // A stale socket of ours (a prober that died) is replaced; the prober
  // starts, and its socket answers.
  {
    const int stale = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, address.data(), address.size());
    REQUIRE(::bind(stale, reinterpret_cast<sockaddr*>(&sa),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1)) ==
            0);
    ::close(stale);
  }
  {
    Prober prober(seg);
    REQUIRE(prober.ready(seg));
    CHECK(raw_request(seg, "set dead down").starts_with("ok dead: forced down"));
    prober.child->signal(SIGTERM);
    CHECK(prober.child->wait(5s) == 0);
  }
  // It removed its socket on the way out.
  struct stat st {};
  CHECK(::lstat(address.c_str(), &st) != 0);

  // Anything but a socket of ours is left alone: the prober refuses to start.
  REQUIRE(::mkdir(address.c_str(), 0700) == 0);
  Prober blocked(seg);
  CHECK(blocked.child->wait(10s) == 1);
  CHECK(blocked.child->err().find("<3>control socket " + address +
                                  ": something else is there (not a socket)") != std::string::npos);
  ::rmdir(address.c_str());
  // It let go of the writer lock on the way out.
  CHECK_NOTHROW(Writer::open(seg.str()));
}

namespace {

/// A process bound to `seg`'s control address as uid `id` that answers one
/// request with `reply` and exits: a prober, or a squatter. With `real_uid`,
/// its real uid is that instead, and it attaches SCM_CREDENTIALS naming its
/// effective uid `id`, as healthprobe does. Returns its pid once it is
/// bound. Needs root for another uid.
pid_t fake_prober(const std::string& seg, std::uint32_t id, const std::string& reply,
                  std::optional<std::uint32_t> real_uid = std::nullopt) {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    ::alarm(10);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(id, id, id) != 0 ||
        ::setresuid(real_uid.value_or(id), id, id) != 0)
      _exit(100);
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const std::string address = control_address(seg);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, address.data(), address.size());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1)) != 0)
      _exit(101);
    ::chmod(address.c_str(), 0666);
    if (::write(ready[1], "r", 1) != 1) _exit(102);
    char buf[600];
    sockaddr_un from{};
    socklen_t from_len = sizeof from;
    if (::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len) <= 0)
      _exit(103);
    // With real_uid: say who we act as, like healthprobe's replies; else the
    // kernel names our real uid.
    const auto to = reinterpret_cast<const sockaddr*>(&from);
    const ssize_t sent = real_uid ? detail::send_as_self(fd, from, from_len, reply, 0)
                                  : ::sendto(fd, reply.data(), reply.size(), 0, to, from_len);
    if (sent != static_cast<ssize_t>(reply.size())) _exit(104);
    _exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1); // bound (or it died: read returns 0)
  ::close(ready[0]);
  return pid;
}

int reap(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

} // namespace

TEST_CASE("a squatter on the control address is not believed: replies must come from the owner") {
  if (::geteuid() != 0) {
    MESSAGE("needs root to bind the address as another uid");
    return;
  }
  const std::uint32_t uid = nobody();
  REQUIRE(uid != 0);
  SegmentName seg("ctl");
  Writer held = Writer::create(seg.str()); // owned by root, writer lock taken
  REQUIRE(held.table().info().owner_uid == 0);

  SUBCASE("request(): the same reply from the owner's uid is believed") {
    const pid_t prober = fake_prober(seg.str(), 0, "ok groq: forced down");
    CHECK(request(seg.str(), "set groq down", 10s) == "groq: forced down");
    CHECK(reap(prober) == 0);
  }

  SUBCASE("request(): a prober whose effective uid is the owner's, and says so, is believed") {
    // Real uid nobody, effective uid root (the owner): the kernel's default
    // credentials would name the real uid; healthprobe attaches its
    // effective one, and the kernel accepts that because the sender holds it.
    const pid_t prober = fake_prober(seg.str(), 0, "ok groq: forced down", uid);
    CHECK(request(seg.str(), "set groq down", 10s) == "groq: forced down");
    CHECK(reap(prober) == 0);
  }

  SUBCASE("request(): a caller that may not read the table still gets the prober's answer") {
    // The owner is taken from the object's inode, which needs no read
    // permission; the caller is one a prober's allow list could admit.
    REQUIRE(::chmod(seg.path().c_str(), 0600) == 0);
    const pid_t prober = fake_prober(seg.str(), 0, "ok groq: forced down");
    CHECK(as_user(uid, [&] {
            return request(seg.str(), "set groq down", 10s) == "groq: forced down" ? 0 : 1;
          }) == 0);
    CHECK(reap(prober) == 0);
  }

  SUBCASE("request(): an answer from anyone but the home's owner is not believed, root too") {
    // Nobody else can bind in a home (the prober tests show it); root can,
    // in a home made for another user, and is still not that table's prober.
    SegmentName theirs("ctl-theirs");
    const std::string home = theirs.home();
    REQUIRE(::mkdir(home.c_str(), 0755) == 0);
    REQUIRE(::chown(home.c_str(), uid, uid) == 0);
    const pid_t prober = fake_prober(theirs.str(), 0, "ok groq: forced down");
    try {
      request(theirs.str(), "set groq down", 10s);
      FAIL("request() believed a reply from uid 0 for a table uid " << uid << " owns");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::permission_denied);
      CHECK(std::string(e.what()).find("that is not this table's prober") != std::string::npos);
    }
    CHECK(reap(prober) == 0);
    ::unlink(control_address(theirs.str()).c_str());
    ::rmdir(home.c_str());
  }

  CHECK_FALSE(held.table().get_state("groq")); // nobody wrote anything
}

TEST_CASE("control_address: the socket file in the table's home") {
  CHECK(control_address("gateway") == run_dir() + "/gateway/control");
  CHECK(control_address("gateway") == control_path("gateway"));
  // A name whose path would not fit in sun_path is refused, not cut.
  CHECK(error_of([] { (void)control_address(std::string(120, 'b')); }) == Errc::invalid_name);
  CHECK(error_of([] { (void)control_address("a/b"); }) == Errc::invalid_name);
}

TEST_CASE("parse_request: the protocol's lines") {
  using prober::parse_request;
  using prober::Request;
  auto r = parse_request("record groq failure http 503:  upstream  down");
  CHECK(r.verb == Request::Verb::record);
  CHECK(r.providers == std::vector<std::string>{"groq"});
  CHECK_FALSE(r.success);
  CHECK(r.reason == "http 503:  upstream  down");
  r = parse_request("record groq failure");
  CHECK(r.reason.empty());
  CHECK(parse_request("record groq success").success);
  CHECK(parse_request("set groq down").mode == Override::forced_down);
  CHECK(parse_request("set groq up").mode == Override::forced_up);
  CHECK(parse_request("set groq auto").mode == Override::automatic);
  CHECK(parse_request("reset").providers.empty());
  CHECK(parse_request("reset a b").providers == std::vector<std::string>{"a", "b"});
  CHECK(parse_request("reset a b").scope == ResetScope::state);
  r = parse_request("reset scope=overrides a");
  CHECK(r.scope == ResetScope::state_and_overrides);
  CHECK(r.providers == std::vector<std::string>{"a"});
  CHECK(parse_request("reset scope=overrides").providers.empty());
  CHECK(error_of([] { parse_request("reset scope=all"); }) == Errc::invalid_argument);
  CHECK(error_of([] { parse_request("reset a scope=overrides"); }) == Errc::invalid_name);
  CHECK(error_of([] { parse_request("reset a  b"); }) == Errc::invalid_name);
  CHECK(error_of([] { parse_request("RESET"); }) == Errc::invalid_argument);
  CHECK(error_of([] { parse_request(" reset"); }) == Errc::invalid_argument);
}

TEST_CASE("parse_request: record failure's class= and retry= come before the reason") {
  using prober::parse_request;
  auto r = parse_request("record groq failure class=rate_limited retry=30s http 429");
  CHECK(r.failure_class == FailureClass::rate_limited);
  CHECK(r.retry_after == 30s);
  CHECK(r.reason == "http 429");
  r = parse_request("record groq failure retry=1500ms class=timeout");
  CHECK(r.failure_class == FailureClass::timeout);
  CHECK(r.retry_after == 1500ms);
  CHECK(r.reason.empty());
  r = parse_request("record groq failure retry=0");
  CHECK(r.retry_after == 0s);
  CHECK(r.failure_class == FailureClass::other);
  // Without keys: the line as it always was.
  r = parse_request("record groq failure http 503");
  CHECK(r.failure_class == FailureClass::other);
  CHECK_FALSE(r.retry_after);
  CHECK(r.reason == "http 503");
  // Other words with '=' are reasons; keys after the reason are part of it.
  CHECK(parse_request("record groq failure status=503 upstream").reason == "status=503 upstream");
  r = parse_request("record groq failure http 503 class=server");
  CHECK(r.reason == "http 503 class=server");
  CHECK(r.failure_class == FailureClass::other);
  // reason= carries a reason that would look like a key.
  r = parse_request("record groq failure class=client reason=retry=5 exceeded");
  CHECK(r.failure_class == FailureClass::client);
  CHECK_FALSE(r.retry_after);
  CHECK(r.reason == "retry=5 exceeded");
  CHECK(parse_request("record groq failure reason=").reason.empty());

  const auto message = [](std::string_view line) {
    try {
      parse_request(line);
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_argument);
      return std::string(e.what());
    }
    FAIL("accepted: " << line);
    return std::string();
  };
  CHECK(message("record groq failure class=bogus http 500") ==
        "record: class= 'bogus' is not a failure class; use one of timeout, connect, server, "
        "rate_limited, auth, client, other");
  CHECK(message("record groq failure class=none").find("a success is recorded as success") !=
        std::string::npos);
  CHECK(message("record groq failure class=").starts_with("record: class= '' is not"));
  CHECK(message("record groq failure retry=soon").starts_with("record: retry= 'soon'"));
  CHECK(message("record groq failure retry=-5s").starts_with("record: retry= '-5s'"));
  CHECK(message("record groq failure retry=").starts_with("record: retry= ''"));
  CHECK(message("record groq failure class=server class=timeout").starts_with(
      "record: class= given twice"));
  CHECK(message("record groq failure retry=1s retry=2s").starts_with("record: retry= given twice"));
  CHECK(message("record groq success class=server") == "record PROVIDER success takes no reason");
}

TEST_CASE("failure_request: the line Reporter sends, which parse_request reads back") {
  using prober::parse_request;
  CHECK(failure_request("groq", "http 503") == "record groq failure http 503");
  CHECK(failure_request("groq", "") == "record groq failure");
  CHECK(failure_request("groq", "http 429", FailureClass::rate_limited, 30s) ==
        "record groq failure class=rate_limited retry=30s http 429");
  // Milliseconds rounded up, never less than the hint; negative is zero;
  // nothing longer than any max_hint.
  CHECK(failure_request("g", "", FailureClass::other, 1234567us) == "record g failure retry=1235ms");
  CHECK(failure_request("g", "", FailureClass::other, -5s) == "record g failure retry=0s");
  CHECK(failure_request("g", "", FailureClass::other, std::chrono::hours(24 * 400)) ==
        "record g failure retry=31536000s");
  CHECK(failure_request("g", "class=x", FailureClass::client) ==
        "record g failure class=client reason=class=x");
  CHECK(failure_request("g", "bad\nline") == "record g failure bad line");
  for (const auto& [cls, reason, hint] :
       std::vector<std::tuple<FailureClass, std::string, std::optional<std::chrono::nanoseconds>>>{
           {FailureClass::server, "http 502", 2min},
           {FailureClass::auth, "retry=never", std::nullopt},
           {FailureClass::other, "reason=x y", 250ms},
           {FailureClass::timeout, "", std::nullopt}}) {
    const auto r = parse_request(failure_request("groq", reason, cls, hint));
    CHECK(r.failure_class == cls);
    CHECK(r.retry_after == hint);
    CHECK(r.reason == reason);
  }
  CHECK(error_of([] { (void)failure_request("groq", "", FailureClass::none); }) ==
        Errc::invalid_argument);
  CHECK(error_of([] { (void)failure_request("groq", "", static_cast<FailureClass>(9)); }) ==
        Errc::invalid_argument);
  CHECK(error_of([] { (void)failure_request("no spaces", ""); }) == Errc::invalid_name);
  // Reporter sends nothing for a failure without a class.
  SegmentName seg("ctl-report");
  Reporter reporter(seg.str());
  CHECK_FALSE(reporter.failure("groq", "x", FailureClass::none));
}

TEST_CASE("source_of: a tool that may administer is admin, every Reporter is a report") {
  prober::ControlConfig cfg;
  cfg.allow_uids = {0};
  cfg.report_uids = {1000};
  prober::Sender tool{true, 42, 0, 0, true};
  CHECK(prober::source_of(cfg, tool) == Source::admin);
  prober::Sender worker{true, 43, 0, 0, false}; // an admin's uid, but a Reporter
  CHECK(prober::source_of(cfg, worker) == Source::report);
  prober::Sender reporter_tool{true, 44, 1000, 1000, true}; // healthctl as a reporter
  CHECK(prober::source_of(cfg, reporter_tool) == Source::report);
}

TEST_CASE("classes and retry hints end to end: healthctl and a Reporter through the prober") {
  SegmentName seg("ctl-hints");
  Prober prober(seg);
  REQUIRE(prober.ready(seg));

  // healthctl: the reply in the words of the direct path; recorded as admin.
  Run r = healthctl({"record", seg, "groq", "failure", "--class", "rate_limited",
                     "--retry-after", "30", "--reason", "http 429"});
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  CHECK(r.out == "groq: rate limited (cooldown); unavailable for 30s\n");
  auto s = state(seg, "groq");
  REQUIRE(s);
  CHECK(s->last_class == FailureClass::rate_limited);
  CHECK(s->last_source == Source::admin);
  CHECK(s->healthy);
  CHECK_FALSE(Table::open(seg.str()).is_healthy("groq"));
  r = healthctl({"record", seg, "groq", "failure", "--class", "client"});
  CHECK(r.status == 0);
  CHECK(r.out.starts_with("groq: client error (client, not counted); still unavailable for "));
  // The socket refuses an unknown class with the same message healthctl gives.
  CHECK(raw_request(seg, "record groq failure class=bogus") ==
        "error invalid_argument record: class= 'bogus' is not a failure class; use one of "
        "timeout, connect, server, rate_limited, auth, client, other");
  CHECK(raw_request(seg, "record groq failure retry=soon").starts_with(
      "error invalid_argument record: retry= 'soon' is not a duration"));

  // A worker's 429 with Retry-After: 30: unavailable until about now + 30 s,
  // not tripped, recorded as a report.
  Reporter reporter(seg.str());
  const std::int64_t before = Instant::now().mono_ns;
  REQUIRE(reporter.failure("mistral", "http 429", FailureClass::rate_limited, 30s));
  REQUIRE(eventually(
      [&] {
        const auto m = state(seg, "mistral");
        return m && m->failures == 1;
      },
      10s));
  const std::int64_t after = Instant::now().mono_ns;
  s = state(seg, "mistral");
  const std::int64_t until = s->unhealthy_until_mono_ns;
  CHECK(until >= before + 30'000'000'000);
  CHECK(until <= after + 30'000'000'000);
  CHECK(s->healthy);
  CHECK(s->consecutive_failures == 0);
  CHECK(s->last_class == FailureClass::rate_limited);
  CHECK(s->last_source == Source::report);
  CHECK(s->last_error == "http 429");
  CHECK_FALSE(Table::open(seg.str()).is_healthy("mistral"));
  CHECK(prober.child->wait_for_err("<5>provider mistral cooling down (http 429, class "
                                   "rate_limited); retry hint 30s; reported by pid ",
                                   10s));

  // A later, shorter hint is applied but does not shorten the deadline.
  REQUIRE(reporter.failure("mistral", "http 429 again", FailureClass::rate_limited, 5s));
  REQUIRE(eventually([&] { return state(seg, "mistral")->failures == 2; }, 10s));
  s = state(seg, "mistral");
  CHECK(s->last_error == "http 429 again");
  CHECK(s->unhealthy_until_mono_ns == until);
  CHECK_FALSE(Table::open(seg.str()).is_healthy("mistral"));

  // Client errors never trip, however many.
  for (int i = 0; i < 5; ++i)
    REQUIRE(reporter.failure("ollama", "http 400", FailureClass::client));
  REQUIRE(eventually(
      [&] {
        const auto o = state(seg, "ollama");
        return o && o->failures == 5;
      },
      10s));
  s = state(seg, "ollama");
  CHECK(s->healthy);
  CHECK(s->consecutive_failures == 0);
  CHECK(s->unhealthy_until_mono_ns == 0);
  CHECK(Table::open(seg.str()).is_healthy("ollama"));

  // Counted classes still trip, as two reports of class server.
  REQUIRE(reporter.failure("cohere", "http 502", FailureClass::server));
  REQUIRE(reporter.failure("cohere", "http 502", FailureClass::server));
  REQUIRE(eventually([&] {
    const auto c = state(seg, "cohere");
    return c && !c->healthy;
  }, 10s));
  CHECK(state(seg, "cohere")->consecutive_failures == 2);
  CHECK(prober.child->wait_for_err("<4>provider cohere marked unhealthy after 2 consecutive "
                                   "failures (http 502, class server); backoff 60s; reported by "
                                   "pid ",
                                   10s));
}

TEST_CASE("[control] in the config: defaults, names, and errors with file, line and key") {
  using prober::parse_config;
  const std::string base = "segment = \"gw\"\n[[provider]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\n";
  auto cfg = parse_config(base, "p.toml");
  CHECK(cfg.control.enabled);
  CHECK(cfg.control.allow_uids == std::vector<std::uint32_t>{::getuid(), 0});
  CHECK_FALSE(cfg.control.allow_gid);
  CHECK(cfg.control.report_uids.empty());

  cfg = parse_config("segment = \"gw\"\n[control]\nenabled = false\nallow_uids = [0, \"nobody\"]\n"
                     "allow_gid = 4\nreport_uids = [1000]\nreport_gid = 0\n"
                     "[[provider]]\nname = \"a\"\ntcp = \"127.0.0.1:1\"\n",
                     "p.toml");
  CHECK_FALSE(cfg.control.enabled);
  CHECK(cfg.control.allow_uids == std::vector<std::uint32_t>{0, nobody()});
  CHECK(cfg.control.allow_gid == 4u);
  CHECK(cfg.control.report_uids == std::vector<std::uint32_t>{1000});
  CHECK(cfg.control.report_gid == 0u);

  auto error = [](const std::string& text) {
    try {
      parse_config(text, "p.toml");
    } catch (const prober::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error("segment = \"gw\"\n[control]\nallow_uid = [0]\n") ==
        "p.toml:3: control.allow_uid: unknown key (expected one of: enabled, group, mode, "
        "allow_uids, allow_gid, report_uids, report_gid)");
  CHECK(error("segment = \"gw\"\n[control]\nallow_uids = 0\n") ==
        "p.toml:3: control.allow_uids: must be a list of uids or user names, e.g. [0, "
        "\"gateway\"]");
  CHECK(error("segment = \"gw\"\n[control]\nreport_uids = [\"no-such-user-here\"]\n") ==
        "p.toml:3: control.report_uids: no user \"no-such-user-here\"");
  CHECK(error("segment = \"gw\"\n[control]\nallow_gid = \"no-such-group-here\"\n") ==
        "p.toml:3: control.allow_gid: no group \"no-such-group-here\"");
  CHECK(error("segment = \"gw\"\n[control]\nenabled = \"yes\"\n") ==
        "p.toml:3: control.enabled: must be true or false");
  CHECK(error("segment = \"gw\"\ncontrol = 1\n") == "p.toml:2: control: must be a table: write "
                                                    "[control]");
}
