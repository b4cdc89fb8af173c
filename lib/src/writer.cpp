#include "record.hpp"
#include "segment.hpp"

#include <healthtable/error.hpp>
#include <healthtable/names.hpp>
#include <healthtable/writer.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace healthtable {

using detail::RecordValue;

struct Writer::Impl {
  std::shared_ptr<detail::Mapping> mapping;
  Header* header = nullptr;
  Slot* slots = nullptr;
  std::atomic<std::uint32_t>* index = nullptr;
  std::uint32_t capacity = 0;
  std::uint32_t index_mask = 0;
  int lock_fd = -1;    // its own open file description, holding the OFD lock
  bool forked = false; // set in a fork child: the lock stayed with the parent
  std::uint32_t repaired = 0;
  Table::Impl* view; // owned by `reader`: one lookup serves both sides
  Table reader;      // a read-only view of our own mapping

  Impl(std::shared_ptr<detail::Mapping> m, int fd);
  ~Impl();

  void check_owner() const;
  Slot& slot(std::uint32_t i) const noexcept { return slots[i]; }
  std::int64_t lookup(std::string_view provider) const noexcept;
  void index_insert(std::uint32_t slot) noexcept;
  std::uint32_t add(std::string_view provider);
  RecordValue current(std::uint32_t i) const noexcept;
  void publish(std::uint32_t i, const RecordValue& v) noexcept;
  void repair();
  void attach();
};

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
void atfork_child();

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

std::uint64_t random_generation() {
  std::uint64_t g = 0;
  if (::getrandom(&g, sizeof g, 0) != sizeof g)
    g = static_cast<std::uint64_t>(Instant::now().unix_ns) ^ static_cast<std::uint64_t>(::getpid());
  return g & 0x0000'FFFF'FFFF'FFFFULL; // room to count resets without wrapping
}

std::string q(std::string_view s) { return "'" + std::string(s) + "'"; }

std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

} // namespace

Writer::Impl::Impl(std::shared_ptr<detail::Mapping> m, int fd)
    : mapping(m), header(&m->header()), slots(m->slots()), index(m->index()),
      capacity(m->header().capacity), index_mask(m->header().index_size - 1), lock_fd(fd),
      view(new Table::Impl(m)), reader(std::unique_ptr<Table::Impl>(view)) {}

Writer::Impl::~Impl() {
  // A clean exit withdraws the heartbeat promise: no writer is not a stale one.
  if (!forked) header->heartbeat_interval_ns.store(0, std::memory_order_relaxed);
  if (lock_fd >= 0) ::close(lock_fd); // drops the OFD lock
}

namespace {
void atfork_child() {
  for (Writer::Impl* impl : registry()) {
    if (impl->lock_fd >= 0) ::close(impl->lock_fd);
    impl->lock_fd = -1;
    impl->forked = true;
  }
  // The child is single-threaded: a fresh mutex is safe.
  new (&g_registry_mutex) std::mutex();
}
} // namespace

void Writer::Impl::check_owner() const {
  if (forked)
    throw Error(Errc::writer_busy, "this process is a fork of the writer of " +
                                       q(mapping->segment()) +
                                       "; the writer lock stayed with the parent");
}

std::int64_t Writer::Impl::lookup(std::string_view provider) const noexcept {
  return view->lookup(provider);
}

void Writer::Impl::index_insert(std::uint32_t slot) noexcept {
  std::uint64_t h = slots[slot].name_hash;
  for (std::uint32_t i = 0; i <= index_mask; ++i, ++h) {
    auto& e = index[h & index_mask];
    if (e.load(std::memory_order_relaxed) == 0) {
      // release: pairs with the acquire in Table::Impl::lookup(); the slot's
      // name was written before.
      e.store(slot + 1, std::memory_order_release);
      return;
    }
  }
}

std::uint32_t Writer::Impl::add(std::string_view provider) {
  validate_provider_name(provider);
  if (const auto i = lookup(provider); i >= 0) return static_cast<std::uint32_t>(i);
  const std::uint32_t n = header->used.load(std::memory_order_relaxed);
  if (n >= capacity) {
    const std::string size = std::to_string(capacity) + (capacity == 1 ? " slot" : " slots");
    const std::string advice =
        capacity >= kMaxCapacity
            ? "; that is the maximum: split providers across tables"
            : "; recreate it larger ('healthctl create " + mapping->segment() + " --slots " +
                  std::to_string(
                      std::min<std::uint64_t>(std::uint64_t{capacity} * 2, kMaxCapacity)) +
                  " --force'; the prober refills the states on its next tick)";
    throw Error(Errc::table_full, "table " + q(mapping->segment()) + " is full (" + size +
                                      ") and cannot register " + q(provider) + advice);
  }
  // Fill the slot while no reader can reach it ...
  Slot& s = slots[n];
  s.name_hash = name_hash(provider.data(), provider.size());
  s.name_len = static_cast<std::uint32_t>(provider.size());
  std::memset(s.name, 0, sizeof s.name);
  std::memcpy(s.name, provider.data(), provider.size());
  s.seq.store(0, std::memory_order_relaxed);
  RecordValue zero{};
  zero.set_healthy(true);
  detail::store_record(s.copy[0], zero);
  detail::store_record(s.copy[1], zero);
  s.down_until.store(kUpWord, std::memory_order_relaxed);
  // ... then publish it: first in `used` (snapshots), then in the index
  // (lookups). A writer that dies between the two leaves a slot that repair()
  // puts into the index; one that dies before leaves nothing visible.
  // release: pairs with the acquire in Table::Impl::used()
  header->used.store(n + 1, std::memory_order_release);
  index_insert(n);
  return n;
}

RecordValue Writer::Impl::current(std::uint32_t i) const noexcept {
  // Only we write, and every update ends with both copies equal and seq
  // even, so copy[0] is the record (repair() establishes this at attach).
  RecordValue v;
  detail::load_record(slots[i].copy[0], v);
  return v;
}

void Writer::Impl::publish(std::uint32_t i, const RecordValue& v) noexcept {
  detail::publish_record(slots[i], v); // record.hpp; traced in test_latch.cpp
  header->updates.store(header->updates.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
}

void Writer::Impl::repair() {
  const std::uint32_t n = std::min(header->used.load(std::memory_order_relaxed), capacity);
  for (std::uint32_t i = 0; i < n; ++i) {
    Slot& s = slots[i];
    bool fixed = false;
    // A slot published in `used` but missing from the index (writer died
    // between the two stores in add()).
    if (lookup(std::string_view(s.name, std::min<std::size_t>(s.name_len, kProviderNameMax))) !=
        static_cast<std::int64_t>(i)) {
      index_insert(i);
      fixed = true;
    }
    // Finish or roll back a write the dead writer left half done, keeping
    // the record readers are reading now (record.hpp, traced store by store
    // in tests/reliability/test_latch.cpp).
    if (detail::repair_record(s)) fixed = true;
    if (fixed) ++repaired;
  }
}

void Writer::Impl::attach() {
  const Instant now = Instant::now();
  constexpr auto o = std::memory_order_relaxed;
  header->writer_pid.store(::getpid(), o);
  header->writer_start_unix_ns.store(now.unix_ns, o);
  header->heartbeat_unix_ns.store(now.unix_ns, o);
  header->heartbeat_mono_ns.store(now.mono_ns, std::memory_order_release);
  register_impl(this);
}

// ---------------------------------------------------------------------------

std::string_view transition_name(Transition t) noexcept {
  switch (t) {
  case Transition::none: return "none";
  case Transition::tripped: return "tripped";
  case Transition::rearmed: return "rearmed";
  case Transition::recovered: return "recovered";
  }
  return "none";
}

void validate_policy(const Policy& p) {
  if (p.failure_threshold < 1)
    throw Error(Errc::invalid_argument,
                "failure_threshold must be at least 1, got " + std::to_string(p.failure_threshold));
  if (p.backoff.count() < 0)
    throw Error(Errc::invalid_argument,
                "backoff must not be negative, got " + format_duration(p.backoff));
  if (p.backoff > kMaxBackoff)
    throw Error(Errc::invalid_argument,
                "backoff must be at most " + format_duration(kMaxBackoff) + ", got " +
                    format_duration(p.backoff) +
                    "; to keep a provider down indefinitely use an override ('healthctl set ... "
                    "down')");
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

[[noreturn]] void throw_busy(const detail::Mapping& m) {
  const auto pid = m.header().magic.load(std::memory_order_acquire) == kMagic
                       ? m.header().writer_pid.load(std::memory_order_relaxed)
                       : 0;
  throw Error(Errc::writer_busy,
              "segment " + q(m.segment()) + " already has a writer" +
                  (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
                  "; only one process may write a table: stop it first");
}

int lock_or_throw(const detail::Mapping& m) {
  const int fd = detail::open_lock_fd(m);
  try {
    if (!detail::try_writer_lock(fd)) throw_busy(m);
  } catch (...) {
    ::close(fd);
    throw;
  }
  return fd;
}

/// Opens whatever is at `segment` just far enough to lock it and, if it is a
/// health table of ours, mark it retired. Returns false if there is nothing.
bool retire_existing(std::string_view segment) {
  const std::string name = detail::shm_name(segment);
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
  if (fd < 0) {
    if (errno == ENOENT) return false;
    detail::throw_errno(errno, "cannot open", segment);
  }
  struct FdGuard {
    int fd;
    ~FdGuard() { ::close(fd); }
  } guard{fd};
  if (!detail::try_writer_lock(fd)) {
    // Name the holder when the image lets us.
    try {
      auto m = detail::Mapping::open(segment, false);
      throw_busy(*m);
    } catch (const Error& e) {
      if (e.code() == Errc::writer_busy) throw;
    }
    throw Error(Errc::writer_busy, "segment " + q(segment) +
                                       " has a live writer; stop it before replacing the segment");
  }
  // Map the old object while it still has its name, unlink it, and only
  // then mark it retired: a process killed in between must never leave a
  // *live* table marked retired (readers would re-open it forever).
  std::unique_ptr<detail::Mapping> old;
  try {
    old = detail::Mapping::open(segment, true);
  } catch (const Error&) {
    // Not a valid table: nobody can be reading it as one.
  }
  detail::unlink_segment(segment);
  if (old)
    // release: pairs with the acquire in Table::replaced()
    old->header().state.store(static_cast<std::uint32_t>(SegmentState::retired),
                              std::memory_order_release);
  return true;
}

} // namespace

Writer Writer::create(std::string_view segment, const CreateOptions& options) {
  validate_segment_name(segment);
  validate_policy(options.policy);
  if (options.capacity < 1 || options.capacity > kMaxCapacity)
    throw Error(Errc::invalid_argument, "slots must be between 1 and " +
                                            std::to_string(kMaxCapacity) + ", got " +
                                            std::to_string(options.capacity));
  if (options.mode > 0777)
    throw Error(Errc::invalid_argument,
                "mode must be an octal permission like 0644, got " + std::to_string(options.mode));
  if (options.replace) retire_existing(segment);

  const std::uint32_t cap = options.capacity;
  std::shared_ptr<detail::Mapping> m =
      detail::Mapping::create(segment, total_size_for(cap), options.mode);
  int fd = -1;
  try {
    fd = lock_or_throw(*m);
  } catch (...) {
    detail::unlink_segment(segment);
    throw;
  }
  // The object is zero-filled; write everything but the magic ...
  Header& h = m->header();
  h.format = kFormat;
  h.layout_version = kLayoutVersion;
  h.header_size = sizeof(Header);
  h.slot_size = sizeof(Slot);
  h.capacity = cap;
  h.index_size = index_size_for(cap);
  h.total_size = total_size_for(cap);
  h.slots_offset = slots_offset_for(cap);
  h.index_offset = sizeof(Header);
  const Instant now = Instant::now();
  h.created_unix_ns = now.unix_ns;
  h.failure_threshold.store(options.policy.failure_threshold, std::memory_order_relaxed);
  h.backoff_ns.store(options.policy.backoff.count(), std::memory_order_relaxed);
  h.generation.store(random_generation(), std::memory_order_relaxed);
  h.used.store(0, std::memory_order_relaxed);
  h.state.store(static_cast<std::uint32_t>(SegmentState::live), std::memory_order_relaxed);
  // ... then publish. release: pairs with the acquire in validate_image();
  // a reader that sees the magic sees every field above.
  h.magic.store(kMagic, std::memory_order_release);

  auto impl = std::make_unique<Impl>(std::move(m), fd);
  impl->attach();
  return Writer(std::move(impl));
}

Writer Writer::open(std::string_view segment) {
  std::shared_ptr<detail::Mapping> m = detail::Mapping::open(segment, /*writable=*/true);
  if (m->owner() != ::geteuid())
    throw Error(Errc::permission_denied, "segment " + q(segment) + " is owned by uid " +
                                             std::to_string(m->owner()) + ", not by us (uid " +
                                             std::to_string(::geteuid()) +
                                             "); refusing to write a table another user controls");
  const int fd = lock_or_throw(*m);
  // We reached this object by its name, so it is the live table. A retired
  // mark on it can only be left by an older build that marked before it
  // unlinked, or by a stray write: clear it, or readers re-open forever.
  auto& state = m->header().state;
  if (state.load(std::memory_order_relaxed) != static_cast<std::uint32_t>(SegmentState::live))
    state.store(static_cast<std::uint32_t>(SegmentState::live), std::memory_order_release);
  auto impl = std::make_unique<Impl>(std::move(m), fd);
  impl->repair();
  impl->attach();
  return Writer(std::move(impl));
}

void Writer::destroy(std::string_view segment) {
  validate_segment_name(segment);
  if (!retire_existing(segment)) detail::throw_errno(ENOENT, "cannot remove", segment);
}

Handle Writer::add(std::string_view provider) {
  impl_->check_owner();
  const std::uint32_t i = impl_->add(provider);
  return Handle(&impl_->slots[i], i);
}

Transition Writer::mark_healthy(std::string_view provider, Instant now) {
  impl_->check_owner();
  const std::uint32_t i = impl_->add(provider);
  RecordValue v = impl_->current(i);
  const bool was_healthy = v.healthy();
  v.set_healthy(true);
  v.set_failures(0);
  v.clear_reason();
  v.unhealthy_until_unix_ns = 0;
  v.unhealthy_until_mono_ns = 0;
  v.last_check_unix_ns = now.unix_ns;
  ++v.successes;
  if (!was_healthy) ++v.transitions;
  impl_->publish(i, v);
  return was_healthy ? Transition::none : Transition::recovered;
}

Transition Writer::mark_unhealthy(std::string_view provider, std::string_view reason, Instant now) {
  impl_->check_owner();
  const std::uint32_t i = impl_->add(provider);
  const Policy p = policy();
  RecordValue v = impl_->current(i);
  const std::uint32_t failures = v.consecutive_failures();
  v.set_failures(failures == UINT32_MAX ? failures : failures + 1);
  v.last_check_unix_ns = now.unix_ns;
  v.set_reason(sanitize_reason(reason, kReasonMax));
  ++v.failures;
  Transition t = Transition::none;
  if (v.healthy()) {
    if (v.consecutive_failures() >= p.failure_threshold) {
      v.set_healthy(false);
      ++v.transitions;
      t = Transition::tripped;
    }
  } else {
    t = Transition::rearmed; // inside the window or half-open: re-arm from now
  }
  if (t != Transition::none) {
    // policy() caps the backoff at kMaxBackoff, and times are far from the
    // int64 limits, but a caller's `now` is arbitrary: saturate, never wrap.
    v.unhealthy_until_mono_ns = saturating_add(now.mono_ns, p.backoff.count());
    v.unhealthy_until_unix_ns = saturating_add(now.unix_ns, p.backoff.count());
  }
  impl_->publish(i, v);
  return t;
}

void Writer::set_override(std::string_view provider, Override mode) {
  impl_->check_owner();
  const std::uint32_t i = impl_->add(provider);
  RecordValue v = impl_->current(i);
  v.set_override(mode);
  impl_->publish(i, v);
}

namespace {
RecordValue zero_state() {
  RecordValue v{};
  v.set_healthy(true);
  return v;
}
} // namespace

void Writer::reset() {
  impl_->check_owner();
  const std::uint32_t n =
      std::min(impl_->header->used.load(std::memory_order_relaxed), impl_->capacity);
  for (std::uint32_t i = 0; i < n; ++i)
    impl_->publish(i, zero_state());
  impl_->header->generation.fetch_add(1, std::memory_order_release);
}

void Writer::reset(std::string_view provider) {
  impl_->check_owner();
  validate_provider_name(provider);
  const std::int64_t i = impl_->lookup(provider);
  if (i < 0)
    throw Error(Errc::unknown_provider, "provider " + q(provider) + " is not in table " +
                                            q(impl_->mapping->segment()) + "; 'healthctl dump " +
                                            impl_->mapping->segment() +
                                            "' lists the providers it has");
  impl_->publish(static_cast<std::uint32_t>(i), zero_state());
}

void Writer::set_policy(const Policy& policy) {
  impl_->check_owner();
  validate_policy(policy);
  impl_->header->failure_threshold.store(policy.failure_threshold, std::memory_order_relaxed);
  impl_->header->backoff_ns.store(policy.backoff.count(), std::memory_order_relaxed);
}

Policy Writer::policy() const noexcept {
  Policy p;
  p.failure_threshold = impl_->header->failure_threshold.load(std::memory_order_relaxed);
  p.backoff = std::chrono::nanoseconds(impl_->header->backoff_ns.load(std::memory_order_relaxed));
  if (p.failure_threshold < 1)
    p.failure_threshold = 1; // a corrupted header cannot disable tripping
  if (p.backoff.count() < 0) p.backoff = std::chrono::nanoseconds(0);
  if (p.backoff > kMaxBackoff) p.backoff = kMaxBackoff; // a corrupted header cannot overflow
  return p;
}

void Writer::heartbeat(Instant now) {
  impl_->check_owner();
  impl_->header->heartbeat_unix_ns.store(now.unix_ns, std::memory_order_relaxed);
  impl_->header->heartbeat_mono_ns.store(now.mono_ns, std::memory_order_release);
}

void Writer::set_heartbeat_interval(std::chrono::nanoseconds interval) {
  impl_->check_owner();
  impl_->header->heartbeat_interval_ns.store(std::max<std::int64_t>(interval.count(), 0),
                                             std::memory_order_relaxed);
}

const Table& Writer::table() const noexcept { return impl_->reader; }

std::uint32_t Writer::repaired() const noexcept { return impl_->repaired; }

} // namespace healthtable
