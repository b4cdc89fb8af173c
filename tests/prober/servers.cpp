#include "servers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace healthtable::test {

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

int listen_loopback(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); // loopback only, always
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (::listen(fd, 4096) != 0) die("listen");
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

void make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) die("pipe2");
}

void stop_thread(int wake[2], std::thread& t) {
  if (wake[1] >= 0) {
    const char c = 'x';
    [[maybe_unused]] auto n = ::write(wake[1], &c, 1);
  }
  if (t.joinable()) t.join();
  for (int i = 0; i < 2; ++i)
    if (wake[i] >= 0) ::close(wake[i]);
}

std::string reason_phrase(int status) {
  switch (status) {
  case 200: return "OK";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Status";
  }
}

std::string decode_spaces(std::string value) {
  for (std::size_t at; (at = value.find("%20")) != std::string::npos;)
    value.replace(at, 3, " ");
  return value;
}

/// "Retry-After=30&x=a%20b" as the header lines "Retry-After: 30" and
/// "x: a b" (only %20 is decoded: enough for an HTTP date).
std::string query_headers(std::string query) {
  std::string out;
  std::istringstream parts(query);
  std::string part;
  while (std::getline(parts, part, '&')) {
    const auto eq = part.find('=');
    if (eq == std::string::npos) continue;
    out += part.substr(0, eq) + ": " + decode_spaces(part.substr(eq + 1)) + "\r\n";
  }
  return out;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace

// --- HttpServer -------------------------------------------------------------

HttpServer::HttpServer() {
  listen_fd_ = listen_loopback(&port_);
  make_pipe(wake_);
  thread_ = std::thread([this] { loop(); });
}

HttpServer::~HttpServer() {
  stop_thread(wake_, thread_);
  ::close(listen_fd_);
}

std::string HttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<std::string> HttpServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void HttpServer::loop() {
  struct Conn {
    int fd = -1;
    std::string in;
    std::optional<Clock::time_point> answer_at;
    int status = 0;
    bool hang = false;
    std::string headers; ///< extra response header lines, each ending in CRLF
    std::string body = "ok";
    bool head = false;       ///< a HEAD request: the headers only
    std::size_t missing = 0; ///< body bytes promised by Content-Length, never sent
    bool stall = false;      ///< keep the connection open once the answer is sent
    std::string out;         ///< the answer not yet sent
    bool answered = false;
  };
  std::vector<Conn> conns;
  std::vector<pollfd> fds;
  for (;;) {
    auto now = Clock::now();
    int wait_ms = 100;
    for (const auto& c : conns)
      if (c.answer_at && !c.answered) {
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*c.answer_at - now).count();
        wait_ms = std::min<int>(wait_ms, static_cast<int>(std::max<std::int64_t>(ms, 0)));
      }
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const auto& c : conns) {
      const auto events = static_cast<short>(!c.out.empty() ? POLLOUT : c.answer_at ? 0 : POLLIN);
      fds.push_back({c.fd, events, 0});
    }
    if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) break;
    if (fds[0].revents) break;
    if (fds[1].revents & POLLIN) {
      for (;;) {
        const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) break;
        ++accepted_;
        conns.push_back({});
        conns.back().fd = c;
      }
    }
    now = Clock::now();
    std::vector<Conn> keep;
    keep.reserve(conns.size());
    for (std::size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      const short rev = i + 2 < fds.size() && fds[i + 2].fd == c.fd ? fds[i + 2].revents : 0;
      bool closed = false;
      if ((rev & (POLLIN | POLLHUP | POLLERR)) && c.out.empty()) {
        char buf[4096];
        const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n <= 0) {
          closed = true;
        } else if (!c.hang) {
          c.in.append(buf, static_cast<std::size_t>(n));
          const auto end = c.in.find("\r\n\r\n");
          if (end != std::string::npos && !c.answer_at && !c.answered) {
            const std::string head = c.in.substr(0, end);
            {
              std::lock_guard lock(mu_);
              requests_.push_back(head);
            }
            std::istringstream line(head);
            std::string method, path;
            line >> method >> path;
            int delay = 0;
            c.status = default_status_;
            if (const auto q = path.find('?'); q != std::string::npos) {
              c.headers = query_headers(path.substr(q + 1));
              path.erase(q);
            }
            if (path.rfind("/status/", 0) == 0) {
              c.status = std::atoi(path.c_str() + 8);
            } else if (path.rfind("/slow/", 0) == 0) {
              delay = std::atoi(path.c_str() + 6);
              const auto slash = path.find('/', 6);
              c.status = slash == std::string::npos ? 200 : std::atoi(path.c_str() + slash + 1);
            } else if (path == "/hang") {
              c.hang = true;
            } else if (path == "/close") {
              closed = true;
            } else if (path.rfind("/headers/", 0) == 0) {
              c.status = 200;
              const auto slash = path.find('/', 9);
              const int count = std::atoi(path.c_str() + 9);
              const auto bytes = static_cast<std::size_t>(
                  slash == std::string::npos ? 0 : std::atol(path.c_str() + slash + 1));
              for (int h = 0; h < count; ++h)
                c.headers += "X-Pad-" + std::to_string(h) + ": " + std::string(bytes, 'a') + "\r\n";
            } else if (path.rfind("/body/", 0) == 0) {
              c.status = 200;
              const auto slash = path.find('/', 6);
              const auto pad = static_cast<std::size_t>(std::atol(path.c_str() + 6));
              c.body = std::string(pad, 'x') +
                       (slash == std::string::npos ? "" : decode_spaces(path.substr(slash + 1)));
            } else if (path == "/stall" || path == "/cut") {
              c.status = 200;
              c.missing = 100;
              c.stall = path == "/stall";
            }
            c.head = method == "HEAD";
            if (!c.hang && !closed) c.answer_at = now + std::chrono::milliseconds(delay);
          }
        }
      }
      if (!closed && !c.answered && c.answer_at && *c.answer_at <= now) {
        const std::size_t length = c.body.size() + c.missing;
        c.out = "HTTP/1.1 " + std::to_string(c.status) + " " + reason_phrase(c.status) + "\r\n" +
                c.headers +
                "Content-Type: text/plain\r\nContent-Length: " + std::to_string(length) +
                "\r\nConnection: close\r\n\r\n" + (c.head ? std::string() : c.body);
        c.answered = true;
      }
      // Large answers (a huge header, a long body) go out as the socket takes them.
      while (!closed && !c.out.empty()) {
        const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        if (n <= 0) {
          closed = true;
          break;
        }
        c.out.erase(0, static_cast<std::size_t>(n));
      }
      if (c.answered && c.out.empty() && !c.stall) closed = true;
      // A stalled connection stays until the client closes it (POLLIN then reads 0).
      if (c.stall && c.answered && c.out.empty()) c.answer_at.reset();
      if (closed)
        ::close(c.fd);
      else
        keep.push_back(std::move(c));
    }
    conns = std::move(keep);
  }
  for (auto& c : conns)
    ::close(c.fd);
}

// --- TcpListener ------------------------------------------------------------

TcpListener::TcpListener() {
  listen_fd_ = listen_loopback(&port_);
  make_pipe(wake_);
  thread_ = std::thread([this] {
    pollfd fds[2] = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (;;) {
      if (::poll(fds, 2, 100) < 0 && errno != EINTR) return;
      if (fds[0].revents) return;
      for (;;) {
        const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) break;
        ::close(c);
      }
    }
  });
}

TcpListener::~TcpListener() {
  stop_thread(wake_, thread_);
  ::close(listen_fd_);
}

int refused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd); // bound, never listened: connecting is refused
  return ntohs(addr.sin_port);
}

// --- TempDir ----------------------------------------------------------------

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "healthprobe-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) die("mkdtemp");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path TempDir::write(const std::string& name, const std::string& text) const {
  const auto target = path_ / name;
  const auto tmp = path_ / (name + ".tmp");
  {
    std::ofstream out(tmp);
    out << text;
  }
  std::filesystem::rename(tmp, target);
  return target;
}

// --- Child ------------------------------------------------------------------

Child::Child(const std::vector<std::string>& argv, const std::filesystem::path& log_dir,
             const std::map<std::string, std::string>& env) {
  static std::atomic<int> counter{0};
  const int n = counter++;
  out_ = log_dir / ("child-" + std::to_string(n) + ".out");
  err_ = log_dir / ("child-" + std::to_string(n) + ".err");
  pid_ = ::fork();
  if (pid_ < 0) die("fork");
  if (pid_ == 0) {
    const int o = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    // The test runner may block signals; the child must start clean.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const auto& [k, v] : env)
      ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
}

Child::~Child() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

std::string Child::err() const { return read_file(err_); }
std::string Child::out() const { return read_file(out_); }

bool Child::wait_for_err(const std::string& text, std::chrono::milliseconds timeout) const {
  return eventually([&] { return err().find(text) != std::string::npos; }, timeout);
}

void Child::signal(int sig) const { ::kill(pid_, sig); }

bool Child::running() {
  if (status_) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return r == 0;
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
  eventually([&] { return !running(); }, timeout);
  return status_;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// --- TlsServer --------------------------------------------------------------

namespace {

void run(const std::string& cmd) {
  if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0)
    throw std::runtime_error("command failed: " + cmd);
}

std::string ssl_error() {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  return buf;
}

} // namespace

TlsServer::TlsServer(const TempDir& dir) {
  const auto d = dir.path().string();
  ca_ = dir / "ca.pem";
  // A throwaway CA, and a server certificate it signs for 127.0.0.1.
  run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
      " -subj /CN=healthprobe-test-ca -keyout " +
      d + "/ca.key -out " + d + "/ca.pem");
  run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      " -subj /CN=localhost -keyout " +
      d + "/server.key -out " + d + "/server.csr");
  dir.write("ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d +
      "/ca.key -CAcreateserial -days 1 -extfile " + d + "/ext.cnf -out " + d + "/server.pem");

  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) throw std::runtime_error("SSL_CTX_new: " + ssl_error());
  ctx_ = ctx;
  if (SSL_CTX_use_certificate_chain_file(ctx, (d + "/server.pem").c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, (d + "/server.key").c_str(), SSL_FILETYPE_PEM) != 1) {
    const std::string why = ssl_error();
    SSL_CTX_free(ctx);
    throw std::runtime_error("the HTTPS test server cannot load its certificate: " + why);
  }
  // Session caching and tickets stay at OpenSSL's defaults (on): a client
  // that tried to resume would succeed and be counted in resumed().
  listen_fd_ = listen_loopback(&port_);
  make_pipe(wake_);
  thread_ = std::thread([this] { loop(); });
}

TlsServer::~TlsServer() {
  stop_thread(wake_, thread_);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

void TlsServer::loop() {
  // OpenSSL writes with write(2): a client that hung up must cost an EPIPE
  // on this thread, not a SIGPIPE that kills the test.
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);

  enum class Step { handshake, read, write };
  struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
    Step step = Step::handshake;
    short want = POLLIN;
    std::string in;
  };
  static const std::string kAnswer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                     "Content-Length: 2\r\nConnection: close\r\n\r\nok";
  // Takes a connection as far as it goes without blocking; true when it is
  // finished (answered, or failed) and should be closed.
  auto advance = [this](Conn& c) {
    for (;;) {
      int r = 0;
      switch (c.step) {
      case Step::handshake:
        r = SSL_do_handshake(c.ssl);
        if (r == 1) {
          ++handshakes_;
          if (SSL_session_reused(c.ssl)) ++resumed_;
          c.step = Step::read;
          continue;
        }
        break;
      case Step::read: {
        char buf[4096];
        r = SSL_read(c.ssl, buf, sizeof buf);
        if (r > 0) {
          c.in.append(buf, static_cast<std::size_t>(r));
          if (c.in.find("\r\n\r\n") != std::string::npos) c.step = Step::write;
          continue;
        }
        break;
      }
      case Step::write:
        r = SSL_write(c.ssl, kAnswer.data(), static_cast<int>(kAnswer.size()));
        if (r > 0) {
          ++requests_;
          return true;
        }
        break;
      }
      switch (SSL_get_error(c.ssl, r)) {
      case SSL_ERROR_WANT_READ: c.want = POLLIN; return false;
      case SSL_ERROR_WANT_WRITE: c.want = POLLOUT; return false;
      default:
        ERR_clear_error(); // the client gave up, or refused our certificate
        return true;
      }
    }
  };
  auto* ctx = static_cast<SSL_CTX*>(ctx_);
  std::vector<Conn> conns;
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const auto& c : conns)
      fds.push_back({c.fd, c.want, 0});
    if (::poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) break;
    if (fds[0].revents) break;
    if (fds[1].revents & POLLIN) {
      for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        ++accepted_;
        SSL* ssl = SSL_new(ctx);
        if (!ssl || SSL_set_fd(ssl, fd) != 1) {
          SSL_free(ssl);
          ::close(fd);
          continue;
        }
        SSL_set_accept_state(ssl);
        conns.push_back({fd, ssl, Step::handshake, POLLIN, {}});
      }
    }
    std::vector<Conn> keep;
    keep.reserve(conns.size());
    for (std::size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      const short rev = i + 2 < fds.size() && fds[i + 2].fd == c.fd ? fds[i + 2].revents : 0;
      if (rev != 0 && advance(c)) {
        SSL_shutdown(c.ssl); // one close_notify, not waiting for the client's
        SSL_free(c.ssl);
        ::close(c.fd);
      } else {
        keep.push_back(std::move(c));
      }
    }
    conns = std::move(keep);
  }
  for (auto& c : conns) {
    SSL_free(c.ssl);
    ::close(c.fd);
  }
}

// --- limits and CPU ---------------------------------------------------------

void raise_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::chrono::microseconds thread_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::microseconds(ts.tv_nsec / 1000);
}

std::chrono::microseconds process_cpu_time(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all;
  std::getline(in, all);
  // Fields after the command name "(...)": state is field 3; utime 14, stime 15.
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  return std::chrono::microseconds((utime + stime) * 1'000'000 / hz);
}

} // namespace healthtable::test
