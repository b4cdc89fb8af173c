// A healthprobe with /metrics on a free port (listen = "127.0.0.1:0"; the
// port is read from its "started" line), stopped by pid at the end.
#pragma once

#include "servers.hpp"

#include <doctest/doctest.h>
#include <signal.h>

#include <memory>
#include <string>

namespace healthtable::test {

struct MetricsProber {
  TempDir dir;
  std::unique_ptr<Child> child;
  std::string url; ///< http://127.0.0.1:PORT/metrics once started

  /// Starts it with `body` (providers etc.) after segment, interval and [metrics].
  void start(const std::string& segment, const std::string& body, const std::string& interval) {
    const std::string text = "segment = \"" + segment + "\"\ninterval = \"" + interval +
                             "\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n" + body;
    const auto config = dir.write("healthprobe.toml", text);
    child = std::make_unique<Child>(
        std::vector<std::string>{HEALTHPROBE_BIN, "--config", config.string()}, dir.path());
    REQUIRE(child->wait_for_err("/metrics", std::chrono::seconds(20)));
    const std::string err = child->err();
    const std::size_t at = err.find("metrics on http://");
    REQUIRE(at != std::string::npos);
    const std::size_t start = at + std::string("metrics on ").size();
    url = err.substr(start, err.find("/metrics", start) + 8 - start);
  }
  ~MetricsProber() {
    if (child && child->running()) {
      child->signal(SIGTERM);
      child->wait(std::chrono::seconds(10));
    }
  }
};

inline std::string provider_toml(const std::string& name, const std::string& url) {
  return "[[provider]]\nname = \"" + name + "\"\nhttp = \"" + url + "\"\n";
}

} // namespace healthtable::test
