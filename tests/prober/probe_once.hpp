// One probe through a fresh Engine, for tests of what a single answer means.
#pragma once

#include "probe.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>

namespace healthtable::test {

/// Long, so a loaded machine never turns an answer into a timeout.
inline constexpr std::chrono::milliseconds kAnswerTimeout{10000};

/// An HTTP probe of provider "p" at `url`.
inline prober::ProbeSpec http_spec(const std::string& url, long healthy_below = 500,
                                   std::chrono::milliseconds timeout = kAnswerTimeout) {
  prober::ProbeSpec s;
  s.provider = "p";
  s.target = url;
  s.healthy_below = healthy_below;
  s.timeout = timeout;
  return s;
}

/// Runs `spec` alone and returns its result.
inline prober::ProbeResult probe_once(const prober::ProbeSpec& spec) {
  prober::Engine engine;
  std::optional<prober::ProbeResult> out;
  const prober::ProbeSpec specs[] = {spec};
  engine.run(specs, [&](const prober::ProbeResult& o) { out = o; });
  REQUIRE(out);
  return *out;
}

} // namespace healthtable::test
