// healthtable segment layout, version 2: the ABI shared by the writer, every
// reader and any tool in any language. This header uses the standard library
// alone (<atomic>, <cstdint>, ...); docs/layout.md gives the same layout as an
// offset table, and docs/home.md says where a table lives and whom to trust.
//
// A table is one POSIX shared-memory object, /dev/shm/healthtable.NAME.ID
// (ID: the object's 16-hex-digit instance), reached through the table's
// home directory, which only its owner can write (docs/home.md):
//
//   offset 0             +--------------------------------------------+
//                        | Header (1 KiB, 16 cache lines)             |
//   index_offset (1024)  +--------------------------------------------+
//                        | name index: index_size x atomic<u64>       |
//                        |   entry = tag (hash >> 32) << 32 | slot+1  |
//                        |   0 = empty, slot+1 == kTombstone = freed  |
//   heads_offset         +--------------------------------------------+
//                        | SlotHead 0 .. capacity-1 (128 B each)      |
//                        |   line 0: word (THE hot word), ident,      |
//                        |           name bytes 0..47                 |
//                        |   line 1: name bytes 48..63, ramp          |
//   bodies_offset        +--------------------------------------------+
//                        | SlotBody 0 .. capacity-1 (1088 B each)     |
//                        |   line 0: seq (the latch)                  |
//                        |   lines 1-16: two Record copies            |
//   events_offset        +--------------------------------------------+
//                        | Event ring: events_capacity x 256 B        |
//   total_size           +--------------------------------------------+
//
// Why readers need no lock (docs/memory-ordering.md has the full table):
// - is_healthy() reads one word, SlotHead::word, which the writer derives
//   from the record and stores last. It carries the slot's registration
//   (the low 24 bits of its generation) beside the state, so a handle held
//   across a forget and a reuse of the slot can never read the next
//   provider's state as its own: the word no longer equals what the handle
//   expects, and the handle takes the slow path and looks again.
// - The record is guarded by a seqcount *latch* (the Linux kernel's
//   raw_write_seqcount_latch): two copies, and the sequence's low bit says
//   which is stable. A writer killed mid-update leaves one copy whole.
// - A slot's identity (name, generation) is guarded by its own sequence in
//   SlotHead::ident: odd while the writer rewrites it.
// - Events are a ring of records, each with its own sequence: a reader that
//   falls behind sees the sequence of a later lap and counts what it missed.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace healthtable {

/// Layout version. Bump on any change to the structs below.
inline constexpr std::uint32_t kLayoutVersion = 2;

/// "HLTHTBL\x01" as little-endian bytes: `hexdump -C` shows HLTHTBL. The
/// same in every version: it says "a health table"; `format` says which.
inline constexpr std::uint64_t kMagic = 0x014C425448544C48ULL;

inline constexpr std::size_t kCacheLine = 64;

/// Longest provider name in bytes (stored NUL padded in 64 B).
inline constexpr std::size_t kProviderNameMax = 63;
/// Longest last_error kept, in bytes; longer reasons are cut on a UTF-8
/// code point boundary.
inline constexpr std::size_t kReasonMax = 120;
/// Longest override reason and user name kept.
inline constexpr std::size_t kNoteMax = 64;
inline constexpr std::size_t kUserMax = 32;
/// Longest table name in bytes.
inline constexpr std::size_t kSegmentNameMax = 200;

inline constexpr std::uint32_t kDefaultCapacity = 64;
inline constexpr std::uint32_t kMaxCapacity = 65536;
inline constexpr std::uint32_t kDefaultEvents = 1024;
inline constexpr std::uint32_t kMaxEvents = 65536;
inline constexpr std::uint32_t kDefaultFailureThreshold = 2;
inline constexpr std::int64_t kDefaultBackoffNs = 60'000'000'000; // 60 s

// ---------------------------------------------------------------------------
// The hot word. 64 bits: the slot's registration tag in the top 24 bits, the
// state in the low 40:
//
//   63          40 39                                 0
//   +-------------+------------------------------------+
//   | gen & 0xFFFFFF | payload                         |
//   +-------------+------------------------------------+
//
//   payload 0              available (healthy, or forced up): no clock read
//   payload 1              look again: the slot was forgotten, or the whole
//                          table was replaced (retired); never "available"
//   payload 2              never stored (what a handle being rebound expects)
//   payload 2^40 - 1       forced down, no expiry
//   any other payload      a deadline in milliseconds on the host's
//                          CLOCK_MONOTONIC: unavailable while now < deadline
//
// A handle bound to generation g expects exactly up_word(g) and takes the
// slow path for anything else. 40 bits of milliseconds last 34 years of
// uptime.
inline constexpr unsigned kWordGenShift = 40;
inline constexpr std::uint64_t kWordPayloadMask = (1ULL << kWordGenShift) - 1;
inline constexpr std::uint64_t kWordGenMask = 0xFFFFFF;
inline constexpr std::uint64_t kPayloadUp = 0;
inline constexpr std::uint64_t kPayloadLookAgain = 1;
inline constexpr std::uint64_t kPayloadForcedDown = kWordPayloadMask;
/// Never stored: a handle that is being rebound expects this, so no word
/// matches it in the meantime.
inline constexpr std::uint64_t kPayloadNever = 2;
inline constexpr std::uint64_t kPayloadDeadlineMin = 3;
inline constexpr std::uint64_t kPayloadDeadlineMax = kWordPayloadMask - 1;

constexpr std::uint64_t word_of(std::uint64_t gen, std::uint64_t payload) noexcept {
  return ((gen & kWordGenMask) << kWordGenShift) | (payload & kWordPayloadMask);
}
constexpr std::uint64_t up_word(std::uint64_t gen) noexcept { return word_of(gen, kPayloadUp); }
constexpr std::uint64_t word_gen(std::uint64_t w) noexcept { return w >> kWordGenShift; }
constexpr std::uint64_t word_payload(std::uint64_t w) noexcept { return w & kWordPayloadMask; }

/// A deadline in host-monotonic nanoseconds as a word payload: rounded up
/// to the next millisecond (never early), clamped into the deadline range.
constexpr std::uint64_t deadline_payload(std::int64_t host_mono_ns) noexcept {
  if (host_mono_ns <= 0) return kPayloadDeadlineMin;
  const std::uint64_t ms = (static_cast<std::uint64_t>(host_mono_ns) + 999'999) / 1'000'000;
  if (ms < kPayloadDeadlineMin) return kPayloadDeadlineMin;
  if (ms > kPayloadDeadlineMax) return kPayloadDeadlineMax;
  return ms;
}

// ---------------------------------------------------------------------------
// SlotHead::ident: the slot's identity and the sequence that guards it.
//
//   63              32 31         16 15      8 7       1 0
//   +-----------------+-------------+---------+---------+--+
//   | generation      | reserved    | name_len| reserved|b |
//   +-----------------+-------------+---------+---------+--+
//
// b (busy) is set while the writer rewrites the name. The generation comes
// from Header::next_generation: unique within a table, never 0 for a
// registered slot. name_len 0 with b clear: the slot is free.
inline constexpr std::uint64_t kIdentBusy = 1;
inline constexpr std::uint64_t kIdentLenMask = 0xFF00;
constexpr std::uint64_t ident_of(std::uint32_t gen, std::uint32_t len) noexcept {
  return (std::uint64_t{gen} << 32) | (std::uint64_t{len & 0xFF} << 8);
}
constexpr std::uint32_t ident_gen(std::uint64_t i) noexcept {
  return static_cast<std::uint32_t>(i >> 32);
}
constexpr std::uint32_t ident_len(std::uint64_t i) noexcept {
  return static_cast<std::uint32_t>((i & kIdentLenMask) >> 8);
}

/// Index entries.
inline constexpr std::uint32_t kTombstone = 0xFFFFFFFF; ///< slot+1 field of a freed entry
constexpr std::uint64_t index_entry(std::uint64_t hash, std::uint32_t slot) noexcept {
  return (hash & 0xFFFFFFFF00000000ULL) | (std::uint64_t{slot} + 1);
}
constexpr std::uint32_t index_tag(std::uint64_t hash) noexcept {
  return static_cast<std::uint32_t>(hash >> 32);
}

/// Header::state values.
enum class SegmentState : std::uint32_t {
  creating = 0, ///< never observed by readers: magic is not yet published
  live = 1,
  retired = 2, ///< destroyed, replaced or moved to a larger table: re-open by name
};

/// Failure classes, as outcomes carry them (docs/breaker.md).
enum class FailureClass : std::uint8_t {
  none = 0, ///< a success
  timeout = 1,
  connect = 2,
  server = 3,       ///< 5xx
  rate_limited = 4, ///< 429
  auth = 5,         ///< 401, 403
  client = 6,       ///< other 4xx: never counts toward a trip by default
  other = 7,
};
inline constexpr std::size_t kFailureClasses = 8;

/// Override modes.
enum class Override : std::uint8_t {
  automatic = 0,   ///< the circuit breaker decides
  forced_down = 1, ///< unavailable until set back (or until it expires)
  forced_up = 2,   ///< available until set back (or until it expires)
};

/// Where an outcome came from.
enum class Source : std::uint8_t {
  probe = 0,  ///< the prober's own active probe
  report = 1, ///< a worker's passive report (Reporter)
  admin = 2,  ///< healthctl
  peer = 3,   ///< another host's prober (fleet)
};

/// Record::status bit fields.
namespace status {
inline constexpr std::uint64_t kHealthy = 1ULL << 0;
inline constexpr unsigned kOverrideShift = 1; ///< 2 bits: Override
inline constexpr std::uint64_t kOverrideMask = 3ULL << kOverrideShift;
inline constexpr std::uint64_t kHasError = 1ULL << 3; ///< last_error present
inline constexpr unsigned kClassShift = 4;            ///< 3 bits: class of the last failure
inline constexpr std::uint64_t kClassMask = 7ULL << kClassShift;
inline constexpr unsigned kReasonLenShift = 8; ///< 8 bits: 0..kReasonMax
inline constexpr std::uint64_t kReasonLenMask = 0xFFULL << kReasonLenShift;
inline constexpr unsigned kNoteLenShift = 16; ///< 8 bits: override reason, 0..kNoteMax
inline constexpr std::uint64_t kNoteLenMask = 0xFFULL << kNoteLenShift;
inline constexpr unsigned kSourceShift = 24; ///< 2 bits: Source of the last outcome
inline constexpr std::uint64_t kSourceMask = 3ULL << kSourceShift;
inline constexpr unsigned kFailuresShift = 32; ///< 32 bits: consecutive failures
} // namespace status

/// A provider's circuit-breaker policy, as stored: nine 64-bit words
/// (docs/breaker.md). Durations in nanoseconds; 0 turns a feature off.
namespace policy_word {
inline constexpr std::size_t kThresholds = 0; ///< failure_threshold | recover_after << 32
/// counts_mask | cooldown_mask << 32 (a bit per class) | 1 << 40 if a
/// probe's success clears worker-reported failures
inline constexpr std::size_t kMasks = 1;
inline constexpr std::size_t kBackoff = 2;    ///< the first window
inline constexpr std::size_t kMaxBackoff = 3; ///< cap of the growing window (<= backoff: none)
inline constexpr std::size_t kCooldown = 4;   ///< a cooldown without a retry hint
inline constexpr std::size_t kMaxHint = 5;    ///< cap of a retry hint
inline constexpr std::size_t kTripMemory = 6; ///< healthy this long: trips in a row reset
inline constexpr std::size_t kRamp = 7;       ///< slow start after a window
inline constexpr std::size_t kJitter = 8;     ///< +- window jitter, permille (0..1000)
inline constexpr std::size_t kCount = 9;
} // namespace policy_word

inline constexpr std::size_t kReasonWords = kReasonMax / 8;
inline constexpr std::size_t kNoteWords = kNoteMax / 8;
inline constexpr std::size_t kUserWords = kUserMax / 8;
inline constexpr std::size_t kNameWords = 8;

/// A record is 64 words; these are their indices. Signed quantities
/// (times) are stored as two's complement. Every word is an atomic
/// accessed relaxed, bracketed by the latch sequence and fences (Boehm,
/// "Can seqlocks get along with programming language memory models?").
namespace record_word {
inline constexpr std::size_t kStatus = 0;     ///< see namespace status
inline constexpr std::size_t kGeneration = 1; ///< the registration this record belongs to
inline constexpr std::size_t kTransitions = 2;
inline constexpr std::size_t kSuccesses = 3;
inline constexpr std::size_t kFailures = 4;
inline constexpr std::size_t kRuns = 5;          ///< trips in a row | consecutive successes << 32
inline constexpr std::size_t kLastCheckUnix = 6; ///< 0 = never
inline constexpr std::size_t kUnhealthyUntilUnix = 7; ///< 0 = not tripped
inline constexpr std::size_t kUnhealthyUntilMono = 8; ///< host CLOCK_MONOTONIC; 0 = not tripped
inline constexpr std::size_t kWindow = 9;             ///< length of the current window
inline constexpr std::size_t kHealthySinceMono = 10;  ///< last close; 0 = never tripped
inline constexpr std::size_t kClassFailures = 11;     ///< kFailureClasses words
inline constexpr std::size_t kOverrideUntilUnix = 19; ///< 0 = no expiry
inline constexpr std::size_t kOverrideUntilMono = 20;
inline constexpr std::size_t kOverrideSetUnix = 21;
inline constexpr std::size_t kOverrideUid = 22;  ///< uid + 1; 0 = nobody said
inline constexpr std::size_t kOverrideUser = 23; ///< kUserWords words, NUL padded
inline constexpr std::size_t kOverrideNote = 27; ///< kNoteWords words, not terminated
inline constexpr std::size_t kPolicy = 35;       ///< policy_word::kCount words
inline constexpr std::size_t kReason = 44;       ///< kReasonWords words, not terminated
/// The latest retry-hint deadline (host CLOCK_MONOTONIC; 0 none): the
/// readers' deadline is never earlier than this, whatever else happens.
inline constexpr std::size_t kHintUntilMono = 59;
inline constexpr std::size_t kHintUntilUnix = 60;
/// Failures workers reported since the last probe (docs/breaker.md).
inline constexpr std::size_t kReportFailures = 61;
inline constexpr std::size_t kCount = 64; ///< 62..63 reserved
} // namespace record_word

struct Record {
  std::atomic<std::uint64_t> w[record_word::kCount];
};

/// The part of a slot that by-name and by-handle reads touch.
struct alignas(2 * kCacheLine) SlotHead {
  // line 0
  std::atomic<std::uint64_t> word;  // release: pairs with the acquire in Table::is_healthy()
  std::atomic<std::uint64_t> ident; // identity and its sequence (ident_of)
  std::atomic<std::uint64_t> name[kNameWords]; // NUL padded; words 0..5 on line 0
  // line 1 (from name[6])
  std::atomic<std::int64_t> ramp_ns; // the policy's ramp, for readers' slow path
  std::atomic<std::uint64_t> reserved[5];
};

/// The rest of a slot: the latch and its two copies.
struct alignas(kCacheLine) SlotBody {
  std::atomic<std::uint64_t> seq; // latch sequence: odd => read copy[1]
  std::atomic<std::uint64_t> reserved[7];
  Record copy[2];
};

/// Event kinds.
enum class EventKind : std::uint8_t {
  none = 0,
  tripped = 1,    ///< healthy -> unhealthy
  rearmed = 2,    ///< a failure while unhealthy restarted the window
  recovered = 3,  ///< unhealthy -> healthy
  cooldown = 4,   ///< a rate limit (or hint) set a deadline
  override = 5,   ///< an override was set, cleared or expired
  registered = 6, ///< a provider took a slot
  forgotten = 7,  ///< a provider gave its slot back
  reset = 8,      ///< a provider (or the table) back to the zero state
  grown = 9,      ///< the table moved into a larger one
  retired = 10,   ///< the table was destroyed or replaced
};

/// One event of the ring. Guarded by its own sequence: 2n + 1 while event n
/// is being written, 2n + 2 once it is whole.
struct alignas(kCacheLine) Event {
  std::atomic<std::uint64_t> seq;
  std::atomic<std::int64_t> unix_ns;
  std::atomic<std::int64_t> mono_ns; // host CLOCK_MONOTONIC
  std::atomic<std::uint64_t> what;   // kind, from, to, class, source: one byte each (event_what)
  std::atomic<std::int64_t> until_unix_ns; // the deadline it set, 0 none
  std::atomic<std::uint64_t> count;        // consecutive failures, or a slot count (grown)
  std::atomic<std::uint64_t> uid;          // uid + 1 of who asked (overrides, admin); 0 none
  std::atomic<std::uint64_t> name[kNameWords];
  std::atomic<std::uint64_t> reason[kReasonWords];
  std::atomic<std::uint64_t> reserved[1];
};

constexpr std::uint64_t event_what(EventKind kind, std::uint8_t from, std::uint8_t to,
                                   FailureClass cls, Source src) noexcept {
  return std::uint64_t{static_cast<std::uint8_t>(kind)} | (std::uint64_t{from} << 8) |
         (std::uint64_t{to} << 16) | (std::uint64_t{static_cast<std::uint8_t>(cls)} << 24) |
         (std::uint64_t{static_cast<std::uint8_t>(src)} << 32);
}

/// Segment header.
struct alignas(kCacheLine) Header {
  // line 0: identity, immutable once magic is published.
  std::atomic<std::uint64_t> magic; // release: stored last by the creator
  std::uint64_t format;             // format_stamp() of the creator's build
  std::uint32_t layout_version;
  std::uint32_t header_size;
  std::uint32_t head_size;
  std::uint32_t body_size;
  std::uint32_t event_size;
  std::uint32_t capacity;        // slots
  std::uint32_t index_size;      // index entries, a power of two >= 2 * capacity
  std::uint32_t events_capacity; // a power of two
  std::uint64_t total_size;      // bytes, == the object's size
  std::uint64_t instance;        // random, != 0; the ID in the object's name
  // line 1: where things are.
  std::uint64_t index_offset;
  std::uint64_t heads_offset;
  std::uint64_t bodies_offset;
  std::uint64_t events_offset;
  std::int64_t created_unix_ns;
  std::uint32_t owner_uid; // the creator's euid (the home's owner)
  std::uint32_t name_len;
  std::uint64_t reserved0[2];
  // lines 2-5: the table's name (not terminated), so an object says whose it is.
  char name[256];
  // line 6: table-wide state.
  std::atomic<std::uint32_t> state;           // SegmentState
  std::atomic<std::uint32_t> next_generation; // the next registration's generation
  std::atomic<std::uint32_t> used;            // slots ever used (high water); release
  std::atomic<std::uint32_t> live;            // slots registered now
  // +1 on every register, forget and retire; release. Handles of names the
  // table does not know watch this word instead of a slot's.
  std::atomic<std::uint64_t> registrations;
  std::atomic<std::uint64_t> generation; // random at create, +1 on every full reset
  std::atomic<std::uint64_t> successor;  // instance of the table that replaced this one
  std::atomic<std::uint64_t> reserved2[3];
  // line 7: the writer.
  std::atomic<std::int64_t> writer_pid; // 0 = none since create
  std::atomic<std::int64_t> writer_start_unix_ns;
  std::atomic<std::int64_t> heartbeat_mono_ns; // host CLOCK_MONOTONIC; 0 = never
  std::atomic<std::int64_t> heartbeat_unix_ns;
  std::atomic<std::int64_t> heartbeat_interval_ns; // the writer's promise; 0 = none
  std::atomic<std::uint64_t> updates;              // records written, all time
  std::atomic<std::uint64_t> reports_dropped;      // worker reports lost before they arrived
  std::atomic<std::uint64_t> reports_refused;      // worker reports refused (uid, name)
  // line 8: events.
  std::atomic<std::uint64_t> events_head; // events published; release
  std::atomic<std::uint64_t> reserved3[7];
  // lines 9-10: the table's default policy (new providers start with it).
  std::atomic<std::uint64_t> policy[policy_word::kCount];
  std::atomic<std::uint64_t> reserved4[7];
  // lines 11-15: reserved for growth within v2.
  std::atomic<std::uint64_t> reserved5[40];
};

/// The format stamp folds the version and every size a reader relies on
/// into one word, so a build with a different layout is refused with
/// "expected X, found Y" instead of misreading offsets (after LMDB).
constexpr std::uint64_t format_stamp(std::uint32_t version, std::size_t header_size,
                                     std::size_t head_size, std::size_t body_size,
                                     std::size_t event_size) noexcept {
  return (std::uint64_t{version} << 56) | (std::uint64_t{(header_size / 64) & 0xFF} << 48) |
         (std::uint64_t{(head_size / 64) & 0xFF} << 40) |
         (std::uint64_t{(body_size / 64) & 0xFF} << 32) |
         (std::uint64_t{(event_size / 64) & 0xFF} << 24) | (std::uint64_t{kProviderNameMax} << 16) |
         (std::uint64_t{kReasonMax} << 8) | std::uint64_t{kNoteMax};
}

inline constexpr std::uint64_t kFormat =
    format_stamp(kLayoutVersion, sizeof(Header), sizeof(SlotHead), sizeof(SlotBody), sizeof(Event));

/// Index entries for a capacity: the next power of two >= 2 * capacity, at
/// least 8 (one cache line), so probes stay short even when the table is full.
constexpr std::uint32_t index_size_for(std::uint32_t capacity) noexcept {
  std::uint32_t n = 8;
  while (n < 2 * capacity)
    n *= 2;
  return n;
}

/// Events for a requested count: the next power of two, 16 .. kMaxEvents.
constexpr std::uint32_t events_size_for(std::uint32_t requested) noexcept {
  std::uint32_t n = 16;
  while (n < requested && n < kMaxEvents)
    n *= 2;
  return n;
}

struct Offsets {
  std::uint64_t index, heads, bodies, events, total;
};

constexpr std::uint64_t round_up(std::uint64_t v, std::uint64_t a) noexcept {
  return (v + a - 1) / a * a;
}

constexpr Offsets offsets_for(std::uint32_t capacity, std::uint32_t events) noexcept {
  Offsets o{};
  o.index = sizeof(Header);
  o.heads = round_up(o.index + std::uint64_t{index_size_for(capacity)} * 8, sizeof(SlotHead));
  o.bodies = o.heads + std::uint64_t{capacity} * sizeof(SlotHead);
  o.events = o.bodies + std::uint64_t{capacity} * sizeof(SlotBody);
  o.total = round_up(o.events + std::uint64_t{events} * sizeof(Event), 4096);
  return o;
}

namespace detail {
inline std::uint64_t load_u64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
/// Bytes p[0, n) (0 < n < 8) as a zero-padded little-endian word, without
/// reading outside them: a byte loop at compile time, at most three loads at
/// run time on little-endian machines.
constexpr std::uint64_t load_partial(const char* p, std::size_t n) noexcept {
  if (std::is_constant_evaluated() || std::endian::native != std::endian::little) {
    std::uint64_t w = 0;
    for (std::size_t k = 0; k < n; ++k)
      w |= std::uint64_t{static_cast<unsigned char>(p[k])} << (8 * k);
    return w;
  }
  if (n >= 4) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    return lo | (std::uint64_t{hi} << (8 * (n - 4)));
  }
  const auto b = [p](std::size_t k) {
    return std::uint64_t{static_cast<unsigned char>(p[k])} << (8 * k);
  };
  return b(0) | b(n / 2) | b(n - 1);
}
/// Word k of a name of n bytes, zero padded: the words the slot stores.
constexpr std::uint64_t name_word(const char* p, std::size_t n, std::size_t k) noexcept {
  const std::size_t at = 8 * k;
  if (at >= n) return 0;
  const std::size_t len = n - at < 8 ? n - at : 8;
  if (std::is_constant_evaluated() || std::endian::native != std::endian::little) {
    std::uint64_t w = 0;
    for (std::size_t b = 0; b < len; ++b)
      w |= std::uint64_t{static_cast<unsigned char>(p[at + b])} << (8 * b);
    return w;
  }
  return len == 8 ? load_u64(p + at) : load_partial(p + at, len);
}
/// A name of n bytes (n <= 8 * kNameWords) as its stored words, zero padded.
/// At run time on little-endian machines: whole words, then the last
/// partial one as the name's last eight bytes shifted down (in bounds for
/// n >= 8): one jump on the length rather than a branch per word.
constexpr void name_words(const char* p, std::size_t n, std::uint64_t (&w)[kNameWords]) noexcept {
  if (std::is_constant_evaluated() || std::endian::native != std::endian::little) {
    for (std::size_t k = 0; k < kNameWords; ++k)
      w[k] = name_word(p, n, k);
    return;
  }
  for (auto& x : w)
    x = 0;
  const std::size_t full = n / 8;
  switch (full) { // one jump, then straight-line loads
  case 8: w[7] = load_u64(p + 56); [[fallthrough]];
  case 7: w[6] = load_u64(p + 48); [[fallthrough]];
  case 6: w[5] = load_u64(p + 40); [[fallthrough]];
  case 5: w[4] = load_u64(p + 32); [[fallthrough]];
  case 4: w[3] = load_u64(p + 24); [[fallthrough]];
  case 3: w[2] = load_u64(p + 16); [[fallthrough]];
  case 2: w[1] = load_u64(p + 8); [[fallthrough]];
  case 1: w[0] = load_u64(p); [[fallthrough]];
  default: break;
  }
  if (const std::size_t rem = n % 8; rem != 0 && full < kNameWords)
    w[full] = n >= 8 ? load_u64(p + n - 8) >> (8 * (8 - rem)) : load_partial(p, n);
}
__extension__ using u128 = unsigned __int128;
constexpr std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
  const u128 m = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(m) ^ static_cast<std::uint64_t>(m >> 64);
}
} // namespace detail

/// The hash the name index is built with. Part of the ABI (docs/layout.md).
/// The name as its stored words w[0..7] (little-endian, zero padded), taken
/// two at a time through 64x64->128 multiplies that do not depend on each
/// other (so a long name costs the latency of two multiplies, not eight):
///   acc = 0
///   for each pair i while 16i < len:
///       acc ^= fold((w[2i] ^ K[2i]) * (w[2i+1] ^ K[2i+1]))
///   h = fold((acc ^ K[8]) * (len ^ K[9]))
/// where fold(m) = low64(m) ^ high64(m) and K = kNameHashKeys.
inline constexpr std::uint64_t kNameHashKeys[10] = {
    0xA0761D6478BD642FULL, 0xE7037ED1A0B428DBULL, 0x8EBC6AF09C88C6E3ULL, 0x589965CC75374CC3ULL,
    0x1D8E4E27C47D124FULL, 0x9E3779B97F4A7C15ULL, 0xD6E8FEB86659FD93ULL, 0xC2B2AE3D27D4EB4FULL,
    0x165667B19E3779F9ULL, 0x27D4EB2F165667C5ULL};

/// name_hash() over a name already split into its stored words.
constexpr std::uint64_t name_hash_words(const std::uint64_t* w, std::size_t n) noexcept {
  std::uint64_t acc = 0;
  for (std::size_t i = 0; 16 * i < n; ++i)
    acc ^= detail::mix(w[2 * i] ^ kNameHashKeys[2 * i], w[2 * i + 1] ^ kNameHashKeys[2 * i + 1]);
  return detail::mix(acc ^ kNameHashKeys[8], n ^ kNameHashKeys[9]);
}

constexpr std::uint64_t name_hash(const char* p, std::size_t n) noexcept {
  if (n > 8 * kNameWords) n = 8 * kNameWords;
  std::uint64_t w[kNameWords] = {};
  detail::name_words(p, n, w);
  return name_hash_words(w, n);
}

// The checks that make this header an ABI.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && alignof(std::atomic<std::uint64_t>) == 8);
static_assert(sizeof(std::atomic<std::uint32_t>) == 4 && alignof(std::atomic<std::uint32_t>) == 4);
static_assert(std::is_standard_layout_v<Record> && std::is_standard_layout_v<SlotHead> &&
              std::is_standard_layout_v<SlotBody> && std::is_standard_layout_v<Header> &&
              std::is_standard_layout_v<Event>);
static_assert(sizeof(Record) == 512);
static_assert(sizeof(SlotHead) == 128 && alignof(SlotHead) == 128);
static_assert(sizeof(SlotBody) == 1088 && alignof(SlotBody) == kCacheLine);
static_assert(sizeof(Event) == 256 && alignof(Event) == kCacheLine);
static_assert(sizeof(Header) == 1024 && alignof(Header) == kCacheLine);
static_assert(kReasonMax % 8 == 0 && kReasonMax < 256 && kNoteMax % 8 == 0 && kUserMax % 8 == 0);
static_assert(kProviderNameMax < kNameWords * 8);
static_assert(kSegmentNameMax < sizeof(Header{}.name));
static_assert(offsetof(SlotHead, word) == 0);
static_assert(offsetof(SlotHead, ident) == 8);
static_assert(offsetof(SlotHead, name) == 16);
static_assert(offsetof(SlotHead, ramp_ns) == 80);
static_assert(offsetof(SlotBody, seq) == 0);
static_assert(offsetof(SlotBody, copy) == 64);
static_assert(record_word::kClassFailures + kFailureClasses == record_word::kOverrideUntilUnix);
static_assert(record_word::kOverrideUser + kUserWords == record_word::kOverrideNote);
static_assert(record_word::kOverrideNote + kNoteWords == record_word::kPolicy);
static_assert(record_word::kPolicy + policy_word::kCount == record_word::kReason);
static_assert(record_word::kReason + kReasonWords == record_word::kHintUntilMono);
static_assert(record_word::kReportFailures < record_word::kCount);
static_assert(offsetof(Event, seq) == 0);
static_assert(offsetof(Event, unix_ns) == 8);
static_assert(offsetof(Event, mono_ns) == 16);
static_assert(offsetof(Event, what) == 24);
static_assert(offsetof(Event, until_unix_ns) == 32);
static_assert(offsetof(Event, count) == 40);
static_assert(offsetof(Event, uid) == 48);
static_assert(offsetof(Event, name) == 56);
static_assert(offsetof(Event, reason) == 120);
static_assert(offsetof(Header, magic) == 0);
static_assert(offsetof(Header, format) == 8);
static_assert(offsetof(Header, layout_version) == 16);
static_assert(offsetof(Header, header_size) == 20);
static_assert(offsetof(Header, head_size) == 24);
static_assert(offsetof(Header, body_size) == 28);
static_assert(offsetof(Header, event_size) == 32);
static_assert(offsetof(Header, capacity) == 36);
static_assert(offsetof(Header, index_size) == 40);
static_assert(offsetof(Header, events_capacity) == 44);
static_assert(offsetof(Header, total_size) == 48);
static_assert(offsetof(Header, instance) == 56);
static_assert(offsetof(Header, index_offset) == 64);
static_assert(offsetof(Header, heads_offset) == 72);
static_assert(offsetof(Header, bodies_offset) == 80);
static_assert(offsetof(Header, events_offset) == 88);
static_assert(offsetof(Header, created_unix_ns) == 96);
static_assert(offsetof(Header, owner_uid) == 104);
static_assert(offsetof(Header, name_len) == 108);
static_assert(offsetof(Header, name) == 128);
static_assert(offsetof(Header, state) == 384);
static_assert(offsetof(Header, next_generation) == 388);
static_assert(offsetof(Header, used) == 392);
static_assert(offsetof(Header, live) == 396);
static_assert(offsetof(Header, registrations) == 400);
static_assert(offsetof(Header, generation) == 408);
static_assert(offsetof(Header, successor) == 416);
static_assert(offsetof(Header, writer_pid) == 448);
static_assert(offsetof(Header, writer_start_unix_ns) == 456);
static_assert(offsetof(Header, heartbeat_mono_ns) == 464);
static_assert(offsetof(Header, heartbeat_unix_ns) == 472);
static_assert(offsetof(Header, heartbeat_interval_ns) == 480);
static_assert(offsetof(Header, updates) == 488);
static_assert(offsetof(Header, reports_dropped) == 496);
static_assert(offsetof(Header, reports_refused) == 504);
static_assert(offsetof(Header, events_head) == 512);
static_assert(offsetof(Header, policy) == 576);
static_assert(kFormat == 0x0210'0211'043F'7840ULL, "layout changed: bump kLayoutVersion");

} // namespace healthtable
