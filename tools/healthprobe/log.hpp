// Logging for a daemon under systemd: one entry per event.
//
// When stderr is the journal ($JOURNAL_STREAM names stderr's device and
// inode, as systemd.exec(5) documents), each entry goes to journald with
// sd_journal_send's native protocol, carrying fields beside its MESSAGE:
// SEGMENT= (the table), and for provider events PROVIDER= and EVENT=
// (tripped, recovered, ...), so `journalctl -u healthprobe PROVIDER=groq`
// selects one provider's history (docs/prober.md). Otherwise (a pipe, a
// file) each line starts with a syslog priority prefix, "<6>" for info,
// which a journal stream would turn into the entry's priority; on a
// terminal the line starts with the level's name instead. Never colours.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <vector>

namespace healthtable::prober {

enum class Level { err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

/// What an entry says beside its message; empty views are left out.
struct LogFields {
  std::string_view provider; ///< PROVIDER=: the provider the event is about
  std::string_view event;    ///< EVENT=: tripped, rearmed, cooldown, recovered, override, ...
};

/// Whether `journal_stream` (the value of $JOURNAL_STREAM, "DEVICE:INODE" in
/// decimal; null when unset) names the file `st` describes: then that
/// descriptor is connected to the journal.
bool is_journal_stream(const char* journal_stream, const struct stat& st) noexcept;

/// The fields of one journal entry, "NAME=value" each: MESSAGE, PRIORITY,
/// SYSLOG_IDENTIFIER=healthprobe, then SEGMENT, PROVIDER and EVENT when not
/// empty. Line breaks in the message become spaces, as on stderr.
std::vector<std::string> journal_fields(Level level, std::string_view message,
                                        std::string_view segment, const LogFields& fields);

class Log {
public:
  /// `verbose` also prints debug entries (every probe outcome, tick timings).
  /// Whether `fd` is the journal is decided here, once: is_journal_stream(),
  /// and journald's socket (/run/systemd/journal/socket) exists.
  explicit Log(bool verbose = false, int fd = 2);
  void operator()(Level level, std::string_view message, const LogFields& fields = {}) const;
  bool verbose() const noexcept { return verbose_; }
  /// The table every later entry is about (SEGMENT=), once the config names it.
  void set_segment(std::string segment) { segment_ = std::move(segment); }
  /// Entries go to journald natively.
  bool journal() const noexcept { return journal_; }

private:
  void write_line(Level level, std::string_view message) const;

  bool verbose_;
  int fd_;
  bool priority_prefix_;
  bool journal_;
  std::string segment_;
};

} // namespace healthtable::prober
