// The shape every configuration error must have: one line,
// "probe.toml:LINE: KEY: ...", naming what is wrong.
#pragma once

#include "config.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

namespace healthtable::test {

/// `parse(text)` fails with "probe.toml:LINE: KEY: ..." containing `fragment`.
template <class Parse>
void expect_config_error(Parse&& parse, const std::string& text, std::uint32_t line,
                         const std::string& key, const std::string& fragment) {
  try {
    parse(text);
    FAIL("parsed, expected an error about " << key);
  } catch (const prober::ConfigError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(e.line() == line);
    CHECK(e.key() == key);
    CHECK(what.rfind("probe.toml:" + std::to_string(line) + ": " + (key.empty() ? "" : key + ": "),
                     0) == 0);
    CHECK(what.find(fragment) != std::string::npos);
    CHECK(what.find('\n') == std::string::npos); // one line
  }
}

} // namespace healthtable::test
