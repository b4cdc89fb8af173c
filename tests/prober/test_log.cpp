// The prober's log: whether stderr is the journal ($JOURNAL_STREAM against
// the descriptor's device and inode), the fields a journal entry carries,
// and the "<N>" lines written everywhere else. journald itself is not
// exercised here (no journal runs in the test container); these are the
// decisions and the entry it would be sent.
#include "log.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using namespace healthtable::prober;

namespace {

std::string stream_of(const struct stat& st) {
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

/// Everything that can be read now from the pipe's read end.
std::string drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<std::size_t>(n));
  return out;
}

/// Sets an environment variable for one scope, and puts back what was there.
class EnvGuard {
public:
  EnvGuard(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~EnvGuard() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

private:
  const char* name_;
  std::optional<std::string> old_;
};

} // namespace

TEST_CASE("log: JOURNAL_STREAM names the journal only when it is this descriptor's DEV:INO") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  struct stat st {};
  REQUIRE(::fstat(fds[1], &st) == 0);
  const std::string mine = stream_of(st);

  CHECK(is_journal_stream(mine.c_str(), st));
  CHECK_FALSE(is_journal_stream(nullptr, st)); // not run by systemd
  CHECK_FALSE(is_journal_stream("", st));
  // Inherited from a parent whose stderr was the journal, then redirected.
  const std::string other_ino = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  const std::string other_dev = std::to_string(st.st_dev + 1) + ":" + std::to_string(st.st_ino);
  CHECK_FALSE(is_journal_stream(other_ino.c_str(), st));
  CHECK_FALSE(is_journal_stream(other_dev.c_str(), st));
  // Malformed values never match.
  for (const std::string& bad :
       {std::to_string(st.st_dev), ":" + std::to_string(st.st_ino), std::to_string(st.st_dev) + ":",
        mine + "x", " " + mine, std::to_string(st.st_dev) + ":-" + std::to_string(st.st_ino)}) {
    CAPTURE(bad);
    CHECK_FALSE(is_journal_stream(bad.c_str(), st));
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("log: a provider event's journal entry carries SEGMENT, PROVIDER and EVENT") {
  const std::vector<std::string> tripped = journal_fields(
      Level::warning,
      "provider groq marked unhealthy after 2 consecutive failures (http 503); backoff 60s",
      "gateway", {"groq", "tripped"});
  const std::vector<std::string> want = {
      "MESSAGE=provider groq marked unhealthy after 2 consecutive failures (http 503); backoff "
      "60s",
      "PRIORITY=4",
      "SYSLOG_IDENTIFIER=healthprobe",
      "SEGMENT=gateway",
      "PROVIDER=groq",
      "EVENT=tripped"};
  CHECK(tripped == want);

  // A line about the prober itself: no PROVIDER or EVENT; before the config
  // is read, no SEGMENT either.
  CHECK(journal_fields(Level::info, "started", "gateway", {}) ==
        std::vector<std::string>{"MESSAGE=started", "PRIORITY=6", "SYSLOG_IDENTIFIER=healthprobe",
                                 "SEGMENT=gateway"});
  CHECK(journal_fields(Level::err, "config error: x", "", {}) ==
        std::vector<std::string>{"MESSAGE=config error: x", "PRIORITY=3",
                                 "SYSLOG_IDENTIFIER=healthprobe"});
  // A provider line that is not an event (a debug outcome): PROVIDER only.
  CHECK(journal_fields(Level::debug, "provider groq healthy", "gw", {"groq", {}}).back() ==
        "PROVIDER=groq");
  // One entry is one line, in the journal as on stderr.
  CHECK(journal_fields(Level::notice, "a\nb\rc", "gw", {})[0] == "MESSAGE=a b c");
}

TEST_CASE("log: not the journal, lines keep their <N> priority prefix") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_NONBLOCK) == 0);
  {
    EnvGuard env("JOURNAL_STREAM", "1:1"); // someone else's stream
    Log log(false, fds[1]);
    log.set_segment("gateway");
    CHECK_FALSE(log.journal());
    log(Level::warning, "provider groq marked unhealthy", {"groq", "tripped"});
    log(Level::debug, "not shown without --verbose");
    log(Level::info, "two\nlines");
  }
  CHECK(drain(fds[0]) == "<4>provider groq marked unhealthy\n<6>two lines\n");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("log: stderr named by JOURNAL_STREAM but no journald socket: lines, not entries that "
          "sd_journal_send would drop silently") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_NONBLOCK) == 0);
  struct stat st {};
  REQUIRE(::fstat(fds[1], &st) == 0);
  struct stat sock {};
  if (::stat("/run/systemd/journal/socket", &sock) == 0) {
    MESSAGE("journald's socket exists here: this case needs a host without it");
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  {
    EnvGuard env("JOURNAL_STREAM", stream_of(st));
    Log log(true, fds[1]);
    CHECK_FALSE(log.journal());
    log(Level::notice, "provider groq recovered", {"groq", "recovered"});
  }
  CHECK(drain(fds[0]) == "<5>provider groq recovered\n");
  ::close(fds[0]);
  ::close(fds[1]);
}
