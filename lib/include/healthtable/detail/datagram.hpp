// detail: the control socket's datagrams with credentials, shared by the
// client (healthtable::request(), lib/src/report.cpp) and the server
// (healthprobe's Control). Not part of the library's API.
//
// Both sides authorize by the credentials the kernel attaches to a Unix
// datagram (SCM_CREDENTIALS, which the receiver asks for with SO_PASSCRED).
// By default those carry the sender's real uid; a sender may name instead
// any uid it holds (real, effective or saved; any uid with CAP_SETUID), and
// the kernel refuses anything else.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <optional>
#include <string_view>

namespace healthtable::detail {

/// One datagram: its size, its sender's address, and the credentials the
/// kernel attached (none unless the socket has SO_PASSCRED).
struct Received {
  ssize_t size = -1;      ///< recvmsg()'s result; errno is set when < 0
  bool truncated = false; ///< longer than the buffer (MSG_TRUNC)
  sockaddr_un from{};
  socklen_t from_len = 0;
  std::optional<ucred> cred;
};

/// recvmsg() of one datagram into buf[0, len). MSG_CMSG_CLOEXEC is added to
/// `flags`: descriptors a hostile sender passes never leak across exec
/// (and never fit: the control buffer has room for credentials only).
inline Received receive_datagram(int fd, char* buf, std::size_t len, int flags) noexcept {
  Received r;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_name = &r.from;
  msg.msg_namelen = sizeof r.from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  r.size = ::recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
  if (r.size < 0) return r;
  r.from_len = msg.msg_namelen;
  r.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
        c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
      ucred cred;
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      r.cred = cred;
    }
  return r;
}

/// sendmsg() of `data` to `to`, naming our pid and EFFECTIVE uid and gid in
/// SCM_CREDENTIALS (the kernel's default would name the real ones).
inline ssize_t send_as_self(int fd, const sockaddr_un& to, socklen_t to_len, std::string_view data,
                            int flags) noexcept {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr_un*>(&to);
  msg.msg_namelen = to_len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_CREDENTIALS;
  c->cmsg_len = CMSG_LEN(sizeof(ucred));
  const ucred self{::getpid(), ::geteuid(), ::getegid()};
  std::memcpy(CMSG_DATA(c), &self, sizeof self);
  return ::sendmsg(fd, &msg, flags);
}

} // namespace healthtable::detail
