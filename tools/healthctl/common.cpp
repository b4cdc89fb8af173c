#include "common.hpp"

#include <healthtable/home.hpp>
#include <healthtable/layout.hpp>
#include <healthtable/names.hpp>
#include <healthtable/report.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <pwd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>

namespace healthctl {

using healthtable::Errc;
using healthtable::Error;

void finish(int code) {
  if (code != kExitOk) throw CLI::RuntimeError(code);
}

void say(const std::string& text) {
  std::string line = text;
  for (char& c : line)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!line.empty() && line.back() == ' ')
    line.pop_back();
  std::fflush(stdout);
  std::fprintf(stderr, "healthctl: %s\n", line.c_str());
}

std::string version_string() {
  return fmt::format("healthctl {} (segment layout v{}, format {})", HEALTHCTL_VERSION,
                     healthtable::kLayoutVersion, format_hex(healthtable::kFormat));
}

std::uint32_t parse_count(std::string_view text, std::string_view option) {
  std::uint32_t value = 0;
  const char* end = text.data() + text.size();
  const bool digits = !text.empty() && std::all_of(text.begin(), text.end(),
                                                   [](char c) { return c >= '0' && c <= '9'; });
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (!digits || ec != std::errc() || ptr != end)
    throw Error(Errc::invalid_argument,
                fmt::format("{} '{}' is not a whole number from 0 to {}", option, printable(text),
                            std::numeric_limits<std::uint32_t>::max()));
  return value;
}

std::uint32_t parse_mode(std::string_view text) {
  std::string_view digits = text;
  if (digits.starts_with("0o")) digits.remove_prefix(2);
  std::uint32_t value = 0;
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, value, 8);
  if (digits.empty() || digits.size() > 4 || ec != std::errc() || ptr != end || value > 0777)
    throw Error(Errc::invalid_argument,
                fmt::format("--mode '{}' is not an octal permission mode from 0000 to 0777 "
                            "(e.g. 0644: owner writes, everyone reads; 0640: group reads)",
                            printable(text)));
  return value;
}

std::optional<std::chrono::nanoseconds> parse_optional_duration(std::string_view text,
                                                                std::string_view option) {
  if (text.empty()) return std::nullopt;
  return healthtable::parse_duration(text, option);
}

std::string format_utc(std::int64_t unix_ns) {
  const std::time_t t = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return "?";
  char buf[32];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "?";
  return buf;
}

std::string format_size(std::uint64_t bytes) {
  std::string digits = std::to_string(bytes);
  for (auto i = static_cast<std::ptrdiff_t>(digits.size()) - 3; i > 0; i -= 3)
    digits.insert(static_cast<std::size_t>(i), ",");
  const double b = static_cast<double>(bytes);
  if (bytes < 1024) return fmt::format("{} bytes", digits); // not operator+: GCC 12 -Wrestrict
  if (bytes < 1024 * 1024) return fmt::format("{} bytes ({:.1f} KiB)", digits, b / 1024);
  return fmt::format("{} bytes ({:.1f} MiB)", digits, b / (1024 * 1024));
}

std::string count_failures(std::uint32_t n) {
  return fmt::format("{} consecutive failure{}", n, n == 1 ? "" : "s");
}

std::string format_mode(std::uint32_t mode) { return fmt::format("{:04o}", mode); }

std::string user_name(std::uint32_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(static_cast<uid_t>(uid), &pw, buf, sizeof buf, &found) == 0 && found)
    return fmt::format("uid {} ({})", uid, printable(found->pw_name));
  return fmt::format("uid {}", uid);
}

std::string format_hex(std::uint64_t value) { return fmt::format("{:#018x}", value); }

double unix_seconds(std::int64_t unix_ns) noexcept { return static_cast<double>(unix_ns) / 1e9; }

std::string printable(std::string_view text) {
  return healthtable::sanitize_reason(text, text.size());
}

WriterView view_writer(const healthtable::Table& table, const healthtable::TableInfo& info,
                       std::optional<std::chrono::nanoseconds> stale_after,
                       std::int64_t now_mono_ns) {
  WriterView w;
  w.attached = table.writer_status() == healthtable::WriterStatus::attached;
  w.pid = info.writer_pid;
  w.started_unix_ns = info.writer_start_unix_ns;
  if (info.heartbeat_mono_ns > 0) {
    w.heartbeat_age_ns = std::max<std::int64_t>(now_mono_ns - info.heartbeat_mono_ns, 0);
    w.heartbeat_unix_ns = info.heartbeat_unix_ns;
  }
  w.interval_ns = std::max<std::int64_t>(info.heartbeat_interval_ns, 0);
  if (stale_after) {
    w.stale_after_ns = std::max<std::int64_t>(stale_after->count(), 0);
  } else {
    // Saturate: the interval comes from shared memory and may be anything.
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max() / 3;
    w.stale_after_ns = w.interval_ns > kMax ? 0 : 3 * w.interval_ns;
  }
  w.stale = w.stale_after_ns > 0 && (!w.heartbeat_age_ns || *w.heartbeat_age_ns > w.stale_after_ns);
  return w;
}

std::string describe_writer(const WriterView& w) {
  std::string line;
  if (w.attached)
    line = w.pid > 0 ? fmt::format("pid {} attached", w.pid) : "attached (pid unknown)";
  else
    line = w.pid > 0 ? fmt::format("none attached (last: pid {})", w.pid) : "none attached";
  if (w.heartbeat_age_ns)
    line += fmt::format(", heartbeat {} ago", format_age(*w.heartbeat_age_ns));
  else
    line += ", no heartbeat yet";
  if (w.interval_ns > 0)
    line += fmt::format(" (promised every {})",
                        healthtable::format_duration(std::chrono::nanoseconds(w.interval_ns)));
  if (w.stale)
    line += fmt::format(", STALE: no heartbeat for more than {}",
                        healthtable::format_duration(std::chrono::nanoseconds(w.stale_after_ns)));
  return line;
}

nlohmann::ordered_json writer_json(const WriterView& w) {
  using json = nlohmann::ordered_json;
  // Durations to the microsecond: 0.024, not 0.023999999.
  const auto seconds = [](std::int64_t ns) {
    return std::round(static_cast<double>(ns) / 1e3) / 1e6;
  };
  json j;
  j["attached"] = w.attached;
  j["pid"] = w.pid > 0 ? json(w.pid) : json(nullptr);
  j["started"] = w.started_unix_ns > 0 ? json(unix_seconds(w.started_unix_ns)) : json(nullptr);
  j["heartbeat"] = w.heartbeat_age_ns ? json(unix_seconds(w.heartbeat_unix_ns)) : json(nullptr);
  j["heartbeat_age"] = w.heartbeat_age_ns ? json(seconds(*w.heartbeat_age_ns)) : json(nullptr);
  j["heartbeat_interval"] = seconds(w.interval_ns);
  j["stale_after"] = w.stale_after_ns > 0 ? json(seconds(w.stale_after_ns)) : json(nullptr);
  j["stale"] = w.stale;
  return j;
}

WriterHealth writer_health(const WriterView& w) noexcept {
  if (!w.attached) return WriterHealth::none;
  return w.stale ? WriterHealth::stale : WriterHealth::live;
}

std::string_view writer_health_name(WriterHealth h) noexcept {
  switch (h) {
  case WriterHealth::live: return "LIVE";
  case WriterHealth::stale: return "STALE";
  case WriterHealth::none: return "none";
  }
  return "none";
}

namespace {

std::string heartbeat_text(const WriterView& w) {
  return w.heartbeat_age_ns ? fmt::format("heartbeat {} ago", format_age(*w.heartbeat_age_ns))
                            : std::string("no heartbeat yet");
}

std::string limit_text(const WriterView& w) {
  return healthtable::format_duration(std::chrono::nanoseconds(w.stale_after_ns));
}

/// "(last: pid 123, heartbeat 40s ago)" for a writer that is gone.
std::string last_writer(const WriterView& w) {
  if (w.pid <= 0) return "(none since the table was created)";
  return fmt::format("(last: pid {}, {})", w.pid, heartbeat_text(w));
}

} // namespace

std::string writer_check_line(const WriterView& w, std::string_view segment) {
  switch (writer_health(w)) {
  case WriterHealth::live:
    return fmt::format("OK: writer pid {}, {}{}", w.pid, heartbeat_text(w),
                       w.stale_after_ns > 0
                           ? fmt::format(" (stale after {})", limit_text(w))
                           : std::string(" (it promised no heartbeat interval, so it is never "
                                         "stale; --stale-after sets a limit)"));
  case WriterHealth::stale:
    return fmt::format("CRITICAL: writer pid {} of '{}' is STALE: {}, stale after {}", w.pid,
                       segment, heartbeat_text(w), limit_text(w));
  case WriterHealth::none: break;
  }
  return fmt::format("CRITICAL: no writer attached to '{}' {}", segment, last_writer(w));
}

std::string writer_warning(const WriterView& w, std::string_view segment) {
  const std::string monitor =
      fmt::format("'healthctl check {} --writer' exits 1 while this lasts", segment);
  switch (writer_health(w)) {
  case WriterHealth::live: return "";
  case WriterHealth::stale:
    return fmt::format("WARNING: the writer (pid {}) is STALE: {}, stale after {}; these states "
                       "may be old; {}",
                       w.pid, heartbeat_text(w), limit_text(w), monitor);
  case WriterHealth::none: break;
  }
  return fmt::format("WARNING: no writer attached: nothing keeps this table current {}; {}",
                     last_writer(w), monitor);
}

healthtable::OpenOptions open_options(const std::string& owner) {
  healthtable::OpenOptions options;
  if (!owner.empty()) options.owner = healthtable::parse_user(owner);
  return options;
}

void add_owner_option(CLI::App& sub, std::string& owner) {
  sub.add_option("--owner", owner,
                 "The user the table must belong to (name or uid); default: $HEALTHTABLE_OWNER, "
                 "else the owner of its home directory")
      ->type_name("USER");
}

std::string to_json_text(const nlohmann::ordered_json& doc, JsonStyle style) {
  return doc.dump(style == JsonStyle::pretty ? 2 : -1, ' ', false,
                  nlohmann::ordered_json::error_handler_t::replace);
}

int write_or_ask_prober(const std::string& segment, const std::string& line,
                        const std::function<int(healthtable::Writer&)>& direct) {
  std::optional<healthtable::Writer> writer;
  try {
    writer.emplace(healthtable::Writer::open(segment));
  } catch (const Error& e) {
    bool ask = e.code() == Errc::writer_busy;
    if (e.code() == Errc::permission_denied || e.code() == Errc::wrong_owner) {
      // We may not write the table ourselves (a writer writes only its own
      // user's tables), but the prober that holds it may accept the request
      // from us ([control] allow_gid).
      try {
        ask = healthtable::Table::open(segment).writer_status() ==
              healthtable::WriterStatus::attached;
      } catch (const Error&) {
        ask = false;
      }
    }
    if (!ask) throw;
    std::string reply;
    try {
      reply = healthtable::request(segment, line, kProberTimeout);
    } catch (const Error& asked) {
      if (asked.code() != Errc::writer_busy) throw; // the prober answered: its error
      throw Error(e.code(),
                  std::string(e.what()) +
                      "; the writer did not answer its control socket either: " + asked.what());
    }
    fmt::print("{}\n", printable(reply));
    return kExitOk;
  }
  return direct(*writer);
}

} // namespace healthctl
