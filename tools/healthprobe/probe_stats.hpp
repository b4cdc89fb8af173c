// What only the prober knows, for /metrics: each provider's probe durations
// (a histogram) and the breaker transitions its own probe results caused.
// The prober's loop writes them with relaxed atomics; the metrics thread
// reads them at any time, and a probe result never takes a lock. The list
// of providers is republished only when a reload changes it: a shared_ptr
// swapped under a mutex that either side holds only to copy or swap the
// pointer (libstdc++ 12's std::atomic<std::shared_ptr> would do the same
// with a spin lock, and ThreadSanitizer reports a race inside it).
#pragma once

#include <exposition.hpp>
#include <histogram.hpp>

#include <healthtable/writer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace healthtable::prober {

/// The buckets of healthtable_probe_duration_seconds: from a local answer
/// (milliseconds) to the longest timeouts.
inline const std::vector<double> kProbeDurationBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,   1,    2.5,   5,    10,  30};

/// The Transition kinds counted, as the `kind` label spells them.
inline constexpr std::array<Transition, 4> kCountedTransitions = {
    Transition::tripped, Transition::rearmed, Transition::recovered, Transition::cooldown};

struct ProviderStats {
  explicit ProviderStats(std::string n) : name(std::move(n)), duration(kProbeDurationBounds) {}
  const std::string name;
  metrics::Histogram duration;
  std::array<std::atomic<std::uint64_t>, kCountedTransitions.size()> transitions{};
};

class ProbeStats {
public:
  ProbeStats();

  /// The providers probed from now on, in order: those already known keep
  /// their counts, new ones start at zero, others are dropped (their series
  /// disappear). Prober thread only.
  void keep(const std::vector<std::string>& names);
  /// One probe result of `name`: how long it took, what it did to the
  /// breaker. Prober thread only; lock-free.
  void probed(const std::string& name, std::chrono::nanoseconds elapsed, Transition t);

  /// The families, for a scrape (any thread).
  void add_metrics(metrics::Exposition& out, const std::string& segment) const;

private:
  using List = std::vector<std::shared_ptr<ProviderStats>>;
  std::unordered_map<std::string, std::shared_ptr<ProviderStats>> by_name_; ///< prober thread's
  mutable std::mutex mu_;            ///< guards list_ (the pointer, not what it points at)
  std::shared_ptr<const List> list_; ///< never null
};

} // namespace healthtable::prober
