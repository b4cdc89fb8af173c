#include "ramp_offset.hpp"
#include "table_impl.hpp"

#include <healthtable/error.hpp>
#include <healthtable/home.hpp>
#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

namespace healthtable {

using detail::Binding;
using detail::Cell;
using detail::View;

std::string_view override_name(Override o) noexcept {
  switch (o) {
  case Override::automatic: return "auto";
  case Override::forced_down: return "down";
  case Override::forced_up: return "up";
  }
  return "auto";
}

std::string_view class_name(FailureClass c) noexcept {
  switch (c) {
  case FailureClass::none: return "none";
  case FailureClass::timeout: return "timeout";
  case FailureClass::connect: return "connect";
  case FailureClass::server: return "server";
  case FailureClass::rate_limited: return "rate_limited";
  case FailureClass::auth: return "auth";
  case FailureClass::client: return "client";
  case FailureClass::other: return "other";
  }
  return "other";
}

std::string_view source_name(Source s) noexcept {
  switch (s) {
  case Source::probe: return "probe";
  case Source::report: return "report";
  case Source::admin: return "admin";
  case Source::peer: return "peer";
  }
  return "probe";
}

bool ProviderState::available(std::int64_t now_mono_ns) const noexcept {
  switch (override_mode) {
  case Override::forced_down:
    if (override_info.until_mono_ns == 0 || now_mono_ns < override_info.until_mono_ns) return false;
    break; // expired: the breaker decides
  case Override::forced_up: return true;
  case Override::automatic: break;
  }
  // The breaker's window or a retry hint: either way a deadline.
  return unhealthy_until_mono_ns == 0 || unhealthy_until_mono_ns <= now_mono_ns;
}

std::string_view Handle::name() const noexcept { return static_cast<const Cell*>(cell_)->name; }

// ---------------------------------------------------------------------------

Table::Impl::Impl(std::string seg, std::unique_ptr<detail::Home> h,
                  std::shared_ptr<detail::Mapping> m)
    : segment(std::move(seg)), home(std::move(h)), owner(home ? home->owner() : 0) {
  (void)detail::ramp_offset();    // drawn now (and again in each forked child), not on a read path
  (void)detail::mono_offset_ns(); // read the time namespace now, not on a read path
  views.emplace_back(std::move(m));
  current.store(&views.back(), std::memory_order_release);
}

const View& Table::Impl::adopt(std::shared_ptr<detail::Mapping> m) const {
  views.emplace_back(std::move(m));
  // release: pairs with the acquire in view(); the View is fully built
  current.store(&views.back(), std::memory_order_release);
  return views.back();
}

bool Table::Impl::reopen_locked() const {
  const View& v = view();
  if (!v.retired() || !home) return false;
  // A destroyed table's home went with it; a new one is trusted only if it
  // belongs to the owner we trusted before.
  if (home->gone()) home = detail::Home::open(segment, owner);
  const std::uint64_t instance = home->current();
  if (instance == 0 || instance == v.mapping->instance()) return false;
  adopt(detail::Mapping::open(segment, instance, false, home->owner()));
  return true;
}

Cell& Table::Impl::cell(std::string_view provider) const {
  validate_provider_name(provider);
  std::lock_guard lock(mu);
  if (auto it = by_name.find(std::string(provider)); it != by_name.end()) return *it->second;
  Cell& c = cells.emplace_back();
  c.name = std::string(provider);
  c.key = detail::NameKey(provider);
  c.owner = const_cast<Impl*>(this);
  c.up.store(detail::kNeverMatch, std::memory_order_relaxed);
  c.word.store(&view().header->registrations, std::memory_order_relaxed);
  rebind_locked(c);
  by_name.emplace(c.name, &c);
  return c;
}

void Table::Impl::rebind_locked(Cell& c) const {
  try {
    reopen_locked();
  } catch (const Error&) {
    // The table is gone for now: stay on the retired view, whose words say
    // "look again"; slow() retries the re-open at most every 250 ms.
  }
  const View& v = view();
  // acquire: pairs with the release increment in the writer; an index entry
  // published before it is visible to the lookup below.
  const std::uint64_t regs = v.header->registrations.load(std::memory_order_acquire);
  Binding& b = bindings.emplace_back();
  b.view = &v;
  b.registrations = regs;
  if (!v.retired())
    if (const auto found = v.lookup(c.key)) {
      b.head = &v.heads[found.slot];
      b.slot = found.slot;
      b.generation = found.generation;
    }
  // The order that keeps every mixture a reader can see harmless (see
  // table_impl.hpp).
  c.up.store(detail::kNeverMatch, std::memory_order_relaxed);
  c.binding.store(&b, std::memory_order_release);
  if (b.head) {
    // release: pairs with the acquire load of `word` in Table::is_healthy()
    c.word.store(&b.head->word, std::memory_order_release);
    c.up.store(up_word(b.generation), std::memory_order_release);
  } else {
    c.word.store(&v.header->registrations, std::memory_order_release);
  }
}

void Table::Impl::rebind(const Cell& c) const {
  std::lock_guard lock(mu);
  rebind_locked(const_cast<Cell&>(c));
}

std::int64_t Table::Impl::now_host_ns(std::int64_t now_mono_ns) const noexcept {
  return detail::to_host_mono(now_mono_ns < 0 ? detail::coarse_mono_ns() : now_mono_ns);
}

const View& Table::Impl::fresh_view() const {
  if (view().retired()) {
    std::lock_guard lock(mu);
    try {
      reopen_locked();
    } catch (const Error&) {
      // gone for now: the retired view answers
    }
  }
  return view();
}

namespace {
/// What a handle's provider answers, following the handle's binding and
/// rebinding it when stale: `available` for a provider the table does not
/// have (or when rebinding fails), else what `answer(word, binding)` says of
/// its word (nothing: the word is of another registration, rebind).
template <class R, class Answer>
R follow(const Table::Impl& impl, const Cell& c, R available, Answer&& answer) noexcept {
  try {
    for (int round = 0; round < 4; ++round) {
      const Binding* b = c.binding.load(std::memory_order_acquire);
      if (!b) return available;
      if (!b->head) {
        // Not registered when we last looked: healthy, unless a provider
        // registered since (the count moved) or the table was replaced.
        const std::uint64_t regs = b->view->header->registrations.load(std::memory_order_acquire);
        if (regs == b->registrations && !b->view->retired()) return available;
        if (regs == b->registrations) {
          // A retired table that nothing has replaced yet: look again now
          // and then, never on every read.
          const std::int64_t now = detail::coarse_mono_ns();
          if (now < impl.next_reopen_ns.load(std::memory_order_relaxed)) return available;
          impl.next_reopen_ns.store(now + 250'000'000, std::memory_order_relaxed);
          std::unique_lock lock(impl.mu, std::try_to_lock);
          if (!lock.owns_lock()) return available;
          impl.rebind_locked(const_cast<Cell&>(c));
          if (c.binding.load(std::memory_order_acquire)->view == b->view) return available;
          continue;
        }
        impl.rebind(c);
        continue;
      }
      // acquire: pairs with the release store in detail::publish_record()
      const std::uint64_t w = b->head->word.load(std::memory_order_acquire);
      if (const auto a = answer(w, *b)) return *a;
      impl.rebind(c);
    }
  } catch (...) {
    // Out of memory or a vanished table while rebinding: no reason to skip.
  }
  return available;
}
} // namespace

bool Table::Impl::slow(const Cell& c, std::int64_t now_mono_ns) const noexcept {
  return follow(*this, c, true, [&](std::uint64_t w, const Binding& b) {
    return detail::decide(w, b.generation, *b.head, now_host_ns(now_mono_ns),
                          detail::ramp_offset());
  });
}

std::int64_t Table::Impl::available_from(const Cell& c) const noexcept {
  return follow(*this, c, detail::kAvailableAlways, [&](std::uint64_t w, const Binding& b) {
    return detail::available_from(w, b.generation, *b.head, detail::ramp_offset());
  });
}

bool detail::is_healthy_slow(const HandleCell& hc, std::int64_t now_mono_ns) noexcept {
  const Cell& c = static_cast<const Cell&>(hc);
  return c.owner->slow(c, now_mono_ns);
}

void Table::Impl::state_of(const View& v, std::uint32_t slot, ProviderState& st) const {
  detail::RecordValue rec; // filled whole by read_record()
  if (!detail::read_record(v.bodies[slot], rec))
    throw Error(Errc::writer_busy, "record of provider '" + st.name + "' in table '" + segment +
                                       "' kept changing while being read; retry");
  detail::fill_state(rec, slot, v.heads[slot].ramp_ns.load(std::memory_order_relaxed), st);
}

void Table::Impl::state_of(const Cell& c, ProviderState& st) const {
  for (int round = 0; round < 4; ++round) {
    const Binding* b = c.binding.load(std::memory_order_acquire);
    const bool stale =
        b->view->retired() || (!b->head && b->view->header->registrations.load(
                                               std::memory_order_acquire) != b->registrations);
    if (stale) {
      rebind(c);
      continue;
    }
    st.name.assign(c.name);
    if (!b->head) {
      st = ProviderState{};
      st.name = c.name;
      return;
    }
    state_of(*b->view, b->slot, st);
    // The record names its registration: one of another provider (a reused
    // slot) is never returned as ours.
    if (st.generation == b->generation && b->view->holds(b->slot, b->generation, c.key)) return;
    rebind(c);
  }
  st = ProviderState{};
  st.name = c.name;
}

// ---------------------------------------------------------------------------

Table::Table(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Table::Table(Table&&) noexcept = default;
Table& Table::operator=(Table&&) noexcept = default;
Table::~Table() = default;

Table Table::open(std::string_view segment, const OpenOptions& options) {
  validate_segment_name(segment);
  std::optional<uid_t> expected;
  if (options.owner) expected = *options.owner;
  auto home = detail::Home::open(segment, expected);
  const std::uint64_t instance = home->current();
  if (instance == 0)
    throw Error(Errc::no_such_segment,
                "no health table '" + std::string(segment) + "' (" + home->dir() +
                    " holds none: it was destroyed, or its creator died); create it with "
                    "'healthctl create " +
                    std::string(segment) + "'");
  auto m = detail::Mapping::open(segment, instance, false, home->owner());
  return Table(std::make_unique<Impl>(std::string(segment), std::move(home), std::move(m)));
}

Handle Table::handle(std::string_view provider) const { return Handle(&impl_->cell(provider)); }

std::optional<Handle> Table::find(std::string_view provider) const {
  if (provider.empty() || provider.size() > kProviderNameMax) return std::nullopt;
  if (!impl_->fresh_view().lookup(detail::NameKey(provider))) return std::nullopt;
  return handle(provider);
}

namespace {
/// What a provider answers by name, in the index of the current view:
/// `available` for an unknown or available provider, else what
/// `answer(word, generation, head)` says of its word; `via_cell(cell)` for
/// a retired view (the handle's path follows the table's replacement).
template <class R, class Answer, class ViaCell>
R resolve_name(const Table::Impl& impl, std::string_view provider, R available, Answer&& answer,
               ViaCell&& via_cell) noexcept {
  if (provider.empty() || provider.size() > kProviderNameMax) return available;
  const detail::NameKey key(provider);
  const View& v = impl.view();
  if (v.retired()) [[unlikely]] {
    try {
      return via_cell(impl.cell(provider));
    } catch (...) {
      return available;
    }
  }
  for (int round = 0; round < 2; ++round) {
    const auto found = v.lookup(key);
    if (!found) return available;
    const SlotHead& h = v.heads[found.slot];
    const std::uint64_t w = h.word.load(std::memory_order_acquire);
    if (w == up_word(found.generation)) [[likely]]
      return available;
    if (const auto a = answer(w, found.generation, h)) return *a;
    // Forgotten or reused between the lookup and the load: look once more.
  }
  return available;
}

bool by_name(const Table::Impl& impl, std::string_view provider,
             std::int64_t now_mono_ns) noexcept {
  return resolve_name(
      impl, provider, true,
      [&](std::uint64_t w, std::uint32_t gen, const SlotHead& h) {
        return detail::decide(w, gen, h, impl.now_host_ns(now_mono_ns), detail::ramp_offset());
      },
      [&](const Cell& c) { return impl.slow(c, now_mono_ns); });
}
} // namespace

std::int64_t Table::Impl::available_from(std::string_view provider) const noexcept {
  return resolve_name(
      *this, provider, detail::kAvailableAlways,
      [&](std::uint64_t w, std::uint32_t gen, const SlotHead& h) {
        return detail::available_from(w, gen, h, detail::ramp_offset());
      },
      [&](const Cell& c) { return available_from(c); });
}

bool Table::is_healthy(std::string_view provider) const noexcept {
  return by_name(*impl_, provider, -1);
}

bool Table::is_healthy(std::string_view provider, std::int64_t now_mono_ns) const noexcept {
  return by_name(*impl_, provider, now_mono_ns < 0 ? 0 : now_mono_ns);
}

std::optional<ProviderState> Table::get_state(std::string_view provider) const {
  if (provider.empty() || provider.size() > kProviderNameMax) return std::nullopt;
  const detail::NameKey key(provider);
  for (int round = 0; round < 4; ++round) {
    const View& v = impl_->fresh_view();
    const auto found = v.lookup(key);
    if (!found) return std::nullopt;
    ProviderState st;
    st.name = std::string(provider);
    impl_->state_of(v, found.slot, st);
    if (st.generation == found.generation) return st;
  }
  return std::nullopt;
}

ProviderState Table::get_state(Handle h) const {
  ProviderState st;
  get_state(h, st);
  return st;
}

void Table::get_state(Handle h, ProviderState& out) const {
  const Cell& c = *static_cast<const Cell*>(h.cell_);
  if (c.owner != impl_.get())
    throw Error(Errc::invalid_argument, "handle of provider '" + c.name +
                                            "' belongs to another Table than '" + impl_->segment +
                                            "'");
  impl_->state_of(c, out);
}

std::vector<ProviderState> Table::snapshot(std::span<const std::string> expected) const {
  const View& v = impl_->fresh_view();
  std::vector<ProviderState> out;
  const std::uint32_t n = v.used();
  out.reserve(n + expected.size());
  std::unordered_set<std::string> seen;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto id = v.identity(i);
    if (!id) continue;
    ProviderState st;
    st.name = id->name;
    impl_->state_of(v, i, st);
    if (st.generation != id->generation) continue; // rewritten while we read
    seen.insert(st.name);
    out.push_back(std::move(st));
  }
  for (const auto& name : expected) {
    if (!seen.insert(name).second) continue; // never overwrite a real state
    ProviderState placeholder;
    placeholder.name = name;
    out.push_back(std::move(placeholder));
  }
  return out;
}

std::string_view event_name(EventKind k) noexcept {
  switch (k) {
  case EventKind::none: return "none";
  case EventKind::tripped: return "tripped";
  case EventKind::rearmed: return "rearmed";
  case EventKind::recovered: return "recovered";
  case EventKind::cooldown: return "cooldown";
  case EventKind::override: return "override";
  case EventKind::registered: return "registered";
  case EventKind::forgotten: return "forgotten";
  case EventKind::reset: return "reset";
  case EventKind::grown: return "grown";
  case EventKind::retired: return "retired";
  }
  return "none";
}

EventBatch Table::events(std::uint64_t from, std::size_t max) const {
  const View& v = impl_->fresh_view();
  const std::uint64_t cap = v.header->events_capacity;
  // acquire: pairs with the release store of events_head in the writer
  const std::uint64_t head = v.header->events_head.load(std::memory_order_acquire);
  EventBatch b;
  std::uint64_t n = from;
  if (head > cap && n < head - cap) {
    b.missed = head - cap - n;
    n = head - cap;
  }
  for (; n < head && b.events.size() < max; ++n) {
    if (auto e = detail::read_event(v, n))
      b.events.push_back(std::move(*e));
    else
      ++b.missed; // overwritten while we read it
  }
  b.next = n;
  return b;
}

TableInfo Table::info() const {
  const View& v = impl_->fresh_view();
  const Header& h = *v.header;
  constexpr auto o = std::memory_order_relaxed;
  TableInfo i;
  i.segment = impl_->segment;
  i.home = home_dir(impl_->segment);
  i.object = v.mapping->path();
  i.layout_version = h.layout_version;
  i.format = h.format;
  i.instance = h.instance;
  i.capacity = h.capacity;
  i.used = std::min(h.live.load(o), h.capacity);
  i.events_capacity = h.events_capacity;
  i.total_size = h.total_size;
  i.failure_threshold = static_cast<std::uint32_t>(h.policy[policy_word::kThresholds].load(o));
  i.backoff_ns = static_cast<std::int64_t>(h.policy[policy_word::kBackoff].load(o));
  i.generation = h.generation.load(o);
  i.created_unix_ns = h.created_unix_ns;
  i.writer_pid = h.writer_pid.load(o);
  i.writer_start_unix_ns = h.writer_start_unix_ns.load(o);
  const std::int64_t beat = h.heartbeat_mono_ns.load(o);
  i.heartbeat_mono_ns = beat == 0 ? 0 : detail::to_local_mono(beat);
  i.heartbeat_unix_ns = h.heartbeat_unix_ns.load(o);
  i.heartbeat_interval_ns = h.heartbeat_interval_ns.load(o);
  i.updates = h.updates.load(o);
  i.reports_dropped = h.reports_dropped.load(o);
  i.reports_refused = h.reports_refused.load(o);
  i.events = h.events_head.load(std::memory_order_acquire);
  const auto st = h.state.load(std::memory_order_acquire);
  i.state = st <= 2 ? static_cast<SegmentState>(st) : SegmentState::live;
  i.owner_uid = static_cast<std::uint32_t>(v.mapping->owner());
  i.mode = v.mapping->mode();
  return i;
}

WriterStatus Table::writer_status() const {
  if (!impl_->home) return WriterStatus::attached; // the writer's own view
  return impl_->home->writer_attached() ? WriterStatus::attached : WriterStatus::none;
}

bool Table::replaced() const {
  const View& v = impl_->view();
  if (v.retired() || !v.mapping->linked()) return true;
  if (!impl_->home) return false;
  try {
    return impl_->home->gone() || impl_->home->current() != v.mapping->instance();
  } catch (const Error&) {
    return true;
  }
}

bool Table::refresh() const {
  std::lock_guard lock(impl_->mu);
  return impl_->reopen_locked();
}

const std::string& Table::segment() const noexcept { return impl_->segment; }

} // namespace healthtable
