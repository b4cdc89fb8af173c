// render_watch: one frame of `healthctl watch` from what was read, without a
// terminal: what it shows, in which order, and that it fits the screen.
#include "watch_screen.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace healthctl;
using namespace healthtable;

namespace {

/// The frame's lines as a terminal shows them: escapes stripped.
std::vector<std::string> visible_lines(const std::string& frame) {
  std::string plain;
  for (std::size_t i = 0; i < frame.size(); ++i) {
    if (frame[i] == '\x1b') {
      i = frame.find_first_of("HKJm", i); // every sequence render_watch writes ends so
      continue;
    }
    if (frame[i] != '\r') plain += frame[i];
  }
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (;;) {
    const std::size_t nl = plain.find('\n', start);
    lines.push_back(plain.substr(start, nl - start));
    if (nl == std::string::npos) return lines;
    start = nl + 1;
  }
}

WatchFrame frame_with(std::size_t events) {
  WatchFrame f;
  f.segment = "gateway";
  f.now = Instant{5'000'000'000'000LL, 1'796'000'000'000'000'000LL};
  f.writer = "pid 42 attached, heartbeat 0.2s ago (promised every 1s)";
  f.table = "2 of 64 slots used, 9 events recorded";
  ProviderState up;
  up.name = "openai";
  up.registered = true;
  ProviderState down;
  down.name = "groq";
  down.registered = true;
  down.healthy = false;
  down.consecutive_failures = 2;
  down.unhealthy_until_mono_ns = f.now.mono_ns + 30'000'000'000LL;
  down.last_error = "http 503";
  f.providers = {up, down};
  for (std::size_t i = 0; i < events; ++i) {
    EventRecord e;
    e.number = i;
    e.unix_ns = f.now.unix_ns - static_cast<std::int64_t>(events - i) * 1'000'000'000LL;
    e.kind = EventKind::registered;
    e.count = i;
    e.provider = "p" + std::to_string(i);
    f.events.push_back(e);
  }
  return f;
}

} // namespace

TEST_CASE("a frame shows the header, the providers as dump does, and the newest events that fit") {
  const std::string out = render_watch(frame_with(50), 20, 200);
  CHECK(out.rfind("\x1b[H", 0) == 0);            // drawn over the last frame
  CHECK(out.substr(out.size() - 3) == "\x1b[J"); // whatever it left below is cleared
  const std::vector<std::string> lines = visible_lines(out);
  REQUIRE(lines.size() == 20);
  CHECK(lines[0].find("healthctl watch gateway") == 0);
  CHECK(lines[1] == "writer: pid 42 attached, heartbeat 0.2s ago (promised every 1s)");
  const auto row = [&](const std::string& start) {
    return std::find_if(lines.begin(), lines.end(),
                        [&](const std::string& l) { return l.rfind(start, 0) == 0; });
  };
  REQUIRE(row("PROVIDER") != lines.end());
  REQUIRE(row("groq ") != lines.end());
  CHECK(row("groq ")->find("30s") != std::string::npos);
  CHECK(row("groq ")->find("http 503") != std::string::npos);
  CHECK(row("PROVIDER") < row("openai "));
  // The newest events, in order, filling the rest of the screen.
  CHECK(lines.back().find("p49 registered in slot 49") != std::string::npos);
  CHECK(lines[lines.size() - 2].find("p48 registered") != std::string::npos);
  CHECK(out.find("p0 registered") == std::string::npos);
}

TEST_CASE("an unavailable provider's row stands out, and a frame never overflows the screen") {
  const std::string out = render_watch(frame_with(3), 40, 30);
  CHECK(out.find("\x1b[7mgroq ") != std::string::npos);
  CHECK(out.find("\x1b[7mopenai ") == std::string::npos);
  for (const std::string& l : visible_lines(out))
    CHECK(l.size() <= 30);
  CHECK(visible_lines(render_watch(frame_with(3), 40, 200)).size() < 40); // no filler lines
  CHECK(visible_lines(render_watch(frame_with(3), 3, 200)).size() == 3);
  const std::vector<std::string> none = visible_lines(render_watch(frame_with(0), 40, 200));
  CHECK(none.back() == "none yet");
}

TEST_CASE("a note (recreated, gone) is shown under the header") {
  WatchFrame f = frame_with(1);
  f.note = "table 'gateway' is gone (destroyed); showing its last state until it is created again";
  const std::vector<std::string> lines = visible_lines(render_watch(f, 40, 200));
  REQUIRE(lines.size() > 3);
  CHECK(lines[3] == f.note);
}
