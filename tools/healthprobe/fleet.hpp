// The fleet link: one thread that owns the Redis connections (one to
// PUBLISH, one SUBSCRIBEd to the fleet's channel), so that a Redis that is
// down, slow or unreachable never blocks the prober's loop. The loop hands
// facts to publish through publish() (a queue and an eventfd); the thread
// hands back verified peer facts and log lines through drain(), and makes
// fd() readable when it has some. The table's Writer stays the loop's
// alone (docs/fleet.md).
#pragma once

#include "config.hpp"
#include "fleet_message.hpp"
#include "fleet_replay.hpp"
#include "log.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

struct redisContext;

namespace healthtable::prober {

/// What the fleet link has done, for logs, STATUS=, the `fleet` status file
/// and (as healthtable_fleet_* series) /metrics. Counters only grow.
struct FleetStats {
  bool connected = false;     ///< both connections up and subscribed
  std::uint64_t connects = 0; ///< successful connections (the first included)
  std::uint64_t connect_failures = 0;
  std::uint64_t published = 0; ///< facts Redis accepted
  std::uint64_t publish_dropped =
      0;                       ///< facts never sent: queue full, or stale before Redis came back
  std::uint64_t received = 0;  ///< messages that arrived on the channel
  std::uint64_t applied = 0;   ///< peer facts that moved a local deadline later
  std::uint64_t unchanged = 0; ///< peer facts accepted that set nothing later
  std::array<std::uint64_t, kRefusals> refused{}; ///< by Refusal
  std::int64_t last_delay_ns = -1; ///< the last applied fact: written here minus sent there
  std::int64_t max_delay_ns = -1;
  std::string last_error; ///< why the link is (or last was) down

  std::uint64_t refused_total() const;
  std::uint64_t reconnects() const { return connects > 0 ? connects - 1 : 0; }
};

class Fleet {
public:
  /// Facts waiting to be sent while Redis is away: the oldest go first.
  static constexpr std::size_t kMaxQueue = 1024;

  /// Starts the thread; it connects on its own, with backoff.
  explicit Fleet(const FleetConfig& cfg);
  ~Fleet(); ///< stops and joins the thread
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  /// Readable (an eventfd) when drain() has something.
  int fd() const noexcept { return ready_fd_; }
  /// Queues a fact; never blocks.
  void publish(Fact fact);

  struct Inbox {
    std::vector<Envelope> facts; ///< authenticated, fresh, not replayed, deadline in range
    std::vector<std::pair<Level, std::string>> logs;
  };
  Inbox drain();

  /// The loop's verdicts on facts drain() gave it.
  void refuse(Refusal r);
  void applied(bool moved, std::int64_t delay_ns);

  FleetStats stats() const;
  /// "fleet prod connected: 3 received, 2 applied, 1 refused"
  std::string summary() const;
  /// The stats as one JSON object (the `fleet` status file).
  std::string json() const;
  const FleetConfig& config() const noexcept { return cfg_; }

private:
  void run();
  bool connect(std::string& error);
  bool auth(redisContext* c, std::string& error);
  /// Serves the connections until one fails (false, with the reason) or stop.
  bool serve(std::string& error);
  bool send_queued(std::string& error);
  void take(const char* payload, std::size_t len);
  void disconnect();
  void log(Level level, std::string line);
  void wait_for(std::chrono::nanoseconds d);
  void signal_ready();
  std::int64_t now_unix() const;

  FleetConfig cfg_;
  std::string instance_; ///< random per process: a restart starts a new sequence
  int wake_fd_ = -1;     ///< the thread's: a fact to publish, or stop
  int ready_fd_ = -1;    ///< the loop's: an inbox to drain
  redisContext* pub_ = nullptr;
  redisContext* sub_ = nullptr;
  std::uint64_t seq_ = 0;
  ReplayWindow replay_; ///< the thread's alone
  std::array<bool, kRefusals> refusal_logged_{};

  mutable std::mutex mu_;
  std::deque<Fact> outbox_;
  Inbox inbox_;
  FleetStats stats_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

} // namespace healthtable::prober
