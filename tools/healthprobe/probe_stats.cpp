#include "probe_stats.hpp"

#include <algorithm>
#include <utility>

namespace healthtable::prober {

ProbeStats::ProbeStats() : list_(std::make_shared<const List>()) {}

void ProbeStats::keep(const std::vector<std::string>& names) {
  std::unordered_map<std::string, std::shared_ptr<ProviderStats>> next;
  auto list = std::make_shared<List>();
  for (const std::string& n : names) {
    auto it = by_name_.find(n);
    auto s = it != by_name_.end() ? it->second : std::make_shared<ProviderStats>(n);
    if (next.emplace(n, s).second) list->push_back(std::move(s));
  }
  by_name_ = std::move(next);
  std::shared_ptr<const List> old;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    old = std::exchange(list_, std::move(list));
  } // the old list (perhaps the last reference) is freed outside the lock
}

void ProbeStats::probed(const std::string& name, std::chrono::nanoseconds elapsed, Transition t) {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) return; // not a configured provider (cannot happen; harmless)
  ProviderStats& s = *it->second;
  s.duration.observe(std::chrono::duration<double>(elapsed).count());
  const auto k = std::find(kCountedTransitions.begin(), kCountedTransitions.end(), t);
  if (k != kCountedTransitions.end())
    s.transitions[static_cast<std::size_t>(k - kCountedTransitions.begin())].fetch_add(
        1, std::memory_order_relaxed);
}

void ProbeStats::add_metrics(metrics::Exposition& out, const std::string& segment) const {
  std::shared_ptr<const List> list;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    list = list_;
  }
  metrics::Family& duration =
      out.family("healthtable_probe_duration_seconds", metrics::Type::histogram,
                 "How long the prober's probes of the provider took, answered or failed.");
  metrics::Family& transitions =
      out.family("healthtable_probe_transitions_total", metrics::Type::counter,
                 "Breaker transitions the prober's own probe results caused, by kind.");
  for (const auto& s : *list) {
    const metrics::Labels l{{"table", segment}, {"provider", s->name}};
    const metrics::Histogram::Snapshot h = s->duration.snapshot();
    duration.add_histogram(l, h.bounds, h.cumulative, h.sum);
    for (std::size_t k = 0; k < kCountedTransitions.size(); ++k) {
      metrics::Labels x = l;
      x.emplace_back("kind", std::string(transition_name(kCountedTransitions[k])));
      transitions.add(x, static_cast<double>(s->transitions[k].load(std::memory_order_relaxed)));
    }
  }
}

} // namespace healthtable::prober
