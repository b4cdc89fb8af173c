// Test helpers for the prober: real servers on 127.0.0.1 (never any other
// address), child processes with captured stderr, and scratch directories.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace healthtable::test {

/// An HTTP/1.1 server on 127.0.0.1 with one thread and a poll() loop, so a
/// thousand connections cost no threads. Paths:
///   /status/NNN       answer NNN at once
///   ...?Name=Value&... the same, with these response headers ("%20" is a space)
///   /slow/MS/NNN      answer NNN after MS milliseconds
///   /hang             read the request, never answer (until the server stops)
///   /close            close without answering (an empty reply)
///   /headers/N/BYTES  answer 200 with N extra header lines of BYTES bytes each
///   /body/PAD/TEXT    answer 200 with a body of PAD 'x's, then TEXT ("%20" is a space)
///   /stall            answer 200 with a 102-byte Content-Length, send 2 bytes, then wait
///   /cut              the same, but close after the 2 bytes
///   anything else     answer default_status() (settable while running)
/// Every other answer's body is "ok"; a HEAD request gets the headers only.
class HttpServer {
public:
  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const noexcept { return port_; }
  std::string url(const std::string& path = "/") const;
  void set_default_status(int status) noexcept { default_status_ = status; }
  /// Request heads received so far (request line and headers).
  std::vector<std::string> requests() const;
  std::size_t accepted() const noexcept { return accepted_; }

private:
  void loop();
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<int> default_status_{200};
  std::atomic<std::size_t> accepted_{0};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

/// A TCP listener on 127.0.0.1 that accepts and closes every connection.
class TcpListener {
public:
  TcpListener();
  ~TcpListener();
  int port() const noexcept { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

private:
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

/// A 127.0.0.1 port with nothing listening (bound for a moment, then freed).
int refused_port();

/// A scratch directory, removed with everything in it.
class TempDir {
public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  /// Writes `text` to `name` (atomically: a reloading prober never reads half a file).
  std::filesystem::path write(const std::string& name, const std::string& text) const;

private:
  std::filesystem::path path_;
};

/// A child process whose stdout and stderr go to files; killed (SIGKILL) and
/// reaped by the destructor if still running.
class Child {
public:
  Child(const std::vector<std::string>& argv, const std::filesystem::path& log_dir,
        const std::map<std::string, std::string>& env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  int pid() const noexcept { return pid_; }
  std::string err() const; ///< everything written to stderr so far
  std::string out() const;
  /// Polls stderr until it contains `text`; false on timeout.
  bool wait_for_err(const std::string& text, std::chrono::milliseconds timeout) const;
  void signal(int sig) const;
  /// The exit code (128 + signal when killed), or nothing on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();

private:
  int pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path out_;
  std::filesystem::path err_;
};

/// Waits until `pred` holds, polling every 10 ms; false on timeout.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

/// A CA and a server certificate for 127.0.0.1 and localhost, made with the
/// openssl command line, and an HTTPS/1.1 server on 127.0.0.1 using them:
/// OpenSSL on one thread with a poll() loop (like HttpServer, so a thousand
/// handshakes in flight cost no threads), answering every request 200. It
/// counts what it saw, so a test can tell a probe that reached the server
/// from one recorded as failed without ever trying.
class TlsServer {
public:
  explicit TlsServer(const TempDir& dir);
  ~TlsServer();
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/"; }
  std::string ca_file() const { return ca_.string(); }
  std::size_t accepted() const noexcept { return accepted_; }     ///< TCP connections
  std::size_t handshakes() const noexcept { return handshakes_; } ///< TLS handshakes completed
  std::size_t resumed() const noexcept { return resumed_; }       ///< of those, sessions resumed
  std::size_t requests() const noexcept { return requests_; }     ///< request heads answered

private:
  void loop();
  std::filesystem::path ca_;
  void* ctx_ = nullptr; ///< SSL_CTX*, kept out of this header
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<std::size_t> accepted_{0};
  std::atomic<std::size_t> handshakes_{0};
  std::atomic<std::size_t> resumed_{0};
  std::atomic<std::size_t> requests_{0};
  std::thread thread_;
};

/// Raises the open-file soft limit to the hard limit (a thousand probes and
/// a thousand server-side sockets live in one test process).
void raise_file_limit();

/// CPU time (user + system) of the calling thread, or of process `pid`.
std::chrono::microseconds thread_cpu_time();
std::chrono::microseconds process_cpu_time(int pid);

} // namespace healthtable::test
