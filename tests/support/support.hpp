// Shared test helpers: unique segment names that are removed even when a
// test fails, and a fake clock for the circuit breaker.
#pragma once

#include <healthtable/clock.hpp>
#include <healthtable/home.hpp>
#include <healthtable/writer.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace healthtable::test {

/// A table name no other test (or concurrent test run) uses, unlinked when
/// the guard goes out of scope, whatever the test did.
class SegmentName {
public:
  explicit SegmentName(const std::string& tag = "t") {
    static std::atomic<unsigned> counter{0};
    name_ = "healthtable-test-" + tag + "-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter.fetch_add(1));
  }
  ~SegmentName() {
    try {
      Writer::destroy(name_, /*force=*/true);
    } catch (...) {
      // nothing left, or nothing of ours
    }
  }
  SegmentName(const SegmentName&) = delete;
  SegmentName& operator=(const SegmentName&) = delete;
  const std::string& str() const noexcept { return name_; }
  operator const std::string&() const noexcept { return name_; }
  /// The table's home directory.
  std::string home() const { return home_dir(name_); }
  /// The object the home points at now ("" if none).
  std::string path() const {
    char buf[512];
    const ssize_t n = ::readlink((home() + "/table").c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }

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

/// Polls `done` every 5 ms until it holds or `limit` passes: for "the
/// other process will get there", which a loaded machine may delay but not
/// stop. Returns whether it held.
template <class F>
bool eventually(F&& done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

} // namespace healthtable::test
