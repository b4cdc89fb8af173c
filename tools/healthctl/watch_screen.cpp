#include "watch_screen.hpp"

#include "common.hpp"
#include "provider_table.hpp"

#include <healthtable/event_text.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace healthctl {

namespace {

// ECMA-48 sequences every terminal tmux, xterm and the Linux console know.
constexpr std::string_view kHome = "\x1b[H";
constexpr std::string_view kClearLine = "\x1b[K";
constexpr std::string_view kClearBelow = "\x1b[J";
constexpr std::string_view kBold = "\x1b[1m";
constexpr std::string_view kReverse = "\x1b[7m";
constexpr std::string_view kPlain = "\x1b[m";

/// Lines are printable ASCII here (names and reasons went through
/// printable() or event_text()), so a byte is a column.
std::string cut(const std::string& line, int cols) {
  if (cols <= 0) return {};
  return line.size() > static_cast<std::size_t>(cols)
             ? line.substr(0, static_cast<std::size_t>(cols))
             : line;
}

} // namespace

std::string render_watch(const WatchFrame& f, int rows, int cols) {
  struct Line {
    std::string text;
    std::string_view style;
  };
  std::vector<Line> top;
  top.push_back(
      {fmt::format("healthctl watch {}  {}  (q quits)", f.segment, format_utc(f.now.unix_ns)),
       kBold});
  top.push_back({"writer: " + f.writer, {}});
  top.push_back({"table: " + f.table, {}});
  if (!f.note.empty()) top.push_back({f.note, kReverse});
  top.push_back({"", {}});
  if (f.providers.empty()) {
    top.push_back({"no providers yet", {}});
  } else {
    const std::vector<std::string> table = provider_rows(f.providers, f.now);
    for (std::size_t i = 0; i < table.size(); ++i) {
      // An unavailable provider stands out: what an operator watches for.
      const bool down = i > 0 && !f.providers[i - 1].available(f.now.mono_ns);
      top.push_back({table[i], i == 0 ? kBold : down ? kReverse : std::string_view{}});
    }
    for (const std::string& o : override_lines(f.providers))
      top.push_back({o, {}});
  }
  top.push_back({"", {}});
  top.push_back({"recent events", kBold});

  const std::size_t limit = static_cast<std::size_t>(std::max(rows, 0));
  std::vector<Line> lines(top.begin(),
                          top.begin() + static_cast<std::ptrdiff_t>(std::min(top.size(), limit)));
  const std::size_t room = limit - lines.size();
  const std::size_t n = std::min(room, f.events.size());
  if (f.events.empty() && room > 0) lines.push_back({"none yet", {}});
  for (std::size_t i = f.events.size() - n; i < f.events.size(); ++i)
    lines.push_back({healthtable::event_text(f.events[i]), {}});

  std::string out(kHome);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].style.empty()) out += lines[i].style;
    out += cut(lines[i].text, cols);
    if (!lines[i].style.empty()) out += kPlain;
    out += kClearLine;
    if (i + 1 < lines.size()) out += "\r\n";
  }
  out += kClearBelow;
  return out;
}

} // namespace healthctl
