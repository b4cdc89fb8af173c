// The prober's control socket: outcomes and overrides that other processes
// ask the one writer to apply (router workers' passive failure reports,
// healthctl's record/set/reset while the prober holds the writer lock).
//
// A Unix datagram socket at a path in the table's home,
// healthtable::control_address(segment) (RUN_DIR/NAME/control), non-blocking,
// polled by the prober's event loop; one request per datagram (see
// report.hpp and docs/prober.md for the protocol). Two gates: the socket
// file's group and mode ([control] group, mode) decide who may send at all,
// since the kernel wants write permission on it before it queues anything;
// the sender's kernel-checked credentials (SO_PASSCRED) against the
// `[control]` allow lists decide what a request may do.
#pragma once

#include "config.hpp"
#include "log.hpp"

#include <healthtable/layout.hpp>
#include <healthtable/outcome_text.hpp>
#include <healthtable/writer.hpp>

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace healthtable::prober {

/// Who sent a request, as the kernel tells it (SCM_CREDENTIALS).
struct Sender {
  bool known = false; ///< false: no credentials came with the datagram
  pid_t pid = 0;      ///< in our pid namespace; 0 when the sender is not visible there
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  /// The datagram came from an address (a tool waiting for the reply, as
  /// healthctl), not from an unnamed worker's Reporter.
  bool named = false;
  std::string describe() const; ///< "pid 4242 uid 1000"
};

/// One parsed request line.
struct Request {
  enum class Verb { record, set, reset, forget, grow };
  Verb verb = Verb::record;
  /// record, set, forget: exactly one; reset: none (every provider) or
  /// several; grow: none.
  std::vector<std::string> providers;
  bool success = false; ///< record: success or failure
  std::string reason;   ///< record failure: the rest of the line (may be empty); set reason=
  FailureClass failure_class = FailureClass::other;     ///< record failure class=
  std::optional<std::chrono::nanoseconds> retry_after; ///< record failure retry=
  Override mode = Override::automatic; ///< set
  bool create = false;                 ///< set: register the provider if it is new
  std::optional<std::chrono::nanoseconds> expires_after; ///< set for=DURATION
  std::uint32_t slots = 0;                               ///< grow
  ResetScope scope = ResetScope::state;                  ///< reset scope=overrides
};

/// "record", "set", ...
std::string_view verb_name(Request::Verb v) noexcept;

/// Parses one datagram's text (one trailing '\n' allowed). Throws
/// Error(invalid_argument) for anything malformed (too long, not UTF-8,
/// control characters, unknown verb, wrong arguments) and
/// Error(invalid_name) for a bad provider name.
Request parse_request(std::string_view text);

/// The Source an outcome from this sender is recorded with: admin for a
/// tool (a named sender) that may administer, report for everyone else, so
/// a worker's Reporter is a report even when its uid is an admin's.
Source source_of(const ControlConfig& cfg, const Sender& s) noexcept;

/// `record` from this sender is allowed (admins and reporters).
bool may_report(const ControlConfig& cfg, const Sender& s) noexcept;
/// `set`, `reset`, `forget` and `grow` from this sender are allowed (admins only).
bool may_administer(const ControlConfig& cfg, const Sender& s) noexcept;

class Control {
public:
  /// Binds the socket at control_address(segment), replacing a stale
  /// socket of ours left by a prober that died, and gives it [control]'s
  /// group and mode. Throws Error(system_error, permission_denied,
  /// not_a_table) with a message that says what to do.
  Control(const std::string& segment, ControlConfig cfg, Writer& writer, const Log& log);
  ~Control();
  Control(const Control&) = delete;
  Control& operator=(const Control&) = delete;

  int fd() const noexcept { return fd_; }
  /// "/run/healthtable/gateway/control".
  const std::string& where() const noexcept { return where_; }
  /// New allow lists, group and mode (a reload). Throws as the constructor
  /// when the group or mode cannot be applied (the old ones stay).
  void set_config(ControlConfig cfg);
  /// False when our socket file is no longer at its path (the home was
  /// removed or the file replaced): the prober binds a new one.
  bool in_place() const noexcept;

  /// Reads and applies up to `max` pending datagrams without blocking;
  /// returns how many it read. Never throws.
  std::size_t serve(std::size_t max = 64) noexcept;

  /// Authorizes, applies and logs one request; returns the reply ("ok ..."
  /// or "error <errc_name> ..."). Never throws.
  std::string handle(std::string_view text, const Sender& sender) noexcept;

private:
  /// Sends `reply` to an autobound requester, never blocking, with our pid
  /// and effective uid/gid attached as SCM_CREDENTIALS: tools believe a
  /// reply only from the segment owner's uid (healthtable::request()), and
  /// without this the kernel would attach our real uid.
  void send_reply(const sockaddr_un& to, socklen_t to_len, std::string_view reply) noexcept;
  std::string apply(const Request& r, const Sender& s);
  /// The journal's line for a recorded outcome (its words are in docs/prober.md).
  void log_outcome(const std::string& provider, const Recorded& rec, const Outcome& o,
                   const std::string& by) const;
  /// chown/chmod of the socket file from cfg.
  void set_permissions(const ControlConfig& cfg);
  void refused(const Sender& s, std::string_view verb);

  std::string segment_;
  ControlConfig cfg_;
  Writer& writer_;
  const Log& log_;
  int fd_ = -1;
  std::string where_;
  dev_t dev_ = 0; ///< our socket file, so shutdown removes only it
  ino_t ino_ = 0;
  struct Quiet {
    std::chrono::steady_clock::time_point last{};
    std::uint64_t suppressed = 0;
  };
  std::map<std::uint32_t, Quiet> refusals_; ///< per uid: one log line a second
};

} // namespace healthtable::prober
