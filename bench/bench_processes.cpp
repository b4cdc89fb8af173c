// Question 3: K forked reader processes, each with its own read-only mapping,
// reading while the writer (this process) updates the providers they read
// and others, at 0, 1,000 and as many updates per second as it can.
//
// One benchmark "iteration" is one whole experiment of --duration_ms; the
// figures are counters: reads per second per reader, retries per read.
//
// The machine this runs on may have fewer cores than K + 1 processes; then
// readers and the writer time-share, and per-reader throughput falls with K
// for that reason alone. docs/performance.md says so beside the figures.

#include "common.hpp"

#include <benchmark/benchmark.h>

#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace ht = healthtable;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kProviders = 64;
constexpr std::uint32_t kRead = 8; // readers read slots 0..7, the gateway's chain
constexpr int kMaxReaders = 8;
constexpr std::string_view kReason =
    "probe-exception: ConnectionError: [Errno 111] Connection refused";

int g_duration_ms = 300;

enum class Op {
  is_healthy,        ///< Table::is_healthy(Handle)
  get_state,         ///< Table::get_state(Handle)
  latch_read,        ///< the library's read_record(), asked for its retry count
  rwlock_is_healthy, ///< the pthread_rwlock baseline's is_healthy
};

const char* op_name(Op op) {
  switch (op) {
  case Op::is_healthy: return "is_healthy";
  case Op::get_state: return "get_state";
  case Op::latch_read: return "latch_read";
  case Op::rwlock_is_healthy: return "baseline_pthread_rwlock_is_healthy";
  }
  return "?";
}

/// What a reader reports back; one cache line each, so readers do not
/// disturb each other writing them.
struct alignas(ht::kCacheLine) ReaderResult {
  std::uint64_t reads;
  std::uint64_t retries;
  std::uint64_t max_retries; ///< of any single read
  std::uint64_t gave_up;     ///< reads that hit the library's attempt limit
  double seconds;
};

/// Start and stop flags and the results, in an anonymous shared mapping
/// made before fork(); each flag on its own line, away from the table.
struct Control {
  alignas(ht::kCacheLine) std::atomic<int> ready;
  alignas(ht::kCacheLine) std::atomic<int> go;
  alignas(ht::kCacheLine) std::atomic<int> stop;
  ReaderResult results[kMaxReaders];
};

/// The table the readers read; threshold 1, so one failure trips.
struct Fixture {
  htbench::BenchTable table{"procs", kProviders, ht::kProviderNameMax, {1, 60s}};
  htbench::LockedTable rwlock{htbench::LockKind::pthread_rwlock, "procs-rwlock", kProviders,
                              ht::kProviderNameMax};
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <Op op> void read_until_stopped(Control& c, int me) {
  Fixture& f = fixture();
  // Each reader maps the table itself, as a worker process would.
  ht::Table t = ht::Table::open(f.table.segment);
  htbench::ReadOnlyMap raw(f.table.segment);
  std::array<ht::Handle, kRead> handles{*t.find(f.table.names[0]), *t.find(f.table.names[1]),
                                        *t.find(f.table.names[2]), *t.find(f.table.names[3]),
                                        *t.find(f.table.names[4]), *t.find(f.table.names[5]),
                                        *t.find(f.table.names[6]), *t.find(f.table.names[7])};
  std::array<std::uint32_t, kRead> slots{};
  for (std::size_t k = 0; k < kRead; ++k)
    slots[k] = t.get_state(handles[k]).slot;
  ReaderResult r{};
  c.ready.fetch_add(1);
  while (c.go.load(std::memory_order_acquire) == 0)
    sched_yield();
  const auto t0 = std::chrono::steady_clock::now();
  std::uint32_t i = 0;
  while (c.stop.load(std::memory_order_relaxed) == 0) {
    for (int n = 0; n < 1024; ++n, ++i) {
      const std::uint32_t k = i % kRead;
      if constexpr (op == Op::is_healthy) {
        bool ok = t.is_healthy(handles[k]);
        benchmark::DoNotOptimize(ok);
      } else if constexpr (op == Op::get_state) {
        ht::ProviderState st = t.get_state(handles[k]);
        benchmark::DoNotOptimize(st);
      } else if constexpr (op == Op::latch_read) {
        htbench::RecordCopy copy;
        const int retries = htbench::read_record_counting(raw.body(slots[k]), copy);
        benchmark::DoNotOptimize(copy);
        if (retries < 0) {
          ++r.gave_up;
        } else {
          r.retries += static_cast<std::uint64_t>(retries);
          r.max_retries =
              std::max<std::uint64_t>(r.max_retries, static_cast<std::uint64_t>(retries));
        }
      } else {
        bool ok = f.rwlock.is_healthy(k);
        benchmark::DoNotOptimize(ok);
      }
    }
    r.reads += 1024;
  }
  r.seconds = since(t0);
  c.results[me] = r;
}

/// Providers tripped at the start of every experiment: 0..3 of the eight
/// the readers read, and every other one of the rest.
bool starts_tripped(std::uint32_t p) { return p < kRead ? p < kRead / 2 : p % 2 == 0; }

/// One writer update, alternating between a provider the readers read and
/// one they do not. Updates keep every provider's answer, so the readers see
/// the same mix of healthy and tripped providers at every rate and a rate's
/// figure differs from the no-writer one by the writes alone: a tripped
/// provider gets a failure (the window is re-armed to a new deadline, so the
/// hot word is stored every time), a healthy one a success (the record is
/// rewritten through the latch; the hot word does not change and the library
/// skips storing it).
struct UpdateStream {
  std::array<bool, kProviders> down{};
  std::uint64_t k = 0;

  void next(Op op) {
    Fixture& f = fixture();
    const auto p = static_cast<std::uint32_t>((k & 1) ? (k / 2) % kRead
                                                      : kRead + (k / 2) % (kProviders - kRead));
    ++k;
    if (op == Op::rwlock_is_healthy) {
      if (down[p])
        f.rwlock.mark_unhealthy(
            p, kReason, std::chrono::nanoseconds(60s).count() + static_cast<std::int64_t>(k));
      else
        f.rwlock.mark_healthy(p);
    } else {
      // A distinct deadline per update, whatever the coarse clock's tick.
      const ht::Instant now = ht::Instant::now() + std::chrono::nanoseconds(k);
      if (down[p])
        f.table.writer->mark_unhealthy(f.table.names[p], kReason, now);
      else
        f.table.writer->mark_healthy(f.table.names[p], now);
    }
  }
};

/// Writes for the duration at `rate` updates per second (0: none, -1: as
/// fast as possible); s.k counts the updates made.
void write_for(UpdateStream& s, Op op, long rate, std::chrono::nanoseconds duration) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto end = t0 + duration;
  if (rate == 0) {
    timespec ts{static_cast<time_t>(duration.count() / 1'000'000'000),
                static_cast<long>(duration.count() % 1'000'000'000)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    return;
  }
  if (rate < 0) {
    while (std::chrono::steady_clock::now() < end)
      for (int n = 0; n < 64; ++n)
        s.next(op);
    return;
  }
  // Absolute deadlines, so a late wake-up does not lower the rate.
  const std::int64_t period = 1'000'000'000 / rate;
  timespec next{};
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (std::chrono::steady_clock::now() < end) {
    s.next(op);
    next.tv_nsec += period;
    while (next.tv_nsec >= 1'000'000'000) {
      next.tv_nsec -= 1'000'000'000;
      ++next.tv_sec;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr) != 0) {
    }
  }
}

void experiment(benchmark::State& state, Op op, int readers, long rate) {
  Fixture& f = fixture();
  for (auto _ : state) {
    // Every experiment starts from the same state: half the providers, and
    // half of those the readers read, tripped (see UpdateStream).
    f.table.writer->reset();
    UpdateStream updates;
    for (std::uint32_t p = 0; p < kProviders; ++p) {
      f.rwlock.mark_healthy(p);
      if (starts_tripped(p)) {
        f.table.writer->mark_unhealthy(f.table.names[p], kReason);
        f.rwlock.mark_unhealthy(p, kReason, std::chrono::nanoseconds(60s).count());
        updates.down[p] = true;
      }
    }

    void* mem =
        mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      state.SkipWithError("mmap of the control block failed");
      return;
    }
    auto* c = new (mem) Control{};
    std::vector<pid_t> pids;
    for (int me = 0; me < readers; ++me) {
      const pid_t pid = fork();
      if (pid == 0) {
        int status = 0;
        try {
          switch (op) {
          case Op::is_healthy: read_until_stopped<Op::is_healthy>(*c, me); break;
          case Op::get_state: read_until_stopped<Op::get_state>(*c, me); break;
          case Op::latch_read: read_until_stopped<Op::latch_read>(*c, me); break;
          case Op::rwlock_is_healthy: read_until_stopped<Op::rwlock_is_healthy>(*c, me); break;
          }
        } catch (const std::exception& e) {
          std::fprintf(stderr, "reader %d: %s\n", me, e.what());
          status = 1;
        }
        _exit(status); // never run the parent's destructors (they remove segments)
      }
      if (pid < 0) {
        state.SkipWithError("fork failed");
        break;
      }
      pids.push_back(pid);
    }
    while (c->ready.load() < static_cast<int>(pids.size()))
      usleep(100);

    const auto t0 = std::chrono::steady_clock::now();
    c->go.store(1, std::memory_order_release);
    write_for(updates, op, rate, std::chrono::milliseconds(g_duration_ms));
    const double wrote_for = since(t0);
    c->stop.store(1, std::memory_order_relaxed);

    bool failed = false;
    for (const pid_t pid : pids) {
      int status = 0;
      waitpid(pid, &status, 0);
      failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    double per_reader_sum = 0, per_reader_min = 1e300, reads = 0, retries = 0, max_retries = 0,
           gave_up = 0, seconds = 0;
    for (std::size_t me = 0; me < pids.size(); ++me) {
      const ReaderResult& r = c->results[me];
      const double rate_me = r.seconds > 0 ? static_cast<double>(r.reads) / r.seconds : 0;
      per_reader_sum += rate_me;
      per_reader_min = std::min(per_reader_min, rate_me);
      reads += static_cast<double>(r.reads);
      retries += static_cast<double>(r.retries);
      max_retries = std::max(max_retries, static_cast<double>(r.max_retries));
      gave_up += static_cast<double>(r.gave_up);
      seconds = std::max(seconds, r.seconds);
    }
    munmap(mem, sizeof(Control));
    if (failed) {
      state.SkipWithError("a reader process failed");
      return;
    }
    state.SetIterationTime(seconds);
    const double k = static_cast<double>(pids.size());
    state.counters["readers"] = k;
    state.counters["reads_per_s_per_reader"] = per_reader_sum / k;
    state.counters["reads_per_s_slowest_reader"] = per_reader_min;
    state.counters["reads_per_s_all_readers"] = per_reader_sum;
    state.counters["ns_per_read"] = per_reader_sum > 0 ? 1e9 * k / per_reader_sum : 0;
    state.counters["writer_updates_per_s"] = static_cast<double>(updates.k) / wrote_for;
    if (op == Op::latch_read) {
      state.counters["retries_per_read"] = reads > 0 ? retries / reads : 0;
      state.counters["max_retries_one_read"] = max_retries;
      state.counters["reads_given_up"] = gave_up;
    }
  }
}

void register_all() {
  for (const Op op : {Op::is_healthy, Op::get_state, Op::latch_read, Op::rwlock_is_healthy})
    for (const long rate : {0L, 1000L, -1L})
      for (const int k : {1, 2, 4}) {
        const std::string name =
            std::string("processes/") + op_name(op) + "/readers:" + std::to_string(k) +
            "/updates_per_s:" + (rate < 0 ? std::string("max") : std::to_string(rate));
        benchmark::RegisterBenchmark(name.c_str(), experiment, op, k, rate)
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
}

} // namespace

int main(int argc, char** argv) {
  // Our one flag, taken out before Google Benchmark sees the rest.
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.rfind("--duration_ms=", 0) == 0)
      g_duration_ms = std::max(1, std::atoi(argv[i] + 14));
    else
      argv[out++] = argv[i];
  }
  argc = out;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("duration_ms", std::to_string(g_duration_ms));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
