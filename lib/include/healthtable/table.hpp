// Reader API: a read-only (PROT_READ) mapping of a health table.
//
//   auto table = healthtable::Table::open("gateway");
//   auto groq = table.find("groq");              // once, at start-up
//   if (!groq || table.is_healthy(*groq)) ...    // per request: one load
//
// Nothing here takes a lock, writes to shared memory, or makes a syscall,
// except open(), writer_status() and replaced(), which say so.
#pragma once

#include <healthtable/clock.hpp>
#include <healthtable/error.hpp>
#include <healthtable/layout.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace healthtable {

/// Admin override of a provider's health.
enum class Override : std::uint8_t {
  automatic = 0,   ///< the circuit breaker decides
  forced_down = 1, ///< always unhealthy until set back to automatic
  forced_up = 2,   ///< always healthy until set back to automatic
};
std::string_view override_name(Override o) noexcept; // "auto", "down", "up"

/// One provider's state: the reference module's fields plus what the table
/// adds. Always one consistent record.
struct ProviderState {
  std::string name;
  bool registered = false; ///< false for a snapshot() placeholder of an expected name
  /// The breaker's flag: false from the trip until a success, even once the
  /// window has passed (half-open). Use available() for the routing answer.
  bool healthy = true;
  std::uint32_t consecutive_failures = 0;
  std::int64_t last_check_unix_ns = 0;      ///< 0 = never checked
  std::optional<std::string> last_error;    ///< cleared on success
  std::int64_t unhealthy_until_unix_ns = 0; ///< 0 = not tripped
  std::int64_t unhealthy_until_mono_ns = 0; ///< the same deadline, monotonic
  Override override_mode = Override::automatic;
  std::uint64_t transitions = 0; ///< healthy<->unhealthy flips of the breaker
  std::uint64_t successes = 0;   ///< outcomes recorded, all time
  std::uint64_t failures = 0;

  /// What is_healthy() answers for this record at `now_mono_ns`.
  bool available(std::int64_t now_mono_ns) const noexcept;
};

/// A provider's slot, found once with Table::find(). Valid as long as the
/// Table it came from; slots never move within a segment.
class Handle {
public:
  std::uint32_t slot() const noexcept { return index_; }

private:
  friend class Table;
  friend class Writer;
  Handle(const Slot* s, std::uint32_t i) noexcept : slot_(s), index_(i) {}
  const Slot* slot_;
  std::uint32_t index_;
};

/// The header's facts, for `healthctl info`.
struct TableInfo {
  std::string segment;
  std::uint32_t layout_version = 0;
  std::uint64_t format = 0;
  std::uint32_t capacity = 0;
  std::uint32_t used = 0;
  std::uint32_t slot_size = 0;
  std::uint64_t total_size = 0;
  std::uint32_t failure_threshold = 0;
  std::int64_t backoff_ns = 0;
  std::uint64_t generation = 0;
  std::int64_t created_unix_ns = 0;
  std::int64_t writer_pid = 0; ///< last writer to attach; 0 = none since create
  std::int64_t writer_start_unix_ns = 0;
  std::int64_t heartbeat_mono_ns = 0; ///< 0 = never
  std::int64_t heartbeat_unix_ns = 0;
  /// How often the writer promised to beat (0: no promise, e.g. a one-shot
  /// `healthctl record`). Tools call a writer stale after 3 missed beats.
  std::int64_t heartbeat_interval_ns = 0;
  std::uint64_t updates = 0;
  SegmentState state = SegmentState::live;
  /// Owner of the segment object (its uid when this Table opened it). Only
  /// this uid can hold the writer lock (Writer refuses other owners).
  std::uint32_t owner_uid = 0;
  /// Its permission bits (as `healthctl create --mode` set them), at open.
  std::uint32_t mode = 0;
};

/// Whether a writer holds the segment's writer lock, asked of the kernel
/// (an open-file-description lock test), not guessed from a pid.
enum class WriterStatus { none, attached };

struct OpenOptions {
  /// Refuse a segment whose owner is not this uid (squatting defence for
  /// readers that know who the prober runs as).
  std::optional<std::uint32_t> require_owner;
};

/// A read-only view of one health table. Movable, not copyable.
class Table {
public:
  /// Opens the segment read-only. Throws Error: no_such_segment,
  /// permission_denied, not_ready, not_a_table, incompatible_layout, corrupt,
  /// invalid_name.
  static Table open(std::string_view segment, const OpenOptions& options = {});

  Table(Table&&) noexcept;
  Table& operator=(Table&&) noexcept;
  ~Table();

  /// The slot of a registered provider, or nothing (never seen: healthy).
  std::optional<Handle> find(std::string_view provider) const noexcept;

  /// The hot path. One acquire load; a clock read only when the provider is
  /// tripped or half-open; no lock, no syscall, no shared write.
  bool is_healthy(Handle h) const noexcept {
    // acquire: pairs with the release store in Writer::publish()
    const std::uint64_t w = h.slot_->down_until.load(std::memory_order_acquire);
    if (w == kUpWord) [[likely]] // laid out as the fall-through: measured, see docs/performance.md
      return true;
    if (w == kForcedDownWord) return false;
    return static_cast<std::uint64_t>(detail::coarse_mono_ns()) >= w;
  }
  /// The same at an explicit monotonic time (tests, replays).
  bool is_healthy(Handle h, std::int64_t now_mono_ns) const noexcept {
    const std::uint64_t w = h.slot_->down_until.load(std::memory_order_acquire);
    if (w == kUpWord) return true;
    if (w == kForcedDownWord) return false;
    return static_cast<std::uint64_t>(now_mono_ns) >= w;
  }
  /// By name: an index probe, then the same. True for unknown providers.
  bool is_healthy(std::string_view provider) const noexcept;
  bool is_healthy(std::string_view provider, std::int64_t now_mono_ns) const noexcept;

  /// A consistent copy of one provider's record, or nothing if never seen.
  std::optional<ProviderState> get_state(std::string_view provider) const;
  ProviderState get_state(Handle h) const;
  /// The same into `out`, reusing its strings' capacity: no allocation once
  /// warm. For readers that poll a record often.
  void get_state(Handle h, ProviderState& out) const;

  /// Copies of every registered provider, in registration order, followed by
  /// zero-state placeholders (registered == false) for expected names the
  /// table has never seen. Real states are never overwritten.
  std::vector<ProviderState> snapshot(std::span<const std::string> expected = {}) const;

  /// Header facts (capacity, use, policy, writer, heartbeat).
  TableInfo info() const;

  /// Asks the kernel whether a writer holds the lock (one fcntl call).
  WriterStatus writer_status() const;

  /// True when this mapping is no longer the segment at its name: it was
  /// destroyed, or recreated with --force. Costs an fstat and a stat; call it
  /// from a timer (once a second), never per request, then open() again.
  bool replaced() const;

  const std::string& segment() const noexcept;

  struct Impl; // defined in the library only
  explicit Table(std::unique_ptr<Impl> impl) noexcept;

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace healthtable
