// healthctl events and watch: the ring read as lines and JSON Lines, a
// follower that sees new events, a recreated table and a destroyed one and
// stops on SIGTERM, and watch drawn in a real terminal (tmux) and quit with q.
#include "run.hpp"

#include <support/support.hpp>

#include <healthtable/writer.hpp>

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace healthtable;
using namespace healthtable::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A scratch directory removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/healthtable-cli-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

/// healthctl ARGS... in the background, stdout and stderr into files; killed
/// and reaped when the test ends, whatever happened.
class Background {
public:
  Background(const std::vector<std::string>& args, const std::string& dir)
      : out_(dir + "/out"), err_(dir + "/err") {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> storage;
    std::vector<char*> argv = healthctl_argv(args, storage);
    const int rc = ::posix_spawn(&pid_, HEALTHCTL_PATH, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    REQUIRE(rc == 0);
  }
  ~Background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  std::string out() const { return slurp(out_); }
  std::string err() const { return slurp(err_); }
  /// Signals it and returns its exit status (128 + signal if it died of one).
  int stop(int sig) {
    ::kill(pid_, sig);
    return wait();
  }

private:
  int wait() {
    int ws = 0;
    while (::waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  }
  std::string out_, err_;
  pid_t pid_ = -1;
};

void trip(const std::string& segment, const std::string& provider) {
  for (int i = 0; i < 2; ++i)
    REQUIRE(healthctl({"record", segment, provider, "failure", "--class", "server", "--reason",
                       "http 503"})
                .status == 0);
}

/// tmux on a socket of its own, so nothing is shared with another tmux on
/// the host or another test; its server is killed when the test ends.
class Tmux {
public:
  explicit Tmux(std::string socket) : socket_(std::move(socket)) {}
  ~Tmux() { run("kill-server 2>/dev/null"); }
  int run(const std::string& args) const {
    return std::system(("tmux -L '" + socket_ + "' -f /dev/null " + args).c_str());
  }
  std::string screen() const {
    const std::string file = "/tmp/" + socket_ + ".screen";
    run("capture-pane -p -t 0 > '" + file + "' 2>/dev/null");
    const std::string text = slurp(file);
    std::remove(file.c_str());
    return text;
  }

private:
  std::string socket_;
};

} // namespace

TEST_CASE("events lists the ring oldest first, narrowed by --last and --since, as JSON Lines "
          "with --json") {
  SegmentName seg("cli-events");
  REQUIRE(healthctl({"create", seg}).status == 0);
  {
    // An event from two hours ago (the clock is the caller's to give), then
    // the trip now.
    Writer w = Writer::open(seg.str());
    Instant old = Instant::now();
    old.unix_ns -= seconds_ns(7200);
    w.mark_unhealthy("old", "long ago", old);
  }
  trip(seg, "groq");

  const std::vector<std::string> all = lines_of(check_ok(healthctl({"events", seg})));
  REQUIRE(all.size() == 3);
  CHECK(contains(all[0], "old registered in slot 0"));
  CHECK(contains(all[1], "groq registered in slot 1"));
  CHECK(contains(all[2], "groq tripped (healthy -> unhealthy) after 2 consecutive failures, "
                         "server from admin: http 503"));
  CHECK(all[2].rfind("20", 0) == 0); // the time comes first

  const std::vector<std::string> last =
      lines_of(check_ok(healthctl({"events", seg, "--last", "1"})));
  REQUIRE(last.size() == 1);
  CHECK(last[0] == all[2]);
  const std::vector<std::string> recent =
      lines_of(check_ok(healthctl({"events", seg, "--since", "1h"})));
  REQUIRE(recent.size() == 2);
  CHECK(recent[0] == all[1]);
  CHECK(check_ok(healthctl({"events", seg, "--since", "1h", "--last", "0"})).empty());

  const std::vector<std::string> js = lines_of(check_ok(healthctl({"events", seg, "--json"})));
  REQUIRE(js.size() == 3);
  std::vector<std::string> kinds;
  for (const std::string& line : js) {
    const json j = json::parse(line); // one complete object per line
    kinds.push_back(j.at("kind").get<std::string>());
  }
  CHECK(kinds == std::vector<std::string>{"registered", "registered", "tripped"});
  const json tripped = json::parse(js[2]);
  CHECK(tripped.at("provider") == "groq");
  CHECK(tripped.at("class") == "server");
  CHECK(tripped.at("consecutive_failures") == 2);
  CHECK(tripped.at("text") == all[2]);

  check_error(healthctl({"events", seg, "--since", "soon"}), 15, "--since 'soon'");
  check_error(healthctl({"events", seg, "--last", "-1"}), 2, "--last");
  check_error(healthctl({"events", seg.str() + "-none"}), 3, "no health table");
}

TEST_CASE("events --follow prints new events, follows a destroyed and recreated table, and "
          "exits 0 on SIGTERM") {
  SegmentName seg("cli-follow");
  TempDir dir;
  REQUIRE(healthctl({"create", seg}).status == 0);
  trip(seg, "groq");
  Background f({"events", seg, "--follow"}, dir.path);
  CHECK(eventually([&] { return contains(f.out(), "groq tripped"); }, 30s));

  REQUIRE(healthctl({"record", seg, "groq", "success"}).status == 0);
  CHECK(
      eventually([&] { return contains(f.out(), "groq recovered (unhealthy -> healthy)"); }, 30s));

  REQUIRE(healthctl({"destroy", seg}).status == 0);
  CHECK(eventually([&] { return contains(f.err(), "is gone (destroyed); waiting"); }, 30s));
  REQUIRE(healthctl({"create", seg}).status == 0);
  REQUIRE(healthctl({"record", seg, "mistral", "failure"}).status == 0);
  CHECK(eventually([&] { return contains(f.out(), "mistral registered in slot 0"); }, 30s));
  CHECK(contains(f.err(), "was recreated: following the new table's events"));

  CHECK(f.stop(SIGTERM) == 0);
  // Each event once, in order: the follower neither repeats nor skips.
  const std::string out = f.out();
  CHECK(out.find("groq tripped") < out.find("groq recovered"));
  CHECK(out.find("groq recovered") < out.find("mistral registered"));
  CHECK(out.find("groq tripped") == out.rfind("groq tripped"));
}

TEST_CASE("watch refuses a stdout that is not a terminal, and a bad --interval") {
  SegmentName seg("cli-watch-pipe");
  REQUIRE(healthctl({"create", seg}).status == 0);
  check_error(healthctl({"watch", seg}), 22, "stdout is not one; use 'healthctl events");
  check_error(healthctl({"watch", seg, "--interval", "1ms"}), 15, "give 100ms to 1h");
}

TEST_CASE("watch draws the table in a real terminal, redraws on a trip, and quits on q") {
  REQUIRE_MESSAGE(std::system("command -v tmux >/dev/null") == 0,
                  "tmux is needed (scripts/install-deps.sh installs it)");
  SegmentName seg("cli-watch");
  TempDir dir;
  REQUIRE(healthctl({"create", seg}).status == 0);
  REQUIRE(healthctl({"record", seg, "groq", "success"}).status == 0);
  const std::string status = dir.path + "/status";
  const Tmux tmux("healthtable-test-" + std::to_string(::getpid()));
  const char* run_dir = std::getenv("HEALTHTABLE_RUN_DIR");
  const std::string env = run_dir ? std::string("-e HEALTHTABLE_RUN_DIR='") + run_dir + "' " : "";
  // The shell writes watch's exit status once it quits; the session ends with it.
  REQUIRE(tmux.run("new-session -d -x 160 -y 40 " + env + "\"" + HEALTHCTL_PATH + " watch " +
                   seg.str() + " --interval 100ms; echo \\$? > '" + status + "'\"") == 0);
  CHECK(eventually(
      [&] {
        const std::string s = tmux.screen();
        return contains(s, "healthctl watch " + seg.str()) && contains(s, "PROVIDER") &&
               contains(s, "groq ");
      },
      30s));
  trip(seg, "groq");
  CHECK(eventually([&] { return contains(tmux.screen(), "groq tripped (healthy -> unhealthy)"); },
                   30s));
  CHECK(tmux.run("send-keys -t 0 q") == 0);
  CHECK(eventually([&] { return slurp(status) == "0\n"; }, 30s));
}
