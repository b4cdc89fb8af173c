// healthprobe's TOML configuration: what to probe, how often, and which
// table to write. The parser checks everything before anything touches a
// table, and every complaint names the file, the line and the key.
#pragma once

#include "probe.hpp"

#include <healthtable/writer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace healthtable::prober {

inline constexpr std::chrono::nanoseconds kDefaultInterval = std::chrono::seconds(30);
inline constexpr std::chrono::nanoseconds kDefaultTimeout = std::chrono::seconds(3);
inline constexpr long kDefaultHealthyBelow = 500;

/// The breaker policy keys one section sets (`[table]` for the table's
/// default, a `[[provider]]` for its own): an absent key leaves the value
/// underneath (the table's own, or the table default).
struct PolicyKeys {
  std::optional<std::uint32_t> failure_threshold;
  std::optional<std::chrono::nanoseconds> backoff;
  std::optional<std::uint32_t> recover_after;
  std::optional<std::chrono::nanoseconds> max_backoff;
  std::optional<std::uint32_t> jitter_permille; ///< `jitter`: 0.1 or "10%" is 100
  std::optional<std::chrono::nanoseconds> trip_memory;
  std::optional<std::chrono::nanoseconds> ramp;
  std::optional<std::chrono::nanoseconds> cooldown;
  std::optional<std::chrono::nanoseconds> max_hint;
  std::optional<ClassSet> counts;    ///< `count`
  std::optional<ClassSet> cooldowns; ///< `cooldown_classes`
  std::optional<bool> probe_clears_reports;

  bool any() const noexcept { return *this != PolicyKeys{}; }
  /// `base` with every key present here set.
  Policy over(Policy base) const;
  friend bool operator==(const PolicyKeys&, const PolicyKeys&) = default;
};

/// The probe cadence keys one section sets (`[table]` for the default, a
/// `[[provider]]` for its own); an absent key leaves the one underneath.
struct CadenceKeys {
  /// The interval while the provider is failing, tripped or half-open
  /// (HAProxy's fastinter/downinter). Nowhere set: its `interval`.
  std::optional<std::chrono::nanoseconds> down_interval;
  /// Each next probe moves by up to +- this share of the interval, in
  /// thousandths (`spread = 0.1` or "10%" is 100). Nowhere set: 0.
  std::optional<std::uint32_t> spread_permille;
};

/// The `[table]` section: how to create the segment when it is missing, and
/// the circuit-breaker policy to apply (absent keys leave the table's own).
struct TableConfig {
  bool create = true;
  std::uint32_t slots = 64;
  std::uint32_t mode = 0644;
  /// Grow the table (to twice its slots, or what the config needs) when
  /// the providers do not fit, instead of refusing them.
  bool grow = true;
  PolicyKeys policy; ///< the table's default policy
  /// The HTTP check of every provider that sets none of its own.
  std::optional<HttpMethod> method;
  std::vector<StatusRange> expect; ///< empty: every status below healthy_below
  CadenceKeys cadence;             ///< the providers' default down_interval and spread
};

/// The `[control]` section: the control socket and who may use it. Every
/// id is numeric here (names were resolved when parsing).
struct ControlConfig {
  bool enabled = true;
  /// The socket file's group and mode: who may send at all (the kernel
  /// checks write permission on connect/sendto). Unset group: our primary
  /// group. Only read/write bits; other-write (0666) only when written so.
  std::optional<std::uint32_t> group;
  std::uint32_t mode = 0660;
  /// May send every request (record, set, reset, forget, grow). Default: our uid and 0.
  std::vector<std::uint32_t> allow_uids;
  std::optional<std::uint32_t> allow_gid; ///< a sender whose gid is this may too
  /// May send `record` only (router workers).
  std::vector<std::uint32_t> report_uids;
  std::optional<std::uint32_t> report_gid;
};

/// The optional `[fleet]` section: share what this prober learns about
/// providers with the probers of other hosts through Redis (docs/fleet.md).
struct FleetConfig {
  bool enabled = false; ///< the section is present
  std::string name;     ///< the fleet; its channel is "healthtable:fleet:NAME"
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
  std::string host_id;     ///< this host in messages; default: the host name
  std::string secret;      ///< the HMAC key, read from secret_file
  std::string secret_file; ///< must not be readable or writable by others
  std::string user;        ///< Redis ACL user (AUTH user password); empty: AUTH password
  std::string password;    ///< read from password_file; empty: no AUTH
  /// Classes whose cooldown deadlines are published and taken from peers.
  ClassSet share = class_bit(FailureClass::rate_limited);
  /// Trips of providers marked `fleet_wide` are published and taken.
  bool trips = true;
  std::chrono::nanoseconds max_skew = std::chrono::seconds(2);
  std::chrono::nanoseconds max_deadline = std::chrono::hours(1);
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(1);
  std::chrono::nanoseconds command_timeout = std::chrono::seconds(1);
  std::chrono::nanoseconds reconnect_min = std::chrono::milliseconds(100);
  std::chrono::nanoseconds reconnect_max = std::chrono::seconds(5);

  std::string channel() const { return "healthtable:fleet:" + name; }
  bool operator==(const FleetConfig&) const = default;
};

/// The `[metrics]` section: where healthprobe serves GET /metrics
/// (docs/metrics.md). Absent: no listener at all.
struct MetricsConfig {
  std::string listen;     ///< "HOST:PORT" as written; empty: /metrics is off
  std::string host;       ///< the numeric address, without brackets
  std::uint16_t port = 0; ///< 0: any free port (logged at start)
  bool ipv6 = false;
  bool enabled() const noexcept { return !listen.empty(); }
  friend bool operator==(const MetricsConfig&, const MetricsConfig&) = default;
};

/// One `[[provider]]`: a name, one probe, and its cadence.
struct ProviderConfig {
  std::string name;
  ProbeSpec probe; ///< name, target, headers (expanded), HTTP check, TLS, timeout
  std::chrono::nanoseconds interval{};      ///< own or the default
  std::chrono::nanoseconds timeout{};       ///< own or the default (also in probe.timeout)
  std::chrono::nanoseconds down_interval{}; ///< own, [table]'s, or `interval`
  std::uint32_t spread_permille = 0;        ///< own, [table]'s, or 0
  std::uint32_t line = 0;                   ///< its [[provider]] line, for messages
  std::uint32_t name_line = 0;              ///< its name's line (duplicates point here)
  /// Its own breaker policy over the table default (Writer::set_policy(name, ...)).
  PolicyKeys policy;
  /// Its trips are the provider's, not this host's (an outage of a global
  /// API): with a `[fleet]`, they are shared with the peers.
  bool fleet_wide = false;

  /// Same probe, same cadence: a reload keeps its schedule.
  bool same_as(const ProviderConfig& other) const;
};

struct Config {
  std::string path;
  std::string segment;
  std::chrono::nanoseconds interval = kDefaultInterval;
  std::chrono::nanoseconds timeout = kDefaultTimeout;
  std::chrono::nanoseconds jitter{0};
  TableConfig table;
  ControlConfig control;
  FleetConfig fleet;
  MetricsConfig metrics;
  std::vector<ProviderConfig> providers;

  /// The shortest interval of any provider (the heartbeat promise).
  std::chrono::nanoseconds shortest_interval() const;
};

/// A bad configuration. what() is one line: "FILE:LINE: KEY: problem".
class ConfigError : public std::runtime_error {
public:
  ConfigError(const std::string& file, std::uint32_t line, const std::string& key,
              const std::string& problem);
  std::uint32_t line() const noexcept { return line_; }
  const std::string& key() const noexcept { return key_; }

private:
  std::uint32_t line_;
  std::string key_;
};

/// Looks up an environment variable for `${NAME}` in header values.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
/// The process environment.
std::optional<std::string> process_env(const std::string& name);

/// Parses and checks a configuration held in memory; `path` is used in
/// messages and to resolve relative `ca_file`s. Throws ConfigError.
Config parse_config(std::string_view text, const std::string& path,
                    const EnvLookup& env = process_env);

/// Reads and parses a file. Throws ConfigError (including "cannot read").
Config load_config(const std::string& path, const EnvLookup& env = process_env);

/// Expands `${NAME}` in `text`; `$$` is a literal `$`. Throws
/// std::invalid_argument naming a missing variable or an unclosed `${`.
std::string expand_env(std::string_view text, const EnvLookup& env);

} // namespace healthtable::prober
