// /dev/shm full at create, and readers in another IPC/mount namespace.
//
// Each case runs in a forked child that enters a private mount namespace
// (unshare(CLONE_NEWNS), / made private so nothing propagates back) and
// mounts a tiny tmpfs over /dev/shm, as a container runtime does. Needs root
// (CAP_SYS_ADMIN); label `root`.
#include "proc.hpp"

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

/// In a child: a private mount namespace (and IPC namespace if asked) with a
/// fresh tmpfs of `size` on /dev/shm. False if the kernel refuses.
bool private_dev_shm(const char* size, bool new_ipc = false) {
  if (::unshare(CLONE_NEWNS | (new_ipc ? CLONE_NEWIPC : 0)) != 0) return false;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  const std::string opts = std::string("size=") + size + ",mode=1777";
  return ::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) == 0;
}

std::vector<std::string> dev_shm_entries() {
  std::vector<std::string> out;
  DIR* d = ::opendir("/dev/shm");
  if (!d) return out;
  while (const dirent* e = ::readdir(d))
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.push_back(e->d_name);
  ::closedir(d);
  return out;
}

/// Fills the filesystem under /dev/shm up to ENOSPC.
void fill_dev_shm() {
  const int fd = ::open("/dev/shm/filler", O_WRONLY | O_CREAT, 0600);
  static const char block[4096] = {};
  while (::write(fd, block, sizeof block) > 0) {
  }
  ::close(fd);
}

} // namespace

TEST_CASE(
    "namespaces: /dev/shm full at create gives no_space, leaves nothing, never SIGBUS later") {
  if (::geteuid() != 0) {
    MESSAGE("not root: no mount namespace; skipped");
    return;
  }
  // Homes in a run directory of this test's own, so nothing is left in the
  // real one whatever the child does.
  char tmpl[] = "/tmp/healthtable-ns-run-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string run = tmpl;
  REQUIRE(::chmod(run.c_str(), 0755) == 0);
  const pid_t p = test::spawn([&]() -> int {
    ::setenv("HEALTHTABLE_RUN_DIR", run.c_str(), 1);
    if (!private_dev_shm("256k")) return 50;
    // 1. Far too big for the tmpfs: fails at create, not on first touch.
    CreateOptions big;
    big.capacity = 4096; // ~5 MiB
    if (test::error_of([&] { (void)Writer::create("too-big", big); }) != Errc::no_space) return 51;
    if (!dev_shm_entries().empty()) return 52; // nothing left behind
    // 2. A table that fits; then the disk fills up behind it.
    CreateOptions small;
    small.capacity = 64; // ~82 KiB of a 256 KiB tmpfs
    small.events = 16;
    auto w = Writer::create("fits", small);
    fill_dev_shm();
    // 3. A second table no longer fits: a clean error, nothing behind.
    if (test::error_of([&] { (void)Writer::create("second", small); }) != Errc::no_space) return 53;
    for (const auto& e : dev_shm_entries())
      if (!e.starts_with("healthtable.fits.") && e != "filler") return 54;
    // 4. The first table's every page was reserved at create: writing and
    //    reading all of it now cannot SIGBUS (this child would die of it).
    for (std::uint32_t i = 0; i < small.capacity; ++i)
      w.mark_unhealthy("provider-" + std::to_string(i), std::string(kReasonMax, 'r'));
    auto t = Table::open("fits");
    if (t.snapshot().size() != small.capacity) return 55;
    // 5. The same through the tool.
    if (test::kHealthctl) {
      const auto r = test::run({test::kHealthctl, "create", "cli-second", "--slots", "64"});
      if (!r.status.exited || r.status.code != static_cast<int>(Errc::no_space)) return 56;
      for (const auto& e : dev_shm_entries())
        if (e.starts_with("healthtable.cli-second.")) return 57;
    }
    return 0;
  });
  const auto r = test::wait_child(p, 60s);
  CHECK_MESSAGE(r.ok(), r.describe());
  std::error_code ec;
  std::filesystem::remove_all(run, ec); // the homes; their objects died with the tmpfs
}

TEST_CASE("namespaces: a reader in another IPC namespace with its own /dev/shm reports absent, "
          "without waiting") {
  if (::geteuid() != 0) return;
  SegmentName seg("ipcns");
  {
    auto w = Writer::create(seg.str());
    w.mark_unhealthy("groq", "x");
  }
  struct Result {
    std::atomic<std::int64_t> open_ns{-1};
  };
  test::Shared<Result> res;
  // Docker's --ipc=private: a new IPC namespace with its own /dev/shm.
  const pid_t p = test::spawn([&]() -> int {
    if (!private_dev_shm("64m", /*new_ipc=*/true)) return 50;
    const auto t0 = std::chrono::steady_clock::now();
    const auto code = test::error_of([&] { (void)Table::open(seg.str()); });
    res->open_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (code != Errc::no_such_segment) return 51;
    if (test::error_of([&] { (void)Writer::open(seg.str()); }) != Errc::no_such_segment) return 52;
    if (test::kHealthctl) {
      const auto r = test::run({test::kHealthctl, "check", seg.str(), "groq"});
      if (r.status.code != static_cast<int>(Errc::no_such_segment)) return 53;
    }
    return 0;
  });
  const auto r = test::wait_child(p, 30s);
  CHECK_MESSAGE(r.ok(), r.describe());
  CHECK(res->open_ns.load() >= 0);
  // Bounded, not timed: an open that waited for the table to appear would
  // take the whole 30 s; 10 s holds on any loaded machine.
  CHECK(res->open_ns.load() < 10'000'000'000);

  // A new IPC namespace alone does NOT hide POSIX shared memory on Linux
  // (it is a tmpfs path, not a SysV object): same /dev/shm, same table.
  const pid_t q = test::spawn([&]() -> int {
    if (::unshare(CLONE_NEWIPC) != 0) return 50;
    return Table::open(seg.str()).find("groq") ? 0 : 51;
  });
  const auto rq = test::wait_child(q, 30s);
  CHECK_MESSAGE(rq.ok(), rq.describe());
}

TEST_CASE("namespaces: a writer in another pid namespace is seen by its lock, not its pid") {
  if (::geteuid() != 0) return;
  SegmentName seg("pidns");
  { auto w = Writer::create(seg.str()); }
  struct State {
    std::atomic<int> ready{0};
    std::atomic<std::int64_t> pid_inside{0};
    std::atomic<pid_t> pid_outside{0}; // the same process, as our namespace numbers it
  };
  test::Shared<State> s;
  // The writer is pid 1 of a new pid namespace (a container's prober): the
  // pid it stamps means nothing out here (our pid 1 is init).
  const pid_t outer = test::spawn([&]() -> int {
    if (::unshare(CLONE_NEWPID) != 0) return 50;
    const pid_t inner = test::spawn([&]() -> int {
      auto w = Writer::open(seg.str());
      s->pid_inside = ::getpid();
      s->ready = 1;
      for (;;)
        ::pause();
    });
    s->pid_outside = inner;
    return test::wait_child(inner, 60s).signal == SIGKILL ? 0 : 51;
  });
  for (int i = 0; i < 5000 && !(s->ready && s->pid_outside); ++i)
    std::this_thread::sleep_for(1ms);
  REQUIRE(s->ready == 1);
  auto t = Table::open(seg.str());
  CHECK(s->pid_inside.load() == 1);
  CHECK(t.info().writer_pid == 1); // a pid from another namespace: informative only
  CHECK(t.writer_status() == WriterStatus::attached); // the kernel's lock knows better
  CHECK(test::error_of([&] { (void)Writer::open(seg.str()); }) == Errc::writer_busy);
  ::kill(s->pid_outside, SIGKILL); // the writer dies; no pid check could have told
  CHECK(test::wait_child(outer, 10s).ok());
  for (int i = 0; i < 2000 && t.writer_status() == WriterStatus::attached; ++i)
    std::this_thread::sleep_for(1ms);
  CHECK(t.writer_status() == WriterStatus::none);
  CHECK_NOTHROW(Writer::open(seg.str()));
}
