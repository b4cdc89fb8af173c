// Reader API: a read-only (PROT_READ) view of a health table that follows
// the table wherever its writer moves it.
//
//   auto table = healthtable::Table::open("gateway");
//   auto groq = table.handle("groq");             // once, at start-up
//   if (table.is_healthy(groq)) ...               // per request: one load
//
// A Handle is taken once and stays right for the life of the Table: when
// the provider registers later, is forgotten and its slot reused, or the
// whole table is recreated, grown or replaced, the handle's next read
// notices (the word it loads no longer equals what it expects) and binds
// again, off the hot path. Nothing here takes a lock, writes to shared
// memory, or makes a system call on the healthy path; the functions that
// may (open(), handle(), info(), writer_status(), and a read that finds its
// table replaced) say so.
#pragma once

#include <healthtable/clock.hpp>
#include <healthtable/error.hpp>
#include <healthtable/layout.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace healthtable {

std::string_view override_name(Override o) noexcept;    // "auto", "down", "up"
std::string_view class_name(FailureClass c) noexcept;   // "timeout", "rate_limited", ...
std::string_view source_name(Source s) noexcept;        // "probe", "report", "admin", "peer"

/// Who set an override, when, why, and until when.
struct OverrideInfo {
  Override mode = Override::automatic;
  std::int64_t set_unix_ns = 0;   ///< 0: never set
  std::int64_t until_unix_ns = 0; ///< 0: no expiry
  std::int64_t until_mono_ns = 0; ///< the same expiry on this process's CLOCK_MONOTONIC
  std::optional<std::uint32_t> uid;
  std::string user;
  std::string reason;
};

/// One provider's state: the reference module's fields plus what the table
/// adds. Always one consistent record.
struct ProviderState {
  std::string name;
  bool registered = false; ///< false for a provider the table does not have
  /// The breaker's flag: false from the trip until a success, even once the
  /// window has passed (half-open). Use available() for the routing answer.
  bool healthy = true;
  std::uint32_t consecutive_failures = 0;
  std::int64_t last_check_unix_ns = 0;      ///< 0 = never checked
  std::optional<std::string> last_error;    ///< cleared on success
  std::int64_t unhealthy_until_unix_ns = 0; ///< 0 = not tripped
  /// The same deadline on this process's CLOCK_MONOTONIC (a reader in
  /// another time namespace gets its own clock's value).
  std::int64_t unhealthy_until_mono_ns = 0;
  Override override_mode = Override::automatic;
  std::uint64_t transitions = 0; ///< healthy<->unhealthy flips of the breaker
  std::uint64_t successes = 0;   ///< outcomes recorded, all time
  std::uint64_t failures = 0;
  // v2 additions.
  std::uint32_t slot = 0;
  std::uint32_t generation = 0; ///< the registration; a reused slot gets a new one
  FailureClass last_class = FailureClass::none;
  Source last_source = Source::probe;
  std::uint32_t trips = 0;       ///< trips in a row
  std::uint32_t success_run = 0; ///< consecutive successes
  std::int64_t window_ns = 0;    ///< length of the current window
  std::array<std::uint64_t, kFailureClasses> class_failures{};
  OverrideInfo override_info;
  std::int64_t ramp_ns = 0; ///< slow start after a window

  /// What is_healthy() answers for this record at `now_mono_ns` (this
  /// process's CLOCK_MONOTONIC), before any slow-start ramp.
  bool available(std::int64_t now_mono_ns) const noexcept;
};

namespace detail {
/// The two words a handle's hot path reads: where its state word is, and
/// the value that word has while the provider is available. Owned by the
/// Table (stable address); rebound off the hot path (docs/memory-ordering.md).
struct alignas(16) HandleCell {
  std::atomic<const std::atomic<std::uint64_t>*> word;
  std::atomic<std::uint64_t> up;
};
/// Everything but the healthy case; `now_mono_ns` < 0 means "read the clock".
bool is_healthy_slow(const HandleCell& cell, std::int64_t now_mono_ns) noexcept;
} // namespace detail

/// A provider, taken once with Table::handle(). Copyable, trivially; valid
/// for the life of the Table it came from (not across Tables).
class Handle {
public:
  /// The provider's name.
  std::string_view name() const noexcept;

private:
  friend class Table;
  explicit Handle(const detail::HandleCell* c) noexcept : cell_(c) {}
  const detail::HandleCell* cell_;
};

/// The header's facts, for `healthctl info`.
struct TableInfo {
  std::string segment;
  std::string home;   ///< its home directory (docs/home.md)
  std::string object; ///< the shared-memory object, /dev/shm/healthtable.NAME.ID
  std::uint32_t layout_version = 0;
  std::uint64_t format = 0;
  std::uint64_t instance = 0;
  std::uint32_t capacity = 0;
  std::uint32_t used = 0; ///< providers registered now
  std::uint32_t events_capacity = 0;
  std::uint64_t total_size = 0;
  std::uint32_t failure_threshold = 0;
  std::int64_t backoff_ns = 0;
  std::uint64_t generation = 0;
  std::int64_t created_unix_ns = 0;
  std::int64_t writer_pid = 0; ///< last writer to attach; 0 = none since create
  std::int64_t writer_start_unix_ns = 0;
  /// The last heartbeat on this process's CLOCK_MONOTONIC_COARSE (0: never).
  std::int64_t heartbeat_mono_ns = 0;
  std::int64_t heartbeat_unix_ns = 0;
  /// How often the writer promised to beat (0: no promise, e.g. a one-shot
  /// `healthctl record`). Tools call a writer stale after 3 missed beats.
  std::int64_t heartbeat_interval_ns = 0;
  std::uint64_t updates = 0;
  std::uint64_t reports_dropped = 0;
  std::uint64_t reports_refused = 0;
  std::uint64_t events = 0; ///< events published since create
  SegmentState state = SegmentState::live;
  /// Owner of the table (its home and object). Only this uid can write it.
  std::uint32_t owner_uid = 0;
  /// The object's permission bits (as `healthctl create --mode` set them).
  std::uint32_t mode = 0;
};

std::string_view event_name(EventKind k) noexcept; // "tripped", "recovered", ...

/// One entry of the table's event ring (docs/layout.md, "Events").
struct EventRecord {
  std::uint64_t number = 0; ///< 0, 1, 2 ... since the table was created
  std::int64_t unix_ns = 0;
  std::int64_t mono_ns = 0; ///< this process's CLOCK_MONOTONIC
  EventKind kind = EventKind::none;
  std::uint8_t from = 0, to = 0; ///< states or override modes, by kind
  FailureClass failure_class = FailureClass::none;
  Source source = Source::probe;
  std::int64_t until_unix_ns = 0; ///< a deadline it set; 0 none
  std::uint64_t count = 0;        ///< consecutive failures, a slot, or a capacity, by kind
  std::optional<std::uint32_t> uid;
  std::string provider; ///< empty for table-wide events
  std::string reason;
};

/// Events read from the ring, and how many the reader lost to overwriting.
struct EventBatch {
  std::vector<EventRecord> events;
  std::uint64_t next = 0;   ///< pass this as `from` to read on
  std::uint64_t missed = 0; ///< overwritten before they were read
};

/// What Table::pick() does when no provider of the chain is available.
enum class PickPolicy : std::uint8_t {
  /// Route anyway, to the provider whose window ends first (Envoy's panic
  /// mode, nginx's "try them all"), flagged Pick::panic. A provider forced
  /// down with no expiry is never chosen; one forced down with an expiry
  /// counts its expiry.
  panic,
  /// Route nowhere: no index, and Pick::retry_at for a 503 with Retry-After.
  none,
};

/// Why Table::pick() chose what it chose.
enum class PickReason : std::uint8_t {
  available,   ///< `index` is the first provider of the chain available now
  panic,       ///< none was; `index` is the one whose window ends first
  none,        ///< none was, and the policy is PickPolicy::none
  forced_down, ///< every provider is forced down with no expiry: no pick, no retry time
  empty,       ///< the chain is empty
};

std::string_view pick_reason_name(PickReason r) noexcept; // "available", "panic", ...

/// The answer of Table::pick().
struct Pick {
  std::optional<std::size_t> index; ///< into the chain; nothing: route nowhere
  bool available = false;           ///< `index` is available now
  bool panic = false;               ///< none was available; `index` is the panic choice
  PickReason reason = PickReason::empty;
  /// When none was available: the earliest moment at which a provider of
  /// the chain becomes available to this process (the end of its window,
  /// or of a forced-down override's expiry, plus this process's offset into
  /// a slow-start ramp). Nothing when one is available now, or when every
  /// provider is forced down with no expiry.
  std::optional<Instant> retry_at;
};

/// Whether a writer holds the table's writer lock, asked of the kernel, not
/// guessed from a pid.
enum class WriterStatus { none, attached };

struct OpenOptions {
  /// The uid the table must belong to. Unset: $HEALTHTABLE_OWNER (a user
  /// name or uid) if set, else the owner of the table's home directory,
  /// trusted because only root or we can create homes (docs/home.md).
  std::optional<std::uint32_t> owner;
};

/// A read-only view of one health table. Movable, not copyable.
class Table {
public:
  /// Opens the table read-only. Throws Error: no_such_segment,
  /// permission_denied, wrong_owner, not_ready, not_a_table,
  /// incompatible_layout, corrupt, invalid_name. Never blocks on what is at
  /// a path (FIFOs, devices are refused).
  static Table open(std::string_view segment, const OpenOptions& options = {});

  Table(Table&&) noexcept;
  Table& operator=(Table&&) noexcept;
  ~Table();

  /// The handle of a provider, registered or not (an unknown provider is
  /// healthy until it registers). The same name gives the same handle.
  /// Throws invalid_name. Takes a process-private lock: call it at start-up
  /// or on a slow path, not per request.
  Handle handle(std::string_view provider) const;
  /// The handle of a provider registered now, or nothing.
  std::optional<Handle> find(std::string_view provider) const;

  /// The hot path: two loads from the handle (private memory) and one
  /// acquire load from the table. A clock read only when the provider is
  /// tripped or half-open; no lock, no syscall, no shared write.
  bool is_healthy(Handle h) const noexcept {
    const detail::HandleCell& c = *h.cell_;
    // acquire: pairs with the release store in Cell binding (table.cpp)
    const std::atomic<std::uint64_t>* w = c.word.load(std::memory_order_acquire);
    const std::uint64_t up = c.up.load(std::memory_order_relaxed);
    // acquire: pairs with the release store in detail::publish_record()
    const std::uint64_t v = w->load(std::memory_order_acquire);
    if (v == up) [[likely]] // measured: docs/performance.md
      return true;
    if ((v ^ up) == kPayloadForcedDown) return false; // this registration, forced down
    // This registration inside its window: one coarse clock read (a vDSO
    // call, no syscall), in the host's clock like the deadline.
    if (word_gen(v) == word_gen(up) && word_payload(v) >= kPayloadDeadlineMin) {
      const std::int64_t host =
          detail::coarse_mono_ns() - detail::g_mono_offset_ns.load(std::memory_order_relaxed);
      if (static_cast<std::uint64_t>(host / 1'000'000) < word_payload(v)) return false;
    }
    return detail::is_healthy_slow(c, -1);
  }
  /// The same at an explicit time on this process's CLOCK_MONOTONIC
  /// (tests, replays).
  bool is_healthy(Handle h, std::int64_t now_mono_ns) const noexcept {
    const detail::HandleCell& c = *h.cell_;
    const std::atomic<std::uint64_t>* w = c.word.load(std::memory_order_acquire);
    if (w->load(std::memory_order_acquire) == c.up.load(std::memory_order_relaxed)) return true;
    return detail::is_healthy_slow(c, now_mono_ns < 0 ? 0 : now_mono_ns);
  }
  /// By name: an index probe, then the same. True for unknown providers.
  /// No lock and no allocation.
  bool is_healthy(std::string_view provider) const noexcept;
  bool is_healthy(std::string_view provider, std::int64_t now_mono_ns) const noexcept;

  /// The first provider of an ordered chain that is_healthy() would route
  /// to now, and when none is, what `policy` says. A provider the table does
  /// not have is available. When the first provider is available this costs
  /// what is_healthy(handle) does (one load from the table, no clock read);
  /// the clock is read only past a provider that is not plainly up. No lock,
  /// no syscall, no shared write, no allocation.
  Pick pick(std::span<const Handle> chain, PickPolicy policy = PickPolicy::panic) const noexcept {
    if (!chain.empty() && plainly_up(chain.front())) [[likely]]
      return Pick{std::size_t{0}, true, false, PickReason::available, std::nullopt};
    return pick_slow(chain, policy, nullptr);
  }
  /// The same at an explicit moment (tests, replays): `now.mono_ns` on this
  /// process's CLOCK_MONOTONIC, `now.unix_ns` the wall clock for retry_at.
  Pick pick(std::span<const Handle> chain, Instant now,
            PickPolicy policy = PickPolicy::panic) const noexcept {
    if (!chain.empty() && plainly_up(chain.front())) [[likely]]
      return Pick{std::size_t{0}, true, false, PickReason::available, std::nullopt};
    return pick_slow(chain, policy, &now);
  }
  /// By name: an index probe per provider tried, then the same. Unknown
  /// providers, and names no provider can have, are available. No lock and
  /// no allocation.
  Pick pick(std::span<const std::string_view> chain,
            PickPolicy policy = PickPolicy::panic) const noexcept;
  Pick pick(std::span<const std::string_view> chain, Instant now,
            PickPolicy policy = PickPolicy::panic) const noexcept;

  /// A consistent copy of one provider's record, or nothing if not registered.
  std::optional<ProviderState> get_state(std::string_view provider) const;
  /// The same by handle; `registered` is false for a provider the table
  /// does not have (then the rest is the zero state). Throws
  /// invalid_argument for a handle of another Table.
  ProviderState get_state(Handle h) const;
  /// The same into `out`, reusing its strings' capacity: no allocation once
  /// warm. For readers that poll a record often.
  void get_state(Handle h, ProviderState& out) const;

  /// Copies of every registered provider, in slot order, followed by
  /// zero-state placeholders (registered == false) for expected names the
  /// table does not have. Real states are never overwritten.
  std::vector<ProviderState> snapshot(std::span<const std::string> expected = {}) const;

  /// Events numbered `from` and later, oldest first, at most `max`. Reads
  /// only: any number of readers, none of them slows the writer.
  EventBatch events(std::uint64_t from = 0, std::size_t max = 4096) const;

  /// Header facts (capacity, use, policy, writer, heartbeat).
  TableInfo info() const;

  /// Asks the kernel whether a writer holds the lock (a few syscalls).
  WriterStatus writer_status() const;

  /// True when the table this view reads is no longer the one at its name
  /// (destroyed, replaced or moved) and refresh() has not followed it yet.
  /// Handles follow by themselves; this is for tools that hold a view.
  bool replaced() const;
  /// Re-opens the table by name if it was replaced; true when it moved.
  /// Old mappings stay mapped for the handles that may still read them.
  bool refresh() const;

  const std::string& segment() const noexcept;

  struct Impl; // defined in the library only
  explicit Table(std::unique_ptr<Impl> impl) noexcept;
  Impl& impl() const noexcept { return *impl_; }

private:
  /// The healthy case of is_healthy(handle): the word is the up value.
  static bool plainly_up(Handle h) noexcept {
    const detail::HandleCell& c = *h.cell_;
    // acquire: pairs with the release store in Cell binding (table.cpp)
    const std::atomic<std::uint64_t>* w = c.word.load(std::memory_order_acquire);
    const std::uint64_t up = c.up.load(std::memory_order_relaxed);
    // acquire: pairs with the release store in detail::publish_record()
    return w->load(std::memory_order_acquire) == up;
  }
  /// pick() past a first provider that is not plainly up (pick.cpp);
  /// `now` null: read the clocks, once, if needed.
  Pick pick_slow(std::span<const Handle> chain, PickPolicy policy,
                 const Instant* now) const noexcept;

  std::unique_ptr<Impl> impl_;
};

} // namespace healthtable
