// What does the C ABI cost beside the C++ API it wraps? The same table,
// the same handles, in the same run: the C++ is_healthy(handle) and pick()
// (inline) against healthtable_is_healthy() and healthtable_pick(), called
// the way C and LuaJIT's FFI call them, through libhealthtable.so.0's PLT.
//
// This binary links only the shared library (its C++ symbols too), so
// every C call crosses the library boundary as a C program's would.

#include <healthtable/healthtable.h>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <benchmark/benchmark.h>

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace ht = healthtable;
using namespace std::chrono_literals;

namespace {

/// A table with a healthy "up" and a tripped "down" provider, read both
/// ways: a C++ Table and a healthtable_t, each with its handles.
struct Fixture {
  std::string name = "healthtable-bench-capi-" + std::to_string(::getpid());
  std::optional<ht::Writer> writer;
  std::optional<ht::Table> table;
  healthtable_t* c = nullptr;
  std::optional<ht::Handle> up, down;
  healthtable_handle_t c_up{}, c_down{};

  Fixture() {
    ht::CreateOptions options;
    options.policy.backoff = 24h; // stays tripped for the whole run
    writer.emplace(ht::Writer::create(name, options));
    writer->mark_healthy("up");
    writer->mark_unhealthy("down", "bench");
    writer->mark_unhealthy("down", "bench");
    table.emplace(ht::Table::open(name));
    up = table->handle("up");
    down = table->handle("down");
    if (healthtable_open(name.c_str(), &c) != HEALTHTABLE_OK ||
        healthtable_handle(c, "up", &c_up) != HEALTHTABLE_OK ||
        healthtable_handle(c, "down", &c_down) != HEALTHTABLE_OK) {
      std::fprintf(stderr, "bench_c_api: %s\n", healthtable_last_error());
      std::exit(1);
    }
  }
  ~Fixture() {
    healthtable_close(c);
    table.reset();
    writer.reset();
    ht::Writer::destroy(name, true);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void cpp_is_healthy(benchmark::State& state, bool healthy) {
  const Fixture& f = fixture();
  const ht::Handle h = healthy ? *f.up : *f.down;
  for (auto _ : state) {
    bool ok = f.table->is_healthy(h);
    benchmark::DoNotOptimize(ok);
  }
}

void c_is_healthy(benchmark::State& state, bool healthy) {
  const Fixture& f = fixture();
  const healthtable_handle_t h = healthy ? f.c_up : f.c_down;
  for (auto _ : state) {
    bool ok = healthtable_is_healthy(f.c, h);
    benchmark::DoNotOptimize(ok);
  }
}

void c_is_healthy_name(benchmark::State& state) {
  const Fixture& f = fixture();
  for (auto _ : state) {
    bool ok = healthtable_is_healthy_name(f.c, "up");
    benchmark::DoNotOptimize(ok);
  }
}

/// A chain of three whose first provider is up (the common case) or down
/// (the second answers).
void cpp_pick(benchmark::State& state, bool first_up) {
  const Fixture& f = fixture();
  const std::array<ht::Handle, 3> chain =
      first_up ? std::array{*f.up, *f.down, *f.down} : std::array{*f.down, *f.up, *f.down};
  for (auto _ : state) {
    ht::Pick p = f.table->pick(chain);
    benchmark::DoNotOptimize(p);
  }
}

void c_pick(benchmark::State& state, bool first_up) {
  const Fixture& f = fixture();
  const std::array<healthtable_handle_t, 3> chain =
      first_up ? std::array{f.c_up, f.c_down, f.c_down} : std::array{f.c_down, f.c_up, f.c_down};
  for (auto _ : state) {
    int i = healthtable_pick(f.c, chain.data(), chain.size(), HEALTHTABLE_PICK_PANIC, nullptr);
    benchmark::DoNotOptimize(i);
  }
}

void register_all() {
  using benchmark::RegisterBenchmark;
  RegisterBenchmark("cpp/is_healthy_handle/healthy", cpp_is_healthy, true);
  RegisterBenchmark("c/is_healthy_handle/healthy", c_is_healthy, true);
  RegisterBenchmark("cpp/is_healthy_handle/tripped", cpp_is_healthy, false);
  RegisterBenchmark("c/is_healthy_handle/tripped", c_is_healthy, false);
  RegisterBenchmark("c/is_healthy_name/healthy", c_is_healthy_name);
  RegisterBenchmark("cpp/pick3/first_up", cpp_pick, true);
  RegisterBenchmark("c/pick3/first_up", c_pick, true);
  RegisterBenchmark("cpp/pick3/first_down", cpp_pick, false);
  RegisterBenchmark("c/pick3/first_down", c_pick, false);
}

} // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
