// Handles that outlive their mapping, handles of names the table does not
// know yet, and readers in another time namespace.
//
// A handle points into a Table's private cell, which points into a mapping;
// create --force, destroy + create, grow and forget + reuse all move what
// it should read. These tests hold handles across each and check that
// answers follow within a generous bound (polling, never a sub-second
// assert) and that a handle never reports another provider's state. Run
// under ASan too (the asan preset), where a dangling read would abort.
#include "proc.hpp"

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

/// Polls `done` for up to 5 s.
bool eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

void trip(Writer& w, const std::string& name) {
  for (std::uint32_t i = 0; i < w.policy().failure_threshold; ++i)
    w.mark_unhealthy(name, "down on purpose");
}

std::uint32_t generation_of(const Writer& w, const std::string& name) {
  return w.table().get_state(name).value().generation;
}

} // namespace

TEST_CASE("handles: held across grow, forget + reuse, create --force and destroy + create, they "
          "follow the new table and never read another provider") {
  SegmentName seg("handles");
  CreateOptions o;
  o.capacity = 2;
  {
    auto w = Writer::create(seg.str(), o);
    w.add("groq");
    w.add("ollama");
  }
  const Table t = Table::open(seg.str());
  const Handle groq = t.handle("groq");
  const Handle ollama = t.handle("ollama");
  CHECK(t.is_healthy(groq));
  CHECK(t.get_state(groq).registered);

  {
    auto w = Writer::open(seg.str());
    // grow: the object is replaced by a larger one.
    trip(w, "groq");
    REQUIRE_FALSE(t.is_healthy(groq));
    w.grow(16);
    CHECK(eventually([&] { return t.info().capacity == 16; }));
    CHECK_FALSE(t.is_healthy(groq));
    CHECK(t.get_state(groq).name == "groq");
    CHECK_FALSE(t.get_state(groq).healthy);
    w.mark_healthy("groq");
    CHECK(eventually([&] { return t.is_healthy(groq); }));
    CHECK(t.get_state(groq).generation == generation_of(w, "groq"));

    // forget + reuse: ollama's slot goes to mistral, which is tripped.
    const std::uint32_t ollama_gen = generation_of(w, "ollama");
    const std::uint32_t ollama_slot = t.get_state(ollama).slot;
    w.forget("ollama");
    w.add("mistral");
    trip(w, "mistral");
    const auto mistral = *w.table().get_state("mistral");
    MESSAGE("ollama slot " << ollama_slot << ", mistral slot " << mistral.slot);
    CHECK(eventually([&] { return !t.get_state(ollama).registered; }));
    for (int i = 0; i < 1000; ++i) {
      const auto s = t.get_state(ollama);
      REQUIRE(s.name == "ollama");
      REQUIRE_FALSE(s.registered);
      REQUIRE(s.generation != mistral.generation);
      REQUIRE(t.is_healthy(ollama)); // unknown: healthy, not mistral's "down"
    }
    // ollama comes back with a new registration, and its handle follows.
    w.add("ollama");
    CHECK(eventually([&] { return t.get_state(ollama).registered; }));
    CHECK(t.get_state(ollama).generation != ollama_gen);
    CHECK(t.get_state(ollama).generation == generation_of(w, "ollama"));
  }

  // create --force: a new object, new registrations.
  {
    CreateOptions force;
    force.replace = true;
    auto w = Writer::create(seg.str(), force);
    trip(w, "groq");
    const std::uint32_t gen = generation_of(w, "groq");
    CHECK(eventually([&] { return !t.is_healthy(groq) && t.get_state(groq).generation == gen; }));
    CHECK(t.get_state(groq).name == "groq");
    CHECK(eventually([&] { return !t.get_state(ollama).registered; }));
    CHECK(t.is_healthy(ollama));
  }

  // destroy, then create: the handle answers "unknown" meanwhile and then
  // follows the new table (re-open retried every 250 ms while missing).
  Writer::destroy(seg.str());
  CHECK(eventually([&] { return t.is_healthy(groq) && !t.get_state(groq).registered; }));
  {
    auto w = Writer::create(seg.str());
    w.add("ollama");
    trip(w, "groq");
    const std::uint32_t gen = generation_of(w, "groq");
    CHECK(eventually([&] { return !t.is_healthy(groq) && t.get_state(groq).generation == gen; }));
    CHECK(eventually([&] { return t.get_state(ollama).registered; }));
    CHECK(t.get_state(ollama).generation == generation_of(w, "ollama"));
    CHECK(t.get_state(ollama).name == "ollama");
  }
  // And a handle of one Table is refused by another.
  auto other = Table::open(seg.str());
  CHECK(test::error_of([&] { (void)other.get_state(groq); }) == Errc::invalid_argument);
}

TEST_CASE("handles: a handle taken before its provider registers answers its real state after") {
  SegmentName seg("handles-late");
  auto w = Writer::create(seg.str());
  w.add("groq");
  auto t = Table::open(seg.str());
  const Handle late = t.handle("late");
  CHECK(t.is_healthy(late));
  CHECK_FALSE(t.get_state(late).registered);
  CHECK_FALSE(t.find("late").has_value());
  trip(w, "late");
  CHECK(eventually([&] { return !t.is_healthy(late); }));
  const auto s = t.get_state(late);
  CHECK(s.registered);
  CHECK(s.name == "late");
  CHECK_FALSE(s.healthy);
  CHECK(s.generation == generation_of(w, "late"));
  w.mark_healthy("late");
  CHECK(eventually([&] { return t.is_healthy(late); }));
}

TEST_CASE("handles: a reader in another time namespace answers like the host reader") {
  if (!test::kHealthctl) {
    MESSAGE("healthctl not built; skipped");
    return;
  }
  if (::access("/usr/bin/unshare", X_OK) != 0 || ::geteuid() != 0) {
    MESSAGE("no unshare or not root; skipped");
    return;
  }
  SegmentName seg("timens");
  CreateOptions o;
  o.policy.failure_threshold = 1;
  o.policy.backoff = 1h;
  auto w = Writer::create(seg.str(), o);
  w.mark_unhealthy("down", "window of an hour");
  w.set_policy(Policy{1, 0ns});
  w.mark_unhealthy("passed", "window already over"); // half-open: available
  w.mark_healthy("fine");
  struct Case {
    const char* provider;
    int want; // healthctl check's exit: 0 available, 1 not
  };
  const Case cases[] = {{"down", 1}, {"passed", 0}, {"fine", 0}, {"never-seen", 0}};
  int compared = 0;
  for (const auto& c : cases) {
    const auto host = test::run({test::kHealthctl, "check", seg.str(), c.provider, "--quiet"});
    CHECK_MESSAGE(host.status.code == c.want, "host check " << c.provider << ": " << host.out);
    for (const char* clock : {"--monotonic", "--boottime"}) {
      for (const char* offset : {"100000", "-1000"}) {
        // A negative monotonic offset may exceed the uptime: the kernel
        // refuses it, so the run is skipped rather than miscounted.
        const auto ns = test::run({"/usr/bin/unshare", "-T", "--fork", clock, offset,
                                   test::kHealthctl, "check", seg.str(), c.provider, "--quiet"});
        if (ns.out.find("unshare:") != std::string::npos) continue;
        CHECK_MESSAGE(ns.status.code == host.status.code,
                      "check " << c.provider << " under " << clock << " " << offset << ": "
                               << ns.status.describe() << " vs host " << host.status.describe()
                               << ": " << ns.out);
        ++compared;
      }
    }
  }
  CHECK(compared >= 8);
  MESSAGE(compared << " answers in a shifted time namespace compared with the host's");
}
