// detail: the seqcount latch that guards each slot's record, and the
// Table::Impl both the reader and the writer build on.
//
// The latch (after the Linux kernel's raw_write_seqcount_latch) keeps two
// copies of the record. The writer always makes copy[0] and copy[1] equal
// again before it returns; in between, the sequence's low bit says which
// copy is stable:
//
//   seq even: readers read copy[0]      seq odd: readers read copy[1]
//
//   writer:  seq := odd   (readers move to copy[1], the old record)
//            write copy[0]
//            seq := even  (readers move to copy[0], the new record)
//            write copy[1]
//
// A reader retries only if seq changed while it copied, which needs a live
// writer that made progress. A writer killed anywhere leaves the copy the
// readers are told to read intact, so no reader ever waits on a dead writer.
// The next writer must settle such a slot (settle_record()) before it
// writes it again: the copy readers are NOT on may be half-written.
#pragma once

#include "segment.hpp"

#include <healthtable/layout.hpp>
#include <healthtable/table.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define HEALTHTABLE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HEALTHTABLE_TSAN 1
#endif
#endif

namespace healthtable::detail {

// ThreadSanitizer does not model std::atomic_thread_fence (and GCC refuses
// it under -fsanitize=thread). Under TSan the latch uses the equivalent,
// stronger per-access orders instead: acquire data loads keep the closing
// seq load after them, and release data stores keep the opening seq store
// before them. Same guarantees, checkable by TSan; the fences stay in every
// other build because relaxed accesses are cheaper off x86.
#ifdef HEALTHTABLE_TSAN
inline constexpr auto kDataLoad = std::memory_order_acquire;
inline constexpr auto kDataStore = std::memory_order_release;
inline void latch_fence(std::memory_order) noexcept {}
#else
inline constexpr auto kDataLoad = std::memory_order_relaxed;
inline constexpr auto kDataStore = std::memory_order_relaxed;
inline void latch_fence(std::memory_order o) noexcept { std::atomic_thread_fence(o); }
#endif

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// A plain (non-shared) copy of a Record. No member initialisers on
/// purpose: read_record() overwrites every field, and zeroing 176 bytes first
/// was measurable on the get_state() path. `RecordValue v{}` zeroes.
struct RecordValue {
  std::uint64_t status;
  std::uint64_t transitions;
  std::uint64_t successes;
  std::uint64_t failures;
  std::int64_t last_check_unix_ns;
  std::int64_t unhealthy_until_unix_ns;
  std::int64_t unhealthy_until_mono_ns;
  std::uint64_t reason[kReasonWords];

  bool healthy() const noexcept { return status & status::kHealthy; }
  std::uint32_t consecutive_failures() const noexcept {
    return static_cast<std::uint32_t>(status >> status::kFailuresShift);
  }
  Override override_mode() const noexcept {
    const auto v = (status & status::kOverrideMask) >> status::kOverrideShift;
    return v <= 2 ? static_cast<Override>(v) : Override::automatic;
  }
  std::size_t reason_len() const noexcept {
    const auto n = (status & status::kReasonLenMask) >> status::kReasonLenShift;
    return n <= kReasonMax ? n : kReasonMax; // a hostile image cannot overrun
  }
  bool has_error() const noexcept { return status & status::kHasError; }

  void set_healthy(bool h) noexcept {
    status = h ? (status | status::kHealthy) : (status & ~status::kHealthy);
  }
  void set_failures(std::uint32_t n) noexcept {
    status = (status & 0xFFFFFFFFULL) | (std::uint64_t{n} << status::kFailuresShift);
  }
  void set_override(Override o) noexcept {
    status = (status & ~status::kOverrideMask) |
             (std::uint64_t{static_cast<std::uint8_t>(o)} << status::kOverrideShift);
  }
  void set_reason(std::string_view r) noexcept; // r must already be sanitized
  void clear_reason() noexcept;
  std::string reason_text() const;

  /// The word readers load: derived, never stored independently.
  std::uint64_t down_word() const noexcept {
    switch (override_mode()) {
    case Override::forced_down: return kForcedDownWord;
    case Override::forced_up: return kUpWord;
    case Override::automatic: break;
    }
    if (healthy()) return kUpWord;
    const auto until = static_cast<std::uint64_t>(unhealthy_until_mono_ns);
    // 0 and ~0 are reserved; a deadline is clamped into the range between.
    if (until == kUpWord) return 1;
    if (until == kForcedDownWord) return kForcedDownWord - 1;
    return until;
  }
};

inline void load_record(const Record& r, RecordValue& v) noexcept {
  constexpr auto o = kDataLoad; // relaxed; acquire under TSan (see above)
  v.status = r.status.load(o);
  v.transitions = r.transitions.load(o);
  v.successes = r.successes.load(o);
  v.failures = r.failures.load(o);
  v.last_check_unix_ns = r.last_check_unix_ns.load(o);
  v.unhealthy_until_unix_ns = r.unhealthy_until_unix_ns.load(o);
  v.unhealthy_until_mono_ns = r.unhealthy_until_mono_ns.load(o);
  for (std::size_t i = 0; i < kReasonWords; ++i)
    v.reason[i] = r.reason[i].load(o);
}

inline void store_record(Record& r, const RecordValue& v) noexcept {
  constexpr auto o = kDataStore; // relaxed; release under TSan (see above)
  r.status.store(v.status, o);
  r.transitions.store(v.transitions, o);
  r.successes.store(v.successes, o);
  r.failures.store(v.failures, o);
  r.last_check_unix_ns.store(v.last_check_unix_ns, o);
  r.unhealthy_until_unix_ns.store(v.unhealthy_until_unix_ns, o);
  r.unhealthy_until_mono_ns.store(v.unhealthy_until_mono_ns, o);
  for (std::size_t i = 0; i < kReasonWords; ++i)
    r.reason[i].store(v.reason[i], o);
}

/// How many times a reader re-copies a record that a live writer keeps
/// changing before it gives up (~ms; a dead writer never causes a retry).
inline constexpr int kMaxReadAttempts = 1 << 16;

/// Copies the stable record. Returns false only if a live writer changed it
/// kMaxReadAttempts times in a row while we copied. `retries`, when given,
/// receives how many copies were thrown away (the benchmarks count them; the
/// library passes nothing and the count compiles out).
inline bool read_record(const Slot& s, RecordValue& v, int* retries = nullptr) noexcept {
  for (int attempt = 0; attempt < kMaxReadAttempts; ++attempt) {
    if (retries) *retries = attempt;
    // acquire: pairs with the release stores of seq in write_record()
    const std::uint64_t s1 = s.seq.load(std::memory_order_acquire);
    load_record(s.copy[s1 & 1], v);
    // acquire fence: keeps the copy above the re-read of seq; pairs with the
    // release fences after each seq store in write_record() (Boehm, sec. 3)
    latch_fence(std::memory_order_acquire);
    const std::uint64_t s2 = s.seq.load(std::memory_order_relaxed);
    if (s1 == s2) return true;
    cpu_relax();
  }
  return false;
}

/// Writes `v` into both copies through the latch. Single writer only.
inline void write_record(Slot& s, const RecordValue& v) noexcept {
  std::uint64_t q = s.seq.load(std::memory_order_relaxed); // we are the only writer
  const auto bump = [&] {
    ++q;
    // release: what we wrote before is visible to a reader that sees q
    // (pairs with the acquire load in read_record())
    s.seq.store(q, std::memory_order_release);
    // release fence: a reader that sees any store below also sees q (pairs
    // with the acquire fence in read_record())
    latch_fence(std::memory_order_release);
  };
  if ((q & 1) == 0) bump(); // odd: readers on copy[1]
  store_record(s.copy[0], v);
  bump(); // even: readers on copy[0]
  store_record(s.copy[1], v);
}

/// Finishes what a writer killed inside write_record() left behind, without
/// ever changing what a reader sees: copies the record readers are on now
/// into the other copy (no reader is told to read that one), then, if seq is
/// odd, makes it even. Afterwards both copies are equal and seq is even, the
/// state write_record() starts from. Calling write_record() on a torn slot
/// instead would be wrong: its first store (seq := odd) can move readers
/// onto the half-written copy. Single writer only; returns whether anything
/// had to change.
inline bool settle_record(Slot& s) noexcept {
  // acquire: pairs with the dead writer's release store of seq, so its
  // stores to the copy readers are on happen before ours below
  const std::uint64_t q = s.seq.load(std::memory_order_acquire);
  RecordValue on, off;
  load_record(s.copy[q & 1], on);
  load_record(s.copy[(q & 1) ^ 1], off);
  const bool equal = std::memcmp(&on, &off, sizeof on) == 0;
  if ((q & 1) == 0 && equal) return false;
  if (!equal) {
    // release fence: a reader still on this copy from an older seq that sees
    // any store below also sees q (or later) on its re-check, and retries
    latch_fence(std::memory_order_release);
    store_record(s.copy[(q & 1) ^ 1], on);
  }
  if (q & 1) {
    // release: the copy[0] stores above are visible to a reader that sees q + 1
    s.seq.store(q + 1, std::memory_order_release);
    latch_fence(std::memory_order_release);
  }
  return true;
}

/// An update of one slot as the writer publishes it: the record through the
/// latch, then the hot word derived from it (stored last, and only when it
/// changes: every router reads its cache line on every request).
inline void publish_record(Slot& s, const RecordValue& v) noexcept {
  write_record(s, v);
  const std::uint64_t word = v.down_word();
  if (s.down_until.load(std::memory_order_relaxed) != word)
    // release: pairs with the acquire in Table::is_healthy()
    s.down_until.store(word, std::memory_order_release);
}

/// The latch part of a new writer's repair of one slot (Writer::open runs
/// it on every slot): settle what a killed writer left, drop a hostile or
/// torn reason length through the latch, and make the hot word agree with
/// the record. Returns whether anything changed. Single writer only.
inline bool repair_record(Slot& s) noexcept {
  bool fixed = settle_record(s); // now copy[0] is the record readers see
  RecordValue v;
  load_record(s.copy[0], v);
  if (((v.status & status::kReasonLenMask) >> status::kReasonLenShift) > kReasonMax) {
    v.clear_reason(); // safe through the latch: both copies are equal now
    write_record(s, v);
    fixed = true;
  }
  const std::uint64_t word = v.down_word();
  if (s.down_until.load(std::memory_order_relaxed) != word) {
    // release: pairs with the acquire in Table::is_healthy()
    s.down_until.store(word, std::memory_order_release);
    fixed = true;
  }
  return fixed;
}

} // namespace healthtable::detail

namespace healthtable {

struct Table::Impl {
  std::shared_ptr<detail::Mapping> mapping;
  const Header* header = nullptr;
  const Slot* slots = nullptr;
  const std::atomic<std::uint32_t>* index = nullptr;
  std::uint32_t capacity = 0;
  std::uint32_t index_mask = 0;

  explicit Impl(std::shared_ptr<detail::Mapping> m);

  /// Registered slots, clamped to capacity (a hostile image cannot push a
  /// reader past the mapping).
  std::uint32_t used() const noexcept;
  /// Slot number of a provider, or -1.
  std::int64_t lookup(std::string_view provider) const noexcept;
  void state_of(std::uint32_t slot, ProviderState& out) const;
  ProviderState state_of(std::uint32_t slot) const {
    ProviderState st;
    state_of(slot, st);
    return st;
  }
};

} // namespace healthtable
