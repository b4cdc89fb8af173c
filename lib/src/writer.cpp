#include "breaker.hpp"
#include "home.hpp"
#include "policy.hpp"
#include "record.hpp"
#include "segment.hpp"
#include "table_impl.hpp"
#include "writer_impl.hpp"

#include <healthtable/error.hpp>
#include <healthtable/home.hpp>
#include <healthtable/names.hpp>
#include <healthtable/writer.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace healthtable {

using detail::RecordValue;
using detail::saturating_add;
namespace rw = record_word;
namespace pw = policy_word;

// ---------------------------------------------------------------------------
// Fork safety. An OFD lock belongs to the open file description, which a
// fork shares; the child closes its copy so that only the parent holds the
// lock, and the child's Writer refuses to write.

namespace {

std::mutex g_registry_mutex;
std::vector<Writer::Impl*>& registry() {
  static auto* r = new std::vector<Writer::Impl*>(); // never destroyed: used in atfork
  return *r;
}

void atfork_prepare() { g_registry_mutex.lock(); }
void atfork_parent() { g_registry_mutex.unlock(); }
void atfork_child() {
  for (Writer::Impl* impl : registry()) {
    if (impl->lock_fd >= 0) ::close(impl->lock_fd);
    impl->lock_fd = -1;
    impl->forked = true;
  }
  // The child is single-threaded: a fresh mutex is safe.
  new (&g_registry_mutex) std::mutex();
}

void register_impl(Writer::Impl* impl) {
  static std::once_flag once;
  std::call_once(once, [] { ::pthread_atfork(atfork_prepare, atfork_parent, atfork_child); });
  std::lock_guard lock(g_registry_mutex);
  registry().push_back(impl);
}

void unregister_impl(Writer::Impl* impl) {
  std::lock_guard lock(g_registry_mutex);
  auto& r = registry();
  r.erase(std::remove(r.begin(), r.end(), impl), r.end());
}

std::string q(std::string_view s) { return "'" + std::string(s) + "'"; }

std::uint64_t event_name_word(std::string_view name, std::size_t k) noexcept {
  return detail::name_word(name.data(), name.size(), k);
}

} // namespace

// ---------------------------------------------------------------------------

Writer::Impl::Impl(std::unique_ptr<detail::Home> h, int fd, std::shared_ptr<detail::Mapping> m)
    : home(std::move(h)), lock_fd(fd),
      reader(std::make_unique<Table::Impl>(home->segment(), nullptr, m)) {
  if (::getrandom(&rng, sizeof rng, 0) != sizeof rng)
    rng = static_cast<std::uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ULL;
  switch_to(std::move(m));
}

Writer::Impl::~Impl() {
  // A clean exit withdraws the heartbeat promise: no writer is not a stale one.
  if (!forked && header) header->heartbeat_interval_ns.store(0, std::memory_order_relaxed);
  if (lock_fd >= 0) ::close(lock_fd); // drops the OFD lock
}

void Writer::Impl::switch_to(std::shared_ptr<detail::Mapping> m) {
  mapping = std::move(m);
  header = &mapping->header();
  heads = mapping->heads();
  bodies = mapping->bodies();
  index = mapping->index();
  events = mapping->events();
  capacity = header->capacity;
  index_mask = header->index_size - 1;
  events_mask = header->events_capacity - 1;
  ended.clear(); // slots may have moved
  rescan();
}

void Writer::Impl::rescan() {
  free_slots.clear();
  tombstones = 0;
  const std::uint32_t n = std::min(header->used.load(std::memory_order_relaxed), capacity);
  for (std::uint32_t i = 0; i < n; ++i)
    if (ident_len(heads[i].ident.load(std::memory_order_relaxed)) == 0) free_slots.push_back(i);
  for (std::uint32_t i = 0; i <= index_mask; ++i)
    if (static_cast<std::uint32_t>(index[i].load(std::memory_order_relaxed)) == kTombstone)
      ++tombstones;
}

void Writer::Impl::check_owner() const {
  if (forked)
    throw Error(Errc::writer_busy, "this process is a fork of the writer of " + q(home->segment()) +
                                       "; the writer lock stayed with the parent");
}

const detail::View& Writer::Impl::view() const noexcept { return reader.impl().view(); }

std::optional<detail::Found> Writer::Impl::lookup(std::string_view provider) const noexcept {
  if (provider.empty() || provider.size() > kProviderNameMax) return std::nullopt;
  if (const detail::Found f = view().lookup(detail::NameKey(provider))) return f;
  return std::nullopt;
}

RecordValue Writer::Impl::current(std::uint32_t i) const noexcept {
  // Only we write, and every update ends with both copies equal and seq
  // even, so copy[0] is the record (repair() establishes this at attach).
  RecordValue v;
  detail::load_record(bodies[i].copy[0], v);
  return v;
}

void Writer::Impl::publish(std::uint32_t i, const RecordValue& v) noexcept {
  detail::publish_record(heads[i], bodies[i], v); // record.hpp; traced in test_latch.cpp
  header->updates.store(header->updates.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
}

void Writer::Impl::set_identity(std::uint32_t slot, std::uint32_t gen,
                                std::string_view name) noexcept {
  SlotHead& h = heads[slot];
  const std::uint64_t old = h.ident.load(std::memory_order_relaxed);
  h.ident.store(old | kIdentBusy, std::memory_order_relaxed);
  // release fence: a reader that sees any name store below also sees the
  // busy bit on its re-read of ident (pairs with the acquire fence in
  // View::holds())
  detail::latch_fence(std::memory_order_release);
  for (std::size_t k = 0; k < kNameWords; ++k)
    h.name[k].store(event_name_word(name, k), detail::kDataStore);
  // release: pairs with the acquire loads of ident in View::holds()
  h.ident.store(ident_of(gen, static_cast<std::uint32_t>(name.size())), std::memory_order_release);
}

void Writer::Impl::index_insert(std::uint64_t hash, std::uint32_t slot) noexcept {
  for (std::uint32_t i = 0; i <= index_mask; ++i) {
    auto& e = index[(hash + i) & index_mask];
    const std::uint64_t cur = e.load(std::memory_order_relaxed);
    if (cur == 0 || static_cast<std::uint32_t>(cur) == kTombstone) {
      if (cur != 0) --tombstones;
      // release: pairs with the acquire in View::lookup(); the slot's
      // identity and record were written before.
      e.store(index_entry(hash, slot), std::memory_order_release);
      return;
    }
  }
}

void Writer::Impl::index_remove(std::uint64_t hash, std::uint32_t slot) noexcept {
  for (std::uint32_t i = 0; i <= index_mask; ++i) {
    auto& e = index[(hash + i) & index_mask];
    const std::uint64_t cur = e.load(std::memory_order_relaxed);
    if (cur == 0) return;
    if (cur == index_entry(hash, slot)) {
      // A tombstone, not empty: later entries of the same probe sequence
      // must stay reachable.
      e.store(std::uint64_t{kTombstone}, std::memory_order_release);
      ++tombstones;
      return;
    }
  }
}

void Writer::Impl::bump_registrations() noexcept {
  // release: pairs with the acquire in Table::Impl::rebind_locked(); every
  // index entry stored before is visible to a handle that sees the count.
  header->registrations.fetch_add(1, std::memory_order_release);
}

void Writer::Impl::event(EventKind kind, std::string_view provider, std::uint8_t from,
                         std::uint8_t to, FailureClass cls, Source src, std::string_view reason,
                         std::int64_t until_unix_ns, std::uint64_t count, std::uint64_t uid,
                         Instant now) noexcept {
  const std::uint64_t n = header->events_head.load(std::memory_order_relaxed);
  Event& e = events[n & events_mask];
  constexpr auto o = detail::kDataStore;
  e.seq.store(2 * n + 1, std::memory_order_relaxed);
  // release fence: a reader that sees any store below also sees the odd
  // sequence on its re-read (pairs with the acquire fence in the reader)
  detail::latch_fence(std::memory_order_release);
  e.unix_ns.store(now.unix_ns, o);
  e.mono_ns.store(detail::to_host_mono(now.mono_ns), o);
  e.what.store(event_what(kind, from, to, cls, src), o);
  e.until_unix_ns.store(until_unix_ns, o);
  e.count.store(count, o);
  e.uid.store(uid, o);
  for (std::size_t k = 0; k < kNameWords; ++k)
    e.name[k].store(event_name_word(provider, k), o);
  std::uint64_t words[kReasonWords];
  detail::words_from(words, kReasonWords, reason.substr(0, kReasonMax));
  for (std::size_t k = 0; k < kReasonWords; ++k)
    e.reason[k].store(words[k], o);
  // release: the event is whole for a reader that sees this sequence
  e.seq.store(2 * n + 2, std::memory_order_release);
  // release: pairs with the acquire load of events_head in readers
  header->events_head.store(n + 1, std::memory_order_release);
}

RecordValue Writer::Impl::zero_record(std::uint32_t gen) const noexcept {
  RecordValue v{};
  v.set_healthy(true);
  v.at(rw::kGeneration) = gen;
  for (std::size_t k = 0; k < pw::kCount; ++k)
    v.at(rw::kPolicy + k) = header->policy[k].load(std::memory_order_relaxed);
  return v;
}

RecordValue Writer::Impl::reset_record(std::uint32_t slot, std::uint32_t gen,
                                       bool overrides) const noexcept {
  const RecordValue old = current(slot);
  RecordValue v = zero_record(gen);
  for (std::size_t k = 0; k < pw::kCount; ++k) // the provider's own policy stays
    v.at(rw::kPolicy + k) = old.at(rw::kPolicy + k);
  if (!overrides) {
    v.set_override(old.override_mode());
    for (std::size_t k = rw::kOverrideUntilUnix; k < rw::kPolicy; ++k)
      v.at(k) = old.at(k);
    v.set_bits(status::kNoteLenMask, old.status());
  }
  return v;
}

void Writer::Impl::apply_policy(std::uint32_t slot, const std::uint64_t* words) noexcept {
  RecordValue v = current(slot);
  for (std::size_t k = 0; k < pw::kCount; ++k)
    v.at(rw::kPolicy + k) = words[k];
  // release: readers that see the new record's word may use the new ramp
  heads[slot].ramp_ns.store(static_cast<std::int64_t>(words[pw::kRamp]), std::memory_order_relaxed);
  publish(slot, v);
}

std::uint64_t Writer::Impl::random() noexcept {
  // splitmix64: jitter needs spread, not secrecy
  std::uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint32_t Writer::Impl::add(std::string_view provider, Instant now) {
  validate_provider_name(provider);
  if (const auto f = lookup(provider)) return f->slot;
  std::uint32_t slot = 0;
  const std::uint32_t used = header->used.load(std::memory_order_relaxed);
  if (!free_slots.empty()) {
    slot = free_slots.front();
    free_slots.pop_front();
  } else if (used < capacity) {
    slot = used;
  } else {
    throw Error(Errc::table_full, table_full_message(provider));
  }
  std::uint32_t gen = header->next_generation.load(std::memory_order_relaxed);
  if (gen == 0) gen = 1; // 0 marks a slot never registered
  header->next_generation.store(gen + 1, std::memory_order_relaxed);
  // Fill the slot while no reader can find it by name ...
  set_identity(slot, gen, provider);
  const RecordValue zero = zero_record(gen);
  heads[slot].ramp_ns.store(static_cast<std::int64_t>(zero.at(rw::kPolicy + pw::kRamp)),
                            std::memory_order_relaxed);
  detail::write_record(bodies[slot], zero);
  detail::store_word(heads[slot], zero.word());
  // ... then publish it: in `used` (snapshots), the index (lookups), and
  // the count that handles of unknown names watch. A writer that dies in
  // between leaves a slot that repair() indexes.
  if (slot >= used)
    // release: pairs with the acquire in View::used()
    header->used.store(slot + 1, std::memory_order_release);
  index_insert(name_hash(provider.data(), provider.size()), slot);
  header->live.fetch_add(1, std::memory_order_relaxed);
  bump_registrations();
  event(EventKind::registered, provider, 0, 0, FailureClass::none, Source::admin, {}, 0, slot, 0,
        now);
  return slot;
}

std::string Writer::Impl::table_full_message(std::string_view provider) const {
  const std::string size = std::to_string(capacity) + (capacity == 1 ? " slot" : " slots");
  const std::string advice =
      capacity >= kMaxCapacity
          ? "; that is the maximum: split providers across tables, or forget unused ones "
            "('healthctl forget')"
          : "; grow it live with 'healthctl grow " + home->segment() + " --slots " +
                std::to_string(std::min<std::uint64_t>(std::uint64_t{capacity} * 2, kMaxCapacity)) +
                "', or forget unused providers ('healthctl forget')";
  return "table " + q(home->segment()) + " is full (" + size + ") and cannot register " +
         q(provider) + advice;
}

void Writer::Impl::forget(std::string_view provider, Instant now) {
  validate_provider_name(provider);
  const auto f = lookup(provider);
  if (!f) throw unknown_provider(provider);
  SlotHead& h = heads[f->slot];
  // Every handle bound to this registration leaves the fast path first ...
  // release: pairs with the acquire in Table::is_healthy()
  h.word.store(word_of(f->generation, kPayloadLookAgain), std::memory_order_release);
  // ... then the name goes: a lookup that still reaches the slot finds it free.
  index_remove(name_hash(provider.data(), provider.size()), f->slot);
  set_identity(f->slot, f->generation, {});
  header->live.fetch_sub(1, std::memory_order_relaxed);
  free_slots.push_back(f->slot); // FIFO: a slot's registrations change as rarely as they can
  bump_registrations();
  event(EventKind::forgotten, provider, 0, 0, FailureClass::none, Source::admin, {}, 0, f->slot, 0,
        now);
  // Freed entries lengthen every miss's probe; past a quarter of the index,
  // move into a fresh table (readers follow; it is the same as a grow).
  if (tombstones > (index_mask + 1) / 4) relocate(capacity);
}

Error Writer::Impl::unknown_provider(std::string_view provider) const {
  return Error(Errc::unknown_provider, "provider " + q(provider) + " is not in table " +
                                           q(home->segment()) + "; 'healthctl dump " +
                                           home->segment() + "' lists the providers it has");
}

void Writer::Impl::retire(detail::Mapping& old, std::uint64_t successor, Instant now) noexcept {
  Header& oh = old.header();
  oh.successor.store(successor, std::memory_order_relaxed);
  // release: pairs with the acquire in View::retired(); stored before the
  // words below, so a reader sent off the fast path by one of them sees it.
  oh.state.store(static_cast<std::uint32_t>(SegmentState::retired), std::memory_order_release);
  const std::uint32_t n = std::min(oh.used.load(std::memory_order_relaxed), oh.capacity);
  SlotHead* oheads = old.heads();
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t gen = ident_gen(oheads[i].ident.load(std::memory_order_relaxed));
    // release: pairs with the acquire in Table::is_healthy()
    oheads[i].word.store(word_of(gen, kPayloadLookAgain), std::memory_order_release);
  }
  oh.registrations.fetch_add(1, std::memory_order_release);
  (void)now;
}

void Writer::Impl::relocate(std::uint32_t new_capacity) {
  const std::uint32_t live = header->live.load(std::memory_order_relaxed);
  if (new_capacity < live || new_capacity < 1 || new_capacity > kMaxCapacity)
    throw Error(Errc::invalid_argument,
                "slots must be between " + std::to_string(std::max<std::uint32_t>(live, 1)) +
                    " (the providers registered now) and " + std::to_string(kMaxCapacity) +
                    ", got " + std::to_string(new_capacity));
  const Instant now = Instant::now();
  const std::uint64_t instance = detail::random_instance();
  const std::uint32_t nevents = header->events_capacity;
  const Offsets off = offsets_for(new_capacity, nevents);
  std::shared_ptr<detail::Mapping> m =
      detail::Mapping::create(home->segment(), instance, off.total, mapping->mode(), -1, -1);
  try {
    Header& nh = m->header();
    init_header(nh, home->segment(), new_capacity, nevents, instance, now);
    for (std::size_t k = 0; k < pw::kCount; ++k)
      nh.policy[k].store(header->policy[k].load(std::memory_order_relaxed),
                         std::memory_order_relaxed);
    nh.created_unix_ns = header->created_unix_ns;
    nh.generation.store(header->generation.load(std::memory_order_relaxed),
                        std::memory_order_relaxed);
    nh.next_generation.store(header->next_generation.load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
    nh.updates.store(header->updates.load(std::memory_order_relaxed), std::memory_order_relaxed);
    nh.reports_dropped.store(header->reports_dropped.load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
    nh.reports_refused.store(header->reports_refused.load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
    nh.writer_pid.store(header->writer_pid.load(std::memory_order_relaxed),
                        std::memory_order_relaxed);
    nh.writer_start_unix_ns.store(header->writer_start_unix_ns.load(std::memory_order_relaxed),
                                  std::memory_order_relaxed);
    nh.heartbeat_interval_ns.store(header->heartbeat_interval_ns.load(std::memory_order_relaxed),
                                   std::memory_order_relaxed);
    nh.heartbeat_mono_ns.store(detail::to_host_mono(now.mono_ns), std::memory_order_relaxed);
    nh.heartbeat_unix_ns.store(now.unix_ns, std::memory_order_relaxed);
    // Slots keep their numbers when they fit; otherwise they are packed.
    const std::uint32_t used = std::min(header->used.load(std::memory_order_relaxed), capacity);
    const bool keep = used <= new_capacity;
    SlotHead* nheads = m->heads();
    SlotBody* nbodies = m->bodies();
    auto* nindex = m->index();
    const std::uint32_t nmask = nh.index_size - 1;
    std::uint32_t next = 0, high = 0, count = 0;
    for (std::uint32_t i = 0; i < used; ++i) {
      const std::uint64_t ident = heads[i].ident.load(std::memory_order_relaxed);
      if (ident_len(ident) == 0) continue;
      const std::uint32_t to = keep ? i : next++;
      SlotHead& h = nheads[to];
      for (std::size_t k = 0; k < kNameWords; ++k)
        h.name[k].store(heads[i].name[k].load(std::memory_order_relaxed),
                        std::memory_order_relaxed);
      h.ident.store(ident & ~kIdentBusy, std::memory_order_relaxed);
      h.ramp_ns.store(heads[i].ramp_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
      const RecordValue v = current(i);
      detail::store_record(nbodies[to].copy[0], v);
      detail::store_record(nbodies[to].copy[1], v);
      h.word.store(v.word(), std::memory_order_relaxed);
      char buf[kNameWords * 8];
      for (std::size_t k = 0; k < kNameWords; ++k) {
        const std::uint64_t w = h.name[k].load(std::memory_order_relaxed);
        std::memcpy(buf + 8 * k, &w, 8);
      }
      const std::uint64_t hash = name_hash(buf, ident_len(ident));
      for (std::uint32_t p = 0; p <= nmask; ++p) {
        auto& e = nindex[(hash + p) & nmask];
        if (e.load(std::memory_order_relaxed) == 0) {
          e.store(index_entry(hash, to), std::memory_order_relaxed);
          break;
        }
      }
      high = std::max(high, to + 1);
      ++count;
    }
    nh.used.store(high, std::memory_order_relaxed);
    nh.live.store(count, std::memory_order_relaxed);
    // The newest events come along, with their numbers.
    const std::uint64_t head = header->events_head.load(std::memory_order_relaxed);
    const std::uint64_t keep_events = std::min<std::uint64_t>(head, nevents);
    Event* nev = m->events();
    for (std::uint64_t n = head - keep_events; n < head; ++n) {
      const Event& from = events[n & events_mask];
      Event& to = nev[n & (nevents - 1)];
      const auto* src = reinterpret_cast<const std::atomic<std::uint64_t>*>(&from);
      auto* dst = reinterpret_cast<std::atomic<std::uint64_t>*>(&to);
      for (std::size_t k = 0; k < sizeof(Event) / 8; ++k)
        dst[k].store(src[k].load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    nh.events_head.store(head, std::memory_order_relaxed);
    // release: pairs with the acquire in validate_image(); a reader that
    // sees the magic sees every field above.
    nh.magic.store(kMagic, std::memory_order_release);
    home->point_at(instance);
  } catch (...) {
    m->unlink_if_ours(); // ours alone: a random name
    throw;
  }
  std::shared_ptr<detail::Mapping> old = mapping;
  retire(*old, instance, now);
  old->unlink_if_ours();
  switch_to(m);
  reader.impl().adopt(m);
  event(EventKind::grown, {}, 0, 0, FailureClass::none, Source::admin, {}, 0, new_capacity, 0, now);
}

void Writer::Impl::init_header(Header& h, std::string_view segment, std::uint32_t cap,
                               std::uint32_t nevents, std::uint64_t instance, Instant now) {
  const Offsets o = offsets_for(cap, nevents);
  h.format = kFormat;
  h.layout_version = kLayoutVersion;
  h.header_size = sizeof(Header);
  h.head_size = sizeof(SlotHead);
  h.body_size = sizeof(SlotBody);
  h.event_size = sizeof(Event);
  h.capacity = cap;
  h.index_size = index_size_for(cap);
  h.events_capacity = nevents;
  h.total_size = o.total;
  h.instance = instance;
  h.index_offset = o.index;
  h.heads_offset = o.heads;
  h.bodies_offset = o.bodies;
  h.events_offset = o.events;
  h.created_unix_ns = now.unix_ns;
  h.owner_uid = static_cast<std::uint32_t>(::geteuid());
  h.name_len = static_cast<std::uint32_t>(segment.size());
  std::memcpy(h.name, segment.data(), segment.size());
  h.state.store(static_cast<std::uint32_t>(SegmentState::live), std::memory_order_relaxed);
}

void Writer::Impl::repair() {
  const std::uint32_t n = std::min(header->used.load(std::memory_order_relaxed), capacity);
  for (std::uint32_t i = 0; i < n; ++i) {
    SlotHead& h = heads[i];
    SlotBody& b = bodies[i];
    const std::uint64_t ident = h.ident.load(std::memory_order_relaxed);
    bool fixed = false;
    if (ident & kIdentBusy) {
      // Killed while renaming the slot: readers skip a busy slot, so
      // finishing it as free changes nothing they can see.
      set_identity(i, ident_gen(ident), {});
      fixed = true;
    }
    const std::uint64_t now_ident = h.ident.load(std::memory_order_relaxed);
    const std::uint32_t gen = ident_gen(now_ident);
    if (ident_len(now_ident) == 0) {
      fixed |= detail::store_word(h, word_of(gen, kPayloadLookAgain));
    } else {
      // Finish or roll back a write the dead writer left half done, keeping
      // the record readers are reading now (record.hpp, traced store by
      // store in tests/reliability/test_latch.cpp).
      fixed |= detail::repair_record(h, b);
      if (current(i).generation() != gen) { // killed between the name and its record
        detail::publish_record(h, b, zero_record(gen));
        fixed = true;
      }
      char buf[kNameWords * 8];
      for (std::size_t k = 0; k < kNameWords; ++k) {
        const std::uint64_t w = h.name[k].load(std::memory_order_relaxed);
        std::memcpy(buf + 8 * k, &w, 8);
      }
      const std::string_view name(buf,
                                  std::min<std::size_t>(ident_len(now_ident), kProviderNameMax));
      const auto f = lookup(name);
      if (!f || f->slot != i) { // killed between the slot and its index entry
        index_insert(name_hash(name.data(), name.size()), i);
        bump_registrations();
        fixed = true;
      }
    }
    if (fixed) ++repaired;
  }
  // Index entries left pointing at freed slots (killed inside forget()).
  for (std::uint32_t e = 0; e <= index_mask; ++e) {
    const std::uint64_t v = index[e].load(std::memory_order_relaxed);
    const auto s1 = static_cast<std::uint32_t>(v);
    if (v == 0 || s1 == kTombstone) continue;
    // slot+1 of 0 is no slot (s1 - 1 would wrap to 4G-1)
    if (s1 == 0 || s1 > capacity ||
        ident_len(heads[s1 - 1].ident.load(std::memory_order_relaxed)) == 0) {
      index[e].store(std::uint64_t{kTombstone}, std::memory_order_release);
      ++repaired;
    }
  }
  std::uint32_t live = 0;
  for (std::uint32_t i = 0; i < n; ++i)
    if (ident_len(heads[i].ident.load(std::memory_order_relaxed)) != 0) ++live;
  header->live.store(live, std::memory_order_relaxed);
  rescan();
}

void Writer::Impl::attach() {
  const Instant now = Instant::now();
  constexpr auto o = std::memory_order_relaxed;
  header->writer_pid.store(::getpid(), o);
  header->writer_start_unix_ns.store(now.unix_ns, o);
  header->heartbeat_unix_ns.store(now.unix_ns, o);
  header->heartbeat_mono_ns.store(detail::to_host_mono(now.mono_ns), std::memory_order_release);
  register_impl(this);
}

// ---------------------------------------------------------------------------

std::string_view transition_name(Transition t) noexcept {
  switch (t) {
  case Transition::none: return "none";
  case Transition::tripped: return "tripped";
  case Transition::rearmed: return "rearmed";
  case Transition::recovered: return "recovered";
  case Transition::cooldown: return "cooldown";
  }
  return "none";
}

std::string_view standing_name(Standing s) noexcept {
  switch (s) {
  case Standing::current: return "current";
  case Standing::unlinked: return "unlinked";
  case Standing::replaced: return "replaced";
  case Standing::no_home: return "no_home";
  }
  return "current";
}

Writer::Writer(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&& other) noexcept {
  if (this != &other) {
    if (impl_) unregister_impl(impl_.get());
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Writer::~Writer() {
  if (impl_) unregister_impl(impl_.get());
}

namespace {

[[noreturn]] void throw_busy(const detail::Home& home) {
  std::int64_t pid = 0;
  try {
    if (const std::uint64_t inst = home.current())
      pid = detail::Mapping::open(home.segment(), inst, false, home.owner())
                ->header()
                .writer_pid.load(std::memory_order_relaxed);
  } catch (const Error&) {
  }
  throw Error(Errc::writer_busy,
              "table " + q(home.segment()) + " already has a writer" +
                  (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
                  "; only one process may write a table: stop it first");
}

int lock_or_throw(const detail::Home& home, bool create) {
  const int fd = home.open_lock(create);
  try {
    if (!detail::try_writer_lock(fd)) throw_busy(home);
  } catch (...) {
    ::close(fd);
    throw;
  }
  return fd;
}

gid_t primary_gid(uid_t uid) {
  passwd pw{}, *found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) return found->pw_gid;
  return static_cast<gid_t>(uid);
}

struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
  int release() noexcept { return std::exchange(fd, -1); }
};

} // namespace

Writer Writer::create(std::string_view segment, const CreateOptions& options) {
  validate_segment_name(segment);
  validate_policy(options.policy);
  if (options.capacity < 1 || options.capacity > kMaxCapacity)
    throw Error(Errc::invalid_argument, "slots must be between 1 and " +
                                            std::to_string(kMaxCapacity) + ", got " +
                                            std::to_string(options.capacity));
  if (options.events < 1 || options.events > kMaxEvents)
    throw Error(Errc::invalid_argument, "events must be between 1 and " +
                                            std::to_string(kMaxEvents) + ", got " +
                                            std::to_string(options.events));
  if (options.mode > 0777)
    throw Error(Errc::invalid_argument,
                "mode must be an octal permission like 0644, got " + std::to_string(options.mode));
  if (options.mode & 022)
    throw Error(Errc::invalid_argument,
                "mode " + format_mode(options.mode) +
                    " lets other users write the table; only its writer may: use 0644 (everyone "
                    "reads) or 0640 (a group reads)");
  const uid_t me = ::geteuid();
  const uid_t uid = options.owner_uid.value_or(me);
  const gid_t gid = options.owner_gid.value_or(uid == me ? ::getegid() : primary_gid(uid));
  if (uid != me && me != 0)
    throw Error(Errc::permission_denied,
                "only root can create a table for another user (" + describe_uid(uid) + ")");
  auto home = detail::Home::make(segment, uid, gid);
  FdGuard lock{lock_or_throw(*home, true)};
  if (uid != me && ::fchown(lock.fd, uid, gid) != 0)
    detail::throw_errno(errno, "cannot give the lock to " + describe_uid(uid) + " for", segment);

  // What the home points at now: a table to replace, or a stale pointer.
  std::shared_ptr<detail::Mapping> old;
  std::string stray; // an object of ours that is not a valid table
  std::uint64_t existing = 0;
  try {
    existing = home->current();
  } catch (const Error&) {
    if (!options.replace) throw;
  }
  if (existing != 0) {
    try {
      old = detail::Mapping::open(segment, existing, true, home->owner());
    } catch (const Error& e) {
      if (e.code() != Errc::no_such_segment) stray = detail::object_path(segment, existing);
    }
    if ((old || !stray.empty()) && !options.replace)
      throw Error(Errc::already_exists, "table " + q(segment) +
                                            " already exists; use --force to replace it, or pick "
                                            "another name");
  }

  const Instant now = Instant::now();
  const std::uint32_t cap = options.capacity;
  const std::uint32_t nevents = events_size_for(options.events);
  const std::uint64_t instance = detail::random_instance();
  std::shared_ptr<detail::Mapping> m = detail::Mapping::create(
      segment, instance, offsets_for(cap, nevents).total, options.mode,
      uid != me ? static_cast<int>(uid) : -1, uid != me ? static_cast<int>(gid) : -1);
  try {
    // The object is zero-filled; write everything but the magic ...
    Header& h = m->header();
    Impl::init_header(h, segment, cap, nevents, instance, now);
    h.owner_uid = uid;
    std::uint64_t words[pw::kCount];
    detail::encode_policy(options.policy, words);
    for (std::size_t k = 0; k < pw::kCount; ++k)
      h.policy[k].store(words[k], std::memory_order_relaxed);
    h.generation.store(instance & 0x0000'FFFF'FFFF'FFFFULL, std::memory_order_relaxed);
    // Registrations start at a random point, so two tables of one name
    // rarely share a registration number (handles tell them apart anyway).
    h.next_generation.store(static_cast<std::uint32_t>(instance >> 40) | 1,
                            std::memory_order_relaxed);
    // ... then publish. release: pairs with the acquire in validate_image();
    // a reader that sees the magic sees every field above.
    h.magic.store(kMagic, std::memory_order_release);
    home->point_at(instance);
  } catch (...) {
    m->unlink_if_ours(); // ours alone: a random name
    throw;
  }
  if (old) {
    Impl::retire(*old, instance, now);
    old->unlink_if_ours();
  } else if (!stray.empty()) {
    ::unlink(stray.c_str());
  }
  detail::remove_stray_objects(segment, uid, instance);
  auto impl = std::make_unique<Impl>(std::move(home), lock.release(), std::move(m));
  impl->attach();
  return Writer(std::move(impl));
}

Writer Writer::open(std::string_view segment) {
  validate_segment_name(segment);
  // Trusted as a reader trusts it, then ours or not: a table of another
  // user is not ours to write whatever its mode, so say who may.
  auto home = detail::Home::open(segment);
  if (home->owner() != ::geteuid())
    throw Error(Errc::wrong_owner, detail::not_your_table(segment, home->owner()));
  FdGuard lock{lock_or_throw(*home, true)};
  const std::uint64_t instance = home->current();
  if (instance == 0) detail::throw_errno(ENOENT, "cannot open", segment);
  std::shared_ptr<detail::Mapping> m = detail::Mapping::open(segment, instance, true, ::geteuid());
  // The home points at this object, so it is the live table. A retired
  // mark on it can only be a stray write: clear it, or readers re-open
  // forever.
  auto& state = m->header().state;
  if (state.load(std::memory_order_relaxed) != static_cast<std::uint32_t>(SegmentState::live))
    state.store(static_cast<std::uint32_t>(SegmentState::live), std::memory_order_release);
  detail::remove_stray_objects(segment, ::geteuid(), instance);
  auto impl = std::make_unique<Impl>(std::move(home), lock.release(), std::move(m));
  impl->repair();
  impl->attach();
  return Writer(std::move(impl));
}

void Writer::destroy(std::string_view segment, bool force) {
  validate_segment_name(segment);
  auto home = detail::Home::open(segment);
  std::uint64_t instance = 0;
  try {
    instance = home->current();
  } catch (const Error& e) {
    if (!force)
      throw Error(Errc::not_a_table, std::string(e.what()) + " (refusing to remove it without "
                                                             "--force)");
  }
  FdGuard lock{-1};
  try {
    lock.fd = lock_or_throw(*home, false);
  } catch (const Error& e) {
    if (e.code() != Errc::no_such_segment || !force) {
      if (e.code() == Errc::no_such_segment)
        throw Error(Errc::not_a_table, "table " + q(segment) + ": " + home->dir() +
                                           " has no writer lock, so it is not a health table's "
                                           "home; 'healthctl destroy " +
                                           std::string(segment) + " --force' removes it");
      throw;
    }
  }
  if (instance == 0 && !force) detail::throw_errno(ENOENT, "cannot remove", segment);
  if (instance != 0) {
    std::shared_ptr<detail::Mapping> m;
    try {
      m = detail::Mapping::open(segment, instance, true, home->owner());
    } catch (const Error& e) {
      if (e.code() != Errc::no_such_segment && !force)
        throw Error(Errc::not_a_table, std::string(e.what()) +
                                           " (refusing to remove what is not a health table "
                                           "without --force)");
    }
    if (m) {
      Impl::retire(*m, 0, Instant::now());
      m->unlink_if_ours();
    } else {
      ::unlink(detail::object_path(segment, instance).c_str()); // named as only ours are
    }
  }
  detail::remove_stray_objects(segment, home->owner(), 0);
  home->remove_entries();
}

Handle Writer::add(std::string_view provider) {
  impl_->check_owner();
  impl_->add(provider, Instant::now());
  return impl_->reader.handle(provider);
}

void Writer::forget(std::string_view provider) {
  impl_->check_owner();
  impl_->forget(provider, Instant::now());
}

void Writer::grow(std::uint32_t capacity) {
  impl_->check_owner();
  impl_->relocate(capacity);
}

void Writer::recreate() {
  impl_->check_owner();
  if (impl_->home->gone()) {
    // A new home needs its own lock: ours is on a file that is gone, which
    // a second writer would never see.
    auto home = detail::Home::make(impl_->home->segment(), ::geteuid(), ::getegid());
    const int fd = lock_or_throw(*home, true);
    ::close(impl_->lock_fd);
    impl_->lock_fd = fd;
    impl_->home = std::move(home);
  }
  impl_->relocate(impl_->capacity);
  // Whatever the home pointed at instead is, if it is ours, a stray of this
  // table now: we hold the lock, so no other writer of ours made it live.
  detail::remove_stray_objects(impl_->home->segment(), impl_->home->owner(),
                               impl_->mapping->instance());
}

Standing Writer::standing() const {
  if (impl_->home->gone()) return Standing::no_home;
  if (!impl_->mapping->linked()) return Standing::unlinked;
  try {
    const std::uint64_t cur = impl_->home->current();
    if (cur == 0) return Standing::no_home;
    return cur == impl_->mapping->instance() ? Standing::current : Standing::replaced;
  } catch (const Error&) {
    return Standing::replaced;
  }
}

Transition Writer::record(std::string_view provider, const Outcome& outcome, Instant now) {
  impl_->check_owner();
  const std::uint32_t i = impl_->add(provider, now);
  RecordValue v = impl_->current(i);
  const Policy p = detail::decode_policy(v.w + rw::kPolicy);
  const bool failure = outcome.failure_class != FailureClass::none;
  const std::string reason = failure ? sanitize_reason(outcome.reason, kReasonMax) : std::string();
  Outcome o = outcome;
  o.reason = reason;
  const detail::Step step = detail::apply_outcome(v, p, o, detail::to_host_mono(now.mono_ns),
                                                  now.unix_ns, impl_->random());
  impl_->publish(i, v);
  const FailureClass cls = v.last_class();
  const std::int64_t until = v.time(rw::kUnhealthyUntilUnix);
  switch (step.transition) {
  case Transition::none: break;
  case Transition::tripped:
    impl_->event(EventKind::tripped, provider, 1, 0, cls, o.source, reason, until,
                 v.consecutive_failures(), 0, now);
    break;
  case Transition::rearmed:
    impl_->event(EventKind::rearmed, provider, 0, 0, cls, o.source, reason, until,
                 v.consecutive_failures(), 0, now);
    break;
  case Transition::recovered:
    impl_->event(EventKind::recovered, provider, 0, 1, FailureClass::none, o.source, {}, until,
                 v.success_run(), 0, now);
    break;
  case Transition::cooldown: break; // the event below
  }
  if (step.hinted)
    impl_->event(EventKind::cooldown, provider, v.healthy() ? 1 : 0, v.healthy() ? 1 : 0, cls,
                 o.source, reason, until, v.consecutive_failures(), 0, now);
  return step.transition;
}

Transition Writer::mark_healthy(std::string_view provider, Instant now) {
  return record(provider, Outcome{}, now);
}

Transition Writer::mark_unhealthy(std::string_view provider, std::string_view reason, Instant now) {
  Outcome o;
  o.failure_class = FailureClass::other;
  o.reason = reason;
  return record(provider, o, now);
}

std::vector<std::string> Writer::expire(Instant now) {
  impl_->check_owner();
  std::vector<std::string> ended;
  const std::int64_t host_now = detail::to_host_mono(now.mono_ns);
  const std::uint32_t n =
      std::min(impl_->header->used.load(std::memory_order_relaxed), impl_->capacity);
  impl_->ended.resize(impl_->capacity, 0);
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto id = impl_->view().identity(i);
    if (!id) continue;
    RecordValue v = impl_->current(i);
    bool changed = false;
    std::uint8_t expired = 0; // the override mode that lapsed
    const std::int64_t expiry = v.time(rw::kOverrideUntilMono);
    if (v.override_mode() != Override::automatic && expiry != 0 && expiry <= host_now) {
      const auto was = static_cast<std::uint8_t>(v.override_mode());
      v.set_override(Override::automatic);
      v.set_time(rw::kOverrideUntilMono, 0);
      v.set_time(rw::kOverrideUntilUnix, 0);
      expired = was;
    }
    const std::int64_t until = v.time(rw::kUnhealthyUntilMono);
    if (v.healthy() && until != 0 && until <= host_now) {
      // A cooldown served: readers back on the one-load path.
      v.set_time(rw::kUnhealthyUntilMono, 0);
      v.set_time(rw::kUnhealthyUntilUnix, 0);
      v.set_time(rw::kHintUntilMono, 0);
      v.set_time(rw::kHintUntilUnix, 0);
      changed = true;
    }
    if (changed || expired) impl_->publish(i, v);
    if (expired)
      impl_->event(EventKind::override, id->name, expired, 0, FailureClass::none, Source::admin,
                   "expired", 0, 0, 0, now);
    if (!v.healthy() && until <= host_now && impl_->ended[i] != until) {
      impl_->ended[i] = until; // each window's end is announced once
      ended.push_back(id->name);
    }
  }
  return ended;
}

void Writer::set_override(std::string_view provider, Override mode) {
  OverrideRequest r;
  r.mode = mode;
  set_override(provider, r);
}

void Writer::set_override(std::string_view provider, const OverrideRequest& request, Instant now) {
  impl_->check_owner();
  if (request.expires_after && request.expires_after->count() <= 0)
    throw Error(Errc::invalid_argument, "an override's duration must be positive, got " +
                                            format_duration(*request.expires_after));
  const std::uint32_t i = impl_->add(provider, now);
  RecordValue v = impl_->current(i);
  v.set_override(request.mode);
  const bool expires = request.mode != Override::automatic && request.expires_after;
  const std::int64_t d = expires ? request.expires_after->count() : 0;
  v.set_time(rw::kOverrideUntilMono,
             expires ? saturating_add(detail::to_host_mono(now.mono_ns), d) : 0);
  v.set_time(rw::kOverrideUntilUnix, expires ? saturating_add(now.unix_ns, d) : 0);
  v.set_time(rw::kOverrideSetUnix, now.unix_ns);
  const std::uint32_t uid = request.uid.value_or(static_cast<std::uint32_t>(::geteuid()));
  v.at(rw::kOverrideUid) = std::uint64_t{uid} + 1;
  const std::string user = user_of_uid(uid);
  detail::words_from(&v.at(rw::kOverrideUser), kUserWords,
                     std::string_view(user).substr(0, kUserMax));
  v.set_note(sanitize_reason(request.reason, kNoteMax));
  impl_->publish(i, v);
  impl_->event(EventKind::override, provider, 0, static_cast<std::uint8_t>(request.mode),
               FailureClass::none, Source::admin, sanitize_reason(request.reason, kReasonMax),
               v.time(rw::kOverrideUntilUnix), 0, std::uint64_t{uid} + 1, now);
}

void Writer::reset(ResetScope scope) {
  const bool overrides = scope == ResetScope::state_and_overrides;
  impl_->check_owner();
  const std::uint32_t n =
      std::min(impl_->header->used.load(std::memory_order_relaxed), impl_->capacity);
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint64_t ident = impl_->heads[i].ident.load(std::memory_order_relaxed);
    if (ident_len(ident) == 0) continue;
    impl_->publish(i, impl_->reset_record(i, ident_gen(ident), overrides));
  }
  impl_->header->generation.fetch_add(1, std::memory_order_release);
  impl_->event(EventKind::reset, {}, 0, overrides ? 1 : 0, FailureClass::none, Source::admin, {}, 0,
               n, 0, Instant::now());
}

void Writer::reset(std::string_view provider, ResetScope scope) {
  const bool overrides = scope == ResetScope::state_and_overrides;
  impl_->check_owner();
  validate_provider_name(provider);
  const auto f = impl_->lookup(provider);
  if (!f) throw impl_->unknown_provider(provider);
  impl_->publish(f->slot, impl_->reset_record(f->slot, f->generation, overrides));
  impl_->event(EventKind::reset, provider, 0, overrides ? 1 : 0, FailureClass::none, Source::admin,
               {}, 0, 0, 0, Instant::now());
}

void Writer::set_policy(const Policy& policy) {
  impl_->check_owner();
  validate_policy(policy);
  std::uint64_t words[pw::kCount];
  detail::encode_policy(policy, words);
  for (std::size_t k = 0; k < pw::kCount; ++k)
    impl_->header->policy[k].store(words[k], std::memory_order_relaxed);
  const std::uint32_t n =
      std::min(impl_->header->used.load(std::memory_order_relaxed), impl_->capacity);
  for (std::uint32_t i = 0; i < n; ++i)
    if (ident_len(impl_->heads[i].ident.load(std::memory_order_relaxed)) != 0)
      impl_->apply_policy(i, words);
}

void Writer::set_policy(std::string_view provider, const Policy& policy) {
  impl_->check_owner();
  validate_policy(policy);
  std::uint64_t words[pw::kCount];
  detail::encode_policy(policy, words);
  impl_->apply_policy(impl_->add(provider, Instant::now()), words);
}

Policy Writer::policy() const noexcept {
  std::uint64_t words[pw::kCount];
  for (std::size_t k = 0; k < pw::kCount; ++k)
    words[k] = impl_->header->policy[k].load(std::memory_order_relaxed);
  return detail::decode_policy(words);
}

Policy Writer::policy(std::string_view provider) const {
  validate_provider_name(provider);
  const auto f = impl_->lookup(provider);
  if (!f) throw impl_->unknown_provider(provider);
  const RecordValue v = impl_->current(f->slot);
  return detail::decode_policy(v.w + rw::kPolicy);
}

void Writer::heartbeat(Instant now) {
  impl_->check_owner();
  impl_->header->heartbeat_unix_ns.store(now.unix_ns, std::memory_order_relaxed);
  impl_->header->heartbeat_mono_ns.store(detail::to_host_mono(now.mono_ns),
                                         std::memory_order_release);
}

void Writer::set_heartbeat_interval(std::chrono::nanoseconds interval) {
  impl_->check_owner();
  impl_->header->heartbeat_interval_ns.store(std::max<std::int64_t>(interval.count(), 0),
                                             std::memory_order_relaxed);
}

void Writer::count_reports(std::uint64_t dropped, std::uint64_t refused) {
  impl_->check_owner();
  auto& h = *impl_->header;
  h.reports_dropped.store(h.reports_dropped.load(std::memory_order_relaxed) + dropped,
                          std::memory_order_relaxed);
  h.reports_refused.store(h.reports_refused.load(std::memory_order_relaxed) + refused,
                          std::memory_order_relaxed);
}

const Table& Writer::table() const noexcept { return impl_->reader; }

std::uint32_t Writer::repaired() const noexcept { return impl_->repaired; }

} // namespace healthtable
