// A histogram one thread observes into and another reads while it does,
// without a lock: a fixed array of atomic bucket counters and an atomic sum.
// A reader may see an observation in one bucket and not yet in the sum; the
// exposition takes _count from the buckets it read, so count and buckets
// always agree, and the sum catches up by the next scrape.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace healthtable::metrics {

class Histogram {
public:
  /// `bounds`: the buckets' upper bounds, increasing (+Inf is implied).
  explicit Histogram(std::vector<double> bounds);

  /// Adds one observation (any thread; relaxed atomics, no lock).
  void observe(double value) noexcept;

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative; ///< one per bound, then +Inf
    double sum = 0;
  };
  Snapshot snapshot() const;

  const std::vector<double>& bounds() const noexcept { return bounds_; }

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_; ///< per bucket, not cumulative
  std::atomic<double> sum_{0};
};

} // namespace healthtable::metrics
