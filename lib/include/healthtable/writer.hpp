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
#include <vector>

namespace healthtable {

/// The longest backoff window accepted: 365 days. Longer is not a backoff;
/// an admin override keeps a provider down indefinitely.
inline constexpr std::chrono::nanoseconds kMaxBackoff = std::chrono::hours(24 * 365);

/// A set of failure classes: bit c stands for FailureClass c.
using ClassSet = std::uint8_t;
constexpr ClassSet class_bit(FailureClass c) noexcept {
  return static_cast<ClassSet>(1u << static_cast<unsigned>(c));
}
/// Classes that count toward a trip by default: every failure but `client`
/// (a 4xx other than 401/403/429 says the request was wrong, not the
/// provider) and `rate_limited` (a cooldown, not an outage).
inline constexpr ClassSet kDefaultCounts =
    class_bit(FailureClass::timeout) | class_bit(FailureClass::connect) |
    class_bit(FailureClass::server) | class_bit(FailureClass::auth) |
    class_bit(FailureClass::other);
inline constexpr ClassSet kDefaultCooldowns = class_bit(FailureClass::rate_limited);

/// Circuit-breaker policy, stored in the table (the default for new
/// providers) and in each provider's record (docs/breaker.md). The defaults
/// are the reference module's breaker: threshold 2, a fixed 60 s window,
/// one success closes it, no ramp.
struct Policy {
  std::uint32_t failure_threshold = kDefaultFailureThreshold; ///< >= 1
  std::chrono::nanoseconds backoff{kDefaultBackoffNs};        ///< >= 0: the first window
  /// Consecutive successes that close a tripped breaker (HAProxy `rise`).
  std::uint32_t recover_after = 1;
  /// The window doubles with each trip in a row up to this; <= backoff: it
  /// never grows.
  std::chrono::nanoseconds max_backoff{0};
  /// Each window is moved by up to +- this many thousandths of itself.
  std::uint32_t jitter_permille = 0;
  /// Healthy this long after a recovery: the next trip's window starts
  /// from `backoff` again.
  std::chrono::nanoseconds trip_memory{std::chrono::minutes(10)};
  /// After a window, each reader process admits the provider again at its
  /// own offset into this span (slow start); 0: all at once.
  std::chrono::nanoseconds ramp{0};
  ClassSet counts = kDefaultCounts;       ///< classes that count toward the threshold
  ClassSet cooldowns = kDefaultCooldowns; ///< classes that set a cooldown instead
  /// A cooldown class's deadline when the outcome carries no retry hint.
  std::chrono::nanoseconds cooldown{std::chrono::seconds(5)};
  /// The longest retry hint believed; longer hints are cut to this.
  std::chrono::nanoseconds max_hint{std::chrono::hours(1)};
  /// Whether a probe's success also clears failures that workers reported
  /// since the previous probe (by default it does not: the probe may reach
  /// a health endpoint that works while real requests fail).
  bool probe_clears_reports = false;

  friend bool operator==(const Policy&, const Policy&) = default;
};

/// Throws Error(invalid_argument) naming the field, for a threshold or
/// recover_after < 1, a negative or over-long (kMaxBackoff) duration, or a
/// jitter above 1000.
void validate_policy(const Policy& policy);

/// One outcome of a request or probe, as the breaker takes it.
struct Outcome {
  FailureClass failure_class = FailureClass::none; ///< none: a success
  std::string_view reason;                         ///< for a failure: last_error
  Source source = Source::probe;
  /// A retry hint (Retry-After, retry-after-ms, a rate-limit reset): the
  /// provider is unavailable for at least this long from now, capped by the
  /// policy's max_hint. A hint never shortens a deadline already set.
  std::optional<std::chrono::nanoseconds> retry_after;
};

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

/// What a reset clears: the breaker's state, or its overrides too.
enum class ResetScope { state, state_and_overrides };

/// What one outcome did to the breaker.
enum class Transition {
  none,      ///< no change of the healthy flag
  tripped,   ///< healthy -> unhealthy: the threshold was reached
  rearmed,   ///< failure while unhealthy: the window restarts from now
  recovered, ///< unhealthy -> healthy
  cooldown,  ///< a rate limit or retry hint set (or moved out) a deadline
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

  /// Feeds one outcome through the provider's breaker (docs/breaker.md).
  /// Registers an unknown provider. Returns what it did.
  Transition record(std::string_view provider, const Outcome& outcome,
                    Instant now = Instant::now());

  /// Success: resets the breaker (healthy, 0 failures, no error, no window)
  /// and stamps last_check. The reference module's call: record() with a
  /// success from a probe.
  Transition mark_healthy(std::string_view provider, Instant now = Instant::now());

  /// Failure: counts it, stamps last_check and last_error (cut to
  /// kReasonMax bytes on a UTF-8 boundary); trips at the threshold; re-arms
  /// the window when already unhealthy. record() with class `other`.
  Transition mark_unhealthy(std::string_view provider, std::string_view reason,
                            Instant now = Instant::now());

  /// Housekeeping the prober runs on its timer: overrides whose time is up
  /// go back to the breaker (an event says so), and deadlines that passed
  /// on a healthy provider are cleared, so its readers are back on the
  /// one-load path. Returns the providers whose window ended since the
  /// last call (probe them now: the breaker is half-open).
  std::vector<std::string> expire(Instant now = Instant::now());

  /// Admin override; the breaker keeps counting underneath. Registers an
  /// unknown provider.
  void set_override(std::string_view provider, Override mode);
  void set_override(std::string_view provider, const OverrideRequest& request,
                    Instant now = Instant::now());

  /// Every provider back to the zero state: healthy, no failures, no error,
  /// no window, counters zero; overrides stay unless the scope says so. Names
  /// stay registered, so handles stay bound. Bumps the generation.
  void reset(ResetScope scope = ResetScope::state);
  /// One provider back to the zero state. Throws unknown_provider.
  void reset(std::string_view provider, ResetScope scope = ResetScope::state);

  /// Changes the policy of the table and of every provider.
  void set_policy(const Policy& policy);
  /// Changes one provider's policy (registering it); the table's default
  /// stays. Throws invalid_argument as validate_policy().
  void set_policy(std::string_view provider, const Policy& policy);
  /// The table's default policy.
  Policy policy() const noexcept;
  /// A registered provider's policy. Throws unknown_provider.
  Policy policy(std::string_view provider) const;

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
