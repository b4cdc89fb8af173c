// Writer API: the single process allowed to change a health table, and the
// circuit breaker it runs.
//
//   auto w = healthtable::Writer::open("gateway");   // takes the writer lock
//   w.mark_unhealthy("groq", "http 503");
//   w.mark_healthy("groq");
//
// Exactly one Writer per table at a time, enforced by an open-file-
// description lock on the lock file in the table's home, which only the
// owner can open (no reader can hold it, or block it) and which the kernel
// drops when the holder dies, even by SIGKILL. A forked child does not
// inherit the right to write.
#pragma once

#include <healthtable/clock.hpp>
#include <healthtable/error.hpp>
#include <healthtable/table.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace healthtable {

/// The longest backoff window accepted: 365 days. Longer is not a backoff;
/// an admin override keeps a provider down indefinitely.
inline constexpr std::chrono::nanoseconds kMaxBackoff = std::chrono::hours(24 * 365);

/// Circuit-breaker policy, stored in the table (the default for new
/// providers) and in each provider's record.
struct Policy {
  std::uint32_t failure_threshold = kDefaultFailureThreshold; ///< >= 1
  std::chrono::nanoseconds backoff{kDefaultBackoffNs};        ///< >= 0
};

/// Throws Error(invalid_argument) for a threshold < 1, a negative backoff or
/// one longer than kMaxBackoff.
void validate_policy(const Policy& policy);

struct CreateOptions {
  std::uint32_t capacity = kDefaultCapacity; ///< 1 .. kMaxCapacity slots
  std::uint32_t events = kDefaultEvents;     ///< event ring size (rounded up to a power of two)
  Policy policy{};
  /// The object's exact mode, whatever the umask: 0644 (everyone reads) or
  /// 0640 (a workers' group reads). Group or other write bits are refused:
  /// only the writer writes.
  std::uint32_t mode = 0644;
  /// Replace an existing table: its readers follow to the new one.
  bool replace = false;
  /// Root only: the uid (and gid) that will own the table and its home, so
  /// a prober running as that user can write it.
  std::optional<std::uint32_t> owner_uid;
  std::optional<std::uint32_t> owner_gid;
};

/// What one outcome did to the breaker.
enum class Transition {
  none,      ///< no change of the healthy flag
  tripped,   ///< healthy -> unhealthy: the threshold was reached
  rearmed,   ///< failure while unhealthy: the window restarts from now
  recovered, ///< unhealthy -> healthy
};
std::string_view transition_name(Transition t) noexcept;

/// Who sets an override, and why, and for how long.
struct OverrideRequest {
  Override mode = Override::automatic;
  std::optional<std::chrono::nanoseconds> expires_after; ///< nothing: until set back
  std::string reason;
  std::optional<std::uint32_t> uid; ///< who asked (the writer's own uid if unset)
};

/// Whether the writer's table is still the one its home points at.
enum class Standing {
  current,  ///< all is well
  unlinked, ///< the object was removed from /dev/shm
  replaced, ///< the home points at another object
  no_home,  ///< the home directory, or its pointer, is gone
};
std::string_view standing_name(Standing s) noexcept;

class Writer {
public:
  /// Creates the table (its home if needed, the object, the lock) and takes
  /// the writer lock. Throws already_exists, invalid_name, invalid_argument,
  /// permission_denied, wrong_owner, no_space, writer_busy (with replace,
  /// when a live writer holds the old table).
  static Writer create(std::string_view segment, const CreateOptions& options = {});

  /// Opens an existing table read-write and takes the writer lock, then
  /// repairs any record a dead writer left half-written. Throws what
  /// Table::open() throws, and writer_busy naming the holder's pid.
  static Writer open(std::string_view segment);

  /// Removes the table: its pointer, lock and object (readers that still
  /// map it see it retired and answer as for an unknown table). Refuses
  /// (not_a_table) anything at the name that is not a health table of ours,
  /// unless `force`, which removes whatever the home holds. Throws
  /// no_such_segment, writer_busy (a live writer holds it), permission_denied.
  static void destroy(std::string_view segment, bool force = false);

  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;
  ~Writer(); ///< releases the lock; the table stays

  /// Registers a provider (idempotent), reusing a forgotten slot if any.
  /// Throws invalid_name, table_full.
  Handle add(std::string_view provider);
  /// Gives a provider's slot back: readers' handles of it answer as for an
  /// unknown provider until it registers again. Throws unknown_provider.
  void forget(std::string_view provider);
  /// Moves every provider's state into a new object of `capacity` slots
  /// (at least the providers registered now) and points the home at it;
  /// readers follow. Also the cure for an index full of freed entries.
  /// Throws invalid_argument, no_space.
  void grow(std::uint32_t capacity);
  /// The same at the same capacity: a fresh object for a table that was
  /// unlinked or replaced under us (state from our mapping).
  void recreate();
  /// Whether our object is still the one the home points at (a few syscalls;
  /// the prober asks once a heartbeat).
  Standing standing() const;

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
  void set_override(std::string_view provider, const OverrideRequest& request,
                    Instant now = Instant::now());

  /// Every provider back to the zero state: healthy, no failures, no error,
  /// no window, no override, counters zero. Names stay registered, so
  /// handles stay bound. Bumps the generation.
  void reset();
  /// One provider back to the zero state. Throws unknown_provider.
  void reset(std::string_view provider);

  /// Changes the policy of the table and of every provider.
  void set_policy(const Policy& policy);
  Policy policy() const noexcept;

  /// Stamps the writer heartbeat (the prober does this from a timer).
  void heartbeat(Instant now = Instant::now());
  /// Promises a heartbeat at least this often (0: no promise). Readers call
  /// the writer stale when 3 intervals pass without one. Cleared when the
  /// Writer is destroyed.
  void set_heartbeat_interval(std::chrono::nanoseconds interval);
  /// Counts worker reports that were lost or refused, for `info`.
  void count_reports(std::uint64_t dropped, std::uint64_t refused);

  /// A reader over the writer's own mapping (never open a second Table on
  /// the same table just to read what you write).
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
