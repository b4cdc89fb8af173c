// The README's integration snippets are the whole integration a user
// copies: they must compile and do what the text beside them says, as
// written. Each ```cpp block of README.md is compiled here (extracted at
// build time by extract_snippets.py; only the table's name is swapped for
// this test's own), then run against a table it made.
// What the snippets leave to the reader's program; nothing else comes
// before them, so a snippet that forgets an #include does not compile.
namespace {
struct Request {};
const Request request{};
int sent = 0;
void send_to_groq(const Request&) { ++sent; }
const bool upstream_failed = true;
const int status = 429;
const char* const retry_after = "30";
} // namespace

#include "readme_snippets.inc"

#include <support/support.hpp>

#include <doctest/doctest.h>

using namespace healthtable;

TEST_CASE("README: the C++ snippets compile and do what the text says") {
  static_assert(kReadmeSnippets == 3, "README.md's C++ blocks changed: update this test");
  test::SegmentName seg("readme");
  { auto w = Writer::create(seg.str()); }
  // The router block: groq unknown, so healthy; the request goes out.
  readme_snippet_0(seg.str().c_str());
  CHECK(sent == 1);
  // The Reporter block: no prober runs, so the report goes nowhere, and
  // that neither throws nor blocks.
  CHECK_NOTHROW(readme_snippet_1(seg.str().c_str()));
  // The Writer block, as its comments say.
  readme_snippet_2(seg.str().c_str());
  auto t = Table::open(seg.str());
  const auto groq = t.get_state("groq");
  REQUIRE(groq);
  CHECK(groq->healthy);
  CHECK(groq->failures == 1);
  const auto google = t.get_state("google");
  REQUIRE(google);
  CHECK(google->override_mode == Override::forced_down);
  CHECK_FALSE(t.is_healthy("google"));
  // And the router block again: groq is healthy, so it is sent to.
  readme_snippet_0(seg.str().c_str());
  CHECK(sent == 2);
}
