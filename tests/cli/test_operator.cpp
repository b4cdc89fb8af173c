// The operator's surface: `list`, `check --writer`, -V, unknown options
// named as such, the writer warning of info/dump, and what a user who may
// read a table but not write it is told.
#include "run.hpp"

#include <support/support.hpp>

#include <healthtable/writer.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>

using namespace healthtable;
using namespace healthtable::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// A run directory of the test's own (0755, removed at the end), named by
/// HEALTHTABLE_RUN_DIR for this process and the healthctl it starts.
class RunDir {
public:
  RunDir() {
    char tmpl[] = "/tmp/healthtable-ops-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
    REQUIRE(::chmod(path_.c_str(), 0755) == 0);
    if (const char* old = std::getenv("HEALTHTABLE_RUN_DIR")) old_ = old;
    ::setenv("HEALTHTABLE_RUN_DIR", path_.c_str(), 1);
  }
  ~RunDir() {
    // Tables first (their objects are in /dev/shm), then the directory.
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(path_, ec)) {
      try {
        Writer::destroy(e.path().filename().string(), true);
      } catch (...) {
      }
    }
    std::filesystem::remove_all(path_, ec);
    if (old_)
      ::setenv("HEALTHTABLE_RUN_DIR", old_->c_str(), 1);
    else
      ::unsetenv("HEALTHTABLE_RUN_DIR");
  }
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  const std::string& path() const noexcept { return path_; }

private:
  std::string path_;
  std::optional<std::string> old_;
};

/// A table name of this process's own: table objects in /dev/shm are
/// named after the table, host-wide, so two tests running at once must not
/// share a name even in different run directories.
std::string own(const std::string& base) { return base + std::to_string(::getpid()); }

/// `s` padded with spaces to `width`, as the list's columns are.
std::string pad(const std::string& s, std::size_t width) {
  return s + std::string(width > s.size() ? width - s.size() : 0, ' ');
}

/// A writer whose heartbeat promise (10 s) has lapsed 100 s ago.
void make_stale(Writer& w) {
  w.set_heartbeat_interval(10s);
  const Instant now = Instant::now();
  w.heartbeat(Instant{now.mono_ns - 100'000'000'000, now.unix_ns - 100'000'000'000});
}

/// healthctl ARGS... as uid/gid 65534 (nobody): exit code and stderr.
Run healthctl_as_nobody(const std::vector<std::string>& args) {
  int err_pipe[2];
  REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
  std::vector<std::string> storage;
  std::vector<char*> argv = healthctl_argv(args, storage);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(err_pipe[1], 2);
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(99);
    ::execve(HEALTHCTL_PATH, argv.data(), environ);
    ::_exit(98);
  }
  ::close(err_pipe[1]);
  Run r;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(err_pipe[0], buf, sizeof buf)) > 0)
    r.err.append(buf, static_cast<std::size_t>(n));
  ::close(err_pipe[0]);
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return r;
}

} // namespace

TEST_CASE("list: no run directory is an empty list, exit 0, with a note on stderr") {
  const std::string missing = "/tmp/healthtable-ops-missing-" + std::to_string(::getpid());
  const char* old = std::getenv("HEALTHTABLE_RUN_DIR");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  ::setenv("HEALTHTABLE_RUN_DIR", missing.c_str(), 1);
  const Run text = healthctl({"list"});
  const Run js = healthctl({"list", "--json"});
  if (saved)
    ::setenv("HEALTHTABLE_RUN_DIR", saved->c_str(), 1);
  else
    ::unsetenv("HEALTHTABLE_RUN_DIR");
  INFO(text.err);
  CHECK(text.status == 0);
  CHECK(text.out == "no tables in " + missing + "\n");
  CHECK(text.err == "healthctl: no run directory " + missing +
                        ": no table has been created on this host (or HEALTHTABLE_RUN_DIR names "
                        "another)\n");
  CHECK(js.status == 0);
  const json doc = json::parse(js.out);
  CHECK(doc.at("run_dir") == missing);
  CHECK(doc.at("tables").empty());
}

TEST_CASE("list: every table with use, writer and owner, and unreadable entries with the reason") {
  RunDir run;
  const std::string idle = own("idle"), live_name = own("live"), stale_name = own("stale");
  const std::size_t w = stale_name.size() + 2; // the NAME column
  check_ok(healthctl({"create", idle, "--slots", "4"}));
  check_ok(healthctl({"record", idle, "groq", "failure"}));
  Writer live = Writer::create(live_name);
  live.set_heartbeat_interval(10s);
  live.heartbeat();
  live.mark_unhealthy("groq", "http 503");
  live.mark_healthy("openai");
  Writer stale = Writer::create(stale_name);
  make_stale(stale);
  REQUIRE(::mkdir((run.path() + "/empty").c_str(), 0755) == 0); // a home with no table
  {
    std::FILE* f = std::fopen((run.path() + "/junk").c_str(), "w");
    REQUIRE(f);
    std::fclose(f);
  }
  const std::string pid = std::to_string(::getpid());

  const std::vector<std::string> lines = lines_of(check_ok(healthctl({"list"})));
  REQUIRE(lines.size() == 7);
  CHECK(lines[0].starts_with(pad("NAME", w) + "SLOTS  WRITER"));
  CHECK(lines[1].starts_with(pad(idle, w) + "1/4    none (last pid "));
  CHECK(lines[2].starts_with(pad(live_name, w) + "2/64   LIVE pid " + pid + " "));
  CHECK(lines[3].starts_with(pad(stale_name, w) + "0/64   STALE pid " + pid + " "));
  CHECK(contains(lines[3], "1m40s ago"));
  for (std::size_t i = 1; i <= 3; ++i)
    CHECK(contains(lines[i], " root "));
  CHECK(lines[4].empty());
  CHECK(lines[5].starts_with("empty: cannot read (no_such_segment): no health table 'empty'"));
  CHECK(lines[6] == "junk: cannot read (not_a_table): " + run.path() +
                        "/junk is a regular file, not a table's home directory");

  const json doc = json::parse(check_ok(healthctl({"list", "--json"})));
  CHECK(doc.at("run_dir") == run.path());
  const json& t = doc.at("tables");
  REQUIRE(t.size() == 5);
  CHECK(t[0].at("name") == "empty");
  CHECK(t[0].at("error").at("name") == "no_such_segment");
  CHECK(t[0].at("error").at("code") == 3);
  CHECK(t[0].at("used").is_null());
  CHECK(t[1].at("name") == idle);
  CHECK(t[1].at("writer_state") == "none");
  CHECK(t[1].at("used") == 1);
  CHECK(t[1].at("capacity") == 4);
  CHECK(t[1].at("error").is_null());
  CHECK(t[2].at("name") == "junk");
  CHECK(t[2].at("error").at("name") == "not_a_table");
  CHECK(t[2].at("writer").is_null());
  CHECK(t[3].at("name") == live_name);
  CHECK(t[3].at("writer_state") == "live");
  CHECK(t[3].at("writer").at("pid") == ::getpid());
  CHECK(t[3].at("owner_uid") == 0);
  CHECK(t[3].at("owner") == "root");
  CHECK(t[3].at("generation") == live.table().info().generation);
  CHECK(t[4].at("writer_state") == "stale");
  // --stale-after moves the limit, as for info and dump.
  CHECK(contains(check_ok(healthctl({"list", "--stale-after", "1h"})), "LIVE pid " + pid));
}

TEST_CASE("check --writer: 0 and OK while the writer is live, 1 and CRITICAL when stale or gone") {
  RunDir run;
  const std::string gw = own("gw");
  std::optional<Writer> w(Writer::create(gw));
  w->set_heartbeat_interval(10s);
  w->heartbeat();
  const std::string pid = std::to_string(::getpid());

  std::string out = check_ok(healthctl({"check", gw, "--writer"}));
  CHECK(out.starts_with("OK: writer pid " + pid + ", heartbeat "));
  CHECK(out.ends_with(" ago (stale after 30s)\n"));
  CHECK(count_lines(out) == 1);
  CHECK(check_ok(healthctl({"check", gw, "--writer", "--quiet"})).empty());

  make_stale(*w);
  Run r = healthctl({"check", gw, "--writer"});
  CHECK(r.status == 1);
  CHECK(r.err.empty());
  CHECK(r.out == "CRITICAL: writer pid " + pid + " of '" + gw +
                     "' is STALE: heartbeat 1m40s ago, stale after 30s\n");
  CHECK(check_ok(healthctl({"check", gw, "--writer", "--stale-after", "1h"}))
            .starts_with("OK: writer pid " + pid));

  w.reset(); // gone
  r = healthctl({"check", gw, "--writer"});
  CHECK(r.status == 1);
  CHECK(r.out.starts_with("CRITICAL: no writer attached to '" + gw + "' (last: pid " + pid +
                          ", heartbeat "));
  CHECK(healthctl({"check", gw, "--writer", "-q"}).status == 1);

  // Usage: one question at a time; --stale-after is the writer's.
  check_error(healthctl({"check", gw, "groq", "--writer"}), 2,
              "--writer checks the table's writer, not a provider");
  check_error(healthctl({"check", gw}), 2,
              "PROVIDER is required (or --writer to check the table's writer); run 'healthctl "
              "check --help'");
  check_error(healthctl({"check", gw, "groq", "--stale-after", "1s"}), 2,
              "--stale-after: applies to --writer only");
  check_error(healthctl({"check", gw, "--writer", "--stale-after", "soon"}), 15, "--stale-after");
  check_error(healthctl({"check", "nosuch", "--writer"}), 3, "no health table 'nosuch'");
}

TEST_CASE("info and dump end the writer's line with a WARNING when it is STALE or gone") {
  RunDir run;
  const std::string gw = own("gw");
  std::optional<Writer> w(Writer::create(gw));
  w->set_heartbeat_interval(10s);
  w->heartbeat();
  CHECK(!contains(check_ok(healthctl({"info", gw})), "WARNING"));
  CHECK(!contains(check_ok(healthctl({"dump", gw})), "WARNING"));

  make_stale(*w);
  const std::string pid = std::to_string(::getpid());
  const std::string stale = "WARNING: the writer (pid " + pid +
                            ") is STALE: heartbeat 1m40s ago, stale after 30s; these states may "
                            "be old; 'healthctl check " +
                            gw + " --writer' exits 1 while this lasts";
  std::vector<std::string> info = lines_of(check_ok(healthctl({"info", gw})));
  CHECK(info.back() == stale);
  std::vector<std::string> dump = lines_of(check_ok(healthctl({"dump", gw})));
  REQUIRE(dump.size() >= 4);
  CHECK(dump[3] == stale);

  w.reset();
  const std::string gone = "WARNING: no writer attached: nothing keeps this table current (last: "
                           "pid " +
                           pid + ", heartbeat ";
  info = lines_of(check_ok(healthctl({"info", gw})));
  CHECK(info.back().starts_with(gone));
  dump = lines_of(check_ok(healthctl({"dump", gw})));
  CHECK(dump[3].starts_with(gone));
  CHECK(dump[3].ends_with("; 'healthctl check " + gw + " --writer' exits 1 while this lasts"));
  // JSON carries the same in writer.attached and writer.stale, no extra text.
  CHECK(json::parse(check_ok(healthctl({"dump", gw, "--json"}))).at("writer").at("attached") ==
        false);
}

TEST_CASE("-V is --version, and unknown options are named as unknown") {
  const Run v = healthctl({"-V"});
  CHECK(v.status == 0);
  CHECK(v.out == check_ok(healthctl({"--version"})));
  CHECK(v.out.starts_with("healthctl "));
  check_error(healthctl({"dump", "x", "--bogus"}), 2,
              "unknown option '--bogus'; run 'healthctl dump --help'");
  check_error(healthctl({"dump", "x", "--bogus=3"}), 2, "unknown option '--bogus'; run");
  check_error(healthctl({"info", "x", "-Z"}), 2,
              "unknown option '-Z'; run 'healthctl info --help'");
  check_error(healthctl({"list", "--frob"}), 2,
              "unknown option '--frob'; run 'healthctl list --help'");
  check_error(healthctl({"check", "x", "a", "b"}), 2,
              "unexpected argument 'b'; run 'healthctl check --help'");
}

TEST_CASE("a user who may read a table but not write it is told who may write it") {
  if (::geteuid() != 0) return; // only root can become nobody
  RunDir run;
  const std::string gw = own("gw");
  check_ok(healthctl({"create", gw, "--mode", "0644"}));
  check_ok(healthctl({"record", gw, "groq", "failure"}));
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"record", gw, "groq", "failure"}, {"set", gw, "groq", "down"}, {"reset", gw}}) {
    CAPTURE(args[0]);
    const Run r = healthctl_as_nobody(args);
    INFO(r.err);
    CHECK(r.status == 17);
    CHECK(count_lines(r.err) == 1);
    CHECK(contains(r.err,
                   "table '" + gw + "' belongs to uid 0 (root), and only its owner writes it"));
    CHECK(contains(r.err, "run this as that user"));
    CHECK(contains(r.err, "[control] allow_uids or allow_gid"));
    // Never the advice to change the mode, nor to expect another owner.
    CHECK(!contains(r.err, "--mode"));
    CHECK(!contains(r.err, "chmod"));
    CHECK(!contains(r.err, "--owner"));
  }
  // Reading is what the mode grants, and it still works.
  CHECK(healthctl_as_nobody({"dump", gw}).status == 0);
}
