// Whose table is it: readers that expect an owner refuse another's table,
// an unprivileged user cannot make a home where root keeps them, a run
// directory anyone may write is refused, and a create that fails never
// removes the object of the create that won.
//
// The other user is the real user nobody. Needs root; label `root`.
#include "proc.hpp"

#include <healthtable/home.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <string>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

constexpr uid_t kNobody = 65534;
bool root() { return ::geteuid() == 0; }

/// The objects in /dev/shm that belong to table `name`.
std::vector<std::string> objects_of(const std::string& name) {
  std::vector<std::string> out;
  const std::string prefix = "healthtable." + name + ".";
  if (DIR* d = ::opendir("/dev/shm")) {
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.starts_with(prefix) && n.size() == prefix.size() + 16) out.push_back(n);
    }
    ::closedir(d);
  }
  return out;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

} // namespace

TEST_CASE("owner: a table of another owner than expected is refused with wrong_owner naming both") {
  if (!root()) {
    MESSAGE("not root; skipped");
    return;
  }
  SegmentName seg("owner");
  {
    CreateOptions o;
    o.owner_uid = kNobody;
    auto w = Writer::create(seg.str(), o);
    w.mark_unhealthy("groq", "nobody says so");
  }
  struct stat st {};
  REQUIRE(::stat(seg.path().c_str(), &st) == 0);
  CHECK(st.st_uid == kNobody);
  REQUIRE(::stat(seg.home().c_str(), &st) == 0);
  CHECK(st.st_uid == kNobody);
  const auto expect_wrong_owner = [&](const char* how, auto&& fn) {
    CAPTURE(how);
    try {
      fn();
      FAIL("opened a table of uid 65534 while expecting root");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::wrong_owner);
      const std::string what = e.what();
      CHECK_MESSAGE(what.find("uid 65534") != std::string::npos, what);
      CHECK_MESSAGE(what.find("uid 0") != std::string::npos, what);
    }
  };
  OpenOptions strict;
  strict.owner = 0;
  expect_wrong_owner("OpenOptions::owner = 0", [&] { (void)Table::open(seg.str(), strict); });
  // In a child: the environment is the process's.
  const pid_t p = test::spawn([&]() -> int {
    ::setenv("HEALTHTABLE_OWNER", "root", 1);
    try {
      (void)Table::open(seg.str());
      return 60;
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.find("uid 65534") == std::string::npos || what.find("uid 0") == std::string::npos)
        return 61;
      return static_cast<int>(e.code());
    }
  });
  const auto r = test::wait_child(p, 20s);
  CHECK_MESSAGE((r.exited && r.code == static_cast<int>(Errc::wrong_owner)),
                "HEALTHTABLE_OWNER=root: " << r.describe());
  if (test::kHealthctl) {
    const auto res = test::run({"/usr/bin/env", "HEALTHTABLE_OWNER=root", test::kHealthctl,
                                "check", seg.str(), "groq"});
    CHECK_MESSAGE(res.status.code == static_cast<int>(Errc::wrong_owner), res.out);
  }
  // Expecting the real owner, or nothing in particular, reads it.
  strict.owner = kNobody;
  CHECK(Table::open(seg.str(), strict).get_state("groq")->failures == 1);
  CHECK(Table::open(seg.str()).get_state("groq")->failures == 1);
  // Root is not its writer either: the home is nobody's.
  CHECK(Table::open(seg.str()).info().owner_uid == kNobody);
}

TEST_CASE("owner: nobody cannot make a home in root's run directory, and leaves nothing behind") {
  if (!root()) return;
  SegmentName seg("owner-squat");
  // The run directory exists and is root's (another test may have made it).
  { SegmentName made("owner-rundir"); auto w = Writer::create(made.str()); }
  const pid_t p = test::spawn([&]() -> int {
    if (!test::become_nobody()) return 50;
    auto w = Writer::create(seg.str());
    return 0;
  });
  const auto r = test::wait_child(p, 20s);
  CHECK_MESSAGE((r.exited && r.code == static_cast<int>(Errc::permission_denied)), r.describe());
  CHECK_FALSE(exists(seg.home()));
  CHECK(objects_of(seg.str()).empty());
  if (test::kHealthctl) {
    const auto res = test::run({test::kHealthctl, "create", seg.str()}, /*as_nobody=*/true);
    CHECK_MESSAGE(res.status.code == static_cast<int>(Errc::permission_denied), res.out);
    CHECK_FALSE(exists(seg.home()));
    CHECK(objects_of(seg.str()).empty());
  }
  // Root then creates it normally: nothing of nobody's is in the way.
  CHECK_NOTHROW(Writer::create(seg.str()));
}

TEST_CASE("owner: a run directory every user may write (1777) is refused") {
  if (!root()) return;
  char tmpl[] = "/tmp/healthtable-rundir-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  REQUIRE(::chmod(dir.c_str(), 01777) == 0);
  const std::string name = "owner-1777-" + std::to_string(::getpid());
  // A home nobody planted there, as a world-writable directory allows.
  const pid_t plant = test::spawn([&]() -> int {
    if (!test::become_nobody()) return 50;
    return ::mkdir((dir + "/" + name).c_str(), 0755) == 0 ? 0 : 51;
  });
  REQUIRE(test::wait_child(plant, 10s).ok());
  const pid_t p = test::spawn([&]() -> int {
    ::setenv("HEALTHTABLE_RUN_DIR", dir.c_str(), 1);
    int bits = 0;
    const auto check = [&](int bit, auto&& fn) {
      try {
        fn();
        bits |= bit;
      } catch (const Error& e) {
        if (e.code() != Errc::wrong_owner && e.code() != Errc::permission_denied) bits |= bit;
        if (std::string(e.what()).find("writable by every user") == std::string::npos)
          bits |= bit << 4;
      }
    };
    check(1, [&] { (void)Writer::create(name); });
    check(2, [&] { (void)Table::open(name); });
    check(4, [&] { (void)Writer::open(name); });
    return bits == 0 ? 0 : 100 + bits;
  });
  const auto r = test::wait_child(p, 20s);
  CHECK_MESSAGE(r.ok(), r.describe());
  CHECK(objects_of(name).empty());
  ::rmdir((dir + "/" + name).c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("owner: creates that lose to another create never unlink the winner's object") {
  if (!root()) return;
  test::Watchdog dog(300);
  for (int round = 0; round < 20; ++round) {
    SegmentName seg("owner-race");
    struct Race {
      std::atomic<int> winners{0};
      std::atomic<std::uint64_t> dev{0}, ino{0};
      std::atomic<int> release_winner{0};
    };
    test::Shared<Race> race;
    test::Barrier go;
    std::vector<pid_t> kids;
    for (int k = 0; k < 6; ++k) {
      kids.push_back(test::spawn([&, k]() -> int {
        go.wait();
        CreateOptions o;
        o.replace = (k % 2) == 1; // half of them try --force: a live writer refuses them
        auto w = Writer::create(seg.str(), o);
        struct stat st {};
        if (::stat(seg.path().c_str(), &st) != 0) return 60;
        race->winners.fetch_add(1);
        race->dev = st.st_dev;
        race->ino = st.st_ino;
        while (!race->release_winner)
          ::usleep(1000);
        return 0;
      }));
    }
    go.release();
    // Wait until every loser is done (they fail at once), keeping the winner.
    std::vector<test::ChildResult> results(kids.size());
    std::vector<bool> done(kids.size(), false);
    for (int i = 0; i < 20000; ++i) {
      int finished = 0;
      for (std::size_t k = 0; k < kids.size(); ++k) {
        if (done[k]) {
          ++finished;
          continue;
        }
        int status = 0;
        if (::waitpid(kids[k], &status, WNOHANG) == kids[k]) {
          results[k] = test::decode(status);
          done[k] = true;
          ++finished;
        }
      }
      if (finished + race->winners.load() >= static_cast<int>(kids.size()) &&
          race->winners.load() >= 1)
        break;
      std::this_thread::sleep_for(1ms);
    }
    // While the winner still holds its writer, its object and pointer stand.
    struct stat st {};
    REQUIRE(::stat(seg.path().c_str(), &st) == 0);
    CHECK(static_cast<std::uint64_t>(st.st_dev) == race->dev.load());
    CHECK(static_cast<std::uint64_t>(st.st_ino) == race->ino.load());
    const auto objs = objects_of(seg.str());
    CHECK_MESSAGE(objs.size() == 1, "round " << round << ": " << objs.size() << " objects");
    race->release_winner = 1;
    int wins = 0;
    for (std::size_t k = 0; k < kids.size(); ++k) {
      if (!done[k]) results[k] = test::wait_child(kids[k], 20s);
      if (results[k].ok()) ++wins;
      else
        CHECK_MESSAGE((results[k].exited &&
                       (results[k].code == static_cast<int>(Errc::already_exists) ||
                        results[k].code == static_cast<int>(Errc::writer_busy))),
                      "round " << round << " creator " << k << ": " << results[k].describe());
    }
    // Losers that came after a winner had finished may have won too (a
    // replace once no writer was live); at least one won, and the table
    // that stands is whole.
    CHECK(wins >= 1);
    CHECK_NOTHROW(Table::open(seg.str()));
    CHECK(objects_of(seg.str()).size() == 1);
  }
}
