#include "common.hpp"

#include <healthtable/home.hpp>

#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/interprocess_sharable_mutex.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace htbench {

namespace ht = healthtable;

std::string segment_name(std::string_view tag) {
  return "htbench-" + std::to_string(::getpid()) + "-" + std::string(tag);
}

std::string provider_name(std::size_t i, std::size_t len, bool registered) {
  // A realistic prefix (model-router style), cut or padded to the length,
  // then a 6-character tag that makes the name unique.
  static constexpr std::string_view kPrefix =
      "openrouter/anthropic/claude-sonnet-eu-west-1.gateway.internal/";
  char tag[16];
  std::snprintf(tag, sizeof tag, "%c%05zu", registered ? 'p' : 'x', i % 100000);
  const std::size_t tag_len = std::strlen(tag);
  if (len < tag_len + 2 || len > ht::kProviderNameMax)
    throw std::invalid_argument("provider name length out of range");
  std::string name(kPrefix.substr(0, std::min(kPrefix.size(), len - tag_len)));
  while (name.size() < len - tag_len)
    name += 'q';
  name += tag;
  return name;
}

BenchTable::BenchTable(std::string_view tag, std::uint32_t providers, std::size_t name_len,
                       ht::Policy policy, std::uint32_t capacity)
    : segment(segment_name(tag)) {
  ht::CreateOptions o;
  o.capacity = std::max<std::uint32_t>(capacity ? capacity : providers, 1);
  o.policy = policy;
  o.mode = 0600;
  writer.emplace(ht::Writer::create(segment, o));
  names.reserve(providers);
  missing.reserve(providers);
  for (std::uint32_t i = 0; i < providers; ++i) {
    names.push_back(provider_name(i, name_len));
    missing.push_back(provider_name(i, name_len, false));
    writer->add(names.back());
  }
}

BenchTable::~BenchTable() {
  writer.reset(); // releases the writer lock, so destroy() may proceed
  try {
    ht::Writer::destroy(segment);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "htbench: could not remove segment %s: %s\n", segment.c_str(), e.what());
  }
}

ReadOnlyMap::ReadOnlyMap(const std::string& segment) {
  char target[512];
  const ssize_t n =
      ::readlink((ht::home_dir(segment) + "/table").c_str(), target, sizeof target - 1);
  if (n <= 0) throw std::runtime_error("readlink " + ht::home_dir(segment) + "/table");
  target[n] = '\0';
  const int fd = ::open(target, O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("shm_open " + segment + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw std::runtime_error("fstat " + segment + ": " + std::strerror(errno));
  }
  size_ = static_cast<std::size_t>(st.st_size);
  base_ = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (base_ == MAP_FAILED)
    throw std::runtime_error("mmap " + segment + ": " + std::strerror(errno));
  const auto* h = static_cast<const ht::Header*>(base_);
  heads_ = reinterpret_cast<const ht::SlotHead*>(static_cast<const char*>(base_) + h->heads_offset);
  bodies_ =
      reinterpret_cast<const ht::SlotBody*>(static_cast<const char*>(base_) + h->bodies_offset);
}

ReadOnlyMap::~ReadOnlyMap() { ::munmap(base_, size_); }

int read_record_counting(const ht::SlotBody& s, RecordCopy& v) noexcept {
  int retries = 0;
  return ht::detail::read_record(s, v, &retries) ? retries : -1;
}

// ---------------------------------------------------------------------------

std::string_view lock_name(LockKind k) noexcept {
  switch (k) {
  case LockKind::pthread_rwlock: return "pthread_rwlock";
  case LockKind::boost_mutex: return "boost_interprocess_mutex";
  case LockKind::boost_sharable_mutex: return "boost_interprocess_sharable_mutex";
  }
  return "?";
}

namespace bip = boost::interprocess;

// Each lock on its own cache line, the records after; only the lock of the
// table's kind is constructed.
struct LockedTable::Shared {
  alignas(ht::kCacheLine) pthread_rwlock_t rwlock;
  alignas(ht::kCacheLine) bip::interprocess_mutex mutex;
  alignas(ht::kCacheLine) bip::interprocess_sharable_mutex sharable;
  alignas(ht::kCacheLine) std::uint32_t used;
  // `used` PlainRecords follow, from the next cache line (see records()).
};

PlainRecord* LockedTable::records() const noexcept {
  return reinterpret_cast<PlainRecord*>(reinterpret_cast<char*>(shared_) + sizeof(Shared));
}

LockedTable::LockedTable(LockKind kind, std::string_view tag, std::uint32_t providers,
                         std::size_t name_len)
    : kind_(kind), segment_(segment_name(tag)) {
  size_ = sizeof(Shared) + sizeof(PlainRecord) * std::max<std::uint32_t>(providers, 1);
  const int fd = ::shm_open(("/" + segment_).c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("shm_open " + segment_ + ": " + std::strerror(errno));
  if (::ftruncate(fd, static_cast<off_t>(size_)) != 0) {
    ::close(fd);
    ::shm_unlink(("/" + segment_).c_str());
    throw std::runtime_error("ftruncate " + segment_ + ": " + std::strerror(errno));
  }
  void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    ::shm_unlink(("/" + segment_).c_str());
    throw std::runtime_error("mmap " + segment_ + ": " + std::strerror(errno));
  }
  shared_ = static_cast<Shared*>(p);
  switch (kind_) {
  case LockKind::pthread_rwlock: {
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_rwlock_init(&shared_->rwlock, &a);
    pthread_rwlockattr_destroy(&a);
    break;
  }
  case LockKind::boost_mutex: new (&shared_->mutex) bip::interprocess_mutex(); break;
  case LockKind::boost_sharable_mutex:
    new (&shared_->sharable) bip::interprocess_sharable_mutex();
    break;
  }
  shared_->used = providers;
  for (std::uint32_t i = 0; i < providers; ++i) {
    PlainRecord& r = records()[i];
    std::memset(&r, 0, sizeof r);
    const std::string n = provider_name(i, name_len);
    std::memcpy(r.name, n.data(), n.size());
    r.name_len = static_cast<std::uint32_t>(n.size());
    r.healthy = true;
  }
}

LockedTable::~LockedTable() {
  switch (kind_) {
  case LockKind::pthread_rwlock: pthread_rwlock_destroy(&shared_->rwlock); break;
  case LockKind::boost_mutex: shared_->mutex.~interprocess_mutex(); break;
  case LockKind::boost_sharable_mutex: shared_->sharable.~interprocess_sharable_mutex(); break;
  }
  ::munmap(shared_, size_);
  ::shm_unlink(("/" + segment_).c_str());
}

void LockedTable::lock_shared() const noexcept {
  switch (kind_) {
  case LockKind::pthread_rwlock: pthread_rwlock_rdlock(&shared_->rwlock); break;
  case LockKind::boost_mutex: shared_->mutex.lock(); break;
  case LockKind::boost_sharable_mutex: shared_->sharable.lock_sharable(); break;
  }
}

void LockedTable::unlock_shared() const noexcept {
  switch (kind_) {
  case LockKind::pthread_rwlock: pthread_rwlock_unlock(&shared_->rwlock); break;
  case LockKind::boost_mutex: shared_->mutex.unlock(); break;
  case LockKind::boost_sharable_mutex: shared_->sharable.unlock_sharable(); break;
  }
}

void LockedTable::lock() const noexcept {
  switch (kind_) {
  case LockKind::pthread_rwlock: pthread_rwlock_wrlock(&shared_->rwlock); break;
  case LockKind::boost_mutex: shared_->mutex.lock(); break;
  case LockKind::boost_sharable_mutex: shared_->sharable.lock(); break;
  }
}

void LockedTable::unlock() const noexcept {
  switch (kind_) {
  case LockKind::pthread_rwlock: pthread_rwlock_unlock(&shared_->rwlock); break;
  case LockKind::boost_mutex: shared_->mutex.unlock(); break;
  case LockKind::boost_sharable_mutex: shared_->sharable.unlock(); break;
  }
}

bool LockedTable::is_healthy(std::uint32_t i) const noexcept {
  lock_shared();
  const PlainRecord& r = records()[i];
  const std::uint8_t mode = r.override_mode;
  const bool healthy = r.healthy;
  const std::int64_t until = r.unhealthy_until_mono_ns;
  unlock_shared();
  if (mode == 1) return false;
  if (mode == 2 || healthy) return true;
  return ht::detail::coarse_mono_ns() >= until;
}

void LockedTable::copy_record(std::uint32_t i, PlainRecord& out) const noexcept {
  lock_shared();
  std::memcpy(&out, &records()[i], sizeof out);
  unlock_shared();
}

ht::ProviderState LockedTable::get_state(std::uint32_t i) const {
  PlainRecord r;
  copy_record(i, r);
  ht::ProviderState st;
  st.name.assign(r.name, std::min<std::size_t>(r.name_len, ht::kProviderNameMax));
  st.registered = true;
  st.healthy = r.healthy;
  st.consecutive_failures = r.consecutive_failures;
  st.last_check_unix_ns = r.last_check_unix_ns;
  if (r.has_error)
    st.last_error.emplace(r.reason, std::min<std::size_t>(r.reason_len, ht::kReasonMax));
  st.unhealthy_until_unix_ns = r.unhealthy_until_unix_ns;
  st.unhealthy_until_mono_ns = r.unhealthy_until_mono_ns;
  st.override_mode = static_cast<ht::Override>(r.override_mode);
  st.transitions = r.transitions;
  st.successes = r.successes;
  st.failures = r.failures;
  return st;
}

void LockedTable::mark_unhealthy(std::uint32_t i, std::string_view reason,
                                 std::int64_t backoff_ns) {
  const ht::Instant now = ht::Instant::now();
  const std::size_t n = std::min(reason.size(), ht::kReasonMax);
  lock();
  PlainRecord& r = records()[i];
  ++r.consecutive_failures;
  ++r.failures;
  r.last_check_unix_ns = now.unix_ns;
  std::memcpy(r.reason, reason.data(), n);
  r.reason_len = static_cast<std::uint8_t>(n);
  r.has_error = true;
  // Threshold 1, as the process benchmark's table: every failure trips or re-arms.
  if (r.healthy) ++r.transitions;
  r.healthy = false;
  r.unhealthy_until_mono_ns = now.mono_ns + backoff_ns;
  r.unhealthy_until_unix_ns = now.unix_ns + backoff_ns;
  unlock();
}

void LockedTable::mark_healthy(std::uint32_t i) {
  const ht::Instant now = ht::Instant::now();
  lock();
  PlainRecord& r = records()[i];
  if (!r.healthy) ++r.transitions;
  r.healthy = true;
  r.consecutive_failures = 0;
  r.has_error = false;
  r.reason_len = 0;
  r.unhealthy_until_mono_ns = 0;
  r.unhealthy_until_unix_ns = 0;
  r.last_check_unix_ns = now.unix_ns;
  ++r.successes;
  unlock();
}

} // namespace htbench
