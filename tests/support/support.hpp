// Shared test helpers: unique segment names that are removed even when a
// test fails, and a fake clock for the circuit breaker.
#pragma once

#include <healthtable/clock.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace healthtable::test {

/// A segment name no other test (or concurrent test run) uses, unlinked when
/// the guard goes out of scope, whatever the test did.
class SegmentName {
public:
  explicit SegmentName(const std::string& tag = "t") {
    static std::atomic<unsigned> counter{0};
    name_ = "healthtable-test-" + tag + "-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter.fetch_add(1));
  }
  ~SegmentName() { ::shm_unlink(("/" + name_).c_str()); }
  SegmentName(const SegmentName&) = delete;
  SegmentName& operator=(const SegmentName&) = delete;
  const std::string& str() const noexcept { return name_; }
  operator const std::string&() const noexcept { return name_; }
  std::string path() const { return "/dev/shm/" + name_; }

private:
  std::string name_;
};

/// Deterministic time, as the reference module's FakeClock: starts at an
/// arbitrary point and only moves when told.
class FakeClock {
public:
  Instant now() const noexcept { return now_; }
  void advance(std::chrono::nanoseconds d) noexcept { now_ += d; }
  std::int64_t mono() const noexcept { return now_.mono_ns; }

private:
  Instant now_{1'000'000'000'000'000LL, 1'700'000'000'000'000'000LL};
};

inline constexpr std::int64_t seconds_ns(double s) { return static_cast<std::int64_t>(s * 1e9); }

} // namespace healthtable::test
