// Every healthctl failure reached for real: the documented exit code and
// exactly one line on stderr that says what to do.
#include "run.hpp"

#include <support/support.hpp>

#include <healthtable/error.hpp>
#include <healthtable/layout.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <functional>

using namespace healthtable;
using namespace healthtable::test;

namespace {

constexpr int code(Errc e) { return static_cast<int>(e); }

bool segment_exists(const SegmentName& seg) {
  struct stat st {};
  return ::stat(seg.path().c_str(), &st) == 0;
}

/// A shared-memory object holding `bytes`, made without the library.
void write_object(const SegmentName& seg, const std::string& bytes) {
  const int fd = ::shm_open(("/" + seg.str()).c_str(), O_CREAT | O_EXCL | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

/// A valid table made by the library, then changed by `edit` through a
/// read-write mapping of the whole object.
void make_and_edit(const SegmentName& seg, const std::function<void(std::uint8_t*)>& edit) {
  {
    Writer w = Writer::create(seg.str(), CreateOptions{.capacity = 4});
    w.mark_unhealthy("groq", "http 503");
  }
  const int fd = ::shm_open(("/" + seg.str()).c_str(), O_RDWR, 0);
  REQUIRE(fd >= 0);
  const std::size_t size = total_size_for(4);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(p != MAP_FAILED);
  edit(static_cast<std::uint8_t*>(p));
  ::munmap(p, size);
  ::close(fd);
}

/// Every read command against `seg` fails with `errc` and says `needle`.
void every_reader_fails(const SegmentName& seg, Errc errc, const std::string& needle) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"info", seg},
                                             {"info", seg, "--json"},
                                             {"dump", seg},
                                             {"dump", seg, "--json"},
                                             {"check", seg, "groq"},
                                             {"record", seg, "groq", "success"},
                                             {"set", seg, "groq", "down"},
                                             {"reset", seg}}) {
    CAPTURE(args[0]);
    check_error(healthctl(args), code(errc), needle);
  }
}

} // namespace

TEST_CASE("usage errors exit 2 with one line that points at --help") {
  SegmentName seg("cli-usage");
  check_error(healthctl({}), 2, "A subcommand is required; run 'healthctl --help'");
  check_error(healthctl({"frob"}), 2, "unknown command 'frob' (commands: create, info, dump");
  check_error(healthctl({"--bogus"}), 2, "run 'healthctl --help'");
  check_error(healthctl({"create"}), 2, "NAME is required; run 'healthctl create --help'");
  check_error(healthctl({"create", seg, "--bogus"}), 2, "--bogus; run 'healthctl create --help'");
  check_error(healthctl({"create", seg, "--slots"}), 2, "run 'healthctl create --help'");
  check_error(healthctl({"check", seg}), 2, "PROVIDER is required");
  check_error(healthctl({"check", seg, "a", "b"}), 2, "not expected: b");
  check_error(healthctl({"record", seg, "groq"}), 2, "OUTCOME is required");
  check_error(healthctl({"record", seg, "groq", "maybe"}), 2,
              "maybe not in {success,failure}; run 'healthctl record --help'");
  check_error(healthctl({"set", seg, "groq", "sideways"}), 2, "sideways not in {down,up,auto}");
  check_error(healthctl({"destroy"}), 2, "run 'healthctl destroy --help'");
  check_error(healthctl({"dump", seg, "--expect"}), 2, "run 'healthctl dump --help'");
  // None of that created anything.
  CHECK(!segment_exists(seg));
}

TEST_CASE("no such segment: 3, from every command") {
  SegmentName seg("cli-missing");
  every_reader_fails(seg, Errc::no_such_segment,
                     "no health table '" + seg.str() + "' (" + seg.path() +
                         " does not exist); create it with 'healthctl create " + seg.str() + "'");
  check_error(healthctl({"destroy", seg}), 3, "does not exist");
}

TEST_CASE("garbage bytes: 4, not a health table") {
  SegmentName seg("cli-garbage");
  write_object(seg, std::string(4096, '\xAB'));
  every_reader_fails(seg, Errc::not_a_table,
                     "segment '" + seg.str() + "' is not a health table (magic 0xabababababababab");
  // --force may replace it, and then it is a table.
  CHECK(healthctl({"create", seg, "--force"}).status == 0);
  CHECK(healthctl({"info", seg}).status == 0);
}

TEST_CASE("a bumped format word: 5, incompatible layout, expected X found Y") {
  SegmentName seg("cli-format");
  make_and_edit(seg, [](std::uint8_t* base) {
    std::uint64_t format = 0;
    std::memcpy(&format, base + 8, 8);
    REQUIRE(format == kFormat);
    format += std::uint64_t{1} << 48; // layout v2
    std::memcpy(base + 8, &format, 8);
  });
  every_reader_fails(seg, Errc::incompatible_layout, "has an incompatible layout: expected ");
  const Run r = healthctl({"dump", seg});
  CHECK(contains(r.err, "expected 0x0001010002003f78 (layout v1"));
  CHECK(contains(r.err, "found 0x0002010002003f78 (layout v2"));
}

TEST_CASE("magic not yet published, or an empty object: 6, not ready") {
  SegmentName seg("cli-notready");
  make_and_edit(seg, [](std::uint8_t* base) { std::memset(base, 0, 8); });
  every_reader_fails(seg, Errc::not_ready, "is still being created (magic not yet published)");

  SegmentName empty("cli-empty");
  write_object(empty, "");
  check_error(healthctl({"info", empty}), 6, "is still being created (size 0)");
  check_error(healthctl({"record", empty, "p", "failure"}), 6, "still being created");
}

TEST_CASE("a table another user owns: 7, permission denied for writes, reads still work") {
  SegmentName seg("cli-perm");
  REQUIRE(healthctl({"create", seg, "--mode", "0644"}).status == 0);
  if (::geteuid() == 0) {
    // root opens anything, so make the table somebody else's: the writer
    // refuses a table another user controls.
    REQUIRE(::chown(seg.path().c_str(), 65534, 65534) == 0);
    check_error(healthctl({"record", seg, "groq", "failure"}), 7, "is owned by uid 65534");
  } else {
    REQUIRE(::chmod(seg.path().c_str(), 0444) == 0);
    check_error(healthctl({"record", seg, "groq", "failure"}), 7, "permission denied");
  }
  check_error(healthctl({"set", seg, "groq", "down"}), 7, seg.str());
  check_error(healthctl({"reset", seg}), 7, seg.str());
  CHECK(healthctl({"dump", seg}).status == 0);
  CHECK(healthctl({"check", seg, "groq"}).status == 0);
}

TEST_CASE("table full: 8, naming the capacity and how to grow it") {
  SegmentName seg("cli-full");
  CHECK(check_ok(healthctl({"create", seg, "--slots", "1"}))
            .starts_with("created health table '" + seg.str() + "': 1 slot, 832 bytes, "));
  CHECK(healthctl({"record", seg, "groq", "failure"}).status == 0);
  check_error(healthctl({"record", seg, "openai", "failure"}), 8,
              "table '" + seg.str() +
                  "' is full (1 slot) and cannot register 'openai'; "
                  "recreate it larger ('healthctl create " +
                  seg.str() + " --slots 2 --force'");
  check_error(healthctl({"set", seg, "openai", "down"}), 8, "is full");
  // The registered provider still works.
  CHECK(healthctl({"record", seg, "groq", "success"}).status == 0);
}

TEST_CASE("invalid names: 9, for segments and providers") {
  SegmentName seg("cli-names");
  REQUIRE(healthctl({"create", seg}).status == 0);
  for (const char* bad : {"../x", "a/b", ".", "..", "sp ace"}) {
    CAPTURE(bad);
    check_error(healthctl({"create", bad}), 9, "segment name");
    check_error(healthctl({"info", bad}), 9, "segment name");
    check_error(healthctl({"dump", bad}), 9, "segment name");
  }
  check_error(healthctl({"info", std::string(201, 'a')}), 9, "201 bytes; the limit is 200");

  const std::string name63(63, 'p');
  const std::string name64(64, 'p');
  CHECK(healthctl({"record", seg, name63, "failure"}).status == 0);
  check_error(healthctl({"record", seg, name64, "failure"}), 9, "is 64 bytes; the limit is 63");
  // check validates too: a name that can never be in the table must not
  // pass as "unknown, so healthy".
  check_error(healthctl({"check", seg, name64}), 9, "the limit is 63");
  check_error(healthctl({"check", seg, "bad name"}), 9, "may contain only");
  check_error(healthctl({"set", seg, "bad\tname", "down"}), 9, "bad\\x09name");
  check_error(healthctl({"reset", seg, name64}), 9, "the limit is 63");
  check_error(healthctl({"dump", seg, "--expect", "ok," + name64}), 9, "the limit is 63");
  CHECK(Table::open(seg.str()).info().used == 1);
}

TEST_CASE("create twice: 10, already exists, and the first table is untouched") {
  SegmentName seg("cli-twice");
  REQUIRE(healthctl({"create", seg, "--slots", "8"}).status == 0);
  REQUIRE(healthctl({"record", seg, "groq", "failure"}).status == 0);
  check_error(healthctl({"create", seg}), 10,
              "segment '" + seg.str() + "' already exists; use --force to replace it");
  CHECK(Table::open(seg.str()).info().capacity == 8);
  CHECK(Table::open(seg.str()).get_state("groq").has_value());
}

TEST_CASE("a writer held by another process: 11, naming its pid") {
  SegmentName seg("cli-busy");
  Writer held = Writer::create(seg.str());
  held.mark_unhealthy("groq", "timeout");
  const std::string pid = "(pid " + std::to_string(::getpid()) + ")";
  const std::string busy = "segment '" + seg.str() + "' already has a writer " + pid +
                           "; only one process may write a table: stop it first";
  check_error(healthctl({"record", seg, "groq", "failure"}), 11, busy);
  check_error(healthctl({"set", seg, "groq", "down"}), 11, busy);
  check_error(healthctl({"reset", seg}), 11, busy);
  check_error(healthctl({"reset", seg, "groq"}), 11, busy);
  check_error(healthctl({"destroy", seg}), 11, pid);
  check_error(healthctl({"create", seg, "--force"}), 11, pid);
  // Readers are not writers: they still work, and see the writer attached.
  const Run dump = healthctl({"dump", seg});
  CHECK(dump.status == 0);
  CHECK(contains(dump.out, "writer: pid " + std::to_string(::getpid()) + " attached"));
  CHECK(healthctl({"check", seg, "groq"}).status == 0);
  // The failed writers changed nothing.
  CHECK(held.table().get_state("groq")->failures == 1);
}

TEST_CASE("a truncated segment: 12, corrupt, never a crash") {
  SegmentName seg("cli-truncated");
  REQUIRE(healthctl({"create", seg}).status == 0);
  REQUIRE(healthctl({"record", seg, "groq", "failure"}).status == 0);
  REQUIRE(::truncate(seg.path().c_str(), 4096) == 0);
  every_reader_fails(seg, Errc::corrupt,
                     "segment '" + seg.str() + "' is corrupt: object is 4096 bytes, header says " +
                         std::to_string(total_size_for(kDefaultCapacity)) +
                         "; recreate it with 'healthctl create " + seg.str() + " --force'");
  REQUIRE(::truncate(seg.path().c_str(), 100) == 0);
  check_error(healthctl({"dump", seg, "--json"}), 12,
              "truncated to 100 bytes, smaller than the 256-byte header");
  // The way out it names works.
  CHECK(healthctl({"create", seg, "--force"}).status == 0);
  CHECK(healthctl({"dump", seg}).status == 0);
}

TEST_CASE("reset of an unknown provider: 14, and nothing is reset") {
  SegmentName seg("cli-unknown");
  REQUIRE(healthctl({"create", seg, "--failure-threshold", "1"}).status == 0);
  REQUIRE(healthctl({"record", seg, "groq", "failure"}).status == 0);
  check_error(healthctl({"reset", seg, "nope"}), 14,
              "provider 'nope' is not in table '" + seg.str() + "'; 'healthctl dump " + seg.str() +
                  "' lists the providers it has");
  // All or nothing: groq, listed first, was not reset either.
  check_error(healthctl({"reset", seg, "groq", "nope"}), 14, "'nope'");
  CHECK(!Table::open(seg.str()).get_state("groq")->healthy);
}

TEST_CASE("bad option values: 15, and a failed create leaves nothing behind") {
  SegmentName seg("cli-values");
  const auto create_fails = [&](std::vector<std::string> extra, const std::string& needle) {
    std::vector<std::string> args{"create", seg};
    args.insert(args.end(), extra.begin(), extra.end());
    CAPTURE(extra[1]);
    check_error(healthctl(args), 15, needle);
    CHECK(!segment_exists(seg));
  };
  create_fails({"--backoff", "soon"}, "--backoff 'soon' is not a duration (use e.g. 60s");
  create_fails({"--backoff", "5parsecs"}, "has an unknown unit 'parsecs'");
  create_fails({"--backoff", "-5s"}, "--backoff '-5s' is not a duration");
  create_fails({"--failure-threshold", "0"}, "failure_threshold must be at least 1, got 0");
  create_fails({"--failure-threshold", "-1"}, "--failure-threshold '-1' is not a whole number");
  create_fails({"--failure-threshold", "two"}, "--failure-threshold 'two' is not a whole number");
  create_fails({"--failure-threshold", "99999999999"}, "is not a whole number from 0 to");
  create_fails({"--slots", "0"}, "slots must be between 1 and 65536, got 0");
  create_fails({"--slots", "65537"}, "slots must be between 1 and 65536, got 65537");
  create_fails({"--slots", "0x10"}, "--slots '0x10' is not a whole number");
  create_fails({"--mode", "999"}, "--mode '999' is not an octal permission mode");
  create_fails({"--mode", "rw-r--r--"}, "is not an octal permission mode");
  create_fails({"--mode", "01777"}, "from 0000 to 0777");

  REQUIRE(healthctl({"create", seg}).status == 0);
  check_error(healthctl({"info", seg, "--stale-after", "later"}), 15, "--stale-after 'later'");
  check_error(healthctl({"dump", seg, "--stale-after", "later"}), 15, "--stale-after 'later'");
  check_error(healthctl({"record", seg, "groq", "success", "--reason", "x"}), 15,
              "--reason goes with a failure");
  CHECK(Table::open(seg.str()).info().used == 0);
}
