#include "ramp_offset.hpp"

#include <pthread.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace healthtable::detail {

namespace {

constexpr std::int64_t kUndrawn = -1;

std::atomic<std::int64_t> g_offset{kUndrawn};

/// Async-signal-safe, as a fork child handler must be: getrandom() and
/// clock_gettime() are plain system calls. GRND_NONBLOCK so that a process
/// started before the kernel's pool is ready never waits here; then the
/// pid and the clock, which differ between siblings, stand in.
std::int64_t draw() noexcept {
  std::uint32_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    r = static_cast<std::uint32_t>(::getpid()) * 2654435761u ^
        static_cast<std::uint32_t>(ts.tv_nsec);
  }
  return static_cast<std::int64_t>(r % 10'000);
}

void redraw_in_child() noexcept { g_offset.store(draw(), std::memory_order_relaxed); }

} // namespace

std::int64_t ramp_offset() noexcept {
  const std::int64_t o = g_offset.load(std::memory_order_relaxed);
  if (o != kUndrawn) [[likely]]
    return o;
  static std::once_flag once;
  std::call_once(once, [] {
    ::pthread_atfork(nullptr, nullptr, redraw_in_child);
    g_offset.store(draw(), std::memory_order_relaxed);
  });
  return g_offset.load(std::memory_order_relaxed);
}

} // namespace healthtable::detail
