// detail: the seqcount latch that guards each slot's record, and the plain
// value the writer composes records in.
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

#include <healthtable/layout.hpp>
#include <healthtable/table.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

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

/// Words to bytes and back, for names and reasons kept as atomic words.
inline void words_from(std::uint64_t* w, std::size_t nwords, std::string_view s) noexcept {
  std::memset(w, 0, nwords * 8);
  if (!s.empty()) std::memcpy(w, s.data(), std::min(s.size(), nwords * 8));
}

/// A plain (non-shared) copy of a Record. No member initialisers on
/// purpose: read_record() overwrites every word. `RecordValue v{}` zeroes.
struct RecordValue {
  std::uint64_t w[record_word::kCount];

  std::uint64_t& at(std::size_t i) noexcept { return w[i]; }
  std::uint64_t at(std::size_t i) const noexcept { return w[i]; }
  std::int64_t time(std::size_t i) const noexcept { return static_cast<std::int64_t>(w[i]); }
  void set_time(std::size_t i, std::int64_t t) noexcept { w[i] = static_cast<std::uint64_t>(t); }

  std::uint64_t status() const noexcept { return w[record_word::kStatus]; }
  bool healthy() const noexcept { return status() & status::kHealthy; }
  std::uint32_t consecutive_failures() const noexcept {
    return static_cast<std::uint32_t>(status() >> status::kFailuresShift);
  }
  Override override_mode() const noexcept {
    const auto v = (status() & status::kOverrideMask) >> status::kOverrideShift;
    return v <= 2 ? static_cast<Override>(v) : Override::automatic;
  }
  FailureClass last_class() const noexcept {
    return static_cast<FailureClass>((status() & status::kClassMask) >> status::kClassShift);
  }
  Source last_source() const noexcept {
    return static_cast<Source>((status() & status::kSourceMask) >> status::kSourceShift);
  }
  std::size_t reason_len() const noexcept {
    const auto n = (status() & status::kReasonLenMask) >> status::kReasonLenShift;
    return n <= kReasonMax ? n : kReasonMax; // a hostile image cannot overrun
  }
  std::size_t note_len() const noexcept {
    const auto n = (status() & status::kNoteLenMask) >> status::kNoteLenShift;
    return n <= kNoteMax ? n : kNoteMax;
  }
  bool has_error() const noexcept { return status() & status::kHasError; }
  std::uint32_t generation() const noexcept {
    return static_cast<std::uint32_t>(w[record_word::kGeneration]);
  }
  std::uint32_t trips() const noexcept { return static_cast<std::uint32_t>(w[record_word::kRuns]); }
  std::uint32_t success_run() const noexcept {
    return static_cast<std::uint32_t>(w[record_word::kRuns] >> 32);
  }

  void set_bits(std::uint64_t mask, std::uint64_t value) noexcept {
    w[record_word::kStatus] = (w[record_word::kStatus] & ~mask) | (value & mask);
  }
  void set_healthy(bool h) noexcept { set_bits(status::kHealthy, h ? status::kHealthy : 0); }
  void set_failures(std::uint32_t n) noexcept {
    w[record_word::kStatus] =
        (w[record_word::kStatus] & 0xFFFFFFFFULL) | (std::uint64_t{n} << status::kFailuresShift);
  }
  void set_override(Override o) noexcept {
    set_bits(status::kOverrideMask, std::uint64_t{static_cast<std::uint8_t>(o)}
                                        << status::kOverrideShift);
  }
  void set_class(FailureClass c) noexcept {
    set_bits(status::kClassMask, std::uint64_t{static_cast<std::uint8_t>(c)} << status::kClassShift);
  }
  void set_source(Source s) noexcept {
    set_bits(status::kSourceMask, std::uint64_t{static_cast<std::uint8_t>(s)}
                                      << status::kSourceShift);
  }
  void set_runs(std::uint32_t trips, std::uint32_t success_run) noexcept {
    w[record_word::kRuns] = trips | (std::uint64_t{success_run} << 32);
  }
  /// `r` must already be sanitized.
  void set_reason(std::string_view r) noexcept {
    const std::size_t n = std::min(r.size(), kReasonMax);
    words_from(w + record_word::kReason, kReasonWords, r.substr(0, n));
    set_bits(status::kReasonLenMask | status::kHasError,
             (std::uint64_t{n} << status::kReasonLenShift) | status::kHasError);
  }
  void clear_reason() noexcept {
    std::memset(w + record_word::kReason, 0, kReasonWords * 8);
    set_bits(status::kReasonLenMask | status::kHasError, 0);
  }
  void set_note(std::string_view r) noexcept {
    const std::size_t n = std::min(r.size(), kNoteMax);
    words_from(w + record_word::kOverrideNote, kNoteWords, r.substr(0, n));
    set_bits(status::kNoteLenMask, std::uint64_t{n} << status::kNoteLenShift);
  }
  std::string_view reason_view() const noexcept {
    return {reinterpret_cast<const char*>(w + record_word::kReason), reason_len()};
  }
  std::string_view note_view() const noexcept {
    return {reinterpret_cast<const char*>(w + record_word::kOverrideNote), note_len()};
  }
  std::string_view user_view() const noexcept {
    const auto* p = reinterpret_cast<const char*>(w + record_word::kOverrideUser);
    return {p, strnlen(p, kUserMax)};
  }

  /// The state payload readers load (layout.hpp): derived, never stored
  /// independently.
  std::uint64_t payload() const noexcept {
    // The readers' deadline: the breaker's window or a retry hint, whichever
    // ends later (breaker.hpp); 0 when neither is set.
    const std::int64_t until = time(record_word::kUnhealthyUntilMono);
    switch (override_mode()) {
    case Override::forced_down: {
      const std::int64_t expiry = time(record_word::kOverrideUntilMono);
      if (expiry == 0) return kPayloadForcedDown;
      // Expires without a writer: the deadline is the later of the
      // override's end and the breaker's.
      return deadline_payload(until > expiry ? until : expiry);
    }
    case Override::forced_up: return kPayloadUp;
    case Override::automatic: break;
    }
    if (healthy() && until == 0) return kPayloadUp;
    return deadline_payload(until);
  }
  std::uint64_t word() const noexcept { return word_of(generation(), payload()); }
};
static_assert(sizeof(RecordValue) == sizeof(Record));

inline void load_record(const Record& r, RecordValue& v) noexcept {
  constexpr auto o = kDataLoad; // relaxed; acquire under TSan (see above)
  for (std::size_t i = 0; i < record_word::kCount; ++i)
    v.w[i] = r.w[i].load(o);
}

inline void store_record(Record& r, const RecordValue& v) noexcept {
  constexpr auto o = kDataStore; // relaxed; release under TSan (see above)
  for (std::size_t i = 0; i < record_word::kCount; ++i)
    r.w[i].store(v.w[i], o);
}

/// How many times a reader re-copies a record that a live writer keeps
/// changing before it gives up (~ms; a dead writer never causes a retry).
inline constexpr int kMaxReadAttempts = 1 << 16;

/// Copies the stable record. Returns false only if a live writer changed it
/// kMaxReadAttempts times in a row while we copied. `retries`, when given,
/// receives how many copies were thrown away (the benchmarks count them).
inline bool read_record(const SlotBody& s, RecordValue& v, int* retries = nullptr) noexcept {
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
inline void write_record(SlotBody& s, const RecordValue& v) noexcept {
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
inline bool settle_record(SlotBody& s) noexcept {
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

/// Stores a hot word if it changes (every router reads its cache line on
/// every request, so an unchanged word is never rewritten).
inline bool store_word(SlotHead& h, std::uint64_t word) noexcept {
  if (h.word.load(std::memory_order_relaxed) == word) return false;
  // release: pairs with the acquire in Table::is_healthy()
  h.word.store(word, std::memory_order_release);
  return true;
}

/// An update of one slot as the writer publishes it: the record through the
/// latch, then the hot word derived from it, stored last.
inline void publish_record(SlotHead& h, SlotBody& b, const RecordValue& v) noexcept {
  write_record(b, v);
  store_word(h, v.word());
}

/// The latch part of a new writer's repair of one slot (Writer::open runs
/// it on every registered slot): settle what a killed writer left, drop a
/// hostile or torn reason length through the latch, and make the hot word
/// agree with the record. Returns whether anything changed. Single writer.
inline bool repair_record(SlotHead& h, SlotBody& b) noexcept {
  bool fixed = settle_record(b); // now copy[0] is the record readers see
  RecordValue v;
  load_record(b.copy[0], v);
  const auto len = [](std::uint64_t st, std::uint64_t mask, unsigned shift) {
    return (st & mask) >> shift;
  };
  if (len(v.status(), status::kReasonLenMask, status::kReasonLenShift) > kReasonMax ||
      len(v.status(), status::kNoteLenMask, status::kNoteLenShift) > kNoteMax) {
    v.clear_reason(); // safe through the latch: both copies are equal now
    v.set_note({});
    write_record(b, v);
    fixed = true;
  }
  if (store_word(h, v.word())) fixed = true;
  return fixed;
}

} // namespace healthtable::detail
