// The daemon: schedules ticks, runs them on the Engine, writes outcomes
// through the table's single Writer, and answers signals.
#pragma once

#include "config.hpp"
#include "control.hpp"
#include "log.hpp"
#include "notify.hpp"
#include "probe.hpp"

#include <healthtable/writer.hpp>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace healthtable::prober {

/// Exit codes. Table errors exit with the library's Errc value (3..16, the
/// same numbers healthctl uses); the config code is sysexits' EX_CONFIG
/// (systemd shows it as status=78/CONFIG) so it cannot collide with them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1; ///< a system call failed (signalfd, epoll, curl init)
inline constexpr int kExitUsage = 2;   ///< bad command line
inline constexpr int kExitConfig = 78; ///< bad configuration file

/// Opens the configured segment, creating it when it is missing and
/// `[table] create` allows, takes the writer lock, applies the configured
/// policy, grows the table when the providers do not fit (unless `[table]
/// grow = false`) and registers every provider. Throws healthtable::Error
/// (writer busy, table full, ...): nothing is registered unless all fit.
Writer open_table(const Config& cfg, const Log& log);

class Prober {
public:
  Prober(Config cfg, Writer writer, const Log& log);

  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  /// Runs until SIGTERM or SIGINT arrives on `signal_fd` (a signalfd for
  /// SIGTERM, SIGINT and SIGHUP, non-blocking); SIGHUP reloads the config
  /// from its file. Unless `[control] enabled = false`, binds the control
  /// socket first (a failure is logged and returns kExitFailure) and serves
  /// it between ticks and while a tick's probes are in flight. Returns the
  /// exit code.
  int run(int signal_fd);

private:
  using Clock = std::chrono::steady_clock;
  struct Scheduled {
    ProviderConfig cfg;
    Clock::time_point due;
  };

  void tick(int signal_fd);
  void record(const ProviderConfig& p, const ProbeResult& o);
  /// Writer::expire(): logs overrides that ran out and makes the providers
  /// whose window just ended due at once (half-open).
  void expire();
  /// The earliest of `limit` and the next end of a window, cooldown or
  /// override in the table.
  Clock::time_point next_deadline(Clock::time_point limit) const;
  /// Reads pending signals; true when told to stop.
  bool drain_signals(int signal_fd);
  void reload();
  /// Stamps the heartbeat, first checking that the table is still the one
  /// at its name (Writer::standing) and recreating it if not.
  void beat();
  void check_standing();
  void reopen_control();
  /// Reads pending signals and control requests; true when told to stop.
  bool wake(int signal_fd);
  /// Binds the control socket and adds it to the wait set; false (logged)
  /// when it cannot.
  bool open_control();
  Clock::time_point next_due(Clock::time_point from, std::chrono::nanoseconds interval);

  Config cfg_;
  Writer writer_;
  const Log& log_;
  Engine engine_;
  std::vector<Scheduled> providers_;
  std::unique_ptr<Control> control_;
  int wait_fd_ = -1; ///< epoll set: the signalfd and the control socket
  std::mt19937_64 rng_;
  Clock::time_point last_beat_{};
  std::int64_t last_expire_mono_ = 0; ///< when expire() last ran (Instant::mono_ns)
  bool stop_ = false;
  bool reload_ = false;
  int exit_code_ = kExitOk; ///< set when the table is lost for good
  std::string stop_signal_;
  Notifier notify_; ///< systemd's READY=1, WATCHDOG=1, STATUS= (no-ops outside it)
};

} // namespace healthtable::prober
