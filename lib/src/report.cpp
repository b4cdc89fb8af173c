#include "segment.hpp"

#include <healthtable/home.hpp>

#include <healthtable/detail/datagram.hpp>
#include <healthtable/layout.hpp>
#include <healthtable/names.hpp>
#include <healthtable/report.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

namespace healthtable {

namespace {

/// Fills `sa` with a socket's path; returns the address length to pass to
/// sendto().
socklen_t fill(sockaddr_un& sa, std::string_view address) noexcept {
  std::memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, address.data(), std::min(address.size(), sizeof sa.sun_path - 1));
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1);
}

std::string where(std::string_view address) { return std::string(address); }

[[noreturn]] void no_prober(std::string_view address, std::string_view why) {
  throw Error(Errc::writer_busy,
              "no prober is listening on " + where(address) + " (" + std::string(why) + ")");
}

Errc errc_from_name(std::string_view name) noexcept {
  for (int v = static_cast<int>(Errc::no_such_segment); v <= static_cast<int>(Errc::system_error);
       ++v)
    if (errc_name(static_cast<Errc>(v)) == name) return static_cast<Errc>(v);
  return Errc::system_error;
}

/// Who may answer for a table: its owner. Only the segment's owner can hold
/// its writer lock (Writer refuses other owners), so only a process that
/// can act as that uid can be its prober. Looked up before the request is
/// sent, from the object's inode (no read permission needed), so the answer
/// to "was it applied?" never depends on whether we may map the table.
struct Owner {
  bool known = false;
  uid_t uid = 0;
  std::string why; ///< when not known
};

Owner owner_of(std::string_view segment) {
  Owner o;
  const std::string path = home_dir(segment);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    o.why = path + ": " + std::strerror(errno);
  else if (!S_ISDIR(st.st_mode))
    o.why = path + " is not a directory";
  else {
    o.known = true;
    o.uid = st.st_uid;
  }
  return o;
}

/// Believes a reply only from the table's owner uid. The uid is what the
/// kernel let the sender put in SCM_CREDENTIALS: its real uid unless it
/// attached its own credentials, which the kernel accepts only for a uid the
/// sender holds (real, effective or saved) or with CAP_SETUID. healthprobe
/// attaches its effective uid, the one that owns the segment.
void check_replier(std::string_view segment, std::string_view address, const Owner& owner,
                   const std::optional<ucred>& cred) {
  const std::string who =
      cred ? "uid " + std::to_string(cred->uid) + " (pid " + std::to_string(cred->pid) + ")"
           : std::string("a sender without credentials");
  if (!owner.known)
    throw Error(Errc::no_such_segment,
                "the control socket " + where(address) + " answered from " + who + ", but table '" +
                    std::string(segment) + "' cannot be checked here (" + owner.why +
                    "): its reply is not trusted (another mount namespace?)");
  if (cred && cred->uid == owner.uid) return;
  throw Error(Errc::permission_denied,
              "the control socket " + where(address) + " answered from " + who + ", but table '" +
                  std::string(segment) + "' belongs to uid " + std::to_string(owner.uid) +
                  ": that is not this table's prober, so its reply is not trusted ('ss -xlp | "
                  "grep " + std::string(address) + "' names the process bound there)");
}

} // namespace

std::string control_address(std::string_view segment) {
  std::string path = control_path(segment);
  if (path.size() >= sizeof(sockaddr_un{}.sun_path))
    throw Error(Errc::invalid_name, "the control socket of table '" + std::string(segment) +
                                        "' would be " + path + ", " + std::to_string(path.size()) +
                                        " bytes: longer than a socket path may be (" +
                                        std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                        "); use a shorter table name or HEALTHTABLE_RUN_DIR");
  return path;
}

Reporter::Reporter(std::string_view segment) : address_(control_address(segment)) {
  // Unnamed (no bind, no SO_PASSCRED, so no autobind): the prober sees no
  // address and sends no reply.
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0)
    throw Error(Errc::system_error,
                std::string("cannot create the reporting socket: ") + std::strerror(errno));
}

Reporter::~Reporter() {
  if (fd_ >= 0) ::close(fd_);
}

Reporter::Reporter(Reporter&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), address_(std::move(other.address_)) {}

Reporter& Reporter::operator=(Reporter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    address_ = std::move(other.address_);
  }
  return *this;
}

bool Reporter::send(std::string_view line) noexcept {
  if (fd_ < 0 || line.size() > kControlRequestMax) return false;
  sockaddr_un sa{};
  const socklen_t len = fill(sa, address_);
  ssize_t n = -1;
  do {
    n = ::sendto(fd_, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&sa), len);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(line.size());
}

bool Reporter::success(std::string_view provider) noexcept {
  try {
    validate_provider_name(provider);
    std::string line = "record ";
    line += provider;
    line += " success";
    return send(line);
  } catch (...) {
    return false;
  }
}

namespace {

/// A hint as the control grammar's retry=DURATION: whole seconds when
/// exact, else milliseconds rounded up (a worker waits no less than told).
std::string retry_word(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  // No max_hint is longer (validate_policy): the prober would cut it anyway.
  const nanoseconds hint = std::clamp<nanoseconds>(d, nanoseconds(0), kMaxBackoff);
  if (hint % seconds(1) == nanoseconds(0)) return std::to_string(hint / seconds(1)) + "s";
  return std::to_string(ceil<milliseconds>(hint).count()) + "ms";
}

bool looks_like_key(std::string_view reason) noexcept {
  return reason.starts_with("class=") || reason.starts_with("retry=") ||
         reason.starts_with("reason=");
}

} // namespace

std::string failure_request(std::string_view provider, std::string_view reason,
                            FailureClass cls, std::optional<std::chrono::nanoseconds> retry_after) {
  if (cls == FailureClass::none || static_cast<std::size_t>(cls) >= kFailureClasses)
    throw Error(Errc::invalid_argument,
                "a failure needs a failure class (timeout, connect, server, rate_limited, auth, "
                "client or other); a success is recorded as success");
  validate_provider_name(provider);
  std::string line = "record ";
  line += provider;
  line += " failure";
  // Class other and no hint: the line a prober before classes understood.
  if (cls != FailureClass::other) {
    line += " class=";
    line += class_name(cls);
  }
  if (retry_after) {
    line += " retry=";
    line += retry_word(*retry_after);
  }
  const std::string r = sanitize_reason(reason, kReasonMax);
  if (!r.empty()) {
    line += looks_like_key(r) ? " reason=" : " ";
    line += r;
  }
  return line;
}

bool Reporter::failure(std::string_view provider, std::string_view reason, FailureClass cls,
                       std::optional<std::chrono::nanoseconds> retry_after) noexcept {
  try {
    return send(failure_request(provider, reason, cls, retry_after));
  } catch (...) {
    return false;
  }
}

std::string request(std::string_view segment, std::string_view line,
                    std::chrono::milliseconds timeout) {
  const std::string address = control_address(segment);
  if (line.size() > kControlRequestMax)
    throw Error(Errc::invalid_argument, "control request is " + std::to_string(line.size()) +
                                            " bytes; the limit is " +
                                            std::to_string(kControlRequestMax));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw Error(Errc::system_error,
                std::string("cannot create a control socket: ") + std::strerror(errno));
  struct Guard {
    int fd;
    ~Guard() { ::close(fd); }
  } guard{fd};
  // SO_PASSCRED: the kernel attaches the replier's credentials to what we
  // receive, so an impostor on the prober's address is caught below.
  const int on = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0)
    throw Error(Errc::system_error,
                std::string("cannot enable SO_PASSCRED: ") + std::strerror(errno));
  // Autobind: the kernel picks a unique abstract name, so the prober has an
  // address to answer to.
  sockaddr_un self{};
  self.sun_family = AF_UNIX;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&self), sizeof(sa_family_t)) != 0)
    throw Error(Errc::system_error,
                std::string("cannot bind a control socket: ") + std::strerror(errno));

  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  auto left_ms = [&] {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 0));
  };
  sockaddr_un to{};
  const socklen_t to_len = fill(to, address);
  const Owner owner = owner_of(segment);
  for (;;) {
    const ssize_t n = ::sendto(fd, line.data(), line.size(), MSG_NOSIGNAL,
                               reinterpret_cast<const sockaddr*>(&to), to_len);
    if (n == static_cast<ssize_t>(line.size())) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == ECONNREFUSED || errno == ENOENT))
      no_prober(address, "nothing is bound to it: no healthprobe, or [control] enabled = false");
    if (n < 0 && errno == EAGAIN) { // the prober's queue is full: it is busy, wait a little
      if (left_ms() == 0) no_prober(address, "its queue stayed full");
      ::poll(nullptr, 0, std::min(left_ms(), 10));
      continue;
    }
    if (n < 0 && (errno == EPERM || errno == EACCES))
      throw Error(Errc::permission_denied,
                  "not allowed to send to the control socket " + where(address) +
                      " (its mode admits only the prober's [control] group); ask its operator "
                      "to add you to that group");
    throw Error(Errc::system_error, "cannot send to the control socket " + where(address) + ": " +
                                        (n < 0 ? std::strerror(errno) : "short send"));
  }

  char buf[4096];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, left_ms());
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw Error(Errc::system_error, std::string("poll: ") + std::strerror(errno));
    if (ready == 0)
      no_prober(address, "no answer within " + format_duration(std::chrono::nanoseconds(timeout)));
    const detail::Received got = detail::receive_datagram(fd, buf, sizeof buf, 0);
    const ssize_t n = got.size;
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) throw Error(Errc::system_error, std::string("recvmsg: ") + std::strerror(errno));
    // Only the prober's address answers; anything else is a stray.
    if (std::strncmp(got.from.sun_path, to.sun_path, sizeof to.sun_path) != 0)
      continue;
    check_replier(segment, address, owner, got.cred);
    std::string_view reply(buf, static_cast<std::size_t>(n));
    while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r'))
      reply.remove_suffix(1);
    if (reply == "ok") return {};
    if (reply.starts_with("ok ")) return std::string(reply.substr(3));
    if (reply.starts_with("error ")) {
      reply.remove_prefix(6);
      const auto space = reply.find(' ');
      const std::string_view name = reply.substr(0, space);
      const std::string_view message =
          space == std::string_view::npos ? name : reply.substr(space + 1);
      throw Error(errc_from_name(name), sanitize_reason(message, kControlRequestMax * 2));
    }
    throw Error(Errc::system_error,
                "unexpected reply from the prober: " + sanitize_reason(reply, 200));
  }
}

} // namespace healthtable
