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

#include <cstdio>
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

/// A home whose pointer names an object holding `bytes`, made without the
/// library (the object's name follows the library's pattern, so destroy
/// --force in SegmentName removes it).
void write_object(const SegmentName& seg, const std::string& bytes) {
  REQUIRE(::mkdir(seg.home().c_str(), 0755) == 0);
  const std::string object = "/dev/shm/healthtable." + seg.str() + ".00000000000000ab";
  REQUIRE(::symlink(object.c_str(), (seg.home() + "/table").c_str()) == 0);
  const int fd = ::open(object.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

/// A valid table made by the library, then changed by `edit` through a
/// read-write mapping of the whole object.
void make_and_edit(const SegmentName& seg, const std::function<void(std::uint8_t*)>& edit) {
  {
    CreateOptions options;
    options.capacity = 4;
    Writer w = Writer::create(seg.str(), options);
    w.mark_unhealthy("groq", "http 503");
  }
  const int fd = ::open(seg.path().c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  const auto size = static_cast<std::size_t>(st.st_size);
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
                                             {"route", seg, "groq,openai"},
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
  check_error(healthctl({"create", seg, "--bogus"}), 2,
              "unknown option '--bogus'; run 'healthctl create --help'");
  check_error(healthctl({"create", seg, "--slots"}), 2, "run 'healthctl create --help'");
  check_error(healthctl({"check", seg}), 2, "PROVIDER is required");
  check_error(healthctl({"check", seg, "a", "b"}), 2, "unexpected argument 'b'");
  check_error(healthctl({"record", seg, "groq"}), 2, "OUTCOME is required");
  check_error(healthctl({"record", seg, "groq", "maybe"}), 2,
              "maybe not in {success,failure}; run 'healthctl record --help'");
  check_error(healthctl({"set", seg, "groq", "sideways"}), 2, "sideways not in {down,up,auto}");
  check_error(healthctl({"route", seg}), 2, "CHAIN is required; run 'healthctl route --help'");
  check_error(healthctl({"route", seg, "groq", "--policy", "maybe"}), 2,
              "maybe not in {panic,none}; run 'healthctl route --help'");
  check_error(healthctl({"destroy"}), 2, "run 'healthctl destroy --help'");
  check_error(healthctl({"dump", seg, "--expect"}), 2, "run 'healthctl dump --help'");
  // None of that created anything.
  CHECK(!segment_exists(seg));
}

TEST_CASE("no such segment: 3, from every command") {
  SegmentName seg("cli-missing");
  every_reader_fails(seg, Errc::no_such_segment,
                     "no health table '" + seg.str() + "' (" + seg.home() +
                         " has none); create it with 'healthctl create " + seg.str() + "'");
  check_error(healthctl({"destroy", seg}), 3, seg.str());
}

TEST_CASE("garbage bytes: 4, not a health table") {
  SegmentName seg("cli-garbage");
  write_object(seg, std::string(4096, '\xAB'));
  every_reader_fails(seg, Errc::not_a_table,
                     "table '" + seg.str() + "' is not a health table (magic 0xabababababababab");
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
  char expected[64];
  std::snprintf(expected, sizeof expected, "expected %#018llx (layout v2",
                static_cast<unsigned long long>(kFormat));
  CHECK(contains(r.err, expected));
  CHECK(contains(r.err, "), found 0x"));
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

TEST_CASE("an object another user owns: 17 for readers and writers, naming both owners") {
  SegmentName seg("cli-perm");
  REQUIRE(healthctl({"create", seg, "--mode", "0644"}).status == 0);
  if (::geteuid() != 0) return; // only root can give an object away
  // The home is ours, its object nobody's: someone else made it.
  REQUIRE(::chown(seg.path().c_str(), 65534, 65534) == 0);
  const std::string both = "belongs to uid 65534 (nobody), expected uid 0 (root)";
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"dump", seg},
                                             {"check", seg, "groq"},
                                             {"record", seg, "groq", "failure"},
                                             {"set", seg, "groq", "down", "--create"},
                                             {"reset", seg}}) {
    CAPTURE(args[0]);
    check_error(healthctl(args), 17, both);
  }
}

TEST_CASE("a table made for nobody: its owner is expected by default, --owner root says 17") {
  if (::geteuid() != 0) return; // create --owner is root's
  SegmentName seg("cli-owner");
  const std::string made = check_ok(healthctl({"create", seg, "--owner", "nobody"}));
  CHECK(contains(made, "owner uid 65534 (nobody)"));
  struct stat st {};
  REQUIRE(::stat(seg.home().c_str(), &st) == 0);
  CHECK(st.st_uid == 65534u);
  REQUIRE(::stat(seg.path().c_str(), &st) == 0);
  CHECK(st.st_uid == 65534u);
  CHECK(healthctl({"dump", seg}).status == 0);
  CHECK(healthctl({"info", seg, "--owner", "nobody"}).status == 0);
  for (const char* cmd : {"info", "dump"}) {
    CAPTURE(cmd);
    check_error(healthctl({cmd, seg, "--owner", "root"}), 17,
                "belongs to uid 65534 (nobody), expected uid 0 (root)");
  }
  check_error(healthctl({"check", seg, "groq", "--owner", "root"}), 17, "uid 65534 (nobody)");
}

TEST_CASE("table full: 8, naming the capacity and how to grow it") {
  SegmentName seg("cli-full");
  CHECK(check_ok(healthctl({"create", seg, "--slots", "1"}))
            .starts_with("created health table '" + seg.str() + "': 1 slot, "));
  CHECK(healthctl({"record", seg, "groq", "failure"}).status == 0);
  check_error(healthctl({"record", seg, "openai", "failure"}), 8,
              "table '" + seg.str() +
                  "' is full (1 slot) and cannot register 'openai'; grow it live with "
                  "'healthctl grow " +
                  seg.str() + " --slots 2'");
  check_error(healthctl({"set", seg, "openai", "down", "--create"}), 8, "is full");
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
  // route too, naming which provider of the chain is wrong.
  check_error(healthctl({"route", seg, "ok," + name64}), 9,
              "provider 2 of the chain 'ok," + name64 + "': provider name");
  check_error(healthctl({"route", seg, "a,,b"}), 9,
              "provider 2 of the chain 'a,,b' is empty; separate names with single commas");
  check_error(healthctl({"route", seg, "groq,"}), 9, "provider 2 of the chain 'groq,' is empty");
  CHECK(Table::open(seg.str()).info().used == 1);
}

TEST_CASE("create twice: 10, already exists, and the first table is untouched") {
  SegmentName seg("cli-twice");
  REQUIRE(healthctl({"create", seg, "--slots", "8"}).status == 0);
  REQUIRE(healthctl({"record", seg, "groq", "failure"}).status == 0);
  check_error(healthctl({"create", seg}), 10,
              "table '" + seg.str() + "' already exists; use --force to replace it");
  CHECK(Table::open(seg.str()).info().capacity == 8);
  CHECK(Table::open(seg.str()).get_state("groq").has_value());
}

TEST_CASE("a writer held by another process: 11, naming its pid") {
  SegmentName seg("cli-busy");
  Writer held = Writer::create(seg.str());
  held.mark_unhealthy("groq", "timeout");
  const std::string pid = "(pid " + std::to_string(::getpid()) + ")";
  const std::string busy = "table '" + seg.str() + "' already has a writer " + pid +
                           "; only one process may write a table: stop it first";
  check_error(healthctl({"record", seg, "groq", "failure"}), 11, busy);
  check_error(healthctl({"set", seg, "groq", "down"}), 11, busy);
  check_error(healthctl({"forget", seg, "groq"}), 11, busy);
  check_error(healthctl({"grow", seg, "--slots", "128"}), 11, busy);
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
  const std::uint64_t full_size = Table::open(seg.str()).info().total_size;
  REQUIRE(::truncate(seg.path().c_str(), 4096) == 0);
  every_reader_fails(seg, Errc::corrupt,
                     "table '" + seg.str() + "' is corrupt: object is 4096 bytes, header says " +
                         std::to_string(full_size) + "; recreate it with 'healthctl create " +
                         seg.str() + " --force'");
  REQUIRE(::truncate(seg.path().c_str(), 100) == 0);
  check_error(healthctl({"dump", seg, "--json"}), 12, "truncated to 100 bytes, smaller than the ");
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
  check_error(healthctl({"record", seg, "groq", "success", "--class", "server"}), 15,
              "--class goes with a failure");
  check_error(healthctl({"record", seg, "groq", "success", "--retry-after", "30"}), 15,
              "--retry-after goes with a failure");
  check_error(healthctl({"record", seg, "groq", "failure", "--class", "bogus"}), 15,
              "--class 'bogus' is not a failure class; use one of timeout, connect, server, "
              "rate_limited, auth, client, other");
  check_error(healthctl({"record", seg, "groq", "failure", "--class", "none"}), 15,
              "(a success is recorded as success)");
  check_error(healthctl({"record", seg, "groq", "failure", "--retry-after", "soon"}), 15,
              "--retry-after 'soon' is not a Retry-After value (seconds, or an HTTP date");
  check_error(healthctl({"record", seg, "groq", "failure", "--retry-after", "-5"}), 15,
              "--retry-after '-5' is not a Retry-After value");
  for (const char* empty : {"", ",", " , "}) {
    CAPTURE(empty);
    check_error(healthctl({"route", seg, empty}), 15,
                "names no provider; list them in order, comma separated: 'healthctl route " +
                    seg.str() + " groq,openai'");
  }
  CHECK(Table::open(seg.str()).info().used == 0);
}

TEST_CASE(
    "set on a provider the table has never seen: 14 and nothing registered; --create registers") {
  SegmentName seg("cli-setunknown");
  REQUIRE(healthctl({"create", seg}).status == 0);
  check_error(healthctl({"set", seg, "typo", "down"}), 14,
              "provider 'typo' is not in table '" + seg.str() + "'");
  CHECK(Table::open(seg.str()).info().used == 0);
  CHECK(!Table::open(seg.str()).get_state("typo"));
  CHECK(healthctl({"set", seg, "typo", "down", "--create", "--for", "1h", "--reason", "maint"})
            .status == 0);
  const auto state = Table::open(seg.str()).get_state("typo");
  REQUIRE(state);
  CHECK(state->override_mode == Override::forced_down);
  CHECK(state->override_info.reason == "maint");
  CHECK(state->override_info.until_unix_ns > Instant::now().unix_ns);
}

TEST_CASE("create --mode with group or other write bits: 15, says why, leaves nothing") {
  SegmentName seg("cli-mode666");
  for (const char* mode : {"0666", "0664", "0646"}) {
    CAPTURE(mode);
    check_error(healthctl({"create", seg, "--mode", mode}), 15,
                "lets the group or others write the table");
    struct stat st {};
    CHECK(::lstat(seg.home().c_str(), &st) != 0);
  }
  check_error(healthctl({"create", seg, "--mode", "0666"}), 15, "use 0644");
}

TEST_CASE("destroy of a home that is not a table: 4 without --force, removed with it") {
  SegmentName seg("cli-notable");
  REQUIRE(::mkdir(seg.home().c_str(), 0755) == 0);
  // A plain file where the table's pointer belongs.
  const std::string file = seg.home() + "/table";
  const int fd = ::open(file.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  ::close(fd);
  check_error(healthctl({"destroy", seg}), 4, seg.str());
  struct stat st {};
  CHECK(::stat(file.c_str(), &st) == 0);
  const Run forced = healthctl({"destroy", seg, "--force"});
  CHECK(contains(check_ok(forced),
                 "destroyed health table '" + seg.str() + "' (" + seg.home() + " removed;"));
  CHECK(::lstat(seg.home().c_str(), &st) != 0);
}
