// Question 4: what does the writer pay per outcome, and what does a full
// dump of a 1,024-slot table cost? The writer API takes names, so every
// mark_* includes the name check and the index lookup; the default Instant
// (both clocks read) is what callers pass.

#include "common.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace ht = healthtable;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kReason =
    "probe-exception: ConnectionError: [Errno 111] Connection refused";

/// 64 providers, 63-byte names, the default policy (threshold 2, 60 s).
htbench::BenchTable& table64() {
  static htbench::BenchTable t("writer-64", 64, ht::kProviderNameMax);
  return t;
}

/// 1,024 providers; every fourth one tripped with a reason, as a dump of a
/// real gateway's table would find some.
htbench::BenchTable& table1024() {
  static auto t = [] {
    auto p = std::make_unique<htbench::BenchTable>("writer-1024", 1024, ht::kProviderNameMax);
    for (std::size_t i = 0; i < p->names.size(); i += 4) {
      p->writer->mark_unhealthy(p->names[i], kReason);
      p->writer->mark_unhealthy(p->names[i], kReason);
    }
    return p;
  }();
  return *t;
}

/// Success on a healthy provider: the common case of a probe tick. The hot
/// word does not change, so the writer skips its store.
void mark_healthy_steady(benchmark::State& state) {
  auto& t = table64();
  const std::string& name = t.names[0];
  for (auto _ : state)
    benchmark::DoNotOptimize(t.writer->mark_healthy(name));
}

/// Failure on a tripped provider: re-arms the window from now.
void mark_unhealthy_rearm(benchmark::State& state) {
  auto& t = table64();
  const std::string& name = t.names[1];
  t.writer->mark_unhealthy(name, kReason);
  t.writer->mark_unhealthy(name, kReason);
  for (auto _ : state)
    benchmark::DoNotOptimize(t.writer->mark_unhealthy(name, kReason));
}

/// One failure then one success on a healthy provider (threshold 2: the
/// failure counts but does not trip). Reported per pair.
void mark_fail_then_success(benchmark::State& state) {
  auto& t = table64();
  const std::string& name = t.names[2];
  t.writer->mark_healthy(name);
  for (auto _ : state) {
    benchmark::DoNotOptimize(t.writer->mark_unhealthy(name, kReason));
    benchmark::DoNotOptimize(t.writer->mark_healthy(name));
  }
}

/// A trip and a recovery per iteration (threshold 1): both change the hot
/// word, so this is the most expensive pair of writes. Reported per pair.
void mark_trip_then_recover(benchmark::State& state) {
  static htbench::BenchTable t("writer-trip", 4, ht::kProviderNameMax, {1, 60s});
  const std::string& name = t.names[0];
  for (auto _ : state) {
    benchmark::DoNotOptimize(t.writer->mark_unhealthy(name, kReason));
    benchmark::DoNotOptimize(t.writer->mark_healthy(name));
  }
}

/// The same outcome with an explicit Instant: the cost without the two
/// clock reads Instant::now() makes.
void mark_healthy_given_instant(benchmark::State& state) {
  auto& t = table64();
  const std::string& name = t.names[3];
  const ht::Instant now = ht::Instant::now();
  for (auto _ : state)
    benchmark::DoNotOptimize(t.writer->mark_healthy(name, now));
}

/// `healthctl dump`: every slot copied out of the writer's own mapping.
void dump_1024(benchmark::State& state) {
  auto& t = table1024();
  for (auto _ : state) {
    auto all = t.writer->table().snapshot();
    benchmark::DoNotOptimize(all.data());
  }
  state.counters["providers"] = 1024;
}

} // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RegisterBenchmark("writer/mark_healthy/steady", mark_healthy_steady);
  benchmark::RegisterBenchmark("writer/mark_healthy/steady_given_instant",
                               mark_healthy_given_instant);
  benchmark::RegisterBenchmark("writer/mark_unhealthy/rearm", mark_unhealthy_rearm);
  benchmark::RegisterBenchmark("writer/pair/fail_then_success", mark_fail_then_success);
  benchmark::RegisterBenchmark("writer/pair/trip_then_recover", mark_trip_then_recover);
  benchmark::RegisterBenchmark("writer/dump/providers:1024", dump_1024);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
