// What `events --follow` and `watch` share: stopping cleanly on a signal,
// and following a table that is recreated or destroyed under them.
#pragma once

#include <healthtable/table.hpp>

#include <chrono>

namespace healthctl {

/// SIGINT, SIGTERM and SIGHUP set a flag instead of killing the process, so
/// a following command can restore the terminal and exit 0. Installed for
/// the object's life; nothing else in healthctl catches signals.
class StopOnSignal {
public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

  bool stopped() const noexcept;
  /// Sleeps up to `d`; returns early (true) when a signal asked to stop.
  bool sleep_for(std::chrono::milliseconds d) const noexcept;
};

/// What happened to the table a follower reads since it last looked.
enum class TableMove {
  same,      ///< still the table at its name
  recreated, ///< another table now has the name: the view follows it
  gone,      ///< nothing has the name (destroyed): keep waiting
};

/// Checks `table` (a few syscalls: call it at the polling rate, not per
/// event) and follows a recreated table.
TableMove follow(const healthtable::Table& table);

} // namespace healthctl
