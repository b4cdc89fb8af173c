#include "log.hpp"

#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace healthtable::prober {

namespace {

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

/// One event, one line: a stray line break would split an entry on stderr.
std::string one_line(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  for (char c : message)
    out += (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

} // namespace

bool is_journal_stream(const char* journal_stream, const struct stat& st) noexcept {
  if (journal_stream == nullptr) return false;
  const std::string_view text(journal_stream);
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  std::uintmax_t dev = 0, ino = 0;
  const char* end = text.data() + text.size();
  const auto d = std::from_chars(text.data(), text.data() + colon, dev);
  const auto i = std::from_chars(text.data() + colon + 1, end, ino);
  if (d.ec != std::errc() || d.ptr != text.data() + colon || i.ec != std::errc() || i.ptr != end ||
      colon == 0 || colon + 1 == text.size())
    return false;
  return dev == static_cast<std::uintmax_t>(st.st_dev) &&
         ino == static_cast<std::uintmax_t>(st.st_ino);
}

std::vector<std::string> journal_fields(Level level, std::string_view message,
                                        std::string_view segment, const LogFields& fields) {
  std::vector<std::string> out;
  out.push_back("MESSAGE=" + one_line(message));
  out.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
  out.emplace_back("SYSLOG_IDENTIFIER=healthprobe");
  if (!segment.empty()) out.push_back("SEGMENT=" + one_line(segment));
  if (!fields.provider.empty()) out.push_back("PROVIDER=" + one_line(fields.provider));
  if (!fields.event.empty()) out.push_back("EVENT=" + one_line(fields.event));
  return out;
}

Log::Log(bool verbose, int fd)
    : verbose_(verbose), fd_(fd), priority_prefix_(::isatty(fd) == 0), journal_(false) {
  struct stat st {};
  // sd_journal_sendv() drops entries silently when journald's socket is
  // missing (a JOURNAL_STREAM left over in a container without it), so
  // entries go natively only when the socket is there too.
  struct stat sock {};
  journal_ = ::fstat(fd, &st) == 0 && is_journal_stream(std::getenv("JOURNAL_STREAM"), st) &&
             ::stat(kJournalSocket, &sock) == 0 && S_ISSOCK(sock.st_mode);
}

void Log::operator()(Level level, std::string_view message, const LogFields& fields) const {
  if (level == Level::debug && !verbose_) return;
  if (journal_) {
    const std::vector<std::string> entry = journal_fields(level, message, segment_, fields);
    std::vector<iovec> iov;
    iov.reserve(entry.size());
    for (const std::string& f : entry)
      iov.push_back({const_cast<char*>(f.data()), f.size()});
    // journald gone (restarting, or the socket not reachable from here):
    // the stream is still connected, so the line is not lost.
    if (::sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0) return;
  }
  write_line(level, message);
}

void Log::write_line(Level level, std::string_view message) const {
  std::string line;
  if (priority_prefix_) {
    line = "<" + std::to_string(static_cast<int>(level)) + ">";
  } else {
    static constexpr std::string_view kNames[] = {
        "", "", "", "error: ", "warning: ", "notice: ", "info: ", "debug: "};
    line = kNames[static_cast<int>(level)];
  }
  line += one_line(message);
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
