// Time. The table keeps two clocks: CLOCK_MONOTONIC_COARSE for backoff
// windows (system-wide, never jumps, read from the vDSO without a syscall)
// and CLOCK_REALTIME for the Unix times that humans and JSON see.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace healthtable {

/// A moment on both clocks. Writers take one per operation; tests build
/// their own to drive the circuit breaker without sleeping.
struct Instant {
  std::int64_t mono_ns = 0; ///< CLOCK_MONOTONIC_COARSE, nanoseconds
  std::int64_t unix_ns = 0; ///< CLOCK_REALTIME, nanoseconds since the epoch

  /// The current moment.
  static Instant now() noexcept;

  constexpr Instant operator+(std::chrono::nanoseconds d) const noexcept {
    return {mono_ns + d.count(), unix_ns + d.count()};
  }
  constexpr Instant& operator+=(std::chrono::nanoseconds d) noexcept { return *this = *this + d; }
};

namespace detail {
/// CLOCK_MONOTONIC_COARSE in nanoseconds: a vDSO read, no syscall, ~4 ms
/// resolution, which is plenty for backoff windows of seconds.
inline std::int64_t coarse_mono_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// CLOCK_MONOTONIC's offset in this process's time namespace (local = host
/// + offset; 0 outside a time namespace), from /proc/self/timens_offsets.
/// The table stores host times, so a reader in a container with its own
/// clock still reads every deadline right. Read once; the first call is
/// made by Table::open() and Writer, never on a read path.
std::int64_t mono_offset_ns() noexcept;
/// The same, as the inline read path sees it: set by the first
/// mono_offset_ns() call (Table::open() and Writer make it).
inline std::atomic<std::int64_t> g_mono_offset_ns{0};

/// Local CLOCK_MONOTONIC nanoseconds to the host's, and back.
inline std::int64_t to_host_mono(std::int64_t local) noexcept { return local - mono_offset_ns(); }
inline std::int64_t to_local_mono(std::int64_t host) noexcept { return host + mono_offset_ns(); }
} // namespace detail

} // namespace healthtable
