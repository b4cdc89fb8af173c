// healthprobe under a stand-in for systemd: NOTIFY_SOCKET names a Unix
// datagram socket this test binds, and the test reads what the prober
// tells it (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1), with
// the sender's pid as systemd's NotifyAccess=main checks it.
#include "servers.hpp"

#include <healthtable/table.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <vector>

using namespace healthtable;
using namespace healthtable::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Message {
  std::string text; ///< "READY=1\nSTATUS=...", as sent
  pid_t pid = 0;    ///< the sender, from its credentials
  bool has(const std::string& field) const {
    return ("\n" + text + "\n").find("\n" + field + "\n") != std::string::npos;
  }
  std::optional<std::string> status() const {
    const auto at = ("\n" + text).find("\nSTATUS=");
    if (at == std::string::npos) return std::nullopt;
    const auto end = text.find('\n', at + 7);
    return text.substr(at + 7, end == std::string::npos ? std::string::npos : end - at - 7);
  }
};

/// The service manager's end of NOTIFY_SOCKET: a datagram socket that asks
/// for each sender's credentials, as systemd's does.
class NotifySocket {
public:
  explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    const int one = 1;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
      throw std::runtime_error("bind " + path.string() + ": " + std::strerror(errno));
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  const std::filesystem::path& path() const { return path_; }

  /// The next message, or nothing within `timeout`.
  std::optional<Message> next(std::chrono::milliseconds timeout) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buf[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_, &msg, 0);
    if (n < 0) return std::nullopt;
    Message m{std::string(buf, static_cast<std::size_t>(n)), 0};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        m.pid = cred.pid;
      }
    return m;
  }

  /// Reads until a message has `field` or `timeout` passes; every message
  /// read goes to `seen`.
  std::optional<Message> until(const std::string& field, std::chrono::milliseconds timeout,
                               std::vector<Message>& seen) {
    const auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      auto m = next(std::max(left, 1ms));
      if (!m) continue;
      seen.push_back(*m);
      if (m->has(field)) return m;
    }
    return std::nullopt;
  }

  /// Everything already queued.
  std::vector<Message> drain() {
    std::vector<Message> out;
    while (auto m = next(0ms))
      out.push_back(*m);
    return out;
  }

private:
  std::filesystem::path path_;
  int fd_ = -1;
};

std::size_t count(const std::vector<Message>& ms, const std::string& field) {
  return static_cast<std::size_t>(
      std::count_if(ms.begin(), ms.end(), [&](const Message& m) { return m.has(field); }));
}

/// 'T' once the kernel has stopped the process (SIGSTOP delivered).
char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

struct Run {
  TempDir dir;
  NotifySocket notify{dir / "notify"};
  std::unique_ptr<Child> child;

  /// Starts healthprobe on `config` with NOTIFY_SOCKET set and, unless
  /// `watchdog_usec` is empty, WATCHDOG_USEC (and WATCHDOG_PID when given).
  void start(const std::string& config, const std::string& watchdog_usec,
             const std::string& watchdog_pid = "") {
    const auto path = dir.write("healthprobe.toml", config);
    std::map<std::string, std::string> env{{"NOTIFY_SOCKET", notify.path().string()}};
    if (!watchdog_usec.empty()) env["WATCHDOG_USEC"] = watchdog_usec;
    if (!watchdog_pid.empty()) env["WATCHDOG_PID"] = watchdog_pid;
    child = std::make_unique<Child>(
        std::vector<std::string>{HEALTHPROBE_BIN, "--config", path.string()}, dir.path(), env);
  }
};

std::string config(const std::string& segment, const std::string& providers,
                   const std::string& timeout = "500ms") {
  return "segment = \"" + segment + "\"\ninterval = \"1s\"\ntimeout = \"" + timeout + "\"\n" +
         providers;
}

std::string http(const std::string& name, const std::string& url) {
  return "[[provider]]\nname = \"" + name + "\"\nhttp = \"" + url + "\"\n";
}

std::string tcp(const std::string& name, int port) {
  return "[[provider]]\nname = \"" + name + "\"\ntcp = \"127.0.0.1:" + std::to_string(port) +
         "\"\n";
}

} // namespace

TEST_CASE("READY=1 only once the first results are in the table, then STATUS= and WATCHDOG=1") {
  SegmentName seg("notify");
  HttpServer web;
  Run run;
  run.start(config(seg, http("web", web.url("/")) + tcp("dead", refused_port())), "2000000");
  const pid_t pid = run.child->pid();

  std::vector<Message> seen;
  const auto ready = run.notify.until("READY=1", 20s, seen);
  REQUIRE_MESSAGE(ready, run.child->err());
  // Checked the moment READY=1 is read: both providers already have a result.
  {
    Table table = Table::open(seg.str());
    const auto web_state = table.get_state("web");
    const auto dead_state = table.get_state("dead");
    REQUIRE(web_state);
    REQUIRE(dead_state);
    CHECK(web_state->last_check_unix_ns > 0);
    CHECK(dead_state->last_check_unix_ns > 0);
    CHECK(dead_state->last_error == "connect: connection refused");
  }
  REQUIRE(ready->status());
  CHECK(ready->status()->rfind("2 providers: ", 0) == 0);
  // Nothing but keep-alives before READY=1: no STATUS= about a table not yet probed.
  for (const Message& m : seen)
    if (!m.has("READY=1")) CHECK(m.text == "WATCHDOG=1");

  // The watchdog keeps coming (every second for a 2 s WATCHDOG_USEC), and
  // the status line is updated as it changes (its "last write" age does).
  seen.clear();
  CHECK(eventually(
      [&] {
        if (auto m = run.notify.next(100ms)) seen.push_back(*m);
        return count(seen, "WATCHDOG=1") >= 3 &&
               std::any_of(seen.begin(), seen.end(), [](const Message& m) {
                 return m.status() && m.status()->find("2 providers: ") == 0;
               });
      },
      30s));
  // The dead provider trips on its second failure; the line names it.
  CHECK(eventually(
      [&] {
        if (auto m = run.notify.next(100ms)) seen.push_back(*m);
        return std::any_of(seen.begin(), seen.end(), [](const Message& m) {
          return m.status() && m.status()->find("1 healthy, 1 down (dead)") != std::string::npos;
        });
      },
      30s));
  // Every message came from the prober's own pid (NotifyAccess=main).
  for (const Message& m : seen)
    CHECK(m.pid == pid);

  // A reload is bracketed by RELOADING=1 and READY=1.
  run.child->signal(SIGHUP);
  seen.clear();
  const auto reloading = run.notify.until("RELOADING=1", 20s, seen);
  REQUIRE(reloading);
  CHECK(run.notify.until("READY=1", 20s, seen));

  run.child->signal(SIGTERM);
  CHECK(run.notify.until("STOPPING=1", 20s, seen));
  CHECK(run.child->wait(20s) == 0);
}

TEST_CASE("a SIGSTOPped prober stops feeding the watchdog, so systemd's would fire") {
  SegmentName seg("notify");
  HttpServer web;
  Run run;
  run.start(config(seg, http("web", web.url("/"))), "1000000"); // 1 s: a keep-alive every 0.5 s
  std::vector<Message> seen;
  REQUIRE_MESSAGE(run.notify.until("READY=1", 20s, seen), run.child->err());
  seen.clear();
  CHECK(eventually(
      [&] {
        if (auto m = run.notify.next(100ms)) seen.push_back(*m);
        return count(seen, "WATCHDOG=1") >= 2;
      },
      20s));

  const pid_t pid = run.child->pid();
  run.child->signal(SIGSTOP);
  REQUIRE(eventually([&] { return process_state(pid) == 'T'; }, 10s));
  run.notify.drain(); // sent before it stopped
  // Three whole watchdog intervals in silence: systemd would have killed it.
  std::vector<Message> silent;
  run.notify.until("WATCHDOG=1", 3s, silent);
  CHECK(count(silent, "WATCHDOG=1") == 0);

  run.child->signal(SIGCONT);
  std::vector<Message> after;
  CHECK(run.notify.until("WATCHDOG=1", 20s, after));
  run.child->signal(SIGTERM);
  CHECK(run.child->wait(20s) == 0);
}

TEST_CASE("the watchdog is fed while a tick waits on a probe that never answers") {
  SegmentName seg("notify");
  HttpServer web;
  Run run;
  // The first tick lasts the hanging probe's 4 s timeout; a 1 s watchdog
  // would fire three times over unless the loop feeds it mid-tick.
  run.start(config(seg, http("web", web.url("/")) + http("slow", web.url("/hang")), "1s") +
                "[[provider]]\nname = \"slower\"\nhttp = \"" + web.url("/hang") +
                "\"\ninterval = \"4s\"\ntimeout = \"4s\"\n",
            "1000000");
  std::vector<Message> seen;
  const auto ready = run.notify.until("READY=1", 30s, seen);
  REQUIRE_MESSAGE(ready, run.child->err());
  CHECK(count(seen, "WATCHDOG=1") >= 4);
  const auto slower = Table::open(seg.str()).get_state("slower");
  REQUIRE(slower);
  CHECK(slower->last_error == "probe-timeout (>4s)");
  run.child->signal(SIGTERM);
  CHECK(run.child->wait(20s) == 0);
}

TEST_CASE("WATCHDOG_PID naming another process: READY=1 and STATUS=, but no keep-alives") {
  SegmentName seg("notify");
  HttpServer web;
  Run run;
  run.start(config(seg, http("web", web.url("/"))), "1000000", "1");
  std::vector<Message> seen;
  REQUIRE_MESSAGE(run.notify.until("READY=1", 20s, seen), run.child->err());
  run.notify.until("WATCHDOG=1", 3s, seen);
  CHECK(count(seen, "WATCHDOG=1") == 0);
  run.child->signal(SIGTERM);
  CHECK(run.child->wait(20s) == 0);
}
