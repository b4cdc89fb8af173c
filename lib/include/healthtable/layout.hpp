// healthtable segment layout, version 1: the ABI shared by the writer, every
// reader and any tool in any language. This header uses the standard library
// alone (<atomic>, <cstdint>, ...); docs/layout.md gives the same layout as an offset table.
//
// A segment is one POSIX shared-memory object (/dev/shm/NAME on Linux):
//
//   offset 0            +--------------------------------------------+
//                       | Header (256 B, 4 cache lines)              |
//                       |   line 0: identity (magic, format, sizes)  |
//                       |   line 1: policy, generation, used slots   |
//                       |   line 2: writer pid, start, heartbeat     |
//                       |   line 3: reserved                         |
//   index_offset (256)  +--------------------------------------------+
//                       | name index: index_size x atomic<u32>       |
//                       |   open addressing, linear probing;         |
//                       |   entry = slot number + 1, 0 = empty       |
//   slots_offset        +--------------------------------------------+
//                       | Slot 0 (512 B, 8 cache lines)              |
//                       |   line 0: down_until (THE hot word),       |
//                       |           name_hash, name_len              |
//                       |   line 1: name (64 B, NUL padded)          |
//                       |   lines 2-7: seq + two Record copies       |
//                       +--------------------------------------------+
//                       | Slot 1 ... Slot capacity-1                 |
//   total_size          +--------------------------------------------+
//
// Why readers need no lock (see docs/memory-ordering.md for the full table):
// - is_healthy() reads one word, Slot::down_until, which the writer derives
//   from the record and stores last. A single aligned 64-bit atomic cannot be
//   torn.
// - The full record is protected by a seqcount *latch* (the Linux kernel's
//   raw_write_seqcount_latch): two copies, and the sequence's low bit tells a
//   reader which copy is stable. A writer that dies mid-update leaves one copy
//   intact, so readers never wait for a dead writer; they retry only while a
//   live writer is making progress.
// - Names, hashes and the index are written once, before a release store that
//   publishes them, and never change afterwards: slots never move and are
//   never reused within one segment.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace healthtable {

/// Layout version. Bump on any change to the structs below.
inline constexpr std::uint32_t kLayoutVersion = 1;

/// "HLTHTBL\x01" as little-endian bytes: `hexdump -C` shows HLTHTBL.
inline constexpr std::uint64_t kMagic = 0x014C425448544C48ULL;

inline constexpr std::size_t kCacheLine = 64;

/// Longest provider name in bytes (the slot stores it NUL padded in 64 B).
inline constexpr std::size_t kProviderNameMax = 63;
/// Longest last_error kept, in bytes; longer reasons are cut on a UTF-8
/// code point boundary.
inline constexpr std::size_t kReasonMax = 120;
/// Longest segment name in bytes (the POSIX shm name without the '/').
inline constexpr std::size_t kSegmentNameMax = 200;

inline constexpr std::uint32_t kDefaultCapacity = 64;
inline constexpr std::uint32_t kMaxCapacity = 65536;
inline constexpr std::uint32_t kDefaultFailureThreshold = 2;
inline constexpr std::int64_t kDefaultBackoffNs = 60'000'000'000; // 60 s

/// Slot::down_until values. Any other value is a CLOCK_MONOTONIC deadline in
/// nanoseconds: the provider is unavailable while now < down_until.
inline constexpr std::uint64_t kUpWord = 0;             ///< healthy, no clock read
inline constexpr std::uint64_t kForcedDownWord = ~0ULL; ///< admin forced down

/// Header::state values.
enum class SegmentState : std::uint32_t {
  creating = 0, ///< never observed by readers: magic is not yet published
  live = 1,
  retired = 2, ///< unlinked or replaced by `create --force`; re-open by name
};

/// Record::status bit fields.
namespace status {
inline constexpr std::uint64_t kHealthy = 1ULL << 0;
inline constexpr unsigned kOverrideShift = 1; ///< 2 bits: 0 auto, 1 down, 2 up
inline constexpr std::uint64_t kOverrideMask = 3ULL << kOverrideShift;
inline constexpr unsigned kReasonLenShift = 8; ///< 8 bits: 0..kReasonMax
inline constexpr std::uint64_t kReasonLenMask = 0xFFULL << kReasonLenShift;
inline constexpr std::uint64_t kHasError = 1ULL << 16; ///< last_error present
inline constexpr unsigned kFailuresShift = 32;         ///< 32 bits: consecutive failures
} // namespace status

inline constexpr std::size_t kReasonWords = kReasonMax / 8;

/// One copy of a provider's circuit-breaker state. Every field is an atomic
/// accessed relaxed, bracketed by the latch sequence and fences (Boehm,
/// "Can seqlocks get along with programming language memory models?").
struct Record {
  std::atomic<std::uint64_t> status;      // see namespace status
  std::atomic<std::uint64_t> transitions; // healthy<->unhealthy flips
  std::atomic<std::uint64_t> successes;   // outcomes recorded
  std::atomic<std::uint64_t> failures;
  std::atomic<std::int64_t> last_check_unix_ns;      // 0 = never
  std::atomic<std::int64_t> unhealthy_until_unix_ns; // 0 = not tripped
  std::atomic<std::int64_t> unhealthy_until_mono_ns; // 0 = not tripped
  std::atomic<std::uint64_t> reason[kReasonWords];   // UTF-8, not terminated
};

/// A provider's slot. Registered once, never moved, never reused.
struct alignas(kCacheLine) Slot {
  // line 0: everything is_healthy() touches.
  std::atomic<std::uint64_t> down_until; // release: pairs with the acquire in Table::is_healthy()
  std::uint64_t name_hash;               // immutable once published
  std::uint32_t name_len;                // immutable once published
  std::uint32_t reserved0;
  std::uint64_t reserved1[5];
  // line 1
  char name[kCacheLine]; // NUL padded, immutable once published
  // lines 2..7
  std::atomic<std::uint64_t> seq; // latch sequence: odd => read copy[1]
  Record copy[2];
};

/// Segment header.
struct alignas(kCacheLine) Header {
  // line 0: identity, immutable once magic is published.
  std::atomic<std::uint64_t> magic; // release: stored last by the creator
  std::uint64_t format;             // format_stamp() of the creator's build
  std::uint32_t layout_version;
  std::uint32_t header_size;
  std::uint32_t slot_size;
  std::uint32_t capacity;   // slots
  std::uint32_t index_size; // index entries, a power of two >= 2 * capacity
  std::uint32_t reserved0;
  std::uint64_t total_size; // bytes, == the object's size
  std::uint64_t slots_offset;
  std::uint64_t index_offset;
  // line 1: policy and table-wide state.
  std::int64_t created_unix_ns;
  std::atomic<std::uint32_t> failure_threshold;
  std::atomic<std::uint32_t> state; // SegmentState
  std::atomic<std::int64_t> backoff_ns;
  std::atomic<std::uint64_t> generation; // random at create, +1 on reset
  std::atomic<std::uint32_t> used;       // registered slots; release: publishes slot[used-1]
  std::uint32_t reserved1;
  std::uint64_t reserved2[3];
  // line 2: the writer.
  std::atomic<std::int64_t> writer_pid; // 0 = none since create
  std::atomic<std::int64_t> writer_start_unix_ns;
  std::atomic<std::int64_t> heartbeat_mono_ns; // 0 = never
  std::atomic<std::int64_t> heartbeat_unix_ns;
  std::atomic<std::uint64_t> updates;              // records written, all time
  std::atomic<std::int64_t> heartbeat_interval_ns; // the writer's promise; 0 = none
  std::uint64_t reserved3[2];
  // line 3: reserved for growth within v1.
  std::uint64_t reserved4[8];
};

/// The format stamp folds the version and every size a reader relies on
/// into one word, so a build with a different layout is refused with
/// "expected X, found Y" instead of misreading offsets (after LMDB).
constexpr std::uint64_t format_stamp(std::uint32_t version, std::size_t header_size,
                                     std::size_t slot_size, std::size_t name_max,
                                     std::size_t reason_max) noexcept {
  return (std::uint64_t{version} << 48) | (std::uint64_t{header_size & 0xFFFF} << 32) |
         (std::uint64_t{slot_size & 0xFFFF} << 16) | (std::uint64_t{name_max & 0xFF} << 8) |
         std::uint64_t{reason_max & 0xFF};
}

inline constexpr std::uint64_t kFormat =
    format_stamp(kLayoutVersion, sizeof(Header), sizeof(Slot), kProviderNameMax, kReasonMax);

/// Index entries for a capacity: the next power of two >= 2 * capacity, at
/// least 16 (one cache line), so probes stay short even when the table is full.
constexpr std::uint32_t index_size_for(std::uint32_t capacity) noexcept {
  std::uint32_t n = 16;
  while (n < 2 * capacity)
    n *= 2;
  return n;
}

constexpr std::uint64_t slots_offset_for(std::uint32_t capacity) noexcept {
  const std::uint64_t end = sizeof(Header) + std::uint64_t{index_size_for(capacity)} * 4;
  return (end + kCacheLine - 1) / kCacheLine * kCacheLine;
}

constexpr std::uint64_t total_size_for(std::uint32_t capacity) noexcept {
  return slots_offset_for(capacity) + std::uint64_t{capacity} * sizeof(Slot);
}

namespace detail {
/// Up to eight bytes as a little-endian word, zero-padded. At run time a
/// full word is one load; the byte loop keeps the function constexpr.
constexpr std::uint64_t load_le64(const char* p, std::size_t n) noexcept {
  if (!std::is_constant_evaluated() && n == 8 && std::endian::native == std::endian::little) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  }
  std::uint64_t w = 0;
  for (std::size_t k = 0; k < n && k < 8; ++k)
    w |= std::uint64_t{static_cast<unsigned char>(p[k])} << (8 * k);
  return w;
}
/// The last, partial word of p[0, n): bytes p[i, n) (1 to 7 of them) as a
/// zero-padded little-endian word, the same as load_le64(p + i, n - i).
/// Precondition: i is n rounded down to a multiple of 8, i < n (so i == 0
/// when n < 8), as name_hash()'s loop leaves it. At
/// run time on little-endian machines it takes one or two loads instead of a
/// byte loop, and never reads outside p[0, n): a name of 8 bytes or more
/// reloads its last 8 bytes and shifts; a shorter one ORs two overlapping
/// 4-byte loads, or its first, middle and last byte.
constexpr std::uint64_t load_tail_le64(const char* p, std::size_t n, std::size_t i) noexcept {
  const std::size_t rest = n - i;
  if (std::is_constant_evaluated() || std::endian::native != std::endian::little)
    return load_le64(p + i, rest);
  if (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p + n - 8, 8);
    return w >> (8 * (8 - rest));
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
constexpr std::uint64_t hash_step(std::uint64_t h, std::uint64_t w) noexcept {
  h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
  return h ^ (h >> 32);
}
} // namespace detail

/// The hash the name index is built with. Part of the ABI (docs/layout.md):
/// eight bytes per step, so a 63-byte name costs 8 multiplies, not 63.
///   h = 0x9E3779B97F4A7C15 ^ len
///   for each 8-byte little-endian word w (the last one zero-padded):
///       h = (h ^ w) * 0xFF51AFD7ED558CCD;  h ^= h >> 32
///   h *= 0xC4CEB9FE1A85EC53;  h ^= h >> 29
constexpr std::uint64_t name_hash(const char* p, std::size_t n) noexcept {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    h = detail::hash_step(h, detail::load_le64(p + i, 8));
  if (i < n) h = detail::hash_step(h, detail::load_tail_le64(p, n, i));
  h *= 0xC4CEB9FE1A85EC53ULL;
  return h ^ (h >> 29);
}

// The checks that make this header an ABI.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && alignof(std::atomic<std::uint64_t>) == 8);
static_assert(sizeof(std::atomic<std::uint32_t>) == 4 && alignof(std::atomic<std::uint32_t>) == 4);
static_assert(std::is_standard_layout_v<Record> && std::is_standard_layout_v<Slot> &&
              std::is_standard_layout_v<Header>);
static_assert(sizeof(Record) == 176);
static_assert(sizeof(Slot) == 512 && alignof(Slot) == kCacheLine);
static_assert(sizeof(Header) == 256 && alignof(Header) == kCacheLine);
static_assert(kProviderNameMax < sizeof(Slot{}.name));
static_assert(kReasonMax % 8 == 0 && kReasonMax < 256);
static_assert(offsetof(Slot, down_until) == 0);
static_assert(offsetof(Slot, name_hash) == 8);
static_assert(offsetof(Slot, name_len) == 16);
static_assert(offsetof(Slot, name) == 64);
static_assert(offsetof(Slot, seq) == 128);
static_assert(offsetof(Slot, copy) == 136);
static_assert(offsetof(Record, status) == 0);
static_assert(offsetof(Record, transitions) == 8);
static_assert(offsetof(Record, successes) == 16);
static_assert(offsetof(Record, failures) == 24);
static_assert(offsetof(Record, last_check_unix_ns) == 32);
static_assert(offsetof(Record, unhealthy_until_unix_ns) == 40);
static_assert(offsetof(Record, unhealthy_until_mono_ns) == 48);
static_assert(offsetof(Record, reason) == 56);
static_assert(offsetof(Header, magic) == 0);
static_assert(offsetof(Header, format) == 8);
static_assert(offsetof(Header, layout_version) == 16);
static_assert(offsetof(Header, header_size) == 20);
static_assert(offsetof(Header, slot_size) == 24);
static_assert(offsetof(Header, capacity) == 28);
static_assert(offsetof(Header, index_size) == 32);
static_assert(offsetof(Header, total_size) == 40);
static_assert(offsetof(Header, slots_offset) == 48);
static_assert(offsetof(Header, index_offset) == 56);
static_assert(offsetof(Header, created_unix_ns) == 64);
static_assert(offsetof(Header, failure_threshold) == 72);
static_assert(offsetof(Header, state) == 76);
static_assert(offsetof(Header, backoff_ns) == 80);
static_assert(offsetof(Header, generation) == 88);
static_assert(offsetof(Header, used) == 96);
static_assert(offsetof(Header, writer_pid) == 128);
static_assert(offsetof(Header, writer_start_unix_ns) == 136);
static_assert(offsetof(Header, heartbeat_mono_ns) == 144);
static_assert(offsetof(Header, heartbeat_unix_ns) == 152);
static_assert(offsetof(Header, updates) == 160);
static_assert(offsetof(Header, heartbeat_interval_ns) == 168);
static_assert(kFormat == 0x0001'0100'0200'3F78ULL, "layout changed: bump kLayoutVersion");

} // namespace healthtable
