// detail: Table::Impl, the handles' cells and their bindings.
//
// A handle is a pointer to a Cell the Table owns. The cell's two hot
// words (HandleCell) say where the provider's state word is and which
// value of it means "available". Everything else about the binding (which
// view, slot and registration) is an immutable Binding the cell points at,
// so the slow path and get_state() read one consistent triple.
//
// Rebinding (under `mu`, off the hot path) stores, in this order:
//   up   := never-matching value     (relaxed)
//   word := new word's address       (release)
//   up   := new up value             (release)
// A reader loads word (acquire) then up. If it saw the new address, it
// sees the never value or the new one: a mismatch or a right answer. If it
// saw the old address, the old word is either the same registration's (a
// right answer, a moment late) or no longer equal to any up value: old
// tables' words all say "look again" once retired, and a slot's word
// carries its registration, unique within a table.
#pragma once

#include "home.hpp"
#include "view.hpp"

#include <healthtable/table.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace healthtable {

namespace detail {

/// What a never-bound or rebinding handle expects: a word no slot ever
/// holds (payload 2 is never stored) and a count `registrations` never
/// reaches.
inline constexpr std::uint64_t kNeverMatch = word_of(kWordGenMask, kPayloadNever);

struct Binding {
  const View* view = nullptr;
  const SlotHead* head = nullptr; ///< nothing: the provider is not registered
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
  std::uint64_t registrations = 0; ///< unbound: the count it was looked up at
};

struct Cell : HandleCell {
  std::string name;
  NameKey key;
  Table::Impl* owner = nullptr;
  std::atomic<const Binding*> binding{nullptr};
};

} // namespace detail

struct Table::Impl {
  std::string segment;
  mutable std::unique_ptr<detail::Home> home; ///< null for the writer's own view
  uid_t owner = 0;                            ///< the owner we trusted at open, and trust again
  mutable std::mutex mu;                      ///< bindings and views; never on the hot path
  mutable std::deque<detail::View> views;
  mutable std::atomic<const detail::View*> current{nullptr};
  mutable std::deque<detail::Cell> cells;
  mutable std::unordered_map<std::string, detail::Cell*> by_name;
  mutable std::deque<detail::Binding> bindings;
  /// When a replaced table is missing, re-open at most this often.
  mutable std::atomic<std::int64_t> next_reopen_ns{0};

  Impl(std::string seg, std::unique_ptr<detail::Home> h, std::shared_ptr<detail::Mapping> m);

  const detail::View& view() const noexcept {
    // acquire: pairs with the release store in adopt()
    return *current.load(std::memory_order_acquire);
  }
  /// Makes `m` the current view (re-open, or the writer's grow).
  const detail::View& adopt(std::shared_ptr<detail::Mapping> m) const;
  /// If the current view is retired, opens the table again by name. Caller
  /// holds `mu`. Returns whether the view changed.
  bool reopen_locked() const;
  /// The current view, first following a replaced table (tools' paths).
  const detail::View& fresh_view() const;

  detail::Cell& cell(std::string_view provider) const;
  /// Binds a cell to where its provider is now. Caller holds `mu`.
  void rebind_locked(detail::Cell& c) const;
  void rebind(const detail::Cell& c) const;

  std::int64_t now_host_ns(std::int64_t now_mono_ns) const noexcept;
  /// The routing answer for a cell whose word did not match.
  bool slow(const detail::Cell& c, std::int64_t now_mono_ns) const noexcept;
  /// From when (host CLOCK_MONOTONIC ns) this process may route to the
  /// provider: detail::kAvailableAlways, kAvailableNever, or an instant
  /// (detail::available_from()); by handle (rebinding as needed) or by name.
  std::int64_t available_from(const detail::Cell& c) const noexcept;
  std::int64_t available_from(std::string_view provider) const noexcept;

  void state_of(const detail::View& v, std::uint32_t slot, ProviderState& out) const;
  /// The state a handle stands for now (rebinding as needed).
  void state_of(const detail::Cell& c, ProviderState& out) const;
};

} // namespace healthtable
