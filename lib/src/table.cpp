#include "record.hpp"
#include "segment.hpp"

#include <healthtable/error.hpp>
#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

namespace healthtable {

namespace detail {

void RecordValue::set_reason(std::string_view r) noexcept {
  const std::size_t n = std::min(r.size(), kReasonMax);
  std::memset(reason, 0, sizeof reason);
  std::memcpy(reason, r.data(), n);
  status = (status & ~status::kReasonLenMask) | (std::uint64_t{n} << status::kReasonLenShift) |
           status::kHasError;
}

void RecordValue::clear_reason() noexcept {
  std::memset(reason, 0, sizeof reason);
  status &= ~(status::kReasonLenMask | status::kHasError);
}

std::string RecordValue::reason_text() const {
  return std::string(reinterpret_cast<const char*>(reason), reason_len());
}

} // namespace detail

std::string_view override_name(Override o) noexcept {
  switch (o) {
  case Override::automatic: return "auto";
  case Override::forced_down: return "down";
  case Override::forced_up: return "up";
  }
  return "auto";
}

bool ProviderState::available(std::int64_t now_mono_ns) const noexcept {
  switch (override_mode) {
  case Override::forced_down: return false;
  case Override::forced_up: return true;
  case Override::automatic: break;
  }
  return healthy || unhealthy_until_mono_ns <= now_mono_ns;
}

Table::Impl::Impl(std::shared_ptr<detail::Mapping> m) : mapping(std::move(m)) {
  header = &mapping->header();
  slots = mapping->slots();
  index = mapping->index();
  capacity = header->capacity;
  index_mask = header->index_size - 1;
}

std::uint32_t Table::Impl::used() const noexcept {
  // acquire: pairs with the release store in Writer::add(); the slots below
  // it are fully written.
  return std::min(header->used.load(std::memory_order_acquire), capacity);
}

std::int64_t Table::Impl::lookup(std::string_view provider) const noexcept {
  if (provider.empty() || provider.size() > kProviderNameMax) return -1;
  const std::uint64_t h = name_hash(provider.data(), provider.size());
  for (std::uint32_t i = 0; i <= index_mask; ++i) {
    // acquire: pairs with the release store in Writer::add(); the slot's
    // name is written before its index entry.
    const std::uint32_t e = index[(h + i) & index_mask].load(std::memory_order_acquire);
    if (e == 0) return -1;
    if (e > capacity) continue; // corrupt entry: never follow it out of bounds
    const Slot& s = slots[e - 1];
    if (s.name_hash == h && s.name_len == provider.size() &&
        std::memcmp(s.name, provider.data(), provider.size()) == 0)
      return e - 1;
  }
  return -1;
}

namespace {
/// `n`, with what the compiler knows about its range forgotten. Copying a
/// string whose length is known to be small (<= 63, <= 120) makes GCC inline
/// the copy as `rep movs`, whose start-up cost was a third of get_state()'s
/// own time; an opaque length gets glibc's memcpy, a few cycles.
inline std::size_t opaque(std::size_t n) noexcept {
#if defined(__GNUC__)
  asm("" : "+r"(n));
#endif
  return n;
}
} // namespace

void Table::Impl::state_of(std::uint32_t slot, ProviderState& st) const {
  const Slot& s = slots[slot];
  st.name.assign(s.name, opaque(std::min<std::size_t>(s.name_len, kProviderNameMax)));
  st.registered = true;
  detail::RecordValue v; // filled whole by read_record()
  if (!detail::read_record(s, v))
    throw Error(Errc::writer_busy, "record of provider '" + st.name + "' in segment '" +
                                       mapping->segment() +
                                       "' kept changing while being read; retry");
  st.healthy = v.healthy();
  st.consecutive_failures = v.consecutive_failures();
  st.last_check_unix_ns = v.last_check_unix_ns;
  if (v.has_error()) {
    // assign() into the existing string keeps its capacity
    if (!st.last_error) st.last_error.emplace();
    st.last_error->assign(reinterpret_cast<const char*>(v.reason), opaque(v.reason_len()));
  } else {
    st.last_error.reset();
  }
  st.unhealthy_until_unix_ns = v.unhealthy_until_unix_ns;
  st.unhealthy_until_mono_ns = v.unhealthy_until_mono_ns;
  st.override_mode = v.override_mode();
  st.transitions = v.transitions;
  st.successes = v.successes;
  st.failures = v.failures;
}

Table::Table(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Table::Table(Table&&) noexcept = default;
Table& Table::operator=(Table&&) noexcept = default;
Table::~Table() = default;

Table Table::open(std::string_view segment, const OpenOptions& options) {
  std::shared_ptr<detail::Mapping> m = detail::Mapping::open(segment, /*writable=*/false);
  if (options.require_owner && m->owner() != *options.require_owner)
    throw Error(Errc::permission_denied,
                "segment '" + std::string(segment) + "' is owned by uid " +
                    std::to_string(m->owner()) + ", expected uid " +
                    std::to_string(*options.require_owner) +
                    "; someone else created it: remove it and restart the prober");
  return Table(std::make_unique<Impl>(std::move(m)));
}

std::optional<Handle> Table::find(std::string_view provider) const noexcept {
  const std::int64_t i = impl_->lookup(provider);
  if (i < 0) return std::nullopt;
  return Handle(&impl_->slots[i], static_cast<std::uint32_t>(i));
}

bool Table::is_healthy(std::string_view provider) const noexcept {
  const auto h = find(provider);
  return !h || is_healthy(*h);
}

bool Table::is_healthy(std::string_view provider, std::int64_t now_mono_ns) const noexcept {
  const auto h = find(provider);
  return !h || is_healthy(*h, now_mono_ns);
}

std::optional<ProviderState> Table::get_state(std::string_view provider) const {
  const std::int64_t i = impl_->lookup(provider);
  if (i < 0) return std::nullopt;
  return impl_->state_of(static_cast<std::uint32_t>(i));
}

ProviderState Table::get_state(Handle h) const { return impl_->state_of(h.slot()); }

void Table::get_state(Handle h, ProviderState& out) const { impl_->state_of(h.slot(), out); }

std::vector<ProviderState> Table::snapshot(std::span<const std::string> expected) const {
  std::vector<ProviderState> out;
  const std::uint32_t n = impl_->used();
  out.reserve(n + expected.size());
  std::unordered_set<std::string> seen;
  for (std::uint32_t i = 0; i < n; ++i) {
    out.push_back(impl_->state_of(i));
    seen.insert(out.back().name);
  }
  for (const auto& name : expected) {
    if (!seen.insert(name).second) continue; // never overwrite a real state
    ProviderState placeholder;
    placeholder.name = name;
    out.push_back(std::move(placeholder));
  }
  return out;
}

TableInfo Table::info() const {
  const Header& h = *impl_->header;
  constexpr auto o = std::memory_order_relaxed;
  TableInfo i;
  i.segment = impl_->mapping->segment();
  i.layout_version = h.layout_version;
  i.format = h.format;
  i.capacity = h.capacity;
  i.used = impl_->used();
  i.slot_size = h.slot_size;
  i.total_size = h.total_size;
  i.failure_threshold = h.failure_threshold.load(o);
  i.backoff_ns = h.backoff_ns.load(o);
  i.generation = h.generation.load(o);
  i.created_unix_ns = h.created_unix_ns;
  i.writer_pid = h.writer_pid.load(o);
  i.writer_start_unix_ns = h.writer_start_unix_ns.load(o);
  i.heartbeat_mono_ns = h.heartbeat_mono_ns.load(o);
  i.heartbeat_unix_ns = h.heartbeat_unix_ns.load(o);
  i.heartbeat_interval_ns = h.heartbeat_interval_ns.load(o);
  i.updates = h.updates.load(o);
  const auto st = h.state.load(std::memory_order_acquire);
  i.state = st <= 2 ? static_cast<SegmentState>(st) : SegmentState::live;
  i.owner_uid = static_cast<std::uint32_t>(impl_->mapping->owner());
  i.mode = impl_->mapping->mode();
  return i;
}

WriterStatus Table::writer_status() const {
  return detail::writer_lock_held(impl_->mapping->fd()) ? WriterStatus::attached
                                                        : WriterStatus::none;
}

bool Table::replaced() const {
  // acquire: pairs with the release store of `retired` in Writer::destroy()
  if (impl_->header->state.load(std::memory_order_acquire) ==
      static_cast<std::uint32_t>(SegmentState::retired))
    return true;
  struct stat mine {};
  if (::fstat(impl_->mapping->fd(), &mine) == 0 && mine.st_nlink == 0) return true;
  struct stat now {};
  if (::stat(detail::shm_path(impl_->mapping->segment()).c_str(), &now) != 0)
    return errno == ENOENT;
  return now.st_dev != impl_->mapping->dev() || now.st_ino != impl_->mapping->ino();
}

const std::string& Table::segment() const noexcept { return impl_->mapping->segment(); }

} // namespace healthtable
