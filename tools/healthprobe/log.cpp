#include "log.hpp"

#include <unistd.h>

#include <cerrno>
#include <string>

namespace healthtable::prober {

Log::Log(bool verbose, int fd) : verbose_(verbose), fd_(fd), priority_prefix_(::isatty(fd) == 0) {}

void Log::operator()(Level level, std::string_view message) const {
  if (level == Level::debug && !verbose_) return;
  std::string line;
  if (priority_prefix_) {
    line = "<" + std::to_string(static_cast<int>(level)) + ">";
  } else {
    static constexpr std::string_view kNames[] = {
        "", "", "", "error: ", "warning: ", "notice: ", "info: ", "debug: "};
    line = kNames[static_cast<int>(level)];
  }
  // One event, one line: a stray line break would split a journal entry.
  for (char c : message)
    line += (c == '\n' || c == '\r') ? ' ' : c;
  line += '\n';
  // One write() per line so lines never interleave mid-way.
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

} // namespace healthtable::prober
