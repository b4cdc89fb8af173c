// What others can put in a table's way: read locks on every file of the
// table an unprivileged user can open, and something other than what we
// expect (a FIFO, a directory, a socket, a device, a symlink) at each path
// of the table: its home, its object, and the home's pointer.
//
// The attacker is the real user nobody (setresuid in a forked child). Needs
// root; label `root`.
#include "proc.hpp"

#include <healthtable/home.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

bool root() { return ::geteuid() == 0; }

/// Takes an OFD read lock and a flock shared lock on `fd`; counts each held.
int read_lock(int fd) {
  int held = 0;
  struct flock fl {};
  fl.l_type = F_RDLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) ++held;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) ++held;
  return held;
}

struct LockState {
  std::atomic<int> ready{0};
  std::atomic<int> opened{0};
  std::atomic<int> held{0};
};

} // namespace

TEST_CASE("paths: nobody's read locks on every file of the table it can open do not stop the "
          "writer") {
  if (!root()) {
    MESSAGE("not root: cannot become nobody; skipped");
    return;
  }
  SegmentName seg("rdlock");
  {
    auto w = Writer::create(seg.str());
    w.add("groq");
  }
  const std::string home = seg.home();
  const std::vector<std::string> paths = {seg.path(), home, home + "/table", home + "/lock",
                                          home + "/control", home + "/."};
  test::Shared<LockState> s;
  const pid_t attacker = test::spawn(
      [&]() -> int {
        if (!test::become_nobody()) return 50;
        std::vector<int> fds;
        for (const auto& p : paths) {
          for (const int flags : {O_RDONLY, O_RDWR, O_WRONLY}) {
            const int fd = ::open(p.c_str(), flags | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) continue;
            s->opened.fetch_add(1);
            s->held.fetch_add(read_lock(fd));
            fds.push_back(fd); // kept open: the locks live as long as the fds
          }
        }
        s->ready = 1;
        for (;;)
          ::pause();
      },
      120);
  for (int i = 0; i < 10000 && !s->ready; ++i)
    std::this_thread::sleep_for(1ms);
  REQUIRE(s->ready == 1);
  MESSAGE("nobody opened " << s->opened.load() << " descriptors and holds " << s->held.load()
                           << " read locks");
  CHECK(s->held.load() >= 2); // at least the object's two: the attack is real

  // The writer opens, writes and replaces the table in spite of them.
  {
    const auto code = test::error_of([&] {
      auto w = Writer::open(seg.str());
      w.mark_unhealthy("groq", "under read locks");
      w.mark_unhealthy("groq", "under read locks");
    });
    CHECK_MESSAGE(!code, "Writer::open under nobody's read locks: "
                             << (code ? errc_name(*code) : "ok"));
  }
  {
    auto t = Table::open(seg.str());
    const auto st = t.get_state("groq");
    REQUIRE(st.has_value());
    CHECK(st->failures == 2);
    CHECK_FALSE(st->healthy);
  }
  if (test::kHealthctl) {
    const auto r = test::run({test::kHealthctl, "record", seg.str(), "groq", "success"});
    CHECK_MESSAGE(r.status.ok(), "healthctl record under read locks: " << r.status.describe()
                                                                       << ": " << r.out);
    CHECK(Table::open(seg.str()).get_state("groq")->healthy);
  }
  {
    CreateOptions force;
    force.replace = true;
    const auto code = test::error_of([&] { (void)Writer::create(seg.str(), force); });
    CHECK_MESSAGE(!code, "create --force under read locks: " << (code ? errc_name(*code) : "ok"));
  }
  CHECK(test::kill_and_reap(attacker).signal == SIGKILL);
}

namespace {

enum class Thing { fifo, directory, socket, device, symlink };
const char* thing_name(Thing t) {
  switch (t) {
  case Thing::fifo: return "fifo";
  case Thing::directory: return "directory";
  case Thing::socket: return "socket";
  case Thing::device: return "device";
  case Thing::symlink: return "symlink";
  }
  return "?";
}

/// Makes `t` at `path`; true on success. A device node needs root; the
/// rest may run as nobody.
bool place(Thing t, const std::string& path, const std::string& link_to) {
  switch (t) {
  case Thing::fifo: return ::mkfifo(path.c_str(), 0644) == 0;
  case Thing::directory: return ::mkdir(path.c_str(), 0755) == 0;
  case Thing::socket: {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) return false;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }
  case Thing::device: return ::mknod(path.c_str(), S_IFCHR | 0666, ::makedev(1, 3)) == 0;
  case Thing::symlink: return ::symlink(link_to.c_str(), path.c_str()) == 0;
  }
  return false;
}

void remove_thing(const std::string& path) {
  if (::unlink(path.c_str()) != 0) ::rmdir(path.c_str());
}

/// A typed error is an Errc's exit code (3..17); 0 would mean a table was
/// read where none is.
bool typed(const test::ChildResult& r) { return r.exited && r.code >= 3 && r.code <= 17; }

} // namespace

TEST_CASE("paths: a FIFO, directory, socket, device or symlink at the home, the object or the "
          "pointer gives a typed error in bounded time") {
  if (!root()) {
    MESSAGE("not root; skipped");
    return;
  }
  test::Watchdog dog(600);
  SegmentName other("paths-other"); // a real table a symlink can lead to
  { auto w = Writer::create(other.str()); }
  std::map<std::string, int> codes;
  int cases = 0;
  for (const char* where : {"home", "object", "pointer"}) {
    for (const Thing t :
         {Thing::fifo, Thing::directory, Thing::socket, Thing::device, Thing::symlink}) {
      SegmentName seg(std::string("paths-") + where);
      {
        auto w = Writer::create(seg.str());
        w.mark_unhealthy("groq", "x");
      }
      const std::string object = seg.path();
      std::string path, link_to;
      bool as_nobody = false;
      if (std::string(where) == "home") {
        // Root's own mistake (only root writes the run dir): the home is not
        // a directory of ours.
        Writer::destroy(seg.str(), true);
        path = seg.home();
        link_to = other.home();
      } else if (std::string(where) == "object") {
        // /dev/shm is world-writable: nobody plants the thing at the name
        // the pointer names once the object is gone.
        REQUIRE(::unlink(object.c_str()) == 0);
        path = object;
        link_to = other.path();
        as_nobody = t != Thing::device; // mknod needs root
      } else {
        REQUIRE(::unlink((seg.home() + "/table").c_str()) == 0);
        path = seg.home() + "/table";
        link_to = t == Thing::symlink ? std::string("/dev/null") : other.path();
      }
      const std::string label = std::string(thing_name(t)) + " at the " + where;
      CAPTURE(label);
      if (as_nobody) {
        const pid_t p = test::spawn([&]() -> int {
          if (!test::become_nobody()) return 50;
          return place(t, path, link_to) ? 0 : 51;
        });
        REQUIRE(test::wait_child(p, 10s).ok());
      } else {
        REQUIRE(place(t, path, link_to));
      }
      // Table::open in a child, so that a hang is a timeout, not a stuck
      // suite; as root and as nobody.
      for (const bool reader_nobody : {false, true}) {
        const pid_t p = test::spawn(
            [&]() -> int {
              if (reader_nobody && !test::become_nobody()) return 50;
              auto tab = Table::open(seg.str());
              return tab.find("groq") ? 0 : 1;
            },
            30);
        const auto r = test::wait_child(p, 10s);
        CHECK_MESSAGE(!r.timed_out, label << ": Table::open hung");
        CHECK_MESSAGE(typed(r), label << ": Table::open " << (reader_nobody ? "as nobody" : "")
                                      << ": " << r.describe());
        codes[label + (reader_nobody ? " (nobody)" : "")] = r.exited ? r.code : -r.signal;
      }
      if (test::kHealthctl) {
        for (const auto& args : std::vector<std::vector<std::string>>{
                 {"info", seg.str()}, {"check", seg.str(), "groq"}, {"dump", seg.str()}}) {
          std::vector<std::string> argv = {test::kHealthctl};
          argv.insert(argv.end(), args.begin(), args.end());
          const auto r = test::run(argv, false, 10s);
          CHECK_MESSAGE(!r.status.timed_out, label << ": healthctl " << args[0] << " hung");
          CHECK_MESSAGE(typed(r.status), label << ": healthctl " << args[0] << ": "
                                               << r.status.describe() << ": " << r.out);
        }
      }
      // The FIFO, the case that hung v1's tools, gives the precise code.
      if (t == Thing::fifo) {
        const Errc want = std::string(where) == "pointer" ? Errc::corrupt : Errc::not_a_table;
        CHECK(codes[label] == static_cast<int>(want));
      }
      // Nothing followed a link: the other table is intact.
      CHECK(Table::open(other.str()).info().state == SegmentState::live);
      remove_thing(path);
      ++cases;
    }
  }
  std::string summary;
  for (const auto& [k, v] : codes)
    summary += k + "=" + std::to_string(v) + "; ";
  MESSAGE(cases << " placements: " << summary);
}
