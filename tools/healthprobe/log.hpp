// Logging for a daemon under systemd: one line per event on stderr.
//
// When stderr is not a terminal (journald, a pipe, a file), each line starts
// with a syslog priority prefix, "<6>" for info, which journald strips and
// turns into the entry's priority (SyslogLevelPrefix=yes is its default); on
// a terminal the line starts with the level's name instead. Never colours.
#pragma once

#include <string_view>

namespace healthtable::prober {

enum class Level { err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

class Log {
public:
  /// `verbose` also prints debug lines (every probe outcome, tick timings).
  explicit Log(bool verbose = false, int fd = 2);
  void operator()(Level level, std::string_view message) const;
  bool verbose() const noexcept { return verbose_; }

private:
  bool verbose_;
  int fd_;
  bool priority_prefix_;
};

} // namespace healthtable::prober
