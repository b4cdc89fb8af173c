// The daemon: keeps each provider's next-due time, starts its probe on the
// long-lived Engine when it falls due, writes each outcome through the
// table's single Writer as it arrives, stamps the heartbeat from the same
// loop, and answers signals and the control socket.
#pragma once

#include "config.hpp"
#include "control.hpp"
#include "fleet.hpp"
#include "log.hpp"
#include "metrics_server.hpp"
#include "notify.hpp"
#include "probe.hpp"
#include "probe_stats.hpp"

#include <healthtable/writer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
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
  /// it whenever a request comes, probes in flight or not. Returns the exit
  /// code.
  int run(int signal_fd);

private:
  using Clock = std::chrono::steady_clock;
  struct Scheduled {
    ProviderConfig cfg;
    Clock::time_point due;     ///< its next probe (while none is in flight)
    std::size_t probe = 0;     ///< the engine id of its probe in flight; 0: none
    Clock::time_point started; ///< when that probe started
    std::uint64_t round = 0;   ///< the round that probe belongs to
  };
  /// The probes started in one turn of the loop: logged as one tick line
  /// when the last of them is in.
  struct Round {
    Clock::time_point start;
    std::size_t probes = 0, healthy = 0, failed = 0, left = 0;
  };

  /// Starts every due provider that has no probe in flight, as one round.
  void start_due();
  /// One probe's result: written, its round counted, its next probe scheduled.
  void finished(const ProbeResult& o);
  /// Stops a provider's probe in flight without a result (reload).
  void drop_flight(Scheduled& s);
  /// One fewer probe outstanding in `round`; logs it when none is left.
  void leave_round(std::uint64_t round, const ProbeResult* o);
  /// The first round's results are all in the table (a readiness point).
  void first_round_written(const Round& r);
  /// One turn of the loop is done: stamps the heartbeat when it is due.
  void after_turn();
  /// Puts `i` (not in flight) in the queue, due at `due`.
  void schedule(std::size_t i, Clock::time_point due);
  /// The queue and the flights again from providers_ (after a reload).
  void rebuild_queue();
  /// When the provider's next probe is due, from the start of its last one:
  /// its interval (down_interval while it fails or is not healthy), moved
  /// by its spread, plus the top-level jitter.
  Clock::time_point next_due(const Scheduled& s);
  /// When the loop must wake next: a provider due, the heartbeat, a window
  /// or override that ends, a rescan of the table's deadlines.
  Clock::time_point next_wake() const;
  /// expire() when a window or override may have ended; rescans the
  /// table's deadlines after writes (at most every kRescanEvery).
  void housekeeping();

  /// Writes one probe result; what it did to the breaker (none on an error).
  Transition record(const ProviderConfig& p, const ProbeResult& o);
  /// Starts GET /metrics when `[metrics] listen` is set; false (logged)
  /// when the address cannot be bound.
  bool open_metrics();
  /// The providers probed now, for stats_.
  std::vector<std::string> provider_names() const;
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
  /// [fleet]: starts the link and adds its fd to the wait set.
  bool open_fleet();
  /// Logs what the fleet thread said and applies the peer facts it verified.
  void serve_fleet();
  void apply_peer(const Envelope& e);
  /// Publishes what a local probe's failure taught us, when it is shared.
  void share(const ProviderConfig& p, const ProbeResult& o, Transition t);
  /// Rewrites the `fleet` status file in the table's home when the stats
  /// changed (at most every kFleetStatusEvery unless `now`).
  void write_fleet_status(bool now = false);
  /// systemd's STATUS= line: the table's summary, and the fleet link's.
  std::string status() const;

  Config cfg_;
  Writer writer_;
  const Log& log_;
  Engine engine_;
  std::vector<Scheduled> providers_;
  /// Providers with no probe in flight, by next-due time (index into providers_).
  std::set<std::pair<Clock::time_point, std::size_t>> queue_;
  std::unordered_map<std::size_t, std::size_t> flights_; ///< engine id -> provider index
  std::size_t next_probe_ = 1;
  std::map<std::uint64_t, Round> rounds_;
  std::uint64_t next_round_ = 1;
  /// The next window, cooldown or override end in the table (next_deadline),
  /// and whether writes since its scan may have set an earlier one.
  Clock::time_point table_due_{};
  Clock::time_point table_scanned_{};
  bool table_dirty_ = true;
  std::unique_ptr<Control> control_;
  int wait_fd_ = -1; ///< epoll set: the signalfd and the control socket (watched by engine_)
  std::mt19937_64 rng_;
  Clock::time_point last_beat_{};
  std::int64_t last_expire_mono_ = 0; ///< when expire() last ran (Instant::mono_ns)
  bool stop_ = false;
  bool reload_ = false;
  int exit_code_ = kExitOk; ///< set when the table is lost for good
  std::string stop_signal_;
  bool first_round_ = false;     ///< every provider's first result is in the table
  Notifier notify_;              ///< systemd's READY=1, WATCHDOG=1, STATUS= (no-ops outside it)
  std::unique_ptr<Fleet> fleet_; ///< [fleet]: the Redis link's thread; null without one
  std::string fleet_status_;     ///< what the status file holds
  Clock::time_point fleet_status_at_{};
  bool fleet_dirty_ = false; ///< the stats may have changed since the file was written
  ProbeStats stats_;         ///< probe durations and transitions, read by metrics_'s thread
  std::int64_t start_unix_ns_ = 0;
  std::unique_ptr<MetricsServer> metrics_; ///< after stats_: stopped before it goes
};

} // namespace healthtable::prober
