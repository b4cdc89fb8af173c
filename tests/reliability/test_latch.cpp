// The latch, one store at a time.
//
// The crash test kills writers at random moments; a moment that matters
// (inside the ~50 stores of one update) is hit only now and then. This file
// removes the luck: it runs the writer's two slot write paths exactly as the
// writer runs them, publish_record() (an update: the latch, then the hot
// word) and repair_record() (what the next writer does to each slot a killed
// one left behind), on a slot in a write-protected page. Every store faults;
// the handler copies the slot as it is just BEFORE that store, opens the
// page, and single-steps the store (x86 trap flag) before closing it again.
// That yields every state the slot ever passes through, and each is checked
// as a reader would see it, and as the next writer would find it if the
// writer were killed right there:
//
//   - a reader's copy is always one whole record, the old or the new one,
//     never older after it was newer, and needs no retry (nobody is writing);
//     the hot word is the old or the new answer, never older after newer;
//   - repairing any of those states keeps exactly the record readers see, at
//     every one of ITS stores too, and ends with seq even, both copies
//     equal and the hot word derived from the record;
//   - a repair killed at any store, repaired again, still keeps it.
//
// What it checks is the order of the stores. The memory orders (fences,
// acquire/release) are argued in docs/memory-ordering.md and exercised by
// the threaded tests under TSan; a frozen image cannot test them.
//
// x86-64 only (the trap flag); on other machines this file registers no case.
#include "record.hpp" // lib/src: the latch itself

#include <healthtable/layout.hpp>

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

using namespace healthtable;
using detail::RecordValue;

namespace {

constexpr std::size_t kWords = sizeof(Record) / 8;
/// One v2 slot: its head (the hot word) and its body (the latch and the two
/// copies), side by side in one page so that every store of both is traced.
struct Slot {
  SlotHead head;
  SlotBody body;
};
static_assert(sizeof(Slot) <= 4096);
using Image = std::array<unsigned char, sizeof(Slot)>;

#if defined(__x86_64__)
#define HEALTHTABLE_LATCH_TRACE 1

constexpr unsigned long long kTrapFlag = 0x100; // EFLAGS.TF

// Signal-handler state. The faults are synchronous (our own stores), so the
// handler may use the pre-reserved vector.
unsigned char* g_page = nullptr;
std::size_t g_page_size = 0;
std::vector<Image>* g_images = nullptr;

void on_segv(int, siginfo_t* si, void* ctx) {
  auto* addr = static_cast<unsigned char*>(si->si_addr);
  if (g_page == nullptr || addr < g_page || addr >= g_page + g_page_size) {
    ::signal(SIGSEGV, SIG_DFL); // not ours: fault again, and crash for real
    return;
  }
  Image img;
  std::memcpy(img.data(), g_page, sizeof(Slot));
  g_images->push_back(img);
  ::mprotect(g_page, g_page_size, PROT_READ | PROT_WRITE);
  static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_EFL] |= kTrapFlag;
}

void on_trap(int, siginfo_t*, void* ctx) {
  static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_EFL] &= ~kTrapFlag;
  ::mprotect(g_page, g_page_size, PROT_READ);
}

/// A Slot alone in a page that can be write-protected.
class TracedSlot {
public:
  TracedSlot() {
    size_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    page_ = static_cast<unsigned char*>(p);
    slot_ = new (page_) Slot{};
  }
  ~TracedSlot() { ::munmap(page_, size_); }
  TracedSlot(const TracedSlot&) = delete;
  TracedSlot& operator=(const TracedSlot&) = delete;

  Slot& slot() noexcept { return *slot_; }
  void load(const Image& img) { std::memcpy(static_cast<void*>(slot_), img.data(), img.size()); }

  /// Runs f() on the slot and returns the slot's image before each of its
  /// stores, followed by the final image.
  template <class F> std::vector<Image> trace(F&& f) {
    std::vector<Image> images;
    images.reserve(4 * kWords + 16);
    struct sigaction sa {
    }, old_segv{}, old_trap{};
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_segv;
    ::sigaction(SIGSEGV, &sa, &old_segv);
    sa.sa_sigaction = on_trap;
    ::sigaction(SIGTRAP, &sa, &old_trap);
    g_page = page_;
    g_page_size = size_;
    g_images = &images;
    ::mprotect(page_, size_, PROT_READ);
    f(*slot_);
    ::mprotect(page_, size_, PROT_READ | PROT_WRITE);
    g_page = nullptr;
    g_images = nullptr;
    ::sigaction(SIGSEGV, &old_segv, nullptr);
    ::sigaction(SIGTRAP, &old_trap, nullptr);
    Image last;
    std::memcpy(last.data(), page_, sizeof(Slot));
    images.push_back(last);
    return images;
  }

private:
  unsigned char* page_ = nullptr;
  std::size_t size_ = 0;
  Slot* slot_ = nullptr;
};
#endif

/// A record whose every word differs from any other record made here, so a
/// copy mixing two records is told apart from both. Its status is sound
/// (no reason length, so repair keeps it as it is): healthy unless
/// `tripped`, and then its hot word is the unhealthy_until_mono_ns word.
RecordValue record(std::uint64_t tag, bool tripped = false) {
  RecordValue v;
  auto* w = reinterpret_cast<std::uint64_t*>(&v);
  for (std::size_t i = 0; i < kWords; ++i)
    w[i] = (tag << 32) | (i + 1);
  v.at(record_word::kStatus) = (tag << status::kFailuresShift) | (tripped ? 0 : status::kHealthy);
  return v;
}

bool same(const RecordValue& a, const RecordValue& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

const Slot& as_slot(const Image& img) {
  return *std::launder(reinterpret_cast<const Slot*>(img.data()));
}

/// What a reader gets from the slot image: the record, and whether it came
/// whole at the first try (no one writes a frozen image, so it must).
struct View {
  RecordValue v;
  bool first_try = false;
};

View read_view(const Image& img) {
  alignas(Slot) Image copy = img; // aligned, as the atomics need
  View out;
  int retries = -1;
  out.first_try = detail::read_record(as_slot(copy).body, out.v, &retries) && retries == 0;
  return out;
}

std::uint64_t hot_word(const Image& img) {
  alignas(Slot) Image copy = img;
  return as_slot(copy).head.word.load();
}

/// Whether the slot is as a completed update of `want` leaves it.
bool settled(const Image& img, const RecordValue& want) {
  alignas(Slot) Image copy = img;
  const Slot& s = as_slot(copy);
  RecordValue c0, c1;
  detail::load_record(s.body.copy[0], c0);
  detail::load_record(s.body.copy[1], c1);
  return s.body.seq.load() % 2 == 0 && same(c0, want) && same(c1, want) &&
         s.head.word.load() == want.word();
}

/// A slot holding `v` the way a completed update leaves it.
void put(Slot& s, const RecordValue& v, std::uint64_t seq) {
  s.body.seq.store(seq);
  detail::store_record(s.body.copy[0], v);
  detail::store_record(s.body.copy[1], v);
  s.head.word.store(v.word());
}

} // namespace

#ifdef HEALTHTABLE_LATCH_TRACE

TEST_CASE("latch: at every store of an update, readers get the old or the new record, whole") {
  const RecordValue a = record(0xA), b = record(0xB, /*tripped=*/true);
  REQUIRE(a.word() != b.word());
  TracedSlot t;
  put(t.slot(), a, 40);
  const auto images = t.trace([&](Slot& s) { detail::publish_record(s.head, s.body, b); });

  // Two seq stores, two full copies, then the hot word: nothing skipped,
  // nothing extra.
  CHECK(images.size() == 2 * kWords + 2 + 1 + 1);
  bool seen_new = false, hot_new = false;
  int as_old = 0, as_new = 0;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const View r = read_view(images[i]);
    CHECK_MESSAGE(r.first_try, "store " << i);
    const bool is_a = same(r.v, a), is_b = same(r.v, b);
    CHECK_MESSAGE((is_a || is_b), "store " << i << ": a reader got a torn record");
    CHECK_MESSAGE(!(seen_new && is_a), "store " << i << ": the old record came back");
    seen_new = seen_new || is_b;
    (is_a ? as_old : as_new) += is_a || is_b;
    // is_healthy()'s word: the old answer, then the new one, set last.
    const std::uint64_t hot = hot_word(images[i]);
    CHECK_MESSAGE((hot == a.word() || hot == b.word()), "store " << i);
    CHECK_MESSAGE(!(hot_new && hot == a.word()), "store " << i);
    hot_new = hot_new || hot == b.word();
    CHECK_MESSAGE(!(hot == b.word() && !is_b), "store " << i << ": hot word before record");
  }
  CHECK(settled(images.back(), b));
  MESSAGE((images.size() - 1) << " stores: readers saw the old record at " << as_old
                              << " states, the new one at " << as_new);
  CHECK(as_old > 0);
  CHECK(as_new > 0);
}

TEST_CASE("latch: repairing a writer killed at any store keeps what readers see, at every store") {
  const RecordValue a = record(0xA), b = record(0xB, /*tripped=*/true);
  TracedSlot t;
  put(t.slot(), a, 40);
  const auto killed_at = t.trace([&](Slot& s) { detail::publish_record(s.head, s.body, b); });

  std::size_t repair_stores = 0, rerepaired = 0, changed = 0;
  for (std::size_t k = 0; k < killed_at.size(); ++k) {
    const RecordValue seen = read_view(killed_at[k]).v;
    const std::uint64_t hot_before = hot_word(killed_at[k]);
    // The next writer repairs the slot the killed one left ...
    t.load(killed_at[k]);
    bool did = false;
    const auto steps = t.trace([&](Slot& s) { did = detail::repair_record(s.head, s.body); });
    changed += did;
    CHECK_MESSAGE(did == !settled(killed_at[k], seen), "killed at store " << k);
    // ... and at none of its own stores does a reader see anything else.
    for (std::size_t j = 0; j < steps.size(); ++j) {
      const View r = read_view(steps[j]);
      CHECK_MESSAGE(r.first_try, "killed at " << k << ", repair store " << j);
      CHECK_MESSAGE(same(r.v, seen), "killed at " << k << ", repair store " << j
                                                  << ": readers were moved off their record");
      const std::uint64_t hot = hot_word(steps[j]);
      CHECK_MESSAGE((hot == hot_before || hot == seen.word()),
                    "killed at " << k << ", repair store " << j);
    }
    CHECK_MESSAGE(settled(steps.back(), seen), "killed at store " << k);
    repair_stores += steps.size() - 1;
    // A repair killed at any of its stores, repaired again by the writer
    // after it, still ends on the same record.
    for (std::size_t j = 0; j + 1 < steps.size(); ++j) {
      t.load(steps[j]);
      detail::repair_record(t.slot().head, t.slot().body);
      Image after;
      std::memcpy(after.data(), &t.slot(), sizeof(Slot));
      CHECK_MESSAGE(settled(after, seen), "killed at " << k << ", repair killed at " << j);
      ++rerepaired;
    }
  }
  MESSAGE(killed_at.size() << " kill points, " << changed << " needed repair; " << repair_stores
                           << " repair stores checked; " << rerepaired
                           << " repairs killed and redone");
  // The first and last states are whole already; every one between is not.
  CHECK(changed == killed_at.size() - 2);
  CHECK(repair_stores > killed_at.size());
}

TEST_CASE("latch: a repaired slot takes the next update cleanly") {
  // Kill the writer of b at every store, repair, then publish c: readers
  // see the repaired record, then c, and never a mix.
  const RecordValue a = record(0xA), b = record(0xB, true), c = record(0xC);
  TracedSlot t;
  put(t.slot(), a, 6);
  const auto killed_at = t.trace([&](Slot& s) { detail::publish_record(s.head, s.body, b); });
  for (std::size_t k = 0; k < killed_at.size(); ++k) {
    const RecordValue seen = read_view(killed_at[k]).v;
    t.load(killed_at[k]);
    detail::repair_record(t.slot().head, t.slot().body);
    const auto steps = t.trace([&](Slot& s) { detail::publish_record(s.head, s.body, c); });
    bool seen_c = false;
    for (std::size_t j = 0; j < steps.size(); ++j) {
      const View r = read_view(steps[j]);
      const bool old = same(r.v, seen), now = same(r.v, c);
      CHECK_MESSAGE((old || now), "killed at " << k << ", next update store " << j);
      CHECK_MESSAGE(!(seen_c && old), "killed at " << k << ", next update store " << j);
      seen_c = seen_c || now;
    }
    CHECK(settled(steps.back(), c));
  }
}

#endif // HEALTHTABLE_LATCH_TRACE
