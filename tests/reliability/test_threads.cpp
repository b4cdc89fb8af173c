// Concurrency that ThreadSanitizer can see: a writer thread and reader
// threads on ONE mapping (the writer's own, via Writer::table()). TSan does
// not follow memory across processes, so the fork/kill tests live elsewhere
// (label `fork`); these run in every build, including `tsan`.
//
// The readers check an invariant that only a torn read breaks
// (invariant.hpp), in the style of rigtorp/Seqlock's fuzz test.
#include "invariant.hpp"

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

struct Counts {
  std::atomic<std::uint64_t> reads{0};
  std::atomic<std::uint64_t> busy{0}; // writer_busy: a live writer starved the reader
  std::atomic<std::uint64_t> torn{0};
  std::atomic<std::uint64_t> writes{0};
  std::atomic<bool> stop{false};
  std::string first_torn; // written once, by the thread that bumps torn to 1
};

} // namespace

TEST_CASE("threads: readers never see a torn record while a writer flaps states") {
  SegmentName seg("threads-torn");
  CreateOptions o;
  o.capacity = 8;
  o.policy.failure_threshold = 2;
  o.policy.backoff = 1s;
  auto w = Writer::create(seg.str(), o);
  const std::vector<std::string> names = {"ollama", "groq", "openrouter"};
  for (const auto& n : names)
    w.add(n);
  const Table& t = w.table(); // one mapping, so TSan sees both sides

  Counts c;
  auto reader = [&](bool use_snapshot) {
    std::vector<Handle> handles;
    for (const auto& n : names)
      handles.push_back(*t.find(n));
    while (!c.stop.load(std::memory_order_relaxed)) {
      try {
        std::vector<ProviderState> states;
        if (use_snapshot) {
          states = t.snapshot();
        } else {
          for (const auto& h : handles)
            states.push_back(t.get_state(h));
        }
        for (const auto& s : states) {
          const std::string why = test::check_invariant(s);
          if (!why.empty() && c.torn.fetch_add(1) == 0) c.first_torn = s.name + ": " + why;
        }
        c.reads.fetch_add(states.size(), std::memory_order_relaxed);
        // The hot path reads the same slots concurrently.
        for (const auto& h : handles)
          (void)t.is_healthy(h);
      } catch (const Error& e) {
        if (e.code() != Errc::writer_busy) throw;
        c.busy.fetch_add(1);
      }
    }
  };

  std::thread writer([&] {
    std::mt19937_64 rng(42);
    // Flap each provider: runs of failures (trips, re-arms) and successes,
    // with overrides toggled underneath, rewriting reasons of every length.
    while (!c.stop.load(std::memory_order_relaxed)) {
      const std::string& name = names[rng() % names.size()];
      const auto cur = *t.get_state(name);
      const auto r = rng() % 16;
      if (r == 0) {
        w.set_override(name, static_cast<Override>(rng() % 3));
      } else {
        test::write_outcome(w, name, cur, r < 10);
      }
      c.writes.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::vector<std::thread> readers;
  readers.emplace_back(reader, false);
  readers.emplace_back(reader, true);

  // Run for a second, but at least until both sides did real work (TSan is
  // slow), bounded at 20 s.
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 1s ||
         ((c.reads.load() < 2000 || c.writes.load() < 2000) &&
          std::chrono::steady_clock::now() - start < 20s))
    std::this_thread::sleep_for(10ms);
  c.stop = true;
  writer.join();
  for (auto& r : readers)
    r.join();

  MESSAGE("reads " << c.reads.load() << ", writes " << c.writes.load() << ", busy retries "
                   << c.busy.load());
  CHECK_MESSAGE(c.torn.load() == 0, c.first_torn);
  CHECK(c.reads.load() >= 2000);
  CHECK(c.writes.load() >= 2000);
  // Starvation is possible in principle but must stay the exception.
  CHECK(c.busy.load() * 100 <= c.reads.load());
  for (const auto& s : t.snapshot())
    CHECK(test::check_invariant(s).empty());
}

TEST_CASE("threads: registration is published whole (names, index, used) to concurrent readers") {
  SegmentName seg("threads-add");
  CreateOptions o;
  o.capacity = 512;
  auto w = Writer::create(seg.str(), o);
  const Table& t = w.table();
  const auto name_of = [](std::uint32_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "provider-%04u", i);
    return std::string(buf);
  };

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, checks{0};
  std::atomic<std::uint32_t> registered{0};
  auto reader = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      // Everything the writer finished registering must be findable, under
      // its own name, in its own slot.
      const std::uint32_t done = registered.load(std::memory_order_acquire);
      for (std::uint32_t i = done > 8 ? done - 8 : 0; i < done; ++i) {
        const auto h = t.find(name_of(i));
        if (!h) {
          bad.fetch_add(1);
          continue;
        }
        const auto st = t.get_state(*h);
        if (st.slot != i || st.name != name_of(i) || !st.registered) bad.fetch_add(1);
      }
      // A snapshot may include a slot whose index entry is not yet stored,
      // never a half-written name.
      const auto snap = t.snapshot();
      for (std::size_t i = 0; i < snap.size(); ++i)
        if (snap[i].name != name_of(static_cast<std::uint32_t>(i)) || !snap[i].healthy)
          bad.fetch_add(1);
      checks.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::vector<std::thread> readers;
  readers.emplace_back(reader);
  readers.emplace_back(reader);
  for (std::uint32_t i = 0; i < o.capacity; ++i) {
    w.add(name_of(i));
    registered.store(i + 1, std::memory_order_release);
    if (i % 32 == 0) std::this_thread::sleep_for(1ms); // let readers interleave
  }
  try {
    w.add("one-too-many");
    FAIL("a full table accepted a provider");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::table_full);
  }
  stop = true;
  for (auto& r : readers)
    r.join();
  MESSAGE("reader passes " << checks.load());
  CHECK(bad.load() == 0);
  CHECK(checks.load() > 0);
  CHECK(t.snapshot().size() == o.capacity);
}

TEST_CASE("threads: heartbeat and policy changes race readers of info() cleanly") {
  SegmentName seg("threads-hb");
  auto w = Writer::create(seg.str());
  w.set_heartbeat_interval(10ms);
  const Table& t = w.table();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, reads{0};
  std::thread reader([&] {
    std::int64_t last = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const auto i = t.info();
      if (i.heartbeat_mono_ns < last) bad.fetch_add(1); // never goes backwards
      last = i.heartbeat_mono_ns;
      if (i.failure_threshold < 1 || i.backoff_ns < 0) bad.fetch_add(1);
      (void)t.writer_status();
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  });
  Instant now = Instant::now();
  for (int k = 0; k < 2000 || (reads.load() < 100 && k < 10'000'000); ++k) {
    now += 1ms;
    w.heartbeat(now);
    w.set_policy(Policy{static_cast<std::uint32_t>(1 + k % 5), std::chrono::seconds(k % 7)});
  }
  stop = true;
  reader.join();
  CHECK(bad.load() == 0);
  CHECK(reads.load() > 0);
  CHECK(t.writer_status() == WriterStatus::attached);
}

TEST_CASE("threads: handles read while the writer forgets, re-registers and grows: a handle "
          "only ever reports its own provider") {
  SegmentName seg("threads-handles");
  CreateOptions o;
  o.capacity = 8;
  o.policy.failure_threshold = 1;
  o.policy.backoff = 1h;
  auto w = Writer::create(seg.str(), o);
  const std::vector<std::string> names = {"p0", "p1", "p2", "p3", "p4", "p5"};
  // Every failure names its provider in the reason, so a record of another
  // provider read through a handle is caught by its reason, not just by the
  // name the library copies from the handle.
  const auto reason_of = [](const std::string& n) { return "owner=" + n; };
  for (const auto& n : names)
    w.mark_unhealthy(n, reason_of(n));
  const Table& t = w.table();

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, bad{0}, writes{0};
  std::string first_bad;
  std::atomic<int> bad_once{0};
  auto reader = [&] {
    std::vector<Handle> handles;
    for (const auto& n : names)
      handles.push_back(t.handle(n));
    ProviderState st;
    while (!stop.load(std::memory_order_relaxed)) {
      for (const auto& h : handles) {
        (void)t.is_healthy(h);
        try {
          t.get_state(h, st);
        } catch (const Error& e) {
          if (e.code() == Errc::writer_busy) continue;
          throw;
        }
        const std::string want = reason_of(std::string(h.name()));
        const bool wrong = st.name != h.name() ||
                           (st.last_error && *st.last_error != want) ||
                           (!st.registered && (st.last_error || st.failures != 0));
        if (wrong) {
          bad.fetch_add(1);
          if (bad_once.fetch_add(1) == 0)
            first_bad = std::string(h.name()) + " read as name '" + st.name + "' error '" +
                        st.last_error.value_or("") + "'";
        }
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  std::vector<std::thread> readers;
  readers.emplace_back(reader);
  readers.emplace_back(reader);

  std::mt19937_64 rng(7);
  std::vector<bool> registered(names.size(), true);
  std::uint32_t cap = o.capacity;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t k = 0;; ++k) {
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed > 20s || (elapsed > 1s && k > 2000 && reads.load() > 2000)) break;
    const std::size_t i = rng() % names.size();
    const auto r = rng() % 10;
    if (r < 3) {
      if (registered[i]) w.forget(names[i]);
      else w.mark_unhealthy(names[i], reason_of(names[i]));
      registered[i] = !registered[i];
    } else if (r < 6) {
      w.mark_unhealthy(names[i], reason_of(names[i]));
      registered[i] = true;
    } else if (r < 9) {
      w.mark_healthy(names[i]);
      registered[i] = true;
    } else if (k % 31 == 0) {
      cap = cap == 8 ? 16 : 8;
      w.grow(cap);
    }
    writes.fetch_add(1, std::memory_order_relaxed);
  }
  stop = true;
  for (auto& th : readers)
    th.join();
  MESSAGE("reads " << reads.load() << ", writes " << writes.load() << ", capacity now " << cap);
  CHECK_MESSAGE(bad.load() == 0, first_bad);
  CHECK(reads.load() > 0);
  for (std::size_t i = 0; i < names.size(); ++i)
    CHECK(t.get_state(t.handle(names[i])).registered == registered[i]);
}
