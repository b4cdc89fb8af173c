// The layout is an ABI: these tests pin v2 from the outside, reading the raw
// bytes of a real table the way a reader in another language would, so a
// change to the structs that forgets docs/layout.md fails here.
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
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

std::uint64_t hash_of(const std::string& s) { return name_hash(s.data(), s.size()); }

} // namespace

TEST_CASE("layout: the format stamp and magic are pinned") {
  CHECK(kLayoutVersion == 2);
  CHECK(kFormat == 0x0210'0211'043F'7840ULL);
  CHECK(format_stamp(2, 1024, 128, 1088, 256) == kFormat);
  CHECK(kMagic == 0x014C425448544C48ULL);
}

TEST_CASE("layout: sizes and offsets for a capacity") {
  CHECK(index_size_for(1) == 8);
  CHECK(index_size_for(4) == 8);
  CHECK(index_size_for(5) == 16);
  CHECK(index_size_for(9) == 32);
  CHECK(index_size_for(64) == 128);
  CHECK(events_size_for(1) == 16);
  CHECK(events_size_for(1000) == 1024);
  const Offsets o = offsets_for(64, 1024);
  CHECK(o.index == 1024);
  CHECK(o.heads == 2048);
  CHECK(o.bodies == 2048 + 64 * 128);
  CHECK(o.events == 10240 + 64 * 1088);
  CHECK(o.total == 344064);
  CHECK(offsets_for(9, 16).total == 16384);
}

TEST_CASE("layout: the name hash test vectors of docs/layout.md") {
  CHECK(hash_of("") == 0xf4ac98f3295b8dc1ULL);
  CHECK(hash_of("a") == 0x34e746915e8fed25ULL);
  CHECK(hash_of("groq") == 0x109c1abc7fb59f06ULL);
  CHECK(hash_of("ollama") == 0x6027ab24d512453aULL);
  CHECK(hash_of("abcdefgh") == 0xeef11c1abfeb5493ULL);
  CHECK(hash_of("abcdefghijklmnop") == 0x59c1ba569695019cULL);
  CHECK(hash_of("abcdefghijklmnopq") == 0x1c76d5188ed95803ULL);
  CHECK(hash_of("openrouter/anthropic/claude-3.5-sonnet:beta") == 0xba2c00472d620fa4ULL);
  CHECK(hash_of(std::string("123456789012345678901234567890123456789012345678901234567890123")) ==
        0x0fe54919f46d1366ULL);
  // The compile-time path (byte loads) gives the same hash.
  static_assert(name_hash("groq", 4) == 0x109c1abc7fb59f06ULL);
}

TEST_CASE("layout: a real table's bytes at the documented offsets") {
  SegmentName seg("bytes");
  CreateOptions o;
  o.capacity = 9;
  o.events = 16;
  o.policy.failure_threshold = 3;
  o.policy.backoff = std::chrono::seconds(7);
  auto w = Writer::create(seg.str(), o);
  w.set_heartbeat_interval(std::chrono::seconds(2));
  const Instant now{5'000'000'000, 1'700'000'000'000'000'000};
  for (int i = 0; i < 3; ++i)
    w.mark_unhealthy("groq", "http 503", now);
  w.set_override("ollama", Override::forced_down);

  const auto b = raw_bytes(seg);
  REQUIRE(b.size() == 16384);
  CHECK(std::memcmp(b.data(), "HLTHTBL\x01", 8) == 0);
  CHECK(at<std::uint64_t>(b, 8) == 0x0210'0211'043F'7840ULL);
  CHECK(at<std::uint32_t>(b, 16) == 2);    // layout_version
  CHECK(at<std::uint32_t>(b, 20) == 1024); // header_size
  CHECK(at<std::uint32_t>(b, 24) == 128);  // head_size
  CHECK(at<std::uint32_t>(b, 28) == 1088); // body_size
  CHECK(at<std::uint32_t>(b, 32) == 256);  // event_size
  CHECK(at<std::uint32_t>(b, 36) == 9);    // capacity
  CHECK(at<std::uint32_t>(b, 40) == 32);   // index_size
  CHECK(at<std::uint32_t>(b, 44) == 16);   // events_capacity
  CHECK(at<std::uint64_t>(b, 48) == b.size());
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(at<std::uint64_t>(b, 56)));
  CHECK(seg.path() == "/dev/shm/healthtable." + seg.str() + "." + id); // instance
  const auto index = at<std::uint64_t>(b, 64);
  const auto heads = at<std::uint64_t>(b, 72);
  const auto bodies = at<std::uint64_t>(b, 80);
  CHECK(index == 1024);
  CHECK(heads == 1280);
  CHECK(bodies == 1280 + 9 * 128);
  CHECK(at<std::uint64_t>(b, 88) == bodies + 9 * 1088); // events_offset
  CHECK(at<std::uint32_t>(b, 104) == ::geteuid());       // owner_uid
  CHECK(at<std::uint32_t>(b, 108) == seg.str().size());  // name_len
  CHECK(std::memcmp(b.data() + 128, seg.str().data(), seg.str().size()) == 0);
  CHECK(at<std::uint32_t>(b, 384) == 1); // state: live
  CHECK(at<std::uint32_t>(b, 392) == 2); // used
  CHECK(at<std::uint32_t>(b, 396) == 2); // live
  CHECK(at<std::uint64_t>(b, 400) == 2); // registrations
  CHECK(at<std::int64_t>(b, 448) == ::getpid());
  CHECK(at<std::int64_t>(b, 480) == 2'000'000'000); // heartbeat_interval_ns
  CHECK(at<std::uint64_t>(b, 488) == 4);            // updates
  CHECK(at<std::uint64_t>(b, 512) >= 3);            // events_head: 2 registered, tripped, ...
  CHECK((at<std::uint64_t>(b, 576) & 0xFFFFFFFF) == 3); // policy: failure_threshold
  CHECK(at<std::uint64_t>(b, 576 + 16) == 7'000'000'000ULL);

  // Slot 0: groq, tripped until now + 7 s, as a deadline in milliseconds.
  const auto ident = at<std::uint64_t>(b, heads + 8);
  const auto gen = static_cast<std::uint32_t>(ident >> 32);
  CHECK(gen != 0);
  CHECK((ident & 1) == 0);           // not busy
  CHECK(((ident >> 8) & 0xFF) == 4); // name_len
  CHECK(at<std::uint64_t>(b, heads) == (std::uint64_t{gen & 0xFFFFFF} << 40 | 12'000));
  CHECK(std::memcmp(b.data() + heads + 16, "groq\0\0\0\0", 8) == 0);
  const auto seq = at<std::uint64_t>(b, bodies);
  CHECK(seq % 2 == 0);
  for (const std::size_t copy : {bodies + 64, bodies + 64 + 512}) {
    const auto status = at<std::uint64_t>(b, copy);
    CHECK((status & 1) == 0);              // healthy flag off
    CHECK((status >> 32) == 3);            // consecutive failures
    CHECK(((status >> 8) & 0xFF) == 8);    // reason length
    CHECK((status & (1 << 3)) != 0);       // has error
    CHECK(((status >> 4) & 7) == 7);       // class: other
    CHECK(at<std::uint64_t>(b, copy + 8) == gen);
    CHECK(at<std::uint64_t>(b, copy + 16) == 1); // transitions
    CHECK(at<std::uint64_t>(b, copy + 32) == 3); // failures
    CHECK(at<std::int64_t>(b, copy + 48) == now.unix_ns);
    CHECK(at<std::int64_t>(b, copy + 56) == now.unix_ns + 7'000'000'000);
    CHECK(at<std::int64_t>(b, copy + 64) == now.mono_ns + 7'000'000'000);
    CHECK(std::memcmp(b.data() + copy + 44 * 8, "http 503", 8) == 0);
  }
  // Slot 1: ollama, forced down with no expiry.
  const auto gen1 = static_cast<std::uint32_t>(at<std::uint64_t>(b, heads + 128 + 8) >> 32);
  CHECK(at<std::uint64_t>(b, heads + 128) ==
        (std::uint64_t{gen1 & 0xFFFFFF} << 40 | 0xFF'FFFF'FFFFULL));
  CHECK(((at<std::uint64_t>(b, bodies + 1088 + 64) >> 1) & 3) == 1);

  // The index: each name's entry (tag << 32 | slot + 1) on its probe path.
  for (const auto& [name, slot] : {std::pair{std::string("groq"), 0u}, {"ollama", 1u}}) {
    const std::uint64_t h = hash_of(name);
    const std::uint64_t want = (h & 0xFFFFFFFF00000000ULL) | (slot + 1);
    bool found = false;
    for (std::uint32_t i = 0; i < 32 && !found; ++i) {
      const auto e = at<std::uint64_t>(b, index + ((h + i) & 31) * 8);
      if (e == 0) break;
      found = e == want;
    }
    CHECK_MESSAGE(found, name);
  }
}

TEST_CASE("layout: a forgotten name leaves a tombstone and a look-again word") {
  SegmentName seg("tomb");
  auto w = Writer::create(seg.str());
  w.add("groq");
  w.forget("groq");
  const auto b = raw_bytes(seg);
  const std::uint64_t h = hash_of("groq");
  CHECK(at<std::uint64_t>(b, 1024 + (h & 127) * 8) == 0xFFFFFFFFULL);
  const auto heads = at<std::uint64_t>(b, 72);
  CHECK((at<std::uint64_t>(b, heads) & 0xFF'FFFF'FFFFULL) == 1); // payload: look again
  CHECK(((at<std::uint64_t>(b, heads + 8) >> 8) & 0xFF) == 0);   // name_len 0: free
}

TEST_CASE("layout: the policy words and the hint and report words of docs/layout.md") {
  SegmentName seg("policy");
  CreateOptions o;
  o.capacity = 9;
  o.events = 16;
  auto w = Writer::create(seg.str(), o);
  Policy p;
  p.probe_clears_reports = true;
  w.set_policy("groq", p);
  const Instant now{5'000'000'000, 1'700'000'000'000'000'000};
  Outcome limited;
  limited.failure_class = FailureClass::rate_limited;
  limited.source = Source::report;
  limited.reason = "http 429";
  limited.retry_after = std::chrono::seconds(30);
  w.record("groq", limited, now);

  const auto b = raw_bytes(seg);
  // The header's default policy: the reference breaker, as documented.
  const std::uint64_t defaults[9] = {0x0000'0001'0000'0002ULL, 0x0000'0010'0000'00AEULL,
                                     60'000'000'000ULL,        0,
                                     5'000'000'000ULL,         3'600'000'000'000ULL,
                                     600'000'000'000ULL,       0,
                                     0};
  for (std::size_t k = 0; k < 9; ++k)
    CHECK_MESSAGE(at<std::uint64_t>(b, 576 + 8 * k) == defaults[k], "policy word " << k);

  const auto bodies = at<std::uint64_t>(b, 80);
  for (const std::size_t copy : {bodies + 64, bodies + 64 + 512}) {
    // The provider's own policy: the defaults with bit 40 of the masks set.
    CHECK(at<std::uint64_t>(b, copy + 36 * 8) == (defaults[1] | (1ULL << 40)));
    CHECK((at<std::uint64_t>(b, copy) & 1) == 1);                          // still healthy
    CHECK(at<std::int64_t>(b, copy + 8 * 8) == now.mono_ns + 30'000'000'000); // readers' deadline
    CHECK(at<std::int64_t>(b, copy + 59 * 8) == now.mono_ns + 30'000'000'000); // hint_until_mono
    CHECK(at<std::int64_t>(b, copy + 60 * 8) == now.unix_ns + 30'000'000'000); // hint_until_unix
    CHECK(at<std::uint64_t>(b, copy + 61 * 8) == 1);                       // report_failures
    CHECK(at<std::uint64_t>(b, copy + 62 * 8) == 0);                       // reserved
    CHECK(at<std::uint64_t>(b, copy + 63 * 8) == 0);
  }
}
