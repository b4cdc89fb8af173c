// The layout documentation is enough to read a table from another language:
// docs/examples/healthtable_reader.py, written from docs/layout.md alone,
// must agree with the C++ reader on a segment the C++ writer made.
#include <healthtable/writer.hpp>
#include <support/support.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cstdio>
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

const std::string kReader =
    std::string("python3 ") + HEALTHTABLE_SOURCE_DIR + "/docs/examples/healthtable_reader.py ";

} // namespace

TEST_CASE("python reader: agrees with the C++ reader, field by field") {
  SegmentName seg("py");
  CreateOptions o;
  o.capacity = 100;
  auto w = Writer::create(seg.str(), o);
  const Instant now = Instant::now();
  w.mark_healthy("ollama", now);
  w.mark_unhealthy("groq", "http 503 \xC3\xA9t\xC3\xA9", now);
  w.mark_unhealthy("groq", "connect: connection refused", now);
  w.mark_unhealthy("together", "probe-timeout (>3s)", now);
  w.set_override("google", Override::forced_down);
  for (int i = 0; i < 60; ++i)
    w.mark_healthy("bulk-" + std::to_string(i), now);

  const Run all = run(kReader + seg.str());
  REQUIRE(all.status == 0);
  const auto snap = nlohmann::json::parse(all.out);
  const auto mine = w.table().snapshot();
  REQUIRE(snap.size() == mine.size());
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const auto& j = snap[i];
    const auto& s = mine[i];
    CHECK(j["name"] == s.name);
    CHECK(j["healthy"] == s.healthy);
    CHECK(j["consecutive_failures"] == s.consecutive_failures);
    CHECK(j["last_check"].get<double>() ==
          doctest::Approx(static_cast<double>(s.last_check_unix_ns) / 1e9).epsilon(1e-12));
    CHECK(j["unhealthy_until"].get<double>() ==
          doctest::Approx(static_cast<double>(s.unhealthy_until_unix_ns) / 1e9).epsilon(1e-12));
    if (s.last_error)
      CHECK(j["last_error"] == *s.last_error);
    else
      CHECK(j["last_error"].is_null());
    CHECK(j["override"] == std::string(override_name(s.override_mode)));
    CHECK(j["transitions"] == s.transitions);
    CHECK(j["available"] == w.table().is_healthy(s.name));
  }

  for (const char* p : {"groq", "google", "ollama", "never-seen"}) {
    const Run one = run(kReader + seg.str() + " " + p);
    REQUIRE(one.status == 0);
    const auto j = nlohmann::json::parse(one.out);
    CHECK_MESSAGE(j["healthy"] == w.table().is_healthy(p), p);
  }
}

TEST_CASE("python reader: refuses a missing segment and a foreign one") {
  SegmentName seg("pyforeign");
  CHECK(run(kReader + seg.str() + " 2>/dev/null").status == 3);
  FILE* f = std::fopen(seg.path().c_str(), "w");
  REQUIRE(f != nullptr);
  const std::string junk(4096, 'x');
  std::fwrite(junk.data(), 1, junk.size(), f);
  std::fclose(f);
  CHECK(run(kReader + seg.str() + " 2>/dev/null").status == 3);
}
