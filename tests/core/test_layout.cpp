// The layout is an ABI: these tests pin it from the outside, reading the raw
// bytes of a real segment the way a reader in another language would, so a
// change to the structs that forgets docs/layout.md fails here.
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <vector>

using namespace healthtable;
using test::SegmentName;

namespace {

std::vector<unsigned char> raw_bytes(const SegmentName& seg) {
  std::ifstream in(seg.path(), std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class T> T at(const std::vector<unsigned char>& b, std::size_t off) {
  T v;
  REQUIRE(off + sizeof(T) <= b.size());
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

} // namespace

TEST_CASE("layout: the format stamp is pinned") {
  CHECK(kLayoutVersion == 1);
  CHECK(kFormat == 0x0001'0100'0200'3F78ULL);
  CHECK(format_stamp(1, 256, 512, 63, 120) == kFormat);
  CHECK(kMagic == 0x014C425448544C48ULL);
}

TEST_CASE("layout: sizes for a capacity") {
  CHECK(index_size_for(1) == 16);
  CHECK(index_size_for(8) == 16);
  CHECK(index_size_for(9) == 32);
  CHECK(index_size_for(64) == 128);
  CHECK(index_size_for(4096) == 8192);
  CHECK(slots_offset_for(64) == 256 + 128 * 4);
  CHECK(total_size_for(64) == 768 + 64 * 512);
  CHECK(total_size_for(kMaxCapacity) == 256 + 131072 * 4 + 65536ULL * 512);
}

TEST_CASE("layout: the name hash is pinned (docs/layout.md gives the algorithm)") {
  static_assert(name_hash("groq", 4) != 0, "usable in constant expressions");
  CHECK(name_hash("", 0) == 0x90f8749b0fb13233ULL);
  CHECK(name_hash("a", 1) == 0xc6b923bbf03cbc93ULL);
  CHECK(name_hash("foobar", 6) == 0xc09b9137e0eb6c23ULL);
  const std::string long_name = "openrouter/anthropic/claude-3.5-sonnet:beta"; // 5 words + tail
  CHECK(name_hash(long_name.data(), long_name.size()) == 0xcb9fe91edfa16562ULL);
  // The tail is zero-padded, but the length is folded in: "a" != "a\0".
  CHECK(name_hash("a\0", 2) != name_hash("a", 1));
}

namespace {
/// docs/layout.md's name hash, word by word from single bytes: the
/// reference that the library's load-based version must equal.
std::uint64_t reference_name_hash(const unsigned char* p, std::size_t n) {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t w = 0;
    for (std::size_t k = 0; k < 8 && i + k < n; ++k)
      w |= std::uint64_t{p[i + k]} << (8 * k);
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 32;
  }
  h *= 0xC4CEB9FE1A85EC53ULL;
  return h ^ (h >> 29);
}
} // namespace

TEST_CASE("layout: the name hash's fast tail loads give the documented hash, for every length") {
  // Each name sits in a heap block of exactly its size, so a load past its
  // end (the tail is read with overlapping loads) is an ASan error.
  std::mt19937_64 rng(7);
  int names = 0;
  for (std::size_t n = 1; n <= 80; ++n) {
    for (int round = 0; round < 50; ++round) {
      const auto p = std::make_unique<unsigned char[]>(n);
      for (std::size_t k = 0; k < n; ++k) // every byte value, NUL and >= 0x80 too
        p[k] = static_cast<unsigned char>(round == 0 ? 'a' + k % 26 : rng());
      const char* c = reinterpret_cast<const char*>(p.get());
      REQUIRE_MESSAGE(name_hash(c, n) == reference_name_hash(p.get(), n),
                      "length " << n << " round " << round);
      ++names;
    }
  }
  CHECK(names == 80 * 50);
  // And the compile-time path (byte loads) agrees with both.
  constexpr std::uint64_t at_compile_time = name_hash("groq-llama-3.1-70b", 18);
  CHECK(name_hash(std::string("groq-llama-3.1-70b").c_str(), 18) == at_compile_time);
}

TEST_CASE("layout: a real segment's bytes at the documented offsets") {
  SegmentName seg("bytes");
  CreateOptions o;
  o.capacity = 9;
  o.policy.failure_threshold = 3;
  o.policy.backoff = std::chrono::seconds(7);
  auto w = Writer::create(seg.str(), o);
  w.set_heartbeat_interval(std::chrono::seconds(2));
  const Instant now{5'000'000'000, 1'700'000'000'000'000'000};
  for (int i = 0; i < 3; ++i)
    w.mark_unhealthy("groq", "http 503", now);
  w.set_override("ollama", Override::forced_down);

  const auto b = raw_bytes(seg);
  REQUIRE(b.size() == total_size_for(9));
  CHECK(std::memcmp(b.data(), "HLTHTBL\x01", 8) == 0);
  CHECK(at<std::uint64_t>(b, 8) == kFormat);
  CHECK(at<std::uint32_t>(b, 16) == 1);   // layout_version
  CHECK(at<std::uint32_t>(b, 20) == 256); // header_size
  CHECK(at<std::uint32_t>(b, 24) == 512); // slot_size
  CHECK(at<std::uint32_t>(b, 28) == 9);   // capacity
  CHECK(at<std::uint32_t>(b, 32) == 32);  // index_size
  CHECK(at<std::uint64_t>(b, 40) == b.size());
  const auto slots = at<std::uint64_t>(b, 48);
  CHECK(slots == 384);
  CHECK(at<std::uint64_t>(b, 56) == 256); // index_offset
  CHECK(at<std::uint32_t>(b, 72) == 3);   // failure_threshold
  CHECK(at<std::uint32_t>(b, 76) == 1);   // state: live
  CHECK(at<std::int64_t>(b, 80) == 7'000'000'000);
  CHECK(at<std::uint32_t>(b, 96) == 2); // used
  CHECK(at<std::int64_t>(b, 128) == ::getpid());
  CHECK(at<std::int64_t>(b, 168) == 2'000'000'000); // heartbeat_interval_ns

  // Slot 0: groq, tripped until now + 7 s.
  CHECK(at<std::uint64_t>(b, slots + 0) == 12'000'000'000ULL); // down_until
  CHECK(at<std::uint64_t>(b, slots + 8) == name_hash("groq", 4));
  CHECK(at<std::uint32_t>(b, slots + 16) == 4);
  CHECK(std::memcmp(b.data() + slots + 64, "groq\0", 5) == 0);
  const auto seq = at<std::uint64_t>(b, slots + 128);
  CHECK(seq % 2 == 0);
  for (const std::size_t copy : {slots + 136, slots + 136 + 176}) {
    const auto status = at<std::uint64_t>(b, copy);
    CHECK((status & 1) == 0);                    // healthy flag off
    CHECK((status >> 32) == 3);                  // consecutive failures
    CHECK(((status >> 8) & 0xFF) == 8);          // reason length
    CHECK((status & (1 << 16)) != 0);            // has error
    CHECK(at<std::uint64_t>(b, copy + 8) == 1);  // transitions
    CHECK(at<std::uint64_t>(b, copy + 24) == 3); // failures
    CHECK(at<std::int64_t>(b, copy + 32) == now.unix_ns);
    CHECK(at<std::int64_t>(b, copy + 40) == now.unix_ns + 7'000'000'000);
    CHECK(at<std::int64_t>(b, copy + 48) == now.mono_ns + 7'000'000'000);
    CHECK(std::memcmp(b.data() + copy + 56, "http 503", 8) == 0);
  }
  // Slot 1: ollama, forced down.
  CHECK(at<std::uint64_t>(b, slots + 512) == kForcedDownWord);
  CHECK(((at<std::uint64_t>(b, slots + 512 + 136) >> 1) & 3) == 1);

  // The index: each name's entry (slot + 1) is on its linear-probe path.
  for (const auto& [name, slot] : {std::pair{std::string("groq"), 0u}, {"ollama", 1u}}) {
    std::uint64_t h = name_hash(name.data(), name.size());
    bool found = false;
    for (std::uint32_t i = 0; i < 32 && !found; ++i, ++h) {
      const auto e = at<std::uint32_t>(b, 256 + (h & 31) * 4);
      if (e == 0) break;
      found = e == slot + 1;
    }
    CHECK_MESSAGE(found, name);
  }
}

TEST_CASE("layout: a healthy provider's hot word is 0 and a tripped one's is its deadline") {
  SegmentName seg("hot");
  auto w = Writer::create(seg.str());
  const Instant now{9'000'000'000, 1'700'000'000'000'000'000};
  w.mark_healthy("a", now);
  auto t = Table::open(seg.str());
  const auto h = t.find("a");
  REQUIRE(h.has_value());
  CHECK(t.is_healthy(*h, 0)); // word 0: no clock needed, any time is healthy
  w.mark_unhealthy("a", "x", now);
  w.mark_unhealthy("a", "x", now);
  CHECK_FALSE(t.is_healthy(*h, now.mono_ns + 59'999'999'999));
  CHECK(t.is_healthy(*h, now.mono_ns + 60'000'000'000));
}
