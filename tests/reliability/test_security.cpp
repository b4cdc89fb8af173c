// Security: exact modes whatever the umask, read-only readers (O_RDONLY,
// PROT_READ), a real unprivileged user (nobody) who may read but not write,
// hostile names, symlinks and squatted segments.
//
// Needs root (to become nobody with setresuid); label `root`.
#include "proc.hpp"

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

class Umask {
public:
  explicit Umask(mode_t m) : old_(::umask(m)) {}
  ~Umask() { ::umask(old_); }

private:
  mode_t old_;
};

/// The /proc/self/maps line of this process's mapping of `path`.
std::string maps_line(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.size() >= path.size() &&
        line.compare(line.size() - path.size(), path.size(), path) == 0)
      return line;
  return {};
}

/// Access mode of this process's open descriptors of `path`.
std::vector<int> access_modes(const std::string& path) {
  std::vector<int> out;
  for (int fd = 0; fd < 1024; ++fd) {
    char link[PATH_MAX];
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(proc.c_str(), link, sizeof link - 1);
    if (n <= 0) continue;
    link[n] = 0;
    if (path != link) continue;
    out.push_back(::fcntl(fd, F_GETFL) & O_ACCMODE);
  }
  return out;
}

bool root() { return ::geteuid() == 0; }

} // namespace

TEST_CASE("security: the mode given at create is exactly the segment's mode, whatever the umask") {
  int checked = 0;
  for (const mode_t mask : {mode_t{077}, mode_t{000}, mode_t{022}, mode_t{027}}) {
    Umask u(mask);
    for (const std::uint32_t mode : {0644u, 0640u, 0600u, 0604u, 0400u}) {
      SegmentName seg("mode");
      CreateOptions o;
      o.mode = mode;
      auto w = Writer::create(seg.str(), o);
      CHECK_MESSAGE(mode_of(seg.path()) == mode, "umask " << mask << " mode " << mode);
      ++checked;
    }
    SegmentName seg("mode-default");
    { auto w = Writer::create(seg.str()); }
    CHECK(mode_of(seg.path()) == 0644);
    // create --force gives the new object the mode asked for, too.
    CreateOptions force;
    force.replace = true;
    force.mode = 0640;
    { auto w = Writer::create(seg.str(), force); }
    CHECK(mode_of(seg.path()) == 0640);
  }
  MESSAGE(checked << " umask x mode combinations");
  CHECK(test::error_of([] {
          SegmentName seg("mode-bad");
          CreateOptions o;
          o.mode = 01777; // setuid/sticky bits are not a permission
          (void)Writer::create(seg.str(), o);
        }) == Errc::invalid_argument);
  // Group or other write bits: only the writer writes a table.
  for (const std::uint32_t mode : {0660u, 0666u, 0646u, 0622u}) {
    CAPTURE(mode);
    SegmentName seg("mode-writable");
    CreateOptions o;
    o.mode = mode;
    CHECK(test::error_of([&] { (void)Writer::create(seg.str(), o); }) == Errc::invalid_argument);
    struct stat st {};
    CHECK(::lstat(seg.home().c_str(), &st) != 0); // refused before anything was made
  }
  if (test::kHealthctl) {
    for (const char* mask : {"077", "000"}) {
      SegmentName seg("mode-cli");
      const pid_t p = test::spawn([&] {
        ::umask(static_cast<mode_t>(std::stoi(mask, nullptr, 8)));
        const int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, 1);
        ::execl(test::kHealthctl, test::kHealthctl, "create", seg.str().c_str(), "--mode", "0640",
                static_cast<char*>(nullptr));
        return 127;
      });
      CHECK(test::wait_child(p).ok());
      CHECK_MESSAGE(mode_of(seg.path()) == 0640,
                    "healthctl create --mode 0640 under umask " << mask);
    }
  }
}

TEST_CASE(
    "security: readers open O_RDONLY and map PROT_READ, and a write through the mapping faults") {
  SegmentName seg("prot");
  {
    auto w = Writer::create(seg.str());
    w.mark_unhealthy("groq", "x");
  }
  const pid_t p = test::spawn([&]() -> int {
    auto t = Table::open(seg.str());
    const std::string line = maps_line(seg.path());
    if (line.empty()) return 60;
    // "start-end perms offset dev inode path": perms must be r--s.
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    if (perms != "r--s") return 61;
    const auto modes = access_modes(seg.path());
    if (modes.empty()) return 62;
    for (int m : modes)
      if (m != O_RDONLY) return 63;
    // Now write through it. The handler tells a protection fault (ACCERR)
    // from anything else.
    struct sigaction sa {};
    sa.sa_flags = SA_SIGINFO;
    sa.sa_sigaction = [](int, siginfo_t* si, void*) {
      ::_exit(si->si_code == SEGV_ACCERR ? 42 : 43);
    };
    ::sigaction(SIGSEGV, &sa, nullptr);
    auto* target = reinterpret_cast<volatile std::uint8_t*>(std::stoull(range, nullptr, 16));
    target[0] = 0; // the magic's first byte
    return 64;     // the write went through
  });
  const auto r = test::wait_child(p, 20s);
  // 42: SIGSEGV with SEGV_ACCERR. A SIGSEGV death also proves it (if a
  // sanitizer kept its own handler).
  CHECK_MESSAGE(((r.exited && r.code == 42) || (!r.exited && r.signal == SIGSEGV)), r.describe());
  CHECK_NOTHROW(Table::open(seg.str())); // the magic is intact
}

TEST_CASE(
    "security: a user who may read but not write can read, and every write is permission_denied") {
  if (!root()) {
    MESSAGE("not root: cannot become nobody; skipped");
    return;
  }
  SegmentName seg("ro-user");
  {
    auto w = Writer::create(seg.str());
    w.mark_unhealthy("groq", "http 503");
  }
  const pid_t p = test::spawn([&]() -> int {
    if (!test::become_nobody()) return 50;
    auto t = Table::open(seg.str());
    if (!t.get_state("groq") || t.get_state("groq")->failures != 1) return 51;
    if (t.snapshot().size() != 1) return 52;
    if (t.info().capacity != kDefaultCapacity) return 53;
    int code = 0;
    // Refused either by the kernel (permission_denied) or, before any
    // syscall could be, because the table is not ours (wrong_owner).
    const auto expect_denied = [&](int bit, auto&& fn) {
      const auto e = test::error_of(fn);
      if (e != Errc::permission_denied && e != Errc::wrong_owner) code |= bit;
    };
    expect_denied(1, [&] { (void)Writer::open(seg.str()); });
    expect_denied(2, [&] { Writer::destroy(seg.str()); });
    CreateOptions force;
    force.replace = true;
    expect_denied(4, [&] { (void)Writer::create(seg.str(), force); });
    return code == 0 ? 0 : 100 + code;
  });
  const auto r = test::wait_child(p);
  CHECK_MESSAGE(r.ok(), r.describe());

  if (test::kHealthctl) {
    struct Cmd {
      std::vector<std::string> args;
      int want;
    };
    const int denied = static_cast<int>(Errc::permission_denied);
    const int not_ours = static_cast<int>(Errc::wrong_owner);
    const std::vector<Cmd> cmds = {
        {{"dump", seg.str()}, 0},
        {{"dump", seg.str(), "--json"}, 0},
        {{"info", seg.str()}, 0},
        {{"check", seg.str(), "groq"}, 0}, // 1 failure of 2: still available
        {{"check", seg.str(), "never-seen"}, 0},
        {{"record", seg.str(), "groq", "failure", "--reason", "evil"}, denied},
        {{"record", seg.str(), "groq", "success"}, denied},
        {{"set", seg.str(), "groq", "down"}, denied},
        {{"reset", seg.str()}, denied},
        {{"reset", seg.str(), "groq"}, denied},
        {{"destroy", seg.str()}, denied},
        {{"create", seg.str(), "--force"}, denied},
    };
    for (const auto& c : cmds) {
      std::vector<std::string> argv = {test::kHealthctl};
      argv.insert(argv.end(), c.args.begin(), c.args.end());
      const auto res = test::run(argv, /*as_nobody=*/true);
      const bool refused_ok = c.want == denied && res.status.code == not_ours;
      CHECK_MESSAGE((res.status.exited && (res.status.code == c.want || refused_ok)),
                    "healthctl " << c.args[0] << " as nobody: " << res.status.describe() << ": "
                                 << res.out);
    }
  }
  // Nothing the reader tried changed the table.
  auto t = Table::open(seg.str());
  CHECK(t.get_state("groq")->failures == 1);
  CHECK(t.get_state("groq")->last_error == "http 503");
  CHECK(t.get_state("groq")->override_mode == Override::automatic);
}

TEST_CASE("security: mode 0640 admits the segment's group and no one else") {
  if (!root()) return;
  SegmentName seg("group");
  CreateOptions o;
  o.mode = 0640;
  {
    auto w = Writer::create(seg.str(), o);
    w.add("groq");
  }
  REQUIRE(::chown(seg.path().c_str(), static_cast<uid_t>(-1), kNogroup) == 0);
  const auto as = [&](gid_t gid) {
    const pid_t p = test::spawn([&]() -> int {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
          ::setresuid(kNobody, kNobody, kNobody) != 0)
        return 50;
      auto t = Table::open(seg.str()); // throws permission_denied -> exit 7
      return t.find("groq") ? 0 : 51;
    });
    return test::wait_child(p);
  };
  const auto in_group = as(kNogroup);
  CHECK_MESSAGE(in_group.ok(), in_group.describe());
  const auto other = as(1); // daemon: not the segment's group
  CHECK_MESSAGE((other.exited && other.code == static_cast<int>(Errc::permission_denied)),
                other.describe());
}

TEST_CASE("security: names with '/', '..' or other characters are refused") {
  const std::vector<std::string> bad = {"../x",
                                        "..",
                                        ".",
                                        "a/b",
                                        "/abs",
                                        "x/../../etc/passwd",
                                        "",
                                        "a b",
                                        "tab\there",
                                        "nl\n",
                                        "semi;colon",
                                        "star*",
                                        "q?",
                                        "dollar$",
                                        "\xc3\xa9t\xc3\xa9",
                                        std::string("nul\0x", 5),
                                        std::string(kSegmentNameMax + 1, 'a')};
  int tried = 0;
  for (const auto& name : bad) {
    CAPTURE(name);
    CHECK(test::error_of([&] { (void)Table::open(name); }) == Errc::invalid_name);
    CHECK(test::error_of([&] { (void)Writer::open(name); }) == Errc::invalid_name);
    CHECK(test::error_of([&] { (void)Writer::create(name); }) == Errc::invalid_name);
    CHECK(test::error_of([&] { Writer::destroy(name); }) == Errc::invalid_name);
    ++tried;
  }
  // The longest allowed name works; nothing escaped /dev/shm.
  SegmentName ok("n");
  const std::string longest = ok.str() + std::string(kSegmentNameMax - ok.str().size(), 'z');
  CHECK_NOTHROW(Writer::create(longest));
  Writer::destroy(longest, true);
  struct stat st {};
  CHECK(::stat("/dev/x", &st) != 0);
  if (test::kHealthctl) {
    for (const char* name : {"../x", "a/b", ".."}) {
      const auto r = test::run({test::kHealthctl, "create", name});
      CHECK_MESSAGE(r.status.code == static_cast<int>(Errc::invalid_name), name << ": " << r.out);
    }
    CHECK(::stat("/dev/x", &st) != 0);
  }
  MESSAGE(tried << " bad names, each through 4 entry points");
}

TEST_CASE("security: a symlink at the object's name is refused and its target untouched") {
  SegmentName target("symlink-target");
  SegmentName seg("symlink");
  {
    auto w = Writer::create(target.str());
    w.mark_unhealthy("groq", "original");
  }
  { auto w = Writer::create(seg.str()); }
  const auto before = test::read_image(target.path());
  // The object the pointer names becomes a link to another table's object.
  const std::string object = seg.path();
  REQUIRE(::unlink(object.c_str()) == 0);
  REQUIRE(::symlink(target.path().c_str(), object.c_str()) == 0);
  CHECK(test::error_of([&] { (void)Table::open(seg.str()); }) == Errc::not_a_table);
  CHECK(test::error_of([&] { (void)Writer::open(seg.str()); }) == Errc::not_a_table);
  CHECK(test::error_of([&] { (void)Writer::create(seg.str()); }) == Errc::already_exists);
  try {
    (void)Table::open(seg.str());
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("symbolic link") != std::string::npos);
  }
  if (test::kHealthctl)
    for (const char* cmd : {"dump", "info"}) {
      const auto r = test::run({test::kHealthctl, cmd, seg.str()});
      CHECK_MESSAGE(r.status.code == static_cast<int>(Errc::not_a_table), cmd << ": " << r.out);
    }
  struct stat st {};
  CHECK(::lstat(object.c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode)); // still a link: nobody followed it
  CHECK(test::read_image(target.path()) == before);
  // create --force replaces the pointer with a fresh object and leaves the
  // link's target alone.
  CreateOptions force;
  force.replace = true;
  CHECK_NOTHROW(Writer::create(seg.str(), force));
  CHECK(test::read_image(target.path()) == before);
  ::unlink(object.c_str());
}

TEST_CASE("security: a table owned by another user is not written by root's writer, and "
          "owner-checking readers refuse it") {
  if (!root()) return;
  SegmentName seg("squat");
  {
    CreateOptions o;
    o.owner_uid = kNobody;
    (void)Writer::create(seg.str(), o);
  }
  // nobody, its owner, writes it.
  const pid_t p = test::spawn([&]() -> int {
    if (!test::become_nobody()) return 50;
    auto w = Writer::open(seg.str());
    w.mark_unhealthy("groq", "nobody says down");
    return 0;
  });
  const auto r = test::wait_child(p);
  REQUIRE_MESSAGE(r.ok(), r.describe());
  // Root's Writer::open expects its own uid: wrong_owner, naming both.
  try {
    (void)Writer::open(seg.str());
    FAIL("wrote a table another user owns");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::wrong_owner);
    CHECK(std::string(e.what()).find("uid 65534") != std::string::npos);
  }
  OpenOptions strict;
  strict.owner = 0;
  CHECK(test::error_of([&] { (void)Table::open(seg.str(), strict); }) == Errc::wrong_owner);
  strict.owner = kNobody;
  CHECK_NOTHROW(Table::open(seg.str(), strict));
  CHECK(Table::open(seg.str()).get_state("groq")->failures == 1);
}
