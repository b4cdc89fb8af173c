// The layout documentation is enough to read a table from another language:
// docs/examples/healthtable_reader.py, written from docs/layout.md, must
// agree with the C++ reader on a table the C++ writer made, provider by
// provider, field by field.
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

using namespace healthtable;
using test::SegmentName;

namespace {

struct Run {
  int status;
  std::string out;
};

Run run(const std::string& cmd) {
  Run r{-1, {}};
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

const std::string kReader = std::string("/usr/bin/python3 ") + HEALTHTABLE_SOURCE_DIR +
                            "/docs/examples/healthtable_reader.py ";

void agree(const nlohmann::json& j, const ProviderState& s, const Table& t) {
  INFO("provider " << s.name);
  CHECK(j["name"] == s.name);
  CHECK(j["slot"] == s.slot);
  CHECK(j["generation"] == s.generation);
  CHECK(j["healthy"] == s.healthy);
  CHECK(j["override"] == std::string(override_name(s.override_mode)));
  if (s.last_error)
    CHECK(j["last_error"] == *s.last_error);
  else
    CHECK(j["last_error"].is_null());
  CHECK(j["last_class"] == std::string(class_name(s.last_class)));
  CHECK(j["last_source"] == std::string(source_name(s.last_source)));
  CHECK(j["consecutive_failures"] == s.consecutive_failures);
  CHECK(j["transitions"] == s.transitions);
  CHECK(j["successes"] == s.successes);
  CHECK(j["failures"] == s.failures);
  CHECK(j["trips"] == s.trips);
  CHECK(j["success_run"] == s.success_run);
  CHECK(j["last_check_unix_ns"] == s.last_check_unix_ns);
  CHECK(j["unhealthy_until_unix_ns"] == s.unhealthy_until_unix_ns);
  CHECK(j["unhealthy_until_host_mono_ns"] ==
        (s.unhealthy_until_mono_ns == 0 ? 0 : detail::to_host_mono(s.unhealthy_until_mono_ns)));
  CHECK(j["window_ns"] == s.window_ns);
  for (std::size_t c = 0; c < kFailureClasses; ++c)
    CHECK(j["class_failures"][c] == s.class_failures[c]);
  CHECK(j["override_until_unix_ns"] == s.override_info.until_unix_ns);
  CHECK(j["override_set_unix_ns"] == s.override_info.set_unix_ns);
  if (s.override_info.uid)
    CHECK(j["override_uid"] == *s.override_info.uid);
  else
    CHECK(j["override_uid"].is_null());
  CHECK(j["override_user"] == s.override_info.user);
  CHECK(j["override_reason"] == s.override_info.reason);
  CHECK(j["ramp_ns"] == s.ramp_ns);
  CHECK(j["available"] == t.is_healthy(s.name));
}

/// Every provider the C++ reader sees, the Python reader sees the same, in
/// one snapshot and one by one; and names it does not have are unknown.
void check_all(const std::string& seg, const std::initializer_list<const char*> absent) {
  auto t = Table::open(seg);
  const auto mine = t.snapshot();
  const Run all = run(kReader + seg);
  REQUIRE(all.status == 0);
  const auto snap = nlohmann::json::parse(all.out);
  REQUIRE(snap.size() == mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i)
    agree(snap[i], mine[i], t);
  for (const auto& s : mine) {
    const Run one = run(kReader + seg + " " + s.name);
    REQUIRE(one.status == 0);
    const auto j = nlohmann::json::parse(one.out);
    CHECK(j["healthy"] == t.is_healthy(s.name));
    agree(j["state"], s, t);
  }
  for (const char* p : absent) {
    const Run one = run(kReader + seg + " " + p);
    REQUIRE(one.status == 0);
    const auto j = nlohmann::json::parse(one.out);
    CHECK_MESSAGE(j["state"].is_null(), p);
    CHECK_MESSAGE(j["healthy"] == true, p);
    CHECK_FALSE(t.get_state(p).has_value());
  }
}

} // namespace

TEST_CASE("python reader: agrees with the C++ reader: healthy, tripped, forced, forgotten, grown") {
  SegmentName seg("py");
  CreateOptions o;
  o.capacity = 70;
  auto w = Writer::create(seg.str(), o);
  const Instant now = Instant::now();
  w.mark_healthy("ollama", now);
  w.mark_unhealthy("groq", "http 503 \xC3\xA9t\xC3\xA9", now);
  w.mark_unhealthy("groq", "connect: connection refused", now);
  w.mark_unhealthy("together", "probe-timeout (>3s)", now);
  w.set_override("google", Override::forced_down);
  OverrideRequest up;
  up.mode = Override::forced_up;
  up.expires_after = std::chrono::hours(1);
  up.reason = "maintenance done";
  up.uid = 0;
  w.set_override("mistral", up, now);
  for (int i = 0; i < 60; ++i)
    w.mark_healthy("bulk-" + std::to_string(i), now);
  {
    auto t = Table::open(seg.str());
    CHECK_FALSE(t.is_healthy("groq"));
    CHECK_FALSE(t.is_healthy("google"));
  }
  check_all(seg.str(), {"never-seen"});

  // A forgotten provider is unknown; its slot, reused, is another provider's.
  w.forget("together");
  check_all(seg.str(), {"together"});
  w.mark_unhealthy("newcomer", "x", now);
  check_all(seg.str(), {"together"});
  REQUIRE(Table::open(seg.str()).get_state("newcomer").has_value());
  CHECK(Table::open(seg.str()).get_state("newcomer")->slot == 2); // together's slot

  // After a grow the reader finds the new object through the home.
  const std::string before = seg.path();
  w.grow(200);
  REQUIRE(seg.path() != before);
  check_all(seg.str(), {"together"});
}

TEST_CASE("python reader: refuses a missing table and a foreign object") {
  SegmentName seg("pyforeign");
  CHECK(run(kReader + seg.str() + " 2>/dev/null").status == 3);
  { auto w = Writer::create(seg.str()); }
  const std::string path = seg.path();
  REQUIRE(!path.empty());
  FILE* f = std::fopen(path.c_str(), "r+");
  REQUIRE(f != nullptr);
  const std::string junk(64, 'x');
  std::fwrite(junk.data(), 1, junk.size(), f); // the magic is gone
  std::fclose(f);
  CHECK(run(kReader + seg.str() + " 2>/dev/null").status == 3);
}

TEST_CASE("python reader: a FIFO, a directory or a symlink at the object's path is refused, "
          "never waited on") {
  SegmentName seg("pyfifo");
  { auto w = Writer::create(seg.str()); }
  const std::string path = seg.path();
  REQUIRE(!path.empty());
  // `timeout` turns a hang into 124; the reader must say no (3) long before.
  const std::string cmd = "timeout 30 " + kReader + seg.str() + " 2>/dev/null";
  SUBCASE("a FIFO") {
    REQUIRE(::unlink(path.c_str()) == 0);
    REQUIRE(::mkfifo(path.c_str(), 0644) == 0);
  }
  SUBCASE("a directory") {
    REQUIRE(::unlink(path.c_str()) == 0);
    REQUIRE(::mkdir(path.c_str(), 0755) == 0);
  }
  SUBCASE("a symlink") {
    REQUIRE(::unlink(path.c_str()) == 0);
    REQUIRE(::symlink("/etc/passwd", path.c_str()) == 0);
  }
  CHECK(run(cmd).status == 3);
  std::error_code ec;
  std::filesystem::remove(path, ec);
}
