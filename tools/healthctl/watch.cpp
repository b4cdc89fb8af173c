// healthctl watch NAME: a live, full-screen view of the table (providers as
// `dump` shows them, the newest events), redrawn every --interval until q,
// Ctrl-C or SIGTERM. It needs a terminal; scripts use dump or events.
#include "commands.hpp"
#include "common.hpp"
#include "follow.hpp"
#include "watch_screen.hpp"

#include <healthtable/event_text.hpp>
#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <fmt/format.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <string>

namespace healthctl {
namespace {

namespace ht = healthtable;

/// Events kept for the screen: more than any terminal shows.
constexpr std::size_t kKeptEvents = 200;

struct WatchOptions {
  std::string segment;
  std::string owner;
  std::string interval = "1s";
};

/// The terminal as watch needs it, restored whatever ends the loop: the
/// alternate screen (the shell's screen comes back untouched), no cursor,
/// and keys read one at a time without echo. ISIG stays on, so Ctrl-C is
/// still SIGINT, which StopOnSignal turns into a clean exit.
class Screen {
public:
  Screen() {
    if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      keys_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    write("\x1b[?1049h\x1b[?25l");
  }
  ~Screen() {
    write("\x1b[?25h\x1b[?1049l");
    if (keys_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  static void write(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return; // the terminal went away: nothing left to draw on
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  /// Rows and columns now (a resize takes effect at the next frame).
  static std::pair<int, int> size() {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
      return {ws.ws_row, ws.ws_col};
    return {24, 80};
  }

  /// Waits up to `d` for a key; true when it was q.
  bool wait_for_quit(std::chrono::milliseconds d) const {
    pollfd p{keys_ ? STDIN_FILENO : -1, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(d.count())) <= 0) return false; // timeout or a signal
    char c = 0;
    while (::read(STDIN_FILENO, &c, 1) == 1)
      if (c == 'q' || c == 'Q') return true;
    return false;
  }

private:
  termios saved_{};
  bool keys_ = false;
};

WatchFrame read_frame(const ht::Table& table, const WatchOptions& o,
                      const std::deque<ht::EventRecord>& events, std::string note) {
  WatchFrame f;
  f.segment = o.segment;
  const ht::TableInfo info = table.info();
  f.providers = table.snapshot();
  f.now = ht::Instant::now();
  f.writer = describe_writer(view_writer(table, info, std::nullopt, f.now.mono_ns));
  f.table =
      fmt::format("{} of {} slots used, {} events recorded", info.used, info.capacity, info.events);
  f.note = std::move(note);
  f.events.assign(events.begin(), events.end());
  return f;
}

int run_watch(const WatchOptions& o) {
  const auto interval = ht::parse_duration(o.interval, "--interval");
  if (interval < std::chrono::milliseconds(100) || interval > std::chrono::hours(1))
    throw ht::Error(
        ht::Errc::invalid_argument,
        fmt::format("--interval '{}' is out of range: give 100ms to 1h", printable(o.interval)));
  if (!::isatty(STDOUT_FILENO))
    throw CommandError(kExitNotTerminal,
                       fmt::format("watch draws on a terminal and stdout is not one; use "
                                   "'healthctl events {0} --follow' or 'healthctl dump {0} "
                                   "--json' in scripts",
                                   o.segment));
  const ht::Table table = ht::Table::open(o.segment, open_options(o.owner));
  const StopOnSignal stop;
  const Screen screen;
  std::deque<ht::EventRecord> events;
  std::uint64_t next = 0;
  std::string note;
  const auto step = std::chrono::duration_cast<std::chrono::milliseconds>(interval);
  for (;;) {
    switch (follow(table)) {
    case TableMove::same: break;
    case TableMove::recreated:
      events.clear();
      next = 0;
      note = fmt::format("table '{}' was recreated at {}: showing the new one", o.segment,
                         format_utc(ht::Instant::now().unix_ns));
      break;
    case TableMove::gone:
      note = fmt::format("table '{}' is gone (destroyed); showing its last state until it is "
                         "created again",
                         o.segment);
      break;
    }
    for (ht::EventBatch b = table.events(next); !b.events.empty(); b = table.events(next)) {
      for (ht::EventRecord& e : b.events)
        events.push_back(std::move(e));
      next = b.next;
    }
    while (events.size() > kKeptEvents)
      events.pop_front();
    const auto [rows, cols] = Screen::size();
    Screen::write(render_watch(read_frame(table, o, events, note), rows, cols));
    if (screen.wait_for_quit(step) || stop.stopped()) return kExitOk;
  }
}

} // namespace

void setup_watch(CLI::App& app) {
  auto opt = std::make_shared<WatchOptions>();
  CLI::App* sub = app.add_subcommand(
      "watch", fmt::format("Watch the table live on a terminal: providers and recent events, "
                           "redrawn every --interval; q or Ctrl-C quits (exit {} when stdout is "
                           "not a terminal)",
                           kExitNotTerminal));
  sub->add_option("NAME", opt->segment, "Segment name")->required();
  sub->add_option("--interval", opt->interval, "Redraw this often (default 1s)")
      ->type_name("DURATION");
  add_owner_option(*sub, opt->owner);
  sub->callback([opt] { finish(run_watch(*opt)); });
}

} // namespace healthctl
