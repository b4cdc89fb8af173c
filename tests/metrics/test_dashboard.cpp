// docs/examples/grafana-healthtable.json is valid JSON, and every series its
// queries name is one docs/metrics.md documents (a renamed series would
// leave an empty panel that no other test notices).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace

TEST_CASE("the Grafana dashboard parses and queries only documented series") {
  const std::string src = HEALTHTABLE_SOURCE_DIR;
  const auto dash = nlohmann::json::parse(read(src + "/docs/examples/grafana-healthtable.json"));
  const std::string doc = read(src + "/docs/metrics.md");
  REQUIRE(!doc.empty());
  REQUIRE(dash["panels"].is_array());
  CHECK(dash["panels"].size() >= 6);
  const std::regex series(R"(healthtable_[a-z_]+)");
  std::size_t checked = 0;
  for (const auto& panel : dash["panels"]) {
    for (const auto& target : panel["targets"]) {
      const std::string expr = target["expr"];
      for (std::sregex_iterator it(expr.begin(), expr.end(), series), end; it != end; ++it) {
        std::string name = it->str();
        for (const char* suffix : {"_bucket", "_count", "_sum"})
          if (name.size() > std::strlen(suffix) &&
              name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0 &&
              name.find("duration") != std::string::npos)
            name.erase(name.size() - std::strlen(suffix));
        INFO(panel["title"], ": ", name);
        CHECK(doc.find("`" + name + "`") != std::string::npos);
        ++checked;
      }
    }
  }
  CHECK(checked >= 10);
}
