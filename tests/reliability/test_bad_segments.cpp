// Bad segments, each reached for real: an object in /dev/shm whose bytes are
// truncated, foreign, of another layout, with absurd sizes, hostile names or
// a sequence stuck odd. Each must give a typed Error with the right Errc (or,
// for images whose header is sound but whose contents are hostile, a clamped
// and bounded answer) -- never a crash, an out-of-bounds read (the asan
// build) or a hang.
//
// Also the byte-flip loop: random bytes of a live segment flipped in place,
// then Table::open + snapshot (+ Writer::open's repair, + `healthctl dump`).
#include "invariant.hpp"
#include "proc.hpp"

#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace healthtable;
using namespace std::chrono_literals;
using test::SegmentName;

namespace {

constexpr std::uint32_t kCap = 4;

/// A valid image of capacity kCap with three providers in different states,
/// made as table `src` itself (a v2 header names its table and instance, so
/// images are written back over the same object).
std::vector<std::uint8_t> golden_image(const SegmentName& src) {
  CreateOptions o;
  o.capacity = kCap;
  o.events = 16;
  o.policy.failure_threshold = 1;
  o.replace = true;
  auto w = Writer::create(src.str(), o);
  test::write_outcome(w, "ollama", w.table().get_state("ollama").value_or(ProviderState{}), false);
  w.add("groq");
  test::write_outcome(w, "groq", *w.table().get_state("groq"), true);
  w.add("together");
  w.set_override("together", Override::forced_down);
  return test::read_image(src.path());
}

template <class T> void put(std::vector<std::uint8_t>& img, std::size_t off, T v) {
  std::memcpy(img.data() + off, &v, sizeof v);
}

const Offsets kOff = offsets_for(kCap, 16);
std::size_t head_off(std::uint32_t i) {
  return static_cast<std::size_t>(kOff.heads) + i * sizeof(SlotHead);
}
std::size_t body_off(std::uint32_t i) {
  return static_cast<std::size_t>(kOff.bodies) + i * sizeof(SlotBody);
}

/// Every call the tools make on a table, bounded; nothing may escape but
/// healthtable::Error.
void exercise(const Table& t) {
  const auto info = t.info();
  CHECK(info.used <= info.capacity);
  const auto snap = t.snapshot(std::vector<std::string>{"ollama", "absent"});
  CHECK(snap.size() <= info.capacity + 2);
  for (const auto& s : snap) {
    CHECK(s.name.size() <= kProviderNameMax);
    if (s.last_error) CHECK(s.last_error->size() <= kReasonMax);
    if (!s.registered) continue;
    const auto h = t.find(s.name);
    if (h) {
      (void)t.is_healthy(*h);
      (void)t.get_state(*h);
    }
    (void)t.is_healthy(s.name);
  }
  (void)t.find("groq");
  (void)t.is_healthy("never-registered");
  (void)t.writer_status();
  (void)t.replaced();
}

struct Tally {
  int tried = 0;
  std::map<std::string, int> by_code;
};
Tally g_tally;

/// Writes `img` as segment `seg` and expects `code` from every way in.
void expect_error(const SegmentName& seg, const std::vector<std::uint8_t>& img, Errc code,
                  const char* what) {
  test::write_image(seg.path(), img);
  CAPTURE(what);
  CHECK(test::error_of([&] { (void)Table::open(seg.str()); }) == code);
  CHECK(test::error_of([&] { (void)Writer::open(seg.str()); }) == code);
  ++g_tally.tried;
  ++g_tally.by_code[std::string(errc_name(code))];
}

/// Writes `img`, expects it to open, and runs every reader call and the
/// writer's repair on it. Returns the repaired count.
std::uint32_t expect_bounded(const SegmentName& seg, const std::vector<std::uint8_t>& img,
                             const char* what) {
  test::write_image(seg.path(), img);
  CAPTURE(what);
  ++g_tally.tried;
  ++g_tally.by_code["opened, answers bounded"];
  const auto t0 = std::chrono::steady_clock::now();
  {
    auto t = Table::open(seg.str());
    exercise(t);
  }
  std::uint32_t repaired = 0;
  {
    auto w = Writer::open(seg.str());
    repaired = w.repaired();
    exercise(w.table());
    // After repair, the writer can write every registered provider.
    for (const auto& s : w.table().snapshot())
      if (!s.name.empty()) (void)test::error_of([&] { w.mark_healthy(s.name); });
    exercise(w.table());
  }
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  return repaired;
}

} // namespace

TEST_CASE("bad segments: empty, zeroed, truncated and extended objects") {
  SegmentName seg("bad-size");
  const auto good = golden_image(seg);
  REQUIRE(good.size() == kOff.total);
  {
    test::write_image(seg.path(), good);
    CHECK_NOTHROW(exercise(Table::open(seg.str())));
  }
  expect_error(seg, {}, Errc::not_ready, "size 0: a creator between shm_open and fallocate");
  expect_error(seg, std::vector<std::uint8_t>(good.size(), 0), Errc::not_ready,
               "all zeros: a creator that died before publishing the magic");
  auto unpublished = good;
  put<std::uint64_t>(unpublished, offsetof(Header, magic), 0);
  expect_error(seg, unpublished, Errc::not_ready, "complete but magic unpublished");
  for (std::size_t n :
       {std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{100}, sizeof(Header) - 1}) {
    expect_error(seg, std::vector<std::uint8_t>(good.begin(), good.begin() + static_cast<long>(n)),
                 Errc::corrupt, "truncated inside the header");
  }
  for (std::size_t n : {sizeof(Header), sizeof(Header) + 10,
                        static_cast<std::size_t>(kOff.heads) + 100, good.size() - 1}) {
    expect_error(seg, std::vector<std::uint8_t>(good.begin(), good.begin() + static_cast<long>(n)),
                 Errc::corrupt, "truncated after the header");
  }
  for (std::size_t extra : {std::size_t{1}, std::size_t{4096}}) {
    auto longer = good;
    longer.resize(good.size() + extra, 0);
    expect_error(seg, longer, Errc::corrupt, "longer than the header says");
  }
}

TEST_CASE("bad segments: foreign objects and wrong magic") {
  SegmentName seg("bad-magic");
  const auto good = golden_image(seg);
  for (std::size_t b = 0; b < 8; ++b) {
    auto img = good;
    img[b] ^= 0x20;
    expect_error(seg, img, Errc::not_a_table, "one magic byte flipped");
  }
  std::mt19937_64 rng(7);
  std::vector<std::uint8_t> garbage(good.size());
  for (auto& c : garbage)
    c = static_cast<std::uint8_t>(rng());
  expect_error(seg, garbage, Errc::not_a_table, "random bytes");
  std::vector<std::uint8_t> text(4096, ' ');
  const char* hello = "#!/bin/sh\necho this is not a health table\n";
  std::memcpy(text.data(), hello, std::strlen(hello));
  expect_error(seg, text, Errc::not_a_table, "a text file");
  expect_error(seg, std::vector<std::uint8_t>(hello, hello + 10), Errc::corrupt,
               "a tiny foreign file");
}

TEST_CASE("bad segments: another layout version or build") {
  SegmentName seg("bad-layout");
  const auto good = golden_image(seg);
  {
    // A v1 table: its layout_version (offset 16) says 1.
    auto img = good;
    put<std::uint32_t>(img, offsetof(Header, layout_version), 1);
    expect_error(seg, img, Errc::incompatible_layout, "layout v1");
    test::write_image(seg.path(), img);
    try {
      (void)Table::open(seg.str());
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK_MESSAGE(what.find("layout v1; this build reads v2") != std::string::npos, what);
    }
  }
  {
    auto img = good; // a v1 format stamp (its top 16 bits were the version)
    put<std::uint64_t>(img, offsetof(Header, format), std::uint64_t{1} << 48);
    expect_error(seg, img, Errc::incompatible_layout, "v1 format stamp");
  }
  {
    auto img = good;
    put<std::uint32_t>(img, offsetof(Header, layout_version), 3); // format still v2
    expect_error(seg, img, Errc::incompatible_layout, "version field bumped alone");
  }
  for (const std::uint64_t f :
       {format_stamp(3, sizeof(Header), sizeof(SlotHead), sizeof(SlotBody), sizeof(Event)),
        format_stamp(2, sizeof(Header), sizeof(SlotHead), sizeof(SlotBody) + 64, sizeof(Event)),
        format_stamp(2, sizeof(Header), sizeof(SlotHead) * 2, sizeof(SlotBody), sizeof(Event)),
        format_stamp(2, 512, sizeof(SlotHead), sizeof(SlotBody), sizeof(Event)),
        format_stamp(2, sizeof(Header), sizeof(SlotHead), sizeof(SlotBody), 128),
        std::uint64_t{0}, ~std::uint64_t{0}}) {
    auto img = good;
    put<std::uint64_t>(img, offsetof(Header, format), f);
    expect_error(seg, img, Errc::incompatible_layout, "format stamp of another build");
  }
  {
    // A bumped slot size in a header whose stamp says it too: "expected X,
    // found Y" names the slot sizes.
    auto img = good;
    put<std::uint32_t>(img, offsetof(Header, body_size), sizeof(SlotBody) + 64);
    put<std::uint64_t>(img, offsetof(Header, format),
                       format_stamp(2, sizeof(Header), sizeof(SlotHead), sizeof(SlotBody) + 64,
                                    sizeof(Event)));
    expect_error(seg, img, Errc::incompatible_layout, "slot size bumped");
    test::write_image(seg.path(), img);
    try {
      (void)Table::open(seg.str());
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("expected") != std::string::npos);
    }
  }
}

TEST_CASE("bad segments: absurd capacity, sizes and offsets") {
  SegmentName seg("bad-sizes");
  const auto good = golden_image(seg);
  struct Case {
    std::size_t off;
    std::uint64_t value;
    std::size_t width;
    const char* what;
  };
  const Case cases[] = {
      {offsetof(Header, header_size), 512, 4, "header_size 512"},
      {offsetof(Header, header_size), 0, 4, "header_size 0"},
      {offsetof(Header, head_size), 256, 4, "head_size 256"},
      {offsetof(Header, body_size), 0xFFFFFFFF, 4, "body_size 4G"},
      {offsetof(Header, event_size), 0, 4, "event_size 0"},
      {offsetof(Header, capacity), 0, 4, "capacity 0"},
      {offsetof(Header, capacity), 2, 4, "capacity 2 (offsets say 4)"},
      {offsetof(Header, capacity), kMaxCapacity + 1, 4, "capacity above the maximum"},
      {offsetof(Header, capacity), 0xFFFFFFFF, 4, "capacity 4G"},
      {offsetof(Header, index_size), 0, 4, "index_size 0"},
      {offsetof(Header, index_size), 17, 4, "index_size not a power of two"},
      {offsetof(Header, index_size), 1u << 31, 4, "index_size 2G"},
      {offsetof(Header, events_capacity), 0, 4, "events 0"},
      {offsetof(Header, events_capacity), 17, 4, "events not a power of two"},
      {offsetof(Header, events_capacity), 1u << 31, 4, "events 2G"},
      {offsetof(Header, total_size), 0, 8, "total_size 0"},
      {offsetof(Header, total_size), 1ULL << 62, 8, "total_size 4 EiB"},
      {offsetof(Header, total_size), kOff.total - 4096, 8, "total_size a page short"},
      {offsetof(Header, heads_offset), 0, 8, "heads_offset 0"},
      {offsetof(Header, bodies_offset), 1ULL << 40, 8, "bodies_offset beyond the object"},
      {offsetof(Header, events_offset), kOff.events + 8, 8, "events misaligned"},
      {offsetof(Header, index_offset), 0, 8, "index over the header"},
      {offsetof(Header, index_offset), ~0ULL, 8, "index_offset -1"},
      {offsetof(Header, name_len), 0xFFFFFFFF, 4, "name_len 4G"},
      {offsetof(Header, instance), 12345, 8, "instance of another object"},
  };
  for (const auto& c : cases) {
    auto img = good;
    if (c.width == 4)
      put<std::uint32_t>(img, c.off, static_cast<std::uint32_t>(c.value));
    else
      put<std::uint64_t>(img, c.off, c.value);
    expect_error(seg, img, Errc::corrupt, c.what);
  }
}

TEST_CASE("bad segments: hostile contents behind a sound header stay bounded") {
  SegmentName seg("bad-contents");
  const auto good = golden_image(seg);
  const std::size_t idx = static_cast<std::size_t>(kOff.index);
  const std::uint32_t index_n = index_size_for(kCap);
  {
    auto img = good;
    put<std::uint32_t>(img, offsetof(Header, used), 0xFFFFFFFF);
    put<std::uint32_t>(img, offsetof(Header, live), 0xFFFFFFFF);
    test::write_image(seg.path(), img);
    CHECK(Table::open(seg.str()).snapshot().size() <= kCap); // clamped to capacity
    expect_bounded(seg, img, "used and live 4G");
  }
  {
    auto img = good; // a name of 64 bytes with no NUL and a huge length
    std::memset(img.data() + head_off(0) + offsetof(SlotHead, name), 'A', 64);
    std::uint64_t ident;
    std::memcpy(&ident, img.data() + head_off(0) + offsetof(SlotHead, ident), 8);
    put<std::uint64_t>(img, head_off(0) + offsetof(SlotHead, ident), ident | 0xFF00);
    expect_bounded(seg, img, "unterminated name, name_len 255");
  }
  {
    auto img = good; // a name that is not UTF-8, and control characters
    const unsigned char bad[] = {0xFF, 0xFE, 0xC0, 0x80, '\n', 0x1b, '[', 'J'};
    std::memcpy(img.data() + head_off(1) + offsetof(SlotHead, name), bad, sizeof bad);
    expect_bounded(seg, img, "non-UTF-8 and control bytes in a name");
    if (test::kHealthctl) {
      test::write_image(seg.path(), img);
      for (const char* fmt : {"--json", "--expect=groq,x"}) {
        const auto r = test::run({test::kHealthctl, "dump", seg.str(), fmt});
        CHECK_MESSAGE(r.status.ok(),
                      "healthctl dump " << fmt << ": " << r.status.describe() << " " << r.out);
      }
    }
  }
  for (int copy = 0; copy < 2; ++copy) {
    auto img = good; // reason length 255 (> kReasonMax), note length 255, override 3
    const std::size_t rec = body_off(1) + offsetof(SlotBody, copy) + copy * sizeof(Record);
    std::uint64_t st;
    std::memcpy(&st, img.data() + rec, 8);
    st |= status::kReasonLenMask | status::kNoteLenMask | status::kHasError | status::kOverrideMask;
    put<std::uint64_t>(img, rec, st);
    std::memset(img.data() + rec + 8 * record_word::kReason, 0xFF, kReasonMax);
    if (copy == 1) put<std::uint64_t>(img, body_off(1) + offsetof(SlotBody, seq), 1);
    test::write_image(seg.path(), img);
    {
      const auto s = Table::open(seg.str()).get_state("groq");
      REQUIRE(s.has_value());
      REQUIRE(s->last_error.has_value());
      CHECK(s->last_error->size() == kReasonMax);     // clamped
      CHECK(s->override_mode == Override::automatic); // override bits 3: not a mode
    }
    CHECK(expect_bounded(seg, img, "reason length 255, override 3") >= 1);
  }
  {
    auto img = good; // an index with no empty entry, all out of range
    for (std::uint32_t i = 0; i < index_n; ++i)
      put<std::uint64_t>(img, idx + 8 * i, (std::uint64_t{i} << 32) | (kCap + 1 + i));
    test::write_image(seg.path(), img);
    {
      auto t = Table::open(seg.str());
      CHECK_FALSE(t.find("ollama").has_value()); // bounded probe, no match
      CHECK(t.is_healthy("ollama"));
    }
    expect_bounded(seg, img, "index full of out-of-range entries");
  }
  {
    auto img = good; // a registered slot missing from the index (writer died in add())
    for (std::uint32_t i = 0; i < index_n; ++i) {
      std::uint64_t e;
      std::memcpy(&e, img.data() + idx + 8 * i, 8);
      if (static_cast<std::uint32_t>(e) == 2) put<std::uint64_t>(img, idx + 8 * i, 0); // groq
    }
    test::write_image(seg.path(), img);
    CHECK_FALSE(Table::open(seg.str()).find("groq").has_value());
    CHECK(expect_bounded(seg, img, "slot in `used` but not in the index") >= 1);
    CHECK(Table::open(seg.str()).find("groq").has_value()); // repaired
  }
  {
    auto img = good; // header policy and state out of range
    put<std::uint64_t>(img, offsetof(Header, policy) + 8 * policy_word::kThresholds, 0);
    put<std::int64_t>(img, offsetof(Header, policy) + 8 * policy_word::kBackoff, -5);
    put<std::uint32_t>(img, offsetof(Header, state), 77);
    put<std::int64_t>(img, offsetof(Header, heartbeat_interval_ns), -1);
    test::write_image(seg.path(), img);
    CHECK(Table::open(seg.str()).info().state == SegmentState::live);
    {
      auto w = Writer::open(seg.str());
      CHECK(w.policy().failure_threshold == 1); // a corrupt header cannot disable tripping
      CHECK(w.policy().backoff.count() == 0);
    }
    expect_bounded(seg, img, "threshold 0, backoff -5, state 77");
  }
  {
    auto img = good; // hot words of every shape
    for (std::uint32_t i = 0; i < 3; ++i)
      put<std::uint64_t>(img, head_off(i),
                         i == 0 ? ~0ULL - 1 : (i == 1 ? 1 : 0x8000000000000000ULL));
    expect_bounded(seg, img, "odd hot words");
  }
  MESSAGE("bad inputs so far: " << g_tally.tried);
}

TEST_CASE("bad segments: a sequence stuck odd never blocks a reader, and is repaired") {
  SegmentName seg("bad-odd");
  const auto good = golden_image(seg);
  auto img = good;
  // A writer that died right after the odd store, having scribbled over
  // copy[0]: readers must use copy[1] without waiting.
  put<std::uint64_t>(img, body_off(1) + offsetof(SlotBody, seq), 0x7FFFFFFFFFFFFFFFULL);
  std::memset(img.data() + body_off(1) + offsetof(SlotBody, copy), 0xA5, sizeof(Record));
  test::write_image(seg.path(), img);
  {
    auto t = Table::open(seg.str());
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) {
      const auto s = t.get_state("groq");
      REQUIRE(s.has_value());
      CHECK(test::check_invariant(*s).empty());
      CHECK(s->failures == 1);
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 10s); // generous: busy machines
  }
  {
    auto w = Writer::open(seg.str());
    CHECK(w.repaired() == 1);
    CHECK(w.table().get_state("groq")->failures == 1);
  }
  test::RawMapping raw(seg.path());
  CHECK(raw.at<SlotBody>(body_off(1)).seq.load() % 2 == 0);
  ++g_tally.tried;
}

TEST_CASE("bad segments: byte flips of a live segment never crash a reader or the writer") {
  test::Watchdog dog(300);
  SegmentName seg("flip");
  CreateOptions o;
  o.capacity = 16;
  {
    auto w = Writer::create(seg.str(), o);
    for (int i = 0; i < 10; ++i) {
      const std::string name = "p" + std::to_string(i);
      for (int k = 0; k <= i % 4; ++k)
        test::write_outcome(w, name, w.table().get_state(name).value_or(ProviderState{}),
                            k % 2 == 0);
    }
    w.set_override("p3", Override::forced_up);
    w.heartbeat();
  }
  const auto golden = test::read_image(seg.path());
  test::RawMapping raw(seg.path());
  REQUIRE(raw.size() == golden.size());
  std::mt19937_64 rng(2024);
  std::map<std::string, int> outcomes;
  int tool_runs = 0;
  const int kIterations = 3000;
  for (int it = 0; it < kIterations; ++it) {
    // Half the flips land in the header, where every size lives.
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const std::size_t off = (rng() % 2) ? rng() % sizeof(Header) : rng() % raw.size();
      raw.base()[off] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    }
    const auto code = test::error_of([&] {
      auto t = Table::open(seg.str());
      exercise(t);
    });
    ++outcomes[code ? std::string(errc_name(*code)) : "opened"];
    if (it % 8 == 0) // the writer's repair over the same hostile bytes
      (void)test::error_of([&] {
        auto w = Writer::open(seg.str());
        exercise(w.table());
      });
    if (test::kHealthctl && it % 100 == 0) {
      for (const char* fmt : {"--json", ""}) {
        std::vector<std::string> argv = {test::kHealthctl, "dump", seg.str()};
        if (*fmt) argv.push_back(fmt);
        const auto r = test::run(argv);
        CHECK_MESSAGE(r.status.exited, "healthctl dump " << fmt << ": " << r.status.describe());
        CHECK_MESSAGE((r.status.code == 0 || (r.status.code >= 3 && r.status.code <= 15)),
                      "healthctl dump " << fmt << " exit " << r.status.code << ": " << r.out);
        ++tool_runs;
      }
    }
    // Back to the golden image for the next round, except every 50th round,
    // where the damage accumulates.
    if (it % 50 != 49) std::memcpy(raw.base(), golden.data(), golden.size());
  }
  std::memcpy(raw.base(), golden.data(), golden.size());
  CHECK_NOTHROW(exercise(Table::open(seg.str())));
  std::string summary;
  for (const auto& [k, v] : outcomes)
    summary += k + "=" + std::to_string(v) + " ";
  MESSAGE(kIterations << " flipped images: " << summary << "; healthctl dump runs " << tool_runs);
  CHECK(outcomes["opened"] > 0);
  CHECK(outcomes.size() >= 3); // the flips reached several checks
  g_tally.tried += kIterations;
}

// A backoff near the int64 limit, from the API or from a corrupted header,
// must neither overflow now + backoff (undefined behaviour; UBSan aborts)
// nor wrap the deadline negative. The fuzzer found it (fuzz/findings/
// backoff-overflow): the API now refuses more than kMaxBackoff, policy()
// caps what a header says, and the deadline saturates.
TEST_CASE("bad segments: a huge backoff neither overflows nor wraps the deadline") {
  SegmentName seg("backoff-max");
  const Instant now = Instant::now();
  {
    CreateOptions o;
    o.policy.backoff = std::chrono::nanoseconds::max();
    try {
      Writer::create(seg.str(), o);
      FAIL("a backoff of 292 years was accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_argument);
    }
    o.policy.backoff = kMaxBackoff;
    CHECK_NOTHROW(Writer::create(seg.str(), o));
  }
  {
    test::RawMapping raw(seg.path());
    raw.at<Header>(0).policy[policy_word::kBackoff].store(
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() - 5));
  }
  auto w = Writer::open(seg.str());
  CHECK(w.policy().backoff == kMaxBackoff);
  CHECK(w.mark_unhealthy("groq", "boom", now) == Transition::none); // threshold 2
  CHECK(w.mark_unhealthy("groq", "boom", now) == Transition::tripped);
  const auto s = *w.table().get_state("groq");
  CHECK(s.unhealthy_until_unix_ns == now.unix_ns + kMaxBackoff.count());
  CHECK(s.unhealthy_until_mono_ns == now.mono_ns + kMaxBackoff.count());
  CHECK_FALSE(w.table().is_healthy("groq", now.mono_ns + 3'600'000'000'000));
  // A caller's arbitrary `now` near the limit saturates instead of wrapping.
  const Instant late{std::numeric_limits<std::int64_t>::max() - 10,
                     std::numeric_limits<std::int64_t>::max() - 10};
  w.mark_unhealthy("groq", "again", late);
  CHECK(w.table().get_state("groq")->unhealthy_until_mono_ns ==
        std::numeric_limits<std::int64_t>::max());
}
