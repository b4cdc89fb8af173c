// A TCP server on 127.0.0.1 that accepts and never answers: a provider that
// hangs. It counts the connections open at once, so a test can tell a
// provider probed twice concurrently from one probed again after the first
// probe gave up.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <thread>

namespace healthtable::test {

class SilentServer {
public:
  SilentServer();
  ~SilentServer();
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  std::size_t accepted() const noexcept { return accepted_; }   ///< connections, all time
  std::size_t open() const noexcept { return open_; }           ///< connections open now
  std::size_t most_open() const noexcept { return most_open_; } ///< the most open at once

private:
  void loop();
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<std::size_t> accepted_{0};
  std::atomic<std::size_t> open_{0};
  std::atomic<std::size_t> most_open_{0};
  std::thread thread_;
};

} // namespace healthtable::test
