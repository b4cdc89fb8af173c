// Writer API: the single process allowed to change a health table, and the
// circuit breaker it runs.
//
//   auto w = healthtable::Writer::open("gateway");   // takes the writer lock
//   w.mark_unhealthy("groq", "http 503");
//   w.mark_healthy("groq");
//
// Exactly one Writer per segment at a time, enforced by an open-file-
// description lock that the kernel drops when the holder dies (even by
// SIGKILL). A forked child does not inherit the right to write.
#pragma once

#include <healthtable/clock.hpp>
#include <healthtable/error.hpp>
#include <healthtable/table.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

namespace healthtable {

/// The longest backoff window accepted: 365 days. Longer is not a backoff;
/// an admin override keeps a provider down indefinitely.
inline constexpr std::chrono::nanoseconds kMaxBackoff = std::chrono::hours(24 * 365);

/// Circuit-breaker policy, stored in the segment header.
struct Policy {
  std::uint32_t failure_threshold = kDefaultFailureThreshold; ///< >= 1
  std::chrono::nanoseconds backoff{kDefaultBackoffNs};        ///< >= 0
};

/// Throws Error(invalid_argument) for a threshold < 1, a negative backoff or
/// one longer than kMaxBackoff.
void validate_policy(const Policy& policy);

struct CreateOptions {
  std::uint32_t capacity = kDefaultCapacity; ///< 1 .. kMaxCapacity slots
  Policy policy{};
  /// The object's exact mode, whatever the umask (0644: the owner writes,
  /// everyone reads; 0640 for a workers' group).
  std::uint32_t mode = 0644;
  /// Replace an existing segment: unlink it (mapped readers keep the old
  /// object, marked retired) and create a new one.
  bool replace = false;
};

/// What one outcome did to the breaker.
enum class Transition {
  none,      ///< no change of the healthy flag
  tripped,   ///< healthy -> unhealthy: the threshold was reached
  rearmed,   ///< failure while unhealthy: the window restarts from now
  recovered, ///< unhealthy -> healthy
};
std::string_view transition_name(Transition t) noexcept;

class Writer {
public:
  /// Creates the segment and takes the writer lock. Throws already_exists,
  /// invalid_name, invalid_argument, permission_denied, no_space, writer_busy
  /// (with replace, when a live writer holds the old segment).
  static Writer create(std::string_view segment, const CreateOptions& options = {});

  /// Opens an existing segment read-write and takes the writer lock, then
  /// repairs any record a dead writer left half-written. Throws what
  /// Table::open() throws, and writer_busy naming the holder's pid.
  static Writer open(std::string_view segment);

  /// Unlinks the segment. Mapped readers keep working on the old object,
  /// which is marked retired so Table::replaced() notices. Throws
  /// no_such_segment, writer_busy (a live writer holds it), permission_denied.
  static void destroy(std::string_view segment);

  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;
  ~Writer(); ///< releases the lock; the segment stays

  /// Registers a provider (idempotent). Throws invalid_name, table_full.
  Handle add(std::string_view provider);

  /// Success: resets the breaker (healthy, 0 failures, no error, no window)
  /// and stamps last_check. Registers an unknown provider.
  Transition mark_healthy(std::string_view provider, Instant now = Instant::now());

  /// Failure: counts it, stamps last_check and last_error (cut to
  /// kReasonMax bytes on a UTF-8 boundary); trips at the threshold; re-arms
  /// the window when already unhealthy. Registers an unknown provider.
  Transition mark_unhealthy(std::string_view provider, std::string_view reason,
                            Instant now = Instant::now());

  /// Admin override; the breaker keeps counting underneath. Registers an
  /// unknown provider.
  void set_override(std::string_view provider, Override mode);

  /// Every provider back to the zero state: healthy, no failures, no error,
  /// no window, no override, counters zero. Names stay registered, so
  /// handles held by readers stay valid. Bumps the generation.
  void reset();
  /// One provider back to the zero state. Throws unknown_provider.
  void reset(std::string_view provider);

  /// Changes the policy for future outcomes.
  void set_policy(const Policy& policy);
  Policy policy() const noexcept;

  /// Stamps the writer heartbeat (the prober does this every tick).
  void heartbeat(Instant now = Instant::now());
  /// Promises a heartbeat at least this often (0: no promise). Readers call
  /// the writer stale when 3 intervals pass without one. Cleared when the
  /// Writer is destroyed.
  void set_heartbeat_interval(std::chrono::nanoseconds interval);

  /// A reader over the writer's own mapping (never open a second Table on
  /// the same segment just to read what you write).
  const Table& table() const noexcept;

  /// Records repaired when this writer attached (left mid-update by a
  /// writer that died).
  std::uint32_t repaired() const noexcept;

  struct Impl;

private:
  explicit Writer(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

} // namespace healthtable
