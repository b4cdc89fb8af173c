// A downstream program of the installed (or vendored) healthtable: creates a
// table, trips a provider, and reads it back through a read-only Table, as
// a router would. Exit 0 only if every answer is the expected one.
//
//   downstream TABLE_NAME    (the table goes in $HEALTHTABLE_RUN_DIR)
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <array>
#include <cstdio>
#include <string>

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) ++failures;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: downstream TABLE_NAME\n");
    return 2;
  }
  const std::string name = argv[1];
  try {
    {
      auto writer = healthtable::Writer::create(name);
      writer.mark_unhealthy("groq", "http 503");
      writer.mark_unhealthy("groq", "http 503"); // the second failure trips it
      writer.mark_healthy("openai");

      const auto table = healthtable::Table::open(name);
      const auto groq = table.handle("groq");
      expect(!table.is_healthy(groq), "groq is tripped after two failures");
      expect(table.is_healthy("openai"), "openai is healthy");
      expect(table.get_state("groq")->last_error == "http 503", "groq's last error is kept");
      const std::array chain{groq, table.handle("openai")};
      const auto pick = table.pick(chain);
      expect(pick.index && *pick.index == 1 && !pick.panic, "a pick routes around groq");
    }
    healthtable::Writer::destroy(name);
  } catch (const healthtable::Error& e) {
    std::fprintf(stderr, "downstream: %s\n", e.what());
    return 3;
  }
  std::printf("%s\n",
              failures == 0 ? "downstream: all answers right" : "downstream: wrong answers");
  return failures == 0 ? 0 : 1;
}
