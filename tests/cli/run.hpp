// Runs the built healthctl (HEALTHCTL_PATH) and captures what it did.
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace healthtable::test {

struct Run {
  int status = -1; ///< exit code; 128 + signal if it died of one
  std::string out;
  std::string err;
};

/// argv for healthctl ARGS...: pointers into `storage`, which must outlive them.
inline std::vector<char*> healthctl_argv(const std::vector<std::string>& args,
                                         std::vector<std::string>& storage) {
  storage = {HEALTHCTL_PATH};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : storage)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

/// The lines of `text`, without their newlines.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t nl = text.find('\n', start);
    out.push_back(text.substr(start, nl == std::string::npos ? nl : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

/// healthctl ARGS..., stdout and stderr captured separately, stdin empty.
inline Run healthctl(const std::vector<std::string>& args) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<std::string> storage;
  std::vector<char*> argv = healthctl_argv(args, storage);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, HEALTHCTL_PATH, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw std::runtime_error("cannot spawn " HEALTHCTL_PATH);
  }
  Run r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return r;
}

inline std::size_t count_lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

/// A failure as healthctl must report one: the exit code, nothing on
/// stdout, and exactly one line on stderr, "healthctl: ...", containing
/// `needle`.
inline void check_error(const Run& r, int code, const std::string& needle) {
  INFO("stdout: ", r.out);
  INFO("stderr: ", r.err);
  CHECK(r.status == code);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("healthctl: ", 0) == 0);
  CHECK(count_lines(r.err) == 1);
  CHECK(r.err.back() == '\n');
  CHECK(r.err.find(needle) != std::string::npos);
}

/// A success: exit 0, nothing on stderr. Returns stdout.
inline std::string check_ok(const Run& r) {
  INFO("stdout: ", r.out);
  INFO("stderr: ", r.err);
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  return r.out;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace healthtable::test
