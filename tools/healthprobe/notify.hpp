// What the prober tells systemd (sd_notify, Type=notify): READY=1 once the
// first probe results are in the table, WATCHDOG=1 while the loop turns,
// STATUS= a one-line summary, STOPPING=1 and RELOADING=1. Every call is a
// no-op when NOTIFY_SOCKET is unset (not started by systemd, or Type= is not
// notify), so the prober runs the same anywhere.
#pragma once

#include <chrono>
#include <string>
#include <utility>

namespace healthtable::prober {

class Notifier {
public:
  /// Reads NOTIFY_SOCKET and the watchdog interval (sd_watchdog_enabled:
  /// WATCHDOG_USEC, and WATCHDOG_PID when set) from the environment, and
  /// when the watchdog is on, starts a timer firing every quarter interval
  /// (throws std::runtime_error when it cannot: without it the watchdog
  /// would kill a prober busy in a long tick).
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  /// The watchdog timer (a non-blocking timerfd) for the loop's wait set,
  /// so the loop wakes, mid-tick too, often enough to keep the watchdog
  /// fed; -1 without a watchdog.
  int fd() const noexcept { return timer_fd_; }
  /// The interval systemd expects WATCHDOG=1 within; zero when it does not.
  std::chrono::microseconds watchdog_interval() const noexcept { return watchdog_; }

  /// READY=1 and STATUS= the line `make_line` builds: on the first call,
  /// and the first after reloading(); otherwise nothing (and the line is
  /// not built).
  template <class MakeLine> void ready(MakeLine&& make_line) {
    if (active_ && !ready_) send_ready(std::forward<MakeLine>(make_line)());
  }
  /// RELOADING=1: a SIGHUP reload starts; ready() ends it.
  void reloading();
  /// STOPPING=1.
  void stopping();
  /// Call on every turn of the loop and whenever fd() is readable (it reads
  /// the timer). Sends WATCHDOG=1 when half the interval has passed since
  /// the last one: a loop that stops turning stops feeding it, and systemd
  /// kills and restarts the prober.
  void watchdog();
  /// Call on every turn of the loop: at most once a second after ready(),
  /// calls `make_line` and sends STATUS= with it when it differs from the
  /// last one sent. The line is only built when it may be sent.
  template <class MakeLine> void status(MakeLine&& make_line) {
    if (!status_due()) return;
    update_status(std::forward<MakeLine>(make_line)());
  }

private:
  using Clock = std::chrono::steady_clock;
  void send_ready(const std::string& summary);
  bool status_due();
  void update_status(std::string line);
  void send(const std::string& message);

  bool active_ = false; ///< NOTIFY_SOCKET is set
  bool ready_ = false;  ///< READY=1 sent and no reload since
  std::chrono::microseconds watchdog_{0};
  int timer_fd_ = -1;
  Clock::time_point last_kick_{};
  Clock::time_point last_status_at_{};
  std::string last_status_;
};

} // namespace healthtable::prober
