// Question 1 and 2: what does a read cost, beside the floor (one acquire
// load from the same read-only shared mapping, one coarse clock read) and
// beside the lock-guarded tables a user would otherwise write?
//
// Every figure is one call, in a loop, from one process, with the data warm
// in the cache unless the working set (by-name at 1,024 and 4,096 providers,
// names visited in a shuffled order) is itself the point.

#include "common.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace ht = healthtable;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxName = ht::kProviderNameMax; // 63 bytes, the worst case
constexpr std::string_view kReason =
    "probe-exception: ConnectionError: [Errno 111] Connection refused";

// Slots of the "states" table.
enum StateSlot : std::uint32_t { kHealthy = 0, kTripped = 1, kHalfOpen = 2, kForcedDown = 3 };

/// A table whose first four providers are healthy, tripped inside a 60 s
/// window, half-open (window passed) and forced down, plus a reader that
/// mapped it PROT_READ and our own PROT_READ mapping for the floor.
struct States {
  htbench::BenchTable table{"states", 4, kMaxName};
  ht::Table reader = ht::Table::open(table.segment);
  htbench::ReadOnlyMap floor_map{table.segment};

  States() {
    auto& w = *table.writer;
    // Tripped for a day, not the default 60 s: a full run lasts minutes, and
    // a window that ends mid-run would turn later "tripped" repetitions into
    // half-open ones.
    w.set_policy({2, 24h});
    w.mark_unhealthy(table.names[kTripped], kReason);
    w.mark_unhealthy(table.names[kTripped], kReason);
    // Half-open: trip with a zero backoff, so the window has already passed.
    w.set_policy({2, 0ns});
    w.mark_unhealthy(table.names[kHalfOpen], kReason);
    w.mark_unhealthy(table.names[kHalfOpen], kReason);
    w.set_policy({});
    w.set_override(table.names[kForcedDown], ht::Override::forced_down);
  }
  ht::Handle handle(StateSlot s) const { return *reader.find(table.names[s]); }
};

States& states() {
  static States s;
  return s;
}

/// A table of `n` providers with `len`-byte names, and the names to look up
/// (registered ones for hits, never-registered ones for misses) in a
/// shuffled order so consecutive lookups do not walk memory in slot order.
struct Names {
  htbench::BenchTable table;
  ht::Table reader;
  std::vector<std::string_view> hits, misses;

  Names(std::uint32_t n, std::size_t len)
      : table("names-" + std::to_string(n) + "-" + std::to_string(len), n, len),
        reader(ht::Table::open(table.segment)) {
    std::vector<std::uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), std::mt19937(12345));
    for (const auto i : order) {
      hits.emplace_back(table.names[i]);
      misses.emplace_back(table.missing[i]);
    }
  }
};

Names& names(std::uint32_t n, std::size_t len) {
  // One table per (n, len), created on first use, removed at exit.
  static std::vector<std::unique_ptr<Names>> all;
  for (auto& p : all)
    if (p->hits.size() == n && p->hits.front().size() == len) return *p;
  all.push_back(std::make_unique<Names>(n, len));
  return *all.back();
}

/// A router's chain of five providers (24-byte names, "openrouter/..."
/// long), all healthy, and a second chain whose first four are tripped for
/// a day (see States) so pick() walks to the fifth: handles of both.
struct Chains {
  htbench::BenchTable table{"chain", 10, 24};
  ht::Table reader = ht::Table::open(table.segment);
  std::vector<ht::Handle> healthy, last_up;

  Chains() {
    auto& w = *table.writer;
    w.set_policy({2, 24h});
    for (std::size_t i = 0; i < 5; ++i) {
      healthy.push_back(reader.handle(table.names[i]));
      last_up.push_back(reader.handle(table.names[5 + i]));
      if (i < 4) {
        w.mark_unhealthy(table.names[5 + i], kReason);
        w.mark_unhealthy(table.names[5 + i], kReason);
      }
    }
  }
};

Chains& chains() {
  static Chains c;
  return c;
}

/// The same table guarded by a lock: slot 0 healthy, slot 1 tripped.
htbench::LockedTable& locked(htbench::LockKind k) {
  static std::vector<std::unique_ptr<htbench::LockedTable>> all(3);
  auto& p = all[static_cast<std::size_t>(k)];
  if (!p) {
    p = std::make_unique<htbench::LockedTable>(k, std::string(htbench::lock_name(k)), 64, kMaxName);
    p->mark_unhealthy(1, kReason, std::chrono::nanoseconds(24h).count()); // as States
  }
  return *p;
}

// --- the floor ---------------------------------------------------------------

void floor_acquire_load(benchmark::State& state) {
  const std::atomic<std::uint64_t>* word = states().floor_map.word(kHealthy);
  for (auto _ : state) {
    // acquire: the same order is_healthy() uses; an atomic load is never
    // hoisted out of the loop, and DoNotOptimize keeps its value live.
    std::uint64_t v = word->load(std::memory_order_acquire);
    benchmark::DoNotOptimize(v);
  }
}

void floor_coarse_clock(benchmark::State& state) {
  for (auto _ : state) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    benchmark::DoNotOptimize(ts);
  }
}

void floor_load_and_clock(benchmark::State& state) {
  const std::atomic<std::uint64_t>* word = states().floor_map.word(kTripped);
  for (auto _ : state) {
    std::uint64_t v = word->load(std::memory_order_acquire);
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    benchmark::DoNotOptimize(v);
    benchmark::DoNotOptimize(ts);
  }
}

// --- the table -----------------------------------------------------------------

void is_healthy_handle(benchmark::State& state, StateSlot slot) {
  const ht::Table& t = states().reader;
  const ht::Handle h = states().handle(slot);
  for (auto _ : state) {
    bool ok = t.is_healthy(h);
    benchmark::DoNotOptimize(ok);
  }
}

/// Table::pick() over a chain of handles: the all-healthy case the target
/// is about (the first provider answers), or four tripped before a healthy
/// fifth (the slow path: one clock read, five words).
void pick_chain(benchmark::State& state, bool all_healthy) {
  const Chains& c = chains();
  const std::vector<ht::Handle>& chain = all_healthy ? c.healthy : c.last_up;
  for (auto _ : state) {
    ht::Pick p = c.reader.pick(chain);
    benchmark::DoNotOptimize(p);
  }
  state.counters["providers"] = static_cast<double>(chain.size());
}

/// By name over `visit` of the table's `n` names (all of them unless less),
/// in the shuffled order: `visit` 1 is one name again and again; `visit` 64
/// of 4,096 is a router whose chains name a few providers of a big table.
void is_healthy_name(benchmark::State& state, std::uint32_t n, std::size_t len, bool hit,
                     std::uint32_t visit) {
  Names& ns = names(n, len);
  const std::vector<std::string_view>& keys = hit ? ns.hits : ns.misses;
  const std::size_t mask = std::min<std::size_t>(visit, keys.size()) - 1; // powers of two
  std::size_t i = 0;
  for (auto _ : state) {
    bool ok = ns.reader.is_healthy(keys[i]);
    benchmark::DoNotOptimize(ok);
    i = (i + 1) & mask;
  }
}

void get_state_handle(benchmark::State& state, StateSlot slot) {
  const ht::Table& t = states().reader;
  const ht::Handle h = states().handle(slot);
  for (auto _ : state) {
    ht::ProviderState st = t.get_state(h);
    benchmark::DoNotOptimize(st);
  }
}

// The same into a caller's ProviderState: its strings keep their capacity,
// so nothing is allocated once warm (Table::get_state(Handle, ProviderState&)).
void get_state_handle_into(benchmark::State& state, StateSlot slot) {
  const ht::Table& t = states().reader;
  const ht::Handle h = states().handle(slot);
  ht::ProviderState st;
  for (auto _ : state) {
    t.get_state(h, st);
    benchmark::DoNotOptimize(st);
  }
}

void get_state_name(benchmark::State& state, StateSlot slot) {
  const ht::Table& t = states().reader;
  const std::string& name = states().table.names[slot];
  for (auto _ : state) {
    auto st = t.get_state(name);
    benchmark::DoNotOptimize(st);
  }
}

void snapshot(benchmark::State& state, std::uint32_t n) {
  const ht::Table& t = names(n, kMaxName).reader;
  for (auto _ : state) {
    auto all = t.snapshot();
    benchmark::DoNotOptimize(all.data());
  }
  state.counters["providers"] = n;
}

// --- the baselines ---------------------------------------------------------------

void baseline_is_healthy(benchmark::State& state, htbench::LockKind k, std::uint32_t slot) {
  const htbench::LockedTable& t = locked(k);
  for (auto _ : state) {
    bool ok = t.is_healthy(slot);
    benchmark::DoNotOptimize(ok);
  }
}

void baseline_get_state(benchmark::State& state, htbench::LockKind k, std::uint32_t slot) {
  const htbench::LockedTable& t = locked(k);
  for (auto _ : state) {
    ht::ProviderState st = t.get_state(slot);
    benchmark::DoNotOptimize(st);
  }
}

// --- where the time goes, and what-ifs ---------------------------------------------
// Bench-local re-implementations over the public layout, to size a change to
// the library before anyone makes it. They are not the library's figures.

/// The consistent copy alone: the library's read_record() (lib/src/record.hpp).
void part_latch_copy(benchmark::State& state, StateSlot slot) {
  const ht::SlotBody& s = states().floor_map.body(slot);
  for (auto _ : state) {
    htbench::RecordCopy copy; // deliberately not zeroed: every field is loaded
    benchmark::DoNotOptimize(htbench::read_record_counting(s, copy));
    benchmark::DoNotOptimize(copy);
  }
}

/// The locked part of the baseline's get_state: lock, memcpy, unlock.
void part_rwlock_copy(benchmark::State& state, std::uint32_t slot) {
  const htbench::LockedTable& t = locked(htbench::LockKind::pthread_rwlock);
  for (auto _ : state) {
    htbench::PlainRecord r;
    t.copy_record(slot, r);
    benchmark::DoNotOptimize(r);
  }
}

void register_all() {
  using benchmark::RegisterBenchmark;
  RegisterBenchmark("floor/acquire_load", floor_acquire_load);
  RegisterBenchmark("floor/coarse_clock", floor_coarse_clock);
  RegisterBenchmark("floor/acquire_load+coarse_clock", floor_load_and_clock);

  const std::pair<const char*, StateSlot> slots[] = {{"healthy", kHealthy},
                                                     {"tripped", kTripped},
                                                     {"half_open", kHalfOpen},
                                                     {"forced_down", kForcedDown}};
  for (const auto& [label, slot] : slots)
    RegisterBenchmark(("is_healthy_handle/" + std::string(label)).c_str(), is_healthy_handle, slot);

  RegisterBenchmark("pick/handles:5/all_healthy", pick_chain, true);
  RegisterBenchmark("pick/handles:5/first_4_tripped", pick_chain, false);

  for (const bool hit : {true, false})
    for (const std::uint32_t n : {8u, 64u, 1024u, 4096u})
      RegisterBenchmark(("is_healthy_name/" + std::string(hit ? "hit" : "miss") +
                         "/providers:" + std::to_string(n) + "/len:63")
                            .c_str(),
                        is_healthy_name, n, kMaxName, hit, n);
  // Context for the 63-byte worst case: names of a common length (24 bytes,
  // "openrouter/anthropic-v3"), short ones, and one name repeated.
  for (const bool hit : {true, false})
    for (const std::uint32_t n : {64u, 4096u})
      RegisterBenchmark(("is_healthy_name/" + std::string(hit ? "hit" : "miss") +
                         "/providers:" + std::to_string(n) + "/len:24")
                            .c_str(),
                        is_healthy_name, n, std::size_t{24}, hit, n);
  RegisterBenchmark("is_healthy_name/hit/providers:64/len:8", is_healthy_name, 64u, std::size_t{8},
                    true, 64u);
  RegisterBenchmark("is_healthy_name/hit/providers:64/len:63/same_name", is_healthy_name, 64u,
                    kMaxName, true, 1u);
  // A big table read by a router whose chains name 64 of its providers: the
  // table's size alone, without a 4,096-name working set.
  for (const std::size_t len : {std::size_t{24}, kMaxName})
    RegisterBenchmark(
        ("is_healthy_name/hit/providers:4096/len:" + std::to_string(len) + "/visit:64").c_str(),
        is_healthy_name, 4096u, len, true, 64u);

  RegisterBenchmark("get_state_handle/healthy", get_state_handle, kHealthy);
  RegisterBenchmark("get_state_handle/tripped", get_state_handle, kTripped);
  RegisterBenchmark("get_state_handle_into/healthy", get_state_handle_into, kHealthy);
  RegisterBenchmark("get_state_handle_into/tripped", get_state_handle_into, kTripped);
  RegisterBenchmark("get_state_name/tripped", get_state_name, kTripped);
  RegisterBenchmark("snapshot/providers:64", snapshot, 64u);
  RegisterBenchmark("snapshot/providers:1024", snapshot, 1024u);

  for (const auto k : {htbench::LockKind::pthread_rwlock, htbench::LockKind::boost_mutex,
                       htbench::LockKind::boost_sharable_mutex}) {
    const std::string base = "baseline/" + std::string(htbench::lock_name(k));
    RegisterBenchmark((base + "/is_healthy/healthy").c_str(), baseline_is_healthy, k, 0u);
    RegisterBenchmark((base + "/is_healthy/tripped").c_str(), baseline_is_healthy, k, 1u);
    RegisterBenchmark((base + "/get_state/healthy").c_str(), baseline_get_state, k, 0u);
    RegisterBenchmark((base + "/get_state/tripped").c_str(), baseline_get_state, k, 1u);
  }

  RegisterBenchmark("part/latch_copy/tripped", part_latch_copy, kTripped);
  RegisterBenchmark("part/pthread_rwlock_lock_copy_unlock/tripped", part_rwlock_copy, 1u);
}

} // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
