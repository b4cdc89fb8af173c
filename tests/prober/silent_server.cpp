#include "silent_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace healthtable::test {

namespace {

[[noreturn]] void die(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

} // namespace

SilentServer::SilentServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); // loopback only, always
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (::listen(listen_fd_, 64) != 0) die("listen");
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) die("pipe2");
  thread_ = std::thread([this] { loop(); });
}

SilentServer::~SilentServer() {
  const char c = 'x';
  [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
  thread_.join();
  ::close(wake_[0]);
  ::close(wake_[1]);
  ::close(listen_fd_);
}

void SilentServer::loop() {
  std::vector<int> conns;
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (int c : conns)
      fds.push_back({c, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) break;
    if (fds[0].revents) break;
    // Closes before accepts: a client that gives up and connects again at
    // once must not look like two connections at the same time.
    std::vector<int> keep;
    for (std::size_t i = 0; i < conns.size(); ++i) {
      bool closed = false;
      if (fds[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[4096];
        const ssize_t n = ::recv(conns[i], buf, sizeof buf, 0); // read and ignore
        closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
      }
      if (closed) {
        ::close(conns[i]);
        --open_;
      } else {
        keep.push_back(conns[i]);
      }
    }
    conns.swap(keep);
    if (fds[1].revents & POLLIN) {
      for (;;) {
        const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) break;
        conns.push_back(c);
        ++accepted_;
        most_open_ = std::max<std::size_t>(most_open_, ++open_);
      }
    }
  }
  for (int c : conns)
    ::close(c);
}

} // namespace healthtable::test
