// detail: Writer::Impl, the writer's side of one table: its home, its lock,
// the object it writes now, and the slots it may hand out.
#pragma once

#include "home.hpp"
#include "record.hpp"
#include "segment.hpp"
#include "view.hpp"

#include <healthtable/writer.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace healthtable {

struct Writer::Impl {
  std::unique_ptr<detail::Home> home;
  int lock_fd = -1;    // its own open file description, holding the OFD lock
  bool forked = false; // set in a fork child: the lock stayed with the parent
  std::uint32_t repaired = 0;
  Table reader; // a read-only view over our own mapping: one lookup serves both sides
  std::shared_ptr<detail::Mapping> mapping;
  Header* header = nullptr;
  SlotHead* heads = nullptr;
  SlotBody* bodies = nullptr;
  Event* events = nullptr;
  std::atomic<std::uint64_t>* index = nullptr;
  std::uint32_t capacity = 0;
  std::uint32_t index_mask = 0;
  std::uint64_t events_mask = 0;
  std::deque<std::uint32_t> free_slots; // forgotten slots, oldest first
  std::uint32_t tombstones = 0;         // freed index entries
  std::vector<std::int64_t> ended;      // per slot: the window end expire() last announced
  std::uint64_t rng = 0;                // jitter's state, seeded at random

  Impl(std::unique_ptr<detail::Home> h, int fd, std::shared_ptr<detail::Mapping> m);
  ~Impl();

  void switch_to(std::shared_ptr<detail::Mapping> m);
  void rescan();
  void check_owner() const;
  const detail::View& view() const noexcept;
  std::optional<detail::Found> lookup(std::string_view provider) const noexcept;
  detail::RecordValue current(std::uint32_t i) const noexcept;
  detail::RecordValue zero_record(std::uint32_t gen) const noexcept;
  /// A slot's record after a reset: the zero state, keeping its policy and,
  /// unless `overrides`, its override.
  detail::RecordValue reset_record(std::uint32_t slot, std::uint32_t gen,
                                   bool overrides) const noexcept;
  void apply_policy(std::uint32_t slot, const std::uint64_t* words) noexcept;
  std::uint64_t random() noexcept;
  void publish(std::uint32_t i, const detail::RecordValue& v) noexcept;
  void set_identity(std::uint32_t slot, std::uint32_t gen, std::string_view name) noexcept;
  void index_insert(std::uint64_t hash, std::uint32_t slot) noexcept;
  void index_remove(std::uint64_t hash, std::uint32_t slot) noexcept;
  void bump_registrations() noexcept;
  std::uint32_t add(std::string_view provider, Instant now);
  void forget(std::string_view provider, Instant now);
  std::string table_full_message(std::string_view provider) const;
  Error unknown_provider(std::string_view provider) const;
  void relocate(std::uint32_t new_capacity);
  void repair();
  void attach();
  void event(EventKind kind, std::string_view provider, std::uint8_t from, std::uint8_t to,
             FailureClass cls, Source src, std::string_view reason, std::int64_t until_unix_ns,
             std::uint64_t count, std::uint64_t uid, Instant now) noexcept;

  /// Everything in a new header but the policy, the counters and the magic.
  static void init_header(Header& h, std::string_view segment, std::uint32_t cap,
                          std::uint32_t nevents, std::uint64_t instance, Instant now);
  /// Marks an object retired: every word says "look again", handles of
  /// unknown names see the count move, and readers re-open by name.
  static void retire(detail::Mapping& old, std::uint64_t successor, Instant now) noexcept;
};

} // namespace healthtable
