// detail: the read side of one mapped object (a View), and the lookups and
// copies every reader and the writer share.
#pragma once

#include "record.hpp"
#include "segment.hpp"

#include <healthtable/layout.hpp>
#include <healthtable/table.hpp>

#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace healthtable::detail {

/// A provider name as the slot stores it: its words, length and hash,
/// computed once per lookup (or once per handle).
struct NameKey {
  std::uint64_t words[kNameWords];
  std::uint32_t len = 0;
  std::uint64_t hash = 0;

  NameKey() = default;
  /// `name` is at most kProviderNameMax bytes (callers check).
  explicit NameKey(std::string_view name) noexcept : len(static_cast<std::uint32_t>(name.size())) {
    name_words(name.data(), name.size(), words);
    hash = name_hash_words(words, name.size());
  }
};

/// A slot found in the index: its number and registration; generation 0
/// (never a registration's) means "not found". A plain pair, not an
/// optional: returned in registers, with no flag byte to store and reload.
struct Found {
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
  explicit operator bool() const noexcept { return generation != 0; }
};

/// A slot's identity as one consistent read of its sequence: the name and
/// generation, or nothing while it is free or being rewritten.
struct Identity {
  std::uint32_t generation = 0;
  std::string name;
};

struct View {
  std::shared_ptr<Mapping> mapping;
  const Header* header = nullptr;
  const SlotHead* heads = nullptr;
  const SlotBody* bodies = nullptr;
  const Event* events = nullptr;
  const std::atomic<std::uint64_t>* index = nullptr;
  std::uint32_t capacity = 0;
  std::uint32_t index_mask = 0;

  explicit View(std::shared_ptr<Mapping> m) noexcept;

  bool retired() const noexcept {
    // acquire: pairs with the release store of `retired` in retire_table()
    return header->state.load(std::memory_order_acquire) ==
           static_cast<std::uint32_t>(SegmentState::retired);
  }
  /// Slots ever used, clamped to capacity (a hostile image cannot push a
  /// reader past the mapping).
  std::uint32_t used() const noexcept;
  /// The registered slot of a name. No lock, no allocation.
  Found lookup(const NameKey& key) const noexcept;
  /// Whether slot `slot` holds registration `gen` of the name `key`.
  bool holds(std::uint32_t slot, std::uint32_t gen, const NameKey& key) const noexcept;
  /// The generation of the registration of `key` slot `slot` holds, in one
  /// consistent read of its identity; 0 if it holds another name, none, or
  /// is being rewritten.
  std::uint32_t match(std::uint32_t slot, const NameKey& key) const noexcept;
  /// One consistent read of a slot's identity.
  std::optional<Identity> identity(std::uint32_t slot) const;
};

inline bool View::holds(std::uint32_t slot, std::uint32_t gen, const NameKey& key) const noexcept {
  return gen != 0 && match(slot, key) == gen;
}

inline std::uint32_t View::match(std::uint32_t slot, const NameKey& key) const noexcept {
  const SlotHead& h = heads[slot];
  // acquire: pairs with the release store that ends an identity change in
  // Writer::Impl::set_identity(); the name words below are its own.
  const std::uint64_t i1 = h.ident.load(std::memory_order_acquire);
  // Busy, or another length: the busy bit and the length are one compare.
  if ((i1 & (kIdentLenMask | kIdentBusy)) != ident_of(0, key.len)) return 0;
  // The six words on the head's first line, unrolled and branch-free (names
  // are zero padded, so words past the name compare equal); the last two,
  // on the second line, only for a name longer than 48 bytes, so that most
  // lookups touch one line of the slot.
  std::uint64_t diff = 0;
#pragma GCC unroll 6
  for (std::size_t k = 0; k < 6; ++k)
    diff |= h.name[k].load(kDataLoad) ^ key.words[k];
  if (key.len > 48)
    diff |= (h.name[6].load(kDataLoad) ^ key.words[6]) | (h.name[7].load(kDataLoad) ^ key.words[7]);
  // acquire fence: keeps the name loads above the re-read of ident (the
  // seqlock reader's half; pairs with the release fence in set_identity())
  latch_fence(std::memory_order_acquire);
  if (diff != 0 || h.ident.load(std::memory_order_relaxed) != i1) return 0;
  return ident_gen(i1);
}

inline Found View::lookup(const NameKey& key) const noexcept {
  if (key.len == 0 || key.len > kProviderNameMax) return {};
  const std::uint32_t tag = index_tag(key.hash);
  for (std::uint32_t i = 0; i <= index_mask; ++i) {
    // acquire: pairs with the release store in Writer::Impl::index_insert();
    // the slot's identity was written before its entry.
    const std::uint64_t e = index[(key.hash + i) & index_mask].load(std::memory_order_acquire);
    if (e == 0) return {};
    // slot+1 of 0 and kTombstone are no slot: minus one, both wrap past
    // capacity, as does anything a hostile image puts there.
    const std::uint32_t slot = static_cast<std::uint32_t>(e) - 1;
    if (static_cast<std::uint32_t>(e >> 32) != tag || slot >= capacity) continue;
    // A registered slot's generation is never 0, so 0 is "not this one".
    if (const std::uint32_t gen = match(slot, key); gen != 0) [[likely]]
      return Found{slot, gen};
  }
  return {};
}

/// The routing answer for a word that is not the handle's up word, for
/// registration `gen` in `head`: nothing when the word is of another
/// registration or says "look again" (the caller rebinds).
std::optional<bool> decide(std::uint64_t word, std::uint32_t gen, const SlotHead& head,
                           std::int64_t now_host_ns, std::int64_t ramp_offset_permyriad) noexcept;

/// Slow start: this process admits a provider again only from its own
/// offset into the ramp after the window ends, so N workers come back
/// spread over it instead of all at the same instant (docs/breaker.md).
/// Never negative; no overflow for any stored ramp (offset < 10,000).
inline std::int64_t ramp_delay_ns(const SlotHead& head,
                                  std::int64_t ramp_offset_permyriad) noexcept {
  // relaxed: stored before the record is published (apply_policy() in
  // writer.cpp), so the acquire load of the word we decide on orders it.
  const std::int64_t ramp = head.ramp_ns.load(std::memory_order_relaxed);
  return ramp <= 0 ? 0 : ramp / 10'000 * ramp_offset_permyriad;
}

/// Host-monotonic instants for available_from(): available whatever the
/// time (up, forced up, not registered), and never (forced down, no expiry).
inline constexpr std::int64_t kAvailableAlways = INT64_MIN;
inline constexpr std::int64_t kAvailableNever = INT64_MAX;

/// The instant (host CLOCK_MONOTONIC ns) from which this process may route
/// to registration `gen` of `head` given its word: available iff now >= it.
/// The same answer as decide() at every now, but it reads the ramp even
/// inside the window, so pick() can say when the window ends for us.
/// Nothing when the word is of another registration or says "look again".
std::optional<std::int64_t> available_from(std::uint64_t word, std::uint32_t gen,
                                           const SlotHead& head,
                                           std::int64_t ramp_offset_permyriad) noexcept;

/// Event `n` of the ring if it is still there, whole.
std::optional<EventRecord> read_event(const View& v, std::uint64_t n);

/// Fills `out` from a record (times turned to this process's clock).
void fill_state(const RecordValue& v, std::uint32_t slot, std::int64_t ramp_ns, ProviderState& out);

} // namespace healthtable::detail
