// What the healthctl subcommands share: exit codes, option parsing, the
// formatting of times and sizes, and how the writer's liveness is reported.
#pragma once

#include <healthtable/error.hpp>
#include <healthtable/names.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace healthctl {

// Exit codes. 3..17 are healthtable::Errc's values, used as they are, so a
// script can tell "no such segment" (3) from "writer busy" (11).
inline constexpr int kExitOk = 0;
/// `check`: the provider is unavailable now; `check --writer`: no writer, or STALE.
inline constexpr int kExitUnhealthy = 1;
inline constexpr int kExitUsage = 2; ///< the command line itself is wrong
// `route`'s answers when no provider of the chain is available: above the
// table errors' range, so that new Errc values never collide with them.
inline constexpr int kExitPanicPick = 20; ///< `route`: a panic pick (it is unavailable too)
inline constexpr int kExitNoRoute = 21;   ///< `route`: no pick (policy none, or all forced down)
/// `watch` was asked to draw where there is no terminal.
inline constexpr int kExitNotTerminal = 22;
/// A failure that is not a healthtable::Error (out of memory, a library bug).
inline constexpr int kExitUnexpected = static_cast<int>(healthtable::Errc::system_error);

inline int exit_code(healthtable::Errc code) noexcept { return static_cast<int>(code); }

/// Ends a subcommand's callback with `code`: CLI11 carries a non-zero code
/// out of App::parse() as a CLI::RuntimeError, which prints nothing.
void finish(int code);

/// A command's failure with its own exit code (not a table error): main()
/// prints what() as healthctl's one line and exits with code().
class CommandError : public std::runtime_error {
public:
  CommandError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }

private:
  int code_;
};

/// "healthctl: TEXT" on stderr, on one line, after what stdout holds so far:
/// every message healthctl prints there goes through here.
void say(const std::string& text);

/// "healthctl 0.1.0 (segment layout v2, format 0x...)".
std::string version_string();

// Option values. Each throws Error(invalid_argument) naming the option, so a
// bad value exits 15 like every other bad value the library rejects.

/// A decimal count that fits in 32 bits ("64"; no sign, no hex).
std::uint32_t parse_count(std::string_view text, std::string_view option);
/// A permission mode in octal ("0644", "640"), at most 0777.
std::uint32_t parse_mode(std::string_view text);
/// A duration via healthtable::parse_duration; empty text gives nothing.
std::optional<std::chrono::nanoseconds> parse_optional_duration(std::string_view text,
                                                                std::string_view option);

// Formatting.

using healthtable::format_age; // "0.4s", "12s", "5m03s": shared with healthprobe's STATUS=
/// A Unix time in UTC, ISO 8601 to the second: "2024-05-01T12:00:00Z".
std::string format_utc(std::int64_t unix_ns);
/// "33,024 bytes (32.3 KiB)".
std::string format_size(std::uint64_t bytes);
/// "1 consecutive failure", "2 consecutive failures".
std::string count_failures(std::uint32_t n);
/// "0644".
std::string format_mode(std::uint32_t mode);
/// "0x0001010002003f78".
std::string format_hex(std::uint64_t value);

/// "uid 0 (root)", or "uid 1234" when no user has that uid.
std::string user_name(std::uint32_t uid);
/// Unix seconds as JSON wants them (floating point); 0 stays 0.
double unix_seconds(std::int64_t unix_ns) noexcept;
/// A name or reason read from shared memory, made safe for a terminal.
std::string printable(std::string_view text);

/// The writer as `info` and `dump` report it.
struct WriterView {
  bool attached = false; ///< a process holds the writer lock now (kernel lock test)
  std::int64_t pid = 0;  ///< the last writer to attach; 0 = none since create
  std::int64_t started_unix_ns = 0;
  std::optional<std::int64_t> heartbeat_age_ns; ///< nothing: never beat
  std::int64_t heartbeat_unix_ns = 0;
  std::int64_t interval_ns = 0;    ///< the writer's promised heartbeat interval; 0 = none
  std::int64_t stale_after_ns = 0; ///< --stale-after, or 3 promised intervals; 0 = no limit
  bool stale = false;              ///< the heartbeat is older than stale_after_ns
};

/// Reads the writer's state from `table`. A writer is stale when a limit
/// applies (--stale-after, else 3 x the promised interval) and its last
/// heartbeat is older than that on CLOCK_MONOTONIC_COARSE.
WriterView view_writer(const healthtable::Table& table, const healthtable::TableInfo& info,
                       std::optional<std::chrono::nanoseconds> stale_after,
                       std::int64_t now_mono_ns);

/// One line: "pid 4242 attached, heartbeat 0.8s ago (promised every 1s)".
std::string describe_writer(const WriterView& w);

/// The "writer" object of `info --json` and `dump --json`.
nlohmann::ordered_json writer_json(const WriterView& w);

/// What `list`, `check --writer` and the warnings of `info`/`dump` call the
/// writer: live (attached, heartbeat within the limit or no limit), stale
/// (attached, heartbeat older than the limit), none (nothing attached).
enum class WriterHealth { live, stale, none };
WriterHealth writer_health(const WriterView& w) noexcept;
/// "LIVE", "STALE", "none".
std::string_view writer_health_name(WriterHealth h) noexcept;

/// `check --writer`'s line, Nagios style: "OK: writer pid 123, heartbeat
/// 0.4s ago", "CRITICAL: writer pid 123 is STALE: ...", "CRITICAL: no
/// writer attached to 'gw' ...".
std::string writer_check_line(const WriterView& w, std::string_view segment);

/// The line `info` and `dump` add when the writer is STALE or gone
/// ("WARNING: ..."), or "" while it is live.
std::string writer_warning(const WriterView& w, std::string_view segment);

/// How long `record`, `set` and `reset` wait for the prober's answer.
inline constexpr std::chrono::milliseconds kProberTimeout{1000};

/// Runs a writing command. When the writer lock is free, takes it and runs
/// `direct`. When another process holds it (writer_busy; or
/// permission_denied while a writer is attached, so the prober can decide
/// by [control] allow_gid), sends `line` to the holder's control socket,
/// prints the text of its "ok" reply and returns kExitOk; an "error" reply
/// throws the matching healthtable::Error. When nobody answers there, throws
/// the original error, saying the writer did not answer its control socket.
int write_or_ask_prober(const std::string& segment, const std::string& line,
                        const std::function<int(healthtable::Writer&)>& direct);

/// Readers' OpenOptions: `owner` (a user name or uid) when given, else the
/// library's default ($HEALTHTABLE_OWNER, else the home's owner).
healthtable::OpenOptions open_options(const std::string& owner);

/// Adds `--owner USER` to a read command, stored in `owner`.
void add_owner_option(CLI::App& sub, std::string& owner);

/// Serialises JSON for stdout; invalid UTF-8 from a hostile image is
/// replaced instead of throwing.
/// pretty: indented, for one document; line: one line, for JSON Lines.
enum class JsonStyle { pretty, line };
std::string to_json_text(const nlohmann::ordered_json& doc, JsonStyle style = JsonStyle::pretty);

} // namespace healthctl
