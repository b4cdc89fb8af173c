// Talking to the prober: its control socket, for workers and for tools.
//
// Exactly one process writes a table (the writer lock), so while healthprobe
// runs nobody else can. Instead, healthprobe listens on a Unix datagram
// socket in the table's home, control_path(segment) (RUN_DIR/NAME/control),
// and applies what it is told through its own Writer:
//
//   record PROVIDER success
//   record PROVIDER failure [class=CLASS] [retry=DURATION] [reason=TEXT | REASON...]
//   set PROVIDER down|up|auto [create] [for=DURATION] [reason=TEXT]
//   reset [scope=overrides] [PROVIDER...]   (none: every provider)
//   forget PROVIDER
//   grow SLOTS
//
// After `failure`, the words class=CLASS (class_name(): timeout, connect,
// server, rate_limited, auth, client, other; default other) and
// retry=DURATION (a retry hint: "30s", "1500ms", a plain number is
// seconds) come first, each at most once, in either order; the first word
// that is neither starts the reason, which is the rest of the line, spaces
// and all. A reason that itself starts with "class=", "retry=" or "reason="
// is sent as reason=TEXT: everything after "reason=" is the reason. So
// "record groq failure http 503" still means what it always did.
//
// One request per datagram, one line of UTF-8, at most kControlRequestMax
// bytes. A sender with an address (request() autobinds one) gets one reply
// datagram, "ok <what happened>" or "error <errc_name> <message>"; an
// unnamed sender (Reporter) gets none. The prober authorizes each request
// by the sender's kernel-checked credentials (docs/prober.md, [control]).
//
// The socket is a file in a directory only the table's owner can write, so
// nobody can bind it first, and its mode (the prober's [control] group)
// decides who may send at all: users outside it cannot even queue a
// datagram, let alone flood the prober.
#pragma once

#include <healthtable/error.hpp>
#include <healthtable/layout.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace healthtable {

/// The longest request the prober accepts, in bytes.
inline constexpr std::size_t kControlRequestMax = 512;

/// The control socket's path for `segment`: control_path(segment). Throws
/// Error(invalid_name) for a bad segment name, or one whose path does not
/// fit in a socket address (107 bytes).
std::string control_address(std::string_view segment);

/// For router workers: tells the prober about the outcomes a worker sees,
/// so one state machine folds every worker's failures together.
///
///   healthtable::Reporter reporter("gateway");           // once, at start-up
///   ...
///   if (upstream_failed) reporter.failure("groq", "http 503");
///   if (status == 429)                          // the hint: parse_retry_after()
///     reporter.failure("groq", "http 429", healthtable::FailureClass::rate_limited, hint);
///
/// Each call is one non-blocking sendto() on an unnamed datagram socket: a
/// system call, so it belongs on the failure path of a request (or after a
/// success that matters), never on the read path, where is_healthy() costs
/// one load. It never blocks and never throws; it returns false when the
/// prober is not listening, its queue is full (net.unix.max_dgram_qlen
/// datagrams) or the name is invalid, and the worker carries on. Nothing
/// tells the worker whether the prober accepted the report (it may refuse
/// the sender's uid, or a provider the table does not have).
class Reporter {
public:
  /// Validates the segment name (Error(invalid_name)) and creates the
  /// socket (Error(system_error)). Connects nothing: a prober that starts
  /// later is reached.
  explicit Reporter(std::string_view segment);
  ~Reporter();
  Reporter(Reporter&& other) noexcept;
  Reporter& operator=(Reporter&& other) noexcept;
  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;

  /// "record PROVIDER success".
  bool success(std::string_view provider) noexcept;
  /// "record PROVIDER failure [class=CLASS] [retry=DURATION] REASON"; the
  /// reason is made printable (invalid UTF-8 becomes '?', control characters
  /// spaces) and cut to kReasonMax. `cls` is the failure's class (the
  /// prober's policy decides whether it counts toward a trip or sets a
  /// cooldown); `retry_after` a retry hint (Retry-After, retry-after-ms),
  /// sent in whole milliseconds rounded up (negative: zero), which the
  /// prober caps at its policy's max_hint. Returns false, sending nothing,
  /// for FailureClass::none (a success is success()) or a value that is not
  /// a class.
  bool failure(std::string_view provider, std::string_view reason,
               FailureClass cls = FailureClass::other,
               std::optional<std::chrono::nanoseconds> retry_after = {}) noexcept;

private:
  bool send(std::string_view line) noexcept;
  int fd_ = -1;
  std::string address_;
};

/// The request line Reporter::failure() sends, for tools that send it with
/// request(): "record groq failure class=rate_limited retry=30s http 429".
/// Throws Error(invalid_name) for a bad provider name and
/// Error(invalid_argument) for FailureClass::none or a value that is not a
/// class.
std::string failure_request(std::string_view provider, std::string_view reason,
                            FailureClass cls = FailureClass::other,
                            std::optional<std::chrono::nanoseconds> retry_after = {});

/// For tools: sends one request line and waits up to `timeout` for the
/// reply. Returns the text after "ok ". Throws Error(writer_busy, "... no
/// prober is listening ...") when nothing is bound to the address or nobody
/// answers in time; Error(code, message) for a reply "error <errc_name>
/// message"; Error(invalid_argument) for a line that is too long.
/// Believes a reply only from the segment's owner: the owner is read from
/// the object's inode (/dev/shm/NAME) before sending, and the reply's
/// SCM_CREDENTIALS (SO_PASSCRED) must name that uid. The kernel lets a
/// sender name only a uid it holds (real, effective or saved) unless it has
/// CAP_SETUID; healthprobe names its effective uid. Any other replier is a
/// squatter: Error(permission_denied). A reply for a table that cannot be
/// stat()ed here: Error(no_such_segment). Replies from other addresses are
/// ignored.
std::string request(std::string_view segment, std::string_view line,
                    std::chrono::milliseconds timeout);

} // namespace healthtable
