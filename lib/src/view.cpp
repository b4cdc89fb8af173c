#include "view.hpp"

#include <healthtable/clock.hpp>

#include <algorithm>
#include <cstring>

namespace healthtable::detail {

View::View(std::shared_ptr<Mapping> m) noexcept : mapping(std::move(m)) {
  header = &mapping->header();
  heads = mapping->heads();
  bodies = mapping->bodies();
  events = mapping->events();
  index = mapping->index();
  capacity = header->capacity;
  index_mask = header->index_size - 1;
}

std::uint32_t View::used() const noexcept {
  // acquire: pairs with the release store in Writer::Impl::take_slot()
  return std::min(header->used.load(std::memory_order_acquire), capacity);
}

std::optional<Identity> View::identity(std::uint32_t slot) const {
  if (slot >= capacity) return std::nullopt;
  const SlotHead& h = heads[slot];
  for (int attempt = 0; attempt < kMaxReadAttempts; ++attempt) {
    const std::uint64_t i1 = h.ident.load(std::memory_order_acquire);
    if (i1 & kIdentBusy) {
      cpu_relax();
      continue;
    }
    const std::uint32_t len = std::min<std::uint32_t>(ident_len(i1), kProviderNameMax);
    if (len == 0 || ident_gen(i1) == 0) return std::nullopt; // free
    std::uint64_t words[kNameWords];
    for (std::size_t k = 0; k < kNameWords; ++k)
      words[k] = h.name[k].load(kDataLoad);
    latch_fence(std::memory_order_acquire);
    if (h.ident.load(std::memory_order_relaxed) != i1) continue;
    Identity id;
    id.generation = ident_gen(i1);
    id.name.assign(reinterpret_cast<const char*>(words),
                   strnlen(reinterpret_cast<const char*>(words), len));
    return id;
  }
  return std::nullopt;
}

std::optional<bool> decide(std::uint64_t word, std::uint32_t gen, const SlotHead& head,
                           std::int64_t now_host_ns, std::int64_t ramp_offset_permyriad) noexcept {
  if (word_gen(word) != (gen & kWordGenMask)) return std::nullopt;
  const std::uint64_t p = word_payload(word);
  if (p == kPayloadUp) return true;
  if (p == kPayloadForcedDown) return false;
  if (p < kPayloadDeadlineMin) return std::nullopt; // look again (or never)
  const std::int64_t deadline_ns = static_cast<std::int64_t>(p) * 1'000'000;
  if (now_host_ns < deadline_ns) return false;
  // Read only once the window has passed: the tripped case never touches
  // the ramp's line. Compared as time since the deadline (>= 0 here), so a
  // hostile image's huge ramp cannot overflow a sum.
  return now_host_ns - deadline_ns >= ramp_delay_ns(head, ramp_offset_permyriad);
}

std::optional<std::int64_t> available_from(std::uint64_t word, std::uint32_t gen,
                                           const SlotHead& head,
                                           std::int64_t ramp_offset_permyriad) noexcept {
  if (word_gen(word) != (gen & kWordGenMask)) return std::nullopt;
  const std::uint64_t p = word_payload(word);
  if (p == kPayloadUp) return kAvailableAlways;
  if (p == kPayloadForcedDown) return kAvailableNever;
  if (p < kPayloadDeadlineMin) return std::nullopt; // look again (or never)
  const std::int64_t deadline_ns = static_cast<std::int64_t>(p) * 1'000'000;
  const std::int64_t delay = ramp_delay_ns(head, ramp_offset_permyriad);
  // Saturated below kAvailableNever: a deadline, however far, is not "forced
  // down with no expiry".
  if (delay >= kAvailableNever - 1 - deadline_ns) return kAvailableNever - 1;
  return deadline_ns + delay;
}

std::optional<EventRecord> read_event(const View& v, std::uint64_t n) {
  const Event& e = v.events[n & (v.header->events_capacity - 1)];
  // acquire: pairs with the release store of the even sequence in the
  // writer's event(); the fields below are that event's.
  const std::uint64_t s1 = e.seq.load(std::memory_order_acquire);
  if (s1 != 2 * n + 2) return std::nullopt;
  EventRecord r;
  r.number = n;
  r.unix_ns = e.unix_ns.load(kDataLoad);
  const std::int64_t mono = e.mono_ns.load(kDataLoad);
  r.mono_ns = mono == 0 ? 0 : to_local_mono(mono);
  const std::uint64_t what = e.what.load(kDataLoad);
  const auto kind = static_cast<std::uint8_t>(what);
  r.kind = kind <= static_cast<std::uint8_t>(EventKind::retired) ? static_cast<EventKind>(kind)
                                                                 : EventKind::none;
  r.from = static_cast<std::uint8_t>(what >> 8);
  r.to = static_cast<std::uint8_t>(what >> 16);
  r.failure_class = static_cast<FailureClass>((what >> 24) & 7);
  r.source = static_cast<Source>((what >> 32) & 3);
  r.until_unix_ns = e.until_unix_ns.load(kDataLoad);
  r.count = e.count.load(kDataLoad);
  const std::uint64_t uid = e.uid.load(kDataLoad);
  if (uid != 0) r.uid = static_cast<std::uint32_t>(uid - 1);
  std::uint64_t name[kNameWords], reason[kReasonWords];
  for (std::size_t k = 0; k < kNameWords; ++k)
    name[k] = e.name[k].load(kDataLoad);
  for (std::size_t k = 0; k < kReasonWords; ++k)
    reason[k] = e.reason[k].load(kDataLoad);
  // acquire fence: the loads above stay above the re-read (pairs with the
  // release fence after the odd store in the writer's event())
  latch_fence(std::memory_order_acquire);
  if (e.seq.load(std::memory_order_relaxed) != s1) return std::nullopt;
  const auto* np = reinterpret_cast<const char*>(name);
  r.provider.assign(np, strnlen(np, kProviderNameMax));
  const auto* rp = reinterpret_cast<const char*>(reason);
  r.reason.assign(rp, strnlen(rp, kReasonMax));
  return r;
}

void fill_state(const RecordValue& v, std::uint32_t slot, std::int64_t ramp_ns, ProviderState& st) {
  namespace rw = record_word;
  const auto local = [](std::int64_t host) { return host == 0 ? 0 : to_local_mono(host); };
  st.registered = true;
  st.slot = slot;
  st.generation = v.generation();
  st.healthy = v.healthy();
  st.consecutive_failures = v.consecutive_failures();
  st.last_check_unix_ns = v.time(rw::kLastCheckUnix);
  if (v.has_error()) {
    // assign() into the existing string keeps its capacity
    if (!st.last_error) st.last_error.emplace();
    st.last_error->assign(v.reason_view());
  } else {
    st.last_error.reset();
  }
  st.unhealthy_until_unix_ns = v.time(rw::kUnhealthyUntilUnix);
  st.unhealthy_until_mono_ns = local(v.time(rw::kUnhealthyUntilMono));
  st.override_mode = v.override_mode();
  st.transitions = v.at(rw::kTransitions);
  st.successes = v.at(rw::kSuccesses);
  st.failures = v.at(rw::kFailures);
  st.last_class = v.last_class();
  st.last_source = v.last_source();
  st.trips = v.trips();
  st.success_run = v.success_run();
  st.window_ns = v.time(rw::kWindow);
  for (std::size_t c = 0; c < kFailureClasses; ++c)
    st.class_failures[c] = v.at(rw::kClassFailures + c);
  OverrideInfo& o = st.override_info;
  o.mode = v.override_mode();
  o.set_unix_ns = v.time(rw::kOverrideSetUnix);
  o.until_unix_ns = v.time(rw::kOverrideUntilUnix);
  o.until_mono_ns = local(v.time(rw::kOverrideUntilMono));
  const std::uint64_t uid = v.at(rw::kOverrideUid);
  if (uid != 0)
    o.uid = static_cast<std::uint32_t>(uid - 1);
  else
    o.uid.reset();
  o.user.assign(v.user_view());
  o.reason.assign(v.note_view());
  st.ramp_ns = ramp_ns;
}

} // namespace healthtable::detail
