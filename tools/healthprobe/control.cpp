#include "control.hpp"

#include <healthtable/detail/datagram.hpp>
#include <healthtable/home.hpp>
#include <healthtable/names.hpp>
#include <healthtable/outcome_text.hpp>
#include <healthtable/override_text.hpp>
#include <healthtable/report.hpp>
#include <healthtable/reset_text.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace healthtable::prober {

namespace {

using Clock = std::chrono::steady_clock;

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

/// Backoffs as the probe log lines give them ("60s"; finer keeps its unit).
std::string backoff_text(std::chrono::nanoseconds d) {
  if (d.count() % 1'000'000'000 == 0) return std::to_string(d.count() / 1'000'000'000) + "s";
  return format_duration(d);
}

/// The words of a line split on single spaces.
std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto sp = s.find(' ', start);
    out.push_back(s.substr(start, sp == std::string_view::npos ? sp : sp - start));
    if (sp == std::string_view::npos) return out;
    start = sp + 1;
  }
}

[[noreturn]] void bad(const std::string& why) { throw Error(Errc::invalid_argument, why); }

std::string provider_arg(std::string_view word) {
  validate_provider_name(word);
  return std::string(word);
}

} // namespace

std::string Sender::describe() const {
  if (!known) return "an unknown sender";
  return "pid " + std::to_string(pid) + " uid " + std::to_string(uid);
}

Request parse_request(std::string_view text) {
  if (text.size() > kControlRequestMax)
    bad("request is " + std::to_string(text.size()) + " bytes; the limit is " +
        std::to_string(kControlRequestMax));
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.empty()) bad("empty request (expected record, set, reset, forget or grow)");
  // Valid UTF-8 without control characters is exactly what sanitizing
  // leaves unchanged.
  if (sanitize_reason(text, text.size()) != text) bad("request is not one line of printable UTF-8");
  const auto words = split(text);
  const std::string_view verb = words[0];
  Request r;
  if (verb == "record") {
    r.verb = Request::Verb::record;
    static constexpr const char* usage =
        "usage: record PROVIDER success | record PROVIDER failure [class=CLASS] "
        "[retry=DURATION] [reason=TEXT | REASON...]";
    if (words.size() < 3) bad(usage);
    r.providers.push_back(provider_arg(words[1]));
    if (words[2] == "success") {
      if (words.size() != 3) bad("record PROVIDER success takes no reason");
      r.success = true;
    } else if (words[2] == "failure") {
      // class= and retry= first; then the reason, the rest of the line
      // spaces and all (after "reason=" if it would look like a key).
      bool classed = false;
      std::size_t at = words[0].size() + words[1].size() + words[2].size() + 2;
      for (std::size_t i = 3; i < words.size(); ++i) {
        const std::string_view w = words[i];
        at += 1; // the space before w
        if (w.starts_with("reason=")) {
          r.reason = std::string(text.substr(at + 7));
          break;
        }
        if (w.starts_with("class=")) {
          if (classed) bad("record: class= given twice (" + std::string(usage) + ")");
          r.failure_class = parse_failure_class(w.substr(6), "record: class=");
          classed = true;
        } else if (w.starts_with("retry=")) {
          if (r.retry_after) bad("record: retry= given twice (" + std::string(usage) + ")");
          r.retry_after = parse_duration(w.substr(6), "record: retry=");
        } else {
          r.reason = std::string(text.substr(at));
          break;
        }
        at += w.size();
      }
    } else {
      bad("record: outcome '" + sanitize_reason(words[2], 40) + "' is not success or failure");
    }
  } else if (verb == "set") {
    r.verb = Request::Verb::set;
    static constexpr const char* usage =
        "usage: set PROVIDER down|up|auto [create] [for=DURATION] [reason=TEXT]";
    if (words.size() < 3) bad(usage);
    r.providers.push_back(provider_arg(words[1]));
    if (words[2] == "down")
      r.mode = Override::forced_down;
    else if (words[2] == "up")
      r.mode = Override::forced_up;
    else if (words[2] == "auto")
      r.mode = Override::automatic;
    else
      bad("set: mode '" + sanitize_reason(words[2], 40) + "' is not down, up or auto");
    std::size_t at = words[0].size() + words[1].size() + words[2].size() + 2;
    for (std::size_t i = 3; i < words.size(); ++i) {
      const std::string_view w = words[i];
      at += 1;
      if (w.starts_with("reason=")) { // the rest of the line, spaces and all
        r.reason = std::string(text.substr(at + 7));
        break;
      }
      if (w == "create" && !r.create)
        r.create = true;
      else if (w.starts_with("for=") && !r.expires_after)
        r.expires_after = parse_duration(w.substr(4), "set: for=");
      else
        bad("set: '" + sanitize_reason(w, 40) + "' is not create, for=DURATION or reason=TEXT (" +
            usage + ")");
      at += w.size();
    }
  } else if (verb == "reset") {
    r.verb = Request::Verb::reset;
    std::size_t i = 1;
    if (words.size() > 1 && words[1].starts_with("scope=")) {
      if (words[1] != "scope=overrides")
        bad("reset: '" + sanitize_reason(words[1], 40) + "' is not scope=overrides");
      r.scope = ResetScope::state_and_overrides;
      ++i;
    }
    for (; i < words.size(); ++i)
      r.providers.push_back(provider_arg(words[i]));
  } else if (verb == "forget") {
    r.verb = Request::Verb::forget;
    if (words.size() != 2) bad("usage: forget PROVIDER");
    r.providers.push_back(provider_arg(words[1]));
  } else if (verb == "grow") {
    r.verb = Request::Verb::grow;
    if (words.size() != 2) bad("usage: grow SLOTS");
    const std::string_view n = words[1];
    std::uint64_t v = 0;
    bool ok = !n.empty() && n.size() <= 10;
    for (char c : n) {
      ok = ok && c >= '0' && c <= '9';
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (!ok || v < 1 || v > kMaxCapacity)
      bad("grow: '" + sanitize_reason(n, 40) + "' is not a slot count from 1 to " +
          std::to_string(kMaxCapacity));
    r.slots = static_cast<std::uint32_t>(v);
  } else {
    bad("unknown request '" + sanitize_reason(verb, 40) +
        "' (expected record, set, reset, forget or grow)");
  }
  return r;
}

std::string_view verb_name(Request::Verb v) noexcept {
  switch (v) {
  case Request::Verb::record: return "record";
  case Request::Verb::set: return "set";
  case Request::Verb::reset: return "reset";
  case Request::Verb::forget: return "forget";
  case Request::Verb::grow: return "grow";
  }
  return "record";
}

namespace {

std::string not_allowed(const Sender& s) {
  return "error permission_denied " + s.describe() +
         " may not use the control socket of "
         "healthprobe (pid " +
         std::to_string(::getpid()) +
         "): add its uid to [control] allow_uids (report_uids: record only) or its gid as "
         "allow_gid (report_gid) in that prober's config";
}

bool listed(const std::vector<std::uint32_t>& ids, std::uint32_t id) noexcept {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

} // namespace

bool may_administer(const ControlConfig& cfg, const Sender& s) noexcept {
  if (!s.known) return false;
  return listed(cfg.allow_uids, s.uid) || (cfg.allow_gid && *cfg.allow_gid == s.gid);
}

Source source_of(const ControlConfig& cfg, const Sender& s) noexcept {
  return s.named && may_administer(cfg, s) ? Source::admin : Source::report;
}

bool may_report(const ControlConfig& cfg, const Sender& s) noexcept {
  if (!s.known) return false;
  return may_administer(cfg, s) || listed(cfg.report_uids, s.uid) ||
         (cfg.report_gid && *cfg.report_gid == s.gid);
}

namespace {

[[noreturn]] void socket_error(Errc code, const std::string& where, const std::string& what,
                               int err) {
  throw Error(code, "control socket " + where + ": " + what + ": " + std::strerror(err));
}

/// Whatever the umask says, the file is born 0600 and opened up only by
/// set_permissions(): nobody outside slips in between bind and chmod.
struct Umask {
  mode_t old = ::umask(0177);
  ~Umask() { ::umask(old); }
};

} // namespace

Control::Control(const std::string& segment, ControlConfig cfg, Writer& writer, const Log& log)
    : segment_(segment), cfg_(std::move(cfg)), writer_(writer), log_(log) {
  where_ = control_address(segment);
  // Only the home's owner (we) can create or remove entries here, so what
  // is at the path is either ours or root's doing. A socket of ours is a
  // dead prober's (we hold the writer lock, so no live one has it); never
  // remove anything else.
  struct stat st {};
  if (::lstat(where_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid())
      throw Error(Errc::not_a_table,
                  "control socket " + where_ + ": something else is there (" +
                      (S_ISSOCK(st.st_mode) ? "a socket of " + describe_uid(st.st_uid)
                                            : std::string("not a socket")) +
                      "); remove it, or set [control] enabled = false");
    if (::unlink(where_.c_str()) != 0 && errno != ENOENT)
      socket_error(Errc::system_error, where_, "cannot remove the stale socket", errno);
  } else if (errno != ENOENT) {
    socket_error(Errc::system_error, where_, "lstat", errno);
  }
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) socket_error(Errc::system_error, where_, "socket", errno);
  const int on = 1;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, where_.data(), where_.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + where_.size() + 1);
  int rc = ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  if (rc == 0) {
    const Umask private_until_chmod;
    rc = ::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), len);
  }
  if (rc != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    socket_error(err == EACCES || err == EPERM ? Errc::permission_denied : Errc::system_error,
                 where_, "bind", err);
  }
  try {
    if (::lstat(where_.c_str(), &st) != 0) socket_error(Errc::system_error, where_, "lstat", errno);
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    set_permissions(cfg_);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    if (ino_ != 0) ::unlink(where_.c_str());
    throw;
  }
}

void Control::set_permissions(const ControlConfig& cfg) {
  const gid_t group = cfg.group.value_or(::getegid());
  // By path, not by fd (fchmod on a socket fd does not reach its file);
  // the home is ours alone, so the path cannot be swapped under us.
  if (::chown(where_.c_str(), static_cast<uid_t>(-1), group) != 0) {
    const int err = errno;
    throw Error(
        err == EPERM ? Errc::permission_denied : Errc::system_error,
        "control socket " + where_ + ": cannot give it to gid " + std::to_string(group) + ": " +
            std::strerror(err) +
            (err == EPERM ? " (the prober's user must be a member of [control] group)" : ""));
  }
  if (::chmod(where_.c_str(), cfg.mode) != 0)
    socket_error(Errc::system_error, where_, "chmod " + format_mode(cfg.mode), errno);
}

void Control::set_config(ControlConfig cfg) {
  if (cfg.group != cfg_.group || cfg.mode != cfg_.mode) set_permissions(cfg);
  cfg_ = std::move(cfg);
}

bool Control::in_place() const noexcept {
  struct stat st {};
  return ::lstat(where_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
}

Control::~Control() {
  // Remove the file only if it is still ours: after a recreate the path
  // may hold a newer socket.
  if (ino_ != 0 && in_place()) ::unlink(where_.c_str());
  if (fd_ >= 0) ::close(fd_);
}

std::size_t Control::serve(std::size_t max) noexcept {
  std::size_t done = 0;
  // One byte more than we accept, so an oversized request is seen as such
  // (MSG_TRUNC says so as well).
  char buf[kControlRequestMax + 1];
  while (done < max) {
    const detail::Received got = detail::receive_datagram(fd_, buf, sizeof buf, MSG_DONTWAIT);
    const ssize_t n = got.size;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        log_(Level::err, "control socket " + where_ + ": recvmsg: " + std::strerror(errno));
      break;
    }
    ++done;
    Sender sender;
    if (got.cred) sender = {true, got.cred->pid, got.cred->uid, got.cred->gid};
    sender.named = got.from_len > sizeof(sa_family_t);
    try {
      std::string reply;
      if (got.truncated || static_cast<std::size_t>(n) > kControlRequestMax) {
        // Still authorize first: a refused sender learns nothing else.
        reply = may_report(cfg_, sender)
                    ? "error invalid_argument request longer than " +
                          std::to_string(kControlRequestMax) + " bytes"
                    : (refused(sender, "an oversized request"), not_allowed(sender));
      } else {
        reply = handle(std::string_view(buf, static_cast<std::size_t>(n)), sender);
      }
      // Only a sender with an address (healthctl autobinds) gets a reply; an
      // unnamed one (a worker's Reporter) fires and forgets. Never block on it.
      if (got.from_len > sizeof(sa_family_t)) send_reply(got.from, got.from_len, reply);
    } catch (...) {
      // Out of memory building a reply: drop this request, keep the loop.
    }
  }
  return done;
}

void Control::send_reply(const sockaddr_un& to, socklen_t to_len, std::string_view reply) noexcept {
  detail::send_as_self(fd_, to, to_len, reply, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void Control::refused(const Sender& s, std::string_view what) {
  // At most one line per uid per second, so a misconfigured worker fleet
  // cannot flood the journal.
  const auto now = Clock::now();
  if (refusals_.size() > 4096) refusals_.clear();
  Quiet& q = refusals_[s.known ? s.uid : 0xFFFFFFFFu];
  if (q.last != Clock::time_point{} && now - q.last < std::chrono::seconds(1)) {
    ++q.suppressed;
    return;
  }
  std::string line = "control: refused " + std::string(what) + " from " + s.describe();
  if (s.known) line += " gid " + std::to_string(s.gid);
  line += ": not allowed by [control] (allow_uids, allow_gid";
  // set and reset need an admin; anything else a reporter may send.
  const bool admin_verb =
      what == "'set'" || what == "'reset'" || what == "'forget'" || what == "'grow'";
  line += admin_verb ? ")" : ", report_uids, report_gid)";
  if (q.suppressed > 0)
    line += "; " + std::to_string(q.suppressed) + " more from this uid not logged";
  q.last = now;
  q.suppressed = 0;
  log_(Level::warning, line);
}

std::string Control::handle(std::string_view text, const Sender& sender) noexcept {
  try {
    if (!may_report(cfg_, sender)) {
      refused(sender, "a request");
      return not_allowed(sender);
    }
    Request r;
    try {
      r = parse_request(text);
    } catch (const Error& e) {
      log_(Level::debug, "control: bad request from " + sender.describe() + ": " + e.what());
      throw;
    }
    if (r.verb != Request::Verb::record && !may_administer(cfg_, sender)) {
      const std::string verb(verb_name(r.verb));
      refused(sender, "'" + verb + "'");
      return "error permission_denied " + sender.describe() + " may send 'record' only; '" + verb +
             "' needs its uid in [control] allow_uids or its gid as allow_gid in the config of "
             "healthprobe (pid " +
             std::to_string(::getpid()) + ")";
    }
    return "ok " + apply(r, sender);
  } catch (const Error& e) {
    return "error " + std::string(errc_name(e.code())) + " " + e.what();
  } catch (const std::exception& e) {
    return std::string("error system_error ") + e.what();
  } catch (...) {
    return "error system_error unexpected failure";
  }
}

void Control::log_outcome(const std::string& p, const Recorded& rec, const Outcome& o,
                          const std::string& by) const {
  const ProviderState& st = rec.state;
  const std::string shown = st.last_error ? *st.last_error : std::string(o.reason);
  // The class is said when it is not the one a bare report has.
  const std::string cause =
      shown + (o.failure_class == FailureClass::other || o.failure_class == FailureClass::none
                   ? ""
                   : ", class " + std::string(class_name(o.failure_class)));
  const std::string hint =
      o.retry_after ? "; retry hint " + format_duration(*o.retry_after) : std::string();
  const std::string tail = hint + "; reported by " + by;
  const std::string window = backoff_text(std::chrono::nanoseconds(st.window_ns));
  const LogFields fields{p, rec.transition == Transition::none ? std::string_view()
                                                               : transition_name(rec.transition)};
  switch (rec.transition) {
  case Transition::tripped:
    log_(Level::warning,
         "provider " + p + " marked unhealthy after " + std::to_string(st.consecutive_failures) +
             " consecutive failures (" + cause + "); backoff " + window + tail,
         fields);
    return;
  case Transition::rearmed:
    log_(Level::debug,
         "provider " + p + " still unhealthy (" + cause + "); backoff re-armed " + window + tail,
         fields);
    return;
  case Transition::cooldown:
    log_(Level::notice, "provider " + p + " cooling down (" + cause + ")" + tail, fields);
    return;
  case Transition::recovered:
    log_(Level::notice, "provider " + p + " recovered" + tail, fields);
    return;
  case Transition::none:
    if (o.failure_class == FailureClass::none)
      log_(Level::debug, "provider " + p + " healthy" + tail, fields);
    else
      log_(Level::debug,
           "provider " + p + " failed (" + cause + "), " + std::to_string(st.consecutive_failures) +
               " of " + std::to_string(rec.policy.failure_threshold) + tail,
           fields);
    return;
  }
}

std::string Control::apply(const Request& r, const Sender& s) {
  const std::string by = s.describe();
  switch (r.verb) {
  case Request::Verb::record: {
    const std::string& p = r.providers.front();
    // A worker cannot register names (slots are never freed): it reports on
    // providers the table has. Admins may, as healthctl always could.
    if (!writer_.table().find(p) && !may_administer(cfg_, s))
      throw Error(Errc::unknown_provider, "provider " + quoted(p) + " is not in table " +
                                              quoted(segment_) +
                                              "; a report cannot register a provider");
    const std::string reason = r.reason.empty() ? "failure reported by " + by : r.reason;
    Outcome o;
    o.failure_class = r.success ? FailureClass::none : r.failure_class;
    o.reason = reason;
    o.source = source_of(cfg_, s);
    o.retry_after = r.retry_after;
    const Recorded rec = record_outcome(writer_, p, o);
    log_outcome(p, rec, o, by);
    return rec.reply;
  }
  case Request::Verb::set: {
    const std::string& p = r.providers.front();
    if (!r.create && !writer_.table().find(p)) throw override_of_unknown(segment_, p);
    OverrideRequest o;
    o.mode = r.mode;
    o.expires_after = r.expires_after;
    o.reason = r.reason;
    if (s.known) o.uid = s.uid;
    writer_.set_override(p, o);
    const std::string what = r.mode == Override::forced_down ? "forced down"
                             : r.mode == Override::forced_up ? "forced up"
                                                             : "override cleared (auto)";
    log_(Level::notice,
         "provider " + p + " " + what + " by " + by +
             (r.expires_after ? " for " + format_duration(*r.expires_after) : "") +
             (r.reason.empty() ? "" : ": " + r.reason),
         {p, "override"});
    return describe_override(segment_, p, o, writer_.table());
  }
  case Request::Verb::reset: {
    const std::string reply = apply_reset(writer_, segment_, r.providers, r.scope);
    const char* what =
        r.scope == ResetScope::state_and_overrides ? " reset with overrides by " : " reset by ";
    std::string list;
    for (const std::string& p : r.providers)
      list += (list.empty() ? "" : ", ") + p;
    if (r.providers.empty())
      log_(Level::notice,
           "all " + std::to_string(writer_.table().info().used) + " providers" + what + by,
           {{}, "reset"});
    else
      log_(Level::notice,
           "provider" + std::string(r.providers.size() == 1 ? " " : "s ") + list + what + by,
           {r.providers.size() == 1 ? std::string_view(r.providers.front()) : std::string_view(),
            "reset"});
    return reply;
  }
  case Request::Verb::forget: {
    const std::string& p = r.providers.front();
    writer_.forget(p); // unknown_provider with the library's message
    log_(Level::notice, "provider " + p + " forgotten by " + by + "; its slot is free",
         {p, "forgotten"});
    return p + ": forgotten; its slot is free (a provider still in the prober's config "
               "registers again at its next probe)";
  }
  case Request::Verb::grow: {
    const std::uint32_t before = writer_.table().info().capacity;
    writer_.grow(r.slots);
    log_(Level::notice, "table " + quoted(segment_) + " moved from " + std::to_string(before) +
                            " to " + std::to_string(r.slots) + " slots by " + by);
    return quoted(segment_) + " now has " + std::to_string(r.slots) + " slots (was " +
           std::to_string(before) + "); readers follow";
  }
  }
  return {};
}

} // namespace healthtable::prober
