// Process helpers for the reliability suite: forked children that cannot
// hang the test (every child arms alarm(); every wait has a deadline), shared
// counters in an anonymous MAP_SHARED mapping, raw access to a segment's
// bytes (to corrupt it on purpose), and running the built tools.
//
// Children never use doctest macros: they report through their exit code or
// through Shared<T>, and the parent asserts.
#pragma once

#include <healthtable/error.hpp>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace healthtable::test {

// Exit codes a child uses beyond the Errc values (3..16).
inline constexpr int kChildOk = 0;
inline constexpr int kChildFailed = 70;    // an assertion in the child failed
inline constexpr int kChildException = 71; // something other than healthtable::Error
inline constexpr int kChildTimeout = 72;   // reported by wait_child on our deadline

/// Runs `fn` in a forked child that dies by SIGALRM after `limit_s`. The
/// child exits with fn's return value, or with the Errc of an Error it threw
/// (so a parent can CHECK(exit == int(Errc::already_exists))).
template <class F> pid_t spawn(F&& fn, unsigned limit_s = 30) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid > 0) return pid;
  ::alarm(limit_s);
  int code = kChildException;
  try {
    code = fn();
  } catch (const Error& e) {
    code = static_cast<int>(e.code());
  } catch (...) {
    code = kChildException;
  }
  ::_exit(code); // no atexit, no doctest teardown, no leak report in children
}

/// What became of a child.
struct ChildResult {
  bool exited = false;
  int code = -1;  ///< exit code if exited
  int signal = 0; ///< terminating signal otherwise
  bool timed_out = false;
  bool ok() const noexcept { return exited && code == kChildOk; }
  std::string describe() const {
    if (timed_out) return "timed out (killed)";
    if (exited) return "exit " + std::to_string(code);
    return "signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  }
};

inline ChildResult decode(int status) {
  ChildResult r;
  if (WIFEXITED(status)) {
    r.exited = true;
    r.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

/// Waits for `pid` at most `limit`; on timeout SIGKILLs and reaps it.
inline ChildResult wait_child(pid_t pid,
                              std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode(status);
    if (r < 0 && errno != EINTR) return ChildResult{};
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ChildResult t = decode(status);
      t.timed_out = true;
      return t;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

/// Kills and reaps; returns the status.
inline ChildResult kill_and_reap(pid_t pid, int sig = SIGKILL) {
  ::kill(pid, sig);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return decode(status);
}

/// A T in memory shared with forked children (MAP_SHARED | MAP_ANONYMOUS).
/// T should hold lock-free atomics only.
template <class T> class Shared {
public:
  Shared() {
    void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    ptr_ = new (p) T();
  }
  ~Shared() {
    ptr_->~T();
    ::munmap(ptr_, sizeof(T));
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  T* operator->() const noexcept { return ptr_; }
  T& operator*() const noexcept { return *ptr_; }

private:
  T* ptr_ = nullptr;
};

/// Releases many forked children at once: they block in wait() until the
/// parent calls release() (a pipe whose write end the parent closes).
class Barrier {
public:
  Barrier() {
    if (::pipe(fds_) != 0) throw std::runtime_error("pipe failed");
  }
  ~Barrier() {
    close_fd(fds_[0]);
    close_fd(fds_[1]);
  }
  /// In a child: drop the write end, block until the parent releases.
  void wait() {
    close_fd(fds_[1]);
    char c;
    while (::read(fds_[0], &c, 1) < 0 && errno == EINTR) {
    }
  }
  /// In the parent, after forking every child.
  void release() { close_fd(fds_[1]); }

private:
  static void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int fds_[2] = {-1, -1};
};

/// A watchdog for the test process itself: a test that hangs dies by
/// SIGALRM (CTest reports it failed) instead of stalling CI.
class Watchdog {
public:
  explicit Watchdog(unsigned seconds) { ::alarm(seconds); }
  ~Watchdog() { ::alarm(0); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
};

// ---------------------------------------------------------------------------
// Raw segment bytes, bypassing the library: how tests build bad segments.

/// The bytes of the object at `path` (test::SegmentName::path()).
inline std::vector<std::uint8_t> read_image(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("read_image: open failed");
  struct stat st {};
  ::fstat(fd, &st);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

/// Replaces the object at `path` by a new one holding exactly `bytes`.
inline void write_image(const std::string& path, const std::uint8_t* bytes, std::size_t size,
                        mode_t mode = 0644) {
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("write_image: open failed");
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, bytes + done, size - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (done != size) throw std::runtime_error("write_image: short write");
}
inline void write_image(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  write_image(path, bytes.data(), bytes.size());
}

/// A read-write mapping of the whole object at `path`, to flip bytes of a
/// live table.
class RawMapping {
public:
  explicit RawMapping(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("RawMapping: open failed");
    struct stat st {};
    ::fstat(fd, &st);
    size_ = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) throw std::runtime_error("RawMapping: mmap failed");
    base_ = static_cast<std::uint8_t*>(p);
  }
  ~RawMapping() { ::munmap(base_, size_); }
  RawMapping(const RawMapping&) = delete;
  RawMapping& operator=(const RawMapping&) = delete;
  std::uint8_t* base() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  template <class T> T& at(std::size_t offset) const noexcept {
    return *reinterpret_cast<T*>(base_ + offset);
  }

private:
  std::uint8_t* base_ = nullptr;
  std::size_t size_ = 0;
};

/// The Errc of what `fn` throws, or nothing if it returns normally. Anything
/// that is not a healthtable::Error propagates (and fails the test).
template <class F> std::optional<Errc> error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// The built tools (defined by CMake when they exist).

#ifdef HEALTHTABLE_HEALTHCTL
inline constexpr const char* kHealthctl = HEALTHTABLE_HEALTHCTL;
#else
inline constexpr const char* kHealthctl = nullptr;
#endif

/// Runs argv in a child (optionally as `nobody`), stdout/stderr to
/// /dev/null unless `out` is given; bounded by `limit`.
struct RunResult {
  ChildResult status;
  std::string out;
};

inline RunResult run(const std::vector<std::string>& argv, bool as_nobody = false,
                     std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(static_cast<unsigned>(limit.count() / 1000 + 1));
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    if (as_nobody) {
      const gid_t g = 65534;
      const uid_t u = 65534;
      if (::setgroups(0, nullptr) != 0 || ::setresgid(g, g, g) != 0 || ::setresuid(u, u, u) != 0)
        ::_exit(kChildFailed);
    }
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  RunResult r;
  char buf[4096];
  ssize_t n;
  // The child's alarm bounds this read.
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0)
    r.out.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  r.status = wait_child(pid, limit);
  return r;
}

/// setresuid/setresgid to nobody:nogroup with no supplementary groups, in a
/// child. Returns false if that is not possible (not root).
inline bool become_nobody() {
  const gid_t g = 65534;
  const uid_t u = 65534;
  return ::setgroups(0, nullptr) == 0 && ::setresgid(g, g, g) == 0 && ::setresuid(u, u, u) == 0;
}

} // namespace healthtable::test
