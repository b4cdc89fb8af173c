// detail: the read side of one mapped object (a View), and the lookups and
// copies every reader and the writer share.
#pragma once

#include "record.hpp"
#include "segment.hpp"

#include <healthtable/layout.hpp>
#include <healthtable/table.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace healthtable::detail {

/// A provider name as the slot stores it: its words, length and hash,
/// computed once per lookup (or once per handle).
struct NameKey {
  std::uint64_t words[kNameWords] = {};
  std::uint32_t len = 0;
  std::uint64_t hash = 0;

  NameKey() = default;
  explicit NameKey(std::string_view name) noexcept
      : len(static_cast<std::uint32_t>(name.size())), hash(name_hash(name.data(), name.size())) {
    for (std::size_t k = 0; 8 * k < name.size(); ++k)
      words[k] = name_word(name.data(), name.size(), k);
  }
};

/// A slot found in the index: its number and registration.
struct Found {
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
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
  std::optional<Found> lookup(const NameKey& key) const noexcept;
  /// Whether slot `slot` holds registration `gen` of the name `key`.
  bool holds(std::uint32_t slot, std::uint32_t gen, const NameKey& key) const noexcept;
  /// One consistent read of a slot's identity.
  std::optional<Identity> identity(std::uint32_t slot) const;
};

/// The routing answer for a word that is not the handle's up word, for
/// registration `gen` in `head`: nothing when the word is of another
/// registration or says "look again" (the caller rebinds).
std::optional<bool> decide(std::uint64_t word, std::uint32_t gen, const SlotHead& head,
                           std::int64_t now_host_ns, std::int64_t ramp_offset_permyriad) noexcept;

/// Fills `out` from a record (times turned to this process's clock).
void fill_state(const RecordValue& v, std::uint32_t slot, std::int64_t ramp_ns,
                ProviderState& out);

} // namespace healthtable::detail
