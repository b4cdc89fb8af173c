#include "config.hpp"

#include <healthtable/error.hpp>
#include <healthtable/layout.hpp>
#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <system_error>

namespace healthtable::prober {

ConfigError::ConfigError(const std::string& file, std::uint32_t line, const std::string& key,
                         const std::string& problem)
    : std::runtime_error(file + ":" + std::to_string(line) + ": " +
                         (key.empty() ? std::string() : key + ": ") + problem),
      line_(line), key_(key) {}

std::optional<std::string> process_env(const std::string& name) {
  if (const char* v = std::getenv(name.c_str())) return std::string(v);
  return std::nullopt;
}

std::string expand_env(std::string_view text, const EnvLookup& env) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '$' || i + 1 == text.size()) {
      out += c;
      continue;
    }
    if (text[i + 1] == '$') { // "$$" is a literal '$'
      out += '$';
      ++i;
      continue;
    }
    if (text[i + 1] != '{') {
      out += c;
      continue;
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos)
      throw std::invalid_argument("unclosed \"${\" in \"" + std::string(text) + "\"");
    const std::string name(text.substr(i + 2, close - i - 2));
    if (name.empty()) throw std::invalid_argument("empty \"${}\"");
    const auto value = env(name);
    if (!value)
      throw std::invalid_argument("environment variable " + name + " is not set (referenced as ${" +
                                  name + "})");
    out += *value;
    i = close;
  }
  return out;
}

bool ProviderConfig::same_as(const ProviderConfig& o) const {
  const ProbeSpec& a = probe; // every field: a changed check is a changed probe
  const ProbeSpec& b = o.probe;
  return name == o.name && interval == o.interval && timeout == o.timeout &&
         down_interval == o.down_interval && spread_permille == o.spread_permille && a == b;
}

Policy PolicyKeys::over(Policy p) const {
  if (failure_threshold) p.failure_threshold = *failure_threshold;
  if (backoff) p.backoff = *backoff;
  if (recover_after) p.recover_after = *recover_after;
  if (max_backoff) p.max_backoff = *max_backoff;
  if (jitter_permille) p.jitter_permille = *jitter_permille;
  if (trip_memory) p.trip_memory = *trip_memory;
  if (ramp) p.ramp = *ramp;
  if (cooldown) p.cooldown = *cooldown;
  if (max_hint) p.max_hint = *max_hint;
  if (counts) p.counts = *counts;
  if (cooldowns) p.cooldowns = *cooldowns;
  if (probe_clears_reports) p.probe_clears_reports = *probe_clears_reports;
  return p;
}

std::chrono::nanoseconds Config::shortest_interval() const {
  auto shortest = interval;
  for (const auto& p : providers)
    shortest = std::min(shortest, p.interval);
  return shortest;
}

namespace {

std::uint32_t line_of(const toml::source_region& src) {
  return static_cast<std::uint32_t>(src.begin.line);
}

/// Parses one document with its file name and the environment at hand.
class Parser {
public:
  Parser(std::string path, const EnvLookup& env) : path_(std::move(path)), env_(env) {}

  Config parse(std::string_view text) {
    toml::table root;
    try {
      root = toml::parse(text, path_);
    } catch (const toml::parse_error& e) {
      throw ConfigError(path_, line_of(e.source()), "",
                        "TOML syntax: " + std::string(e.description()));
    }
    Config cfg;
    cfg.path = path_;
    check_keys(root, "",
               {"segment", "interval", "timeout", "jitter", "table", "control", "fleet", "metrics",
                "provider"});

    const toml::node* seg = root.get("segment");
    if (!seg)
      throw ConfigError(path_, 1, "segment", "missing: name the table, e.g. segment = \"gateway\"");
    cfg.segment = string_of(*seg, "segment");
    try {
      validate_segment_name(cfg.segment);
    } catch (const Error& e) {
      fail(*seg, "segment", e.what());
    }
    if (auto* n = root.get("interval")) cfg.interval = positive_duration(*n, "interval");
    if (auto* n = root.get("timeout"))
      cfg.timeout = positive_duration(*n, "timeout");
    else
      cfg.timeout = std::min(cfg.timeout, cfg.interval); // an unset timeout fits the interval
    if (auto* n = root.get("jitter")) cfg.jitter = duration_of(*n, "jitter");
    if (cfg.timeout > cfg.interval)
      fail(root.get("timeout") ? *root.get("timeout") : *root.get("interval"), "timeout",
           "timeout (" + format_duration(cfg.timeout) + ") must not exceed interval (" +
               format_duration(cfg.interval) + "): ticks would overlap");

    if (auto* n = root.get("table")) parse_table(*n, cfg.table);
    cfg.control.allow_uids = {static_cast<std::uint32_t>(::getuid()), 0};
    if (auto* n = root.get("control")) parse_control(*n, cfg.control);
    if (auto* n = root.get("fleet")) parse_fleet(*n, cfg.fleet);
    if (auto* n = root.get("metrics")) parse_metrics(*n, cfg.metrics);

    const toml::node* providers = root.get("provider");
    if (!providers)
      throw ConfigError(path_, 1, "provider", "no providers: add at least one [[provider]] table");
    const toml::array* arr = providers->as_array();
    if (!arr || !arr->is_array_of_tables())
      fail(*providers, "provider",
           "must be an array of tables: write [[provider]], not [provider]");
    if (arr->empty()) fail(*providers, "provider", "no providers: add at least one [[provider]]");
    std::map<std::string, std::uint32_t> seen;
    for (const toml::node& n : *arr) {
      ProviderConfig p = parse_provider(*n.as_table(), cfg);
      if (auto [it, fresh] = seen.emplace(p.name, p.name_line); !fresh)
        throw ConfigError(path_, p.name_line, "provider.name",
                          "duplicate provider \"" + p.name + "\" (first defined at line " +
                              std::to_string(it->second) + ")");
      cfg.providers.push_back(std::move(p));
    }
    return cfg;
  }

private:
  [[noreturn]] void fail(const toml::node& n, const std::string& key,
                         const std::string& problem) const {
    throw ConfigError(path_, line_of(n.source()), key, problem);
  }

  void check_keys(const toml::table& t, const std::string& prefix,
                  std::initializer_list<std::string_view> allowed) const {
    for (auto&& [k, v] : t) {
      if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end()) continue;
      std::string list;
      for (auto a : allowed)
        list += (list.empty() ? "" : ", ") + std::string(a);
      throw ConfigError(path_, line_of(k.source()), prefix + std::string(k.str()),
                        "unknown key (expected one of: " + list + ")");
    }
  }

  std::string string_of(const toml::node& n, const std::string& key) const {
    if (auto* s = n.as_string()) return s->get();
    fail(n, key, "must be a string");
  }

  bool bool_of(const toml::node& n, const std::string& key) const {
    if (auto* b = n.as_boolean()) return b->get();
    fail(n, key, "must be true or false");
  }

  std::int64_t int_of(const toml::node& n, const std::string& key, std::int64_t lo,
                      std::int64_t hi) const {
    auto* i = n.as_integer();
    if (!i) fail(n, key, "must be an integer");
    if (i->get() < lo || i->get() > hi)
      fail(n, key,
           std::to_string(i->get()) + " is out of range (" + std::to_string(lo) + " to " +
               std::to_string(hi) + ")");
    return i->get();
  }

  /// "30s", "500ms", "2m"; a bare number is seconds.
  std::chrono::nanoseconds duration_of(const toml::node& n, const std::string& key) const {
    std::string text;
    if (auto* s = n.as_string())
      text = s->get();
    else if (auto* i = n.as_integer())
      text = std::to_string(i->get());
    else if (auto* f = n.as_floating_point())
      text = std::to_string(f->get());
    else
      fail(n, key, "must be a duration such as \"30s\", \"500ms\" or \"2m\"");
    try {
      auto d = parse_duration(text, key);
      if (d.count() < 0) fail(n, key, "must not be negative");
      return d;
    } catch (const Error& e) {
      fail(n, key, e.what());
    }
  }

  std::chrono::nanoseconds positive_duration(const toml::node& n, const std::string& key) const {
    auto d = duration_of(n, key);
    if (d.count() <= 0) fail(n, key, "must be greater than zero");
    if (d < std::chrono::milliseconds(1)) fail(n, key, "must be at least 1ms");
    return d;
  }

  void parse_table(const toml::node& node, TableConfig& t) const {
    const toml::table* tbl = node.as_table();
    if (!tbl) fail(node, "table", "must be a table: write [table]");
    check_keys(*tbl, "table.",
               {"create",
                "slots",
                "mode",
                "grow",
                "down_interval",
                "spread",
                "failure_threshold",
                "backoff",
                "recover_after",
                "max_backoff",
                "jitter",
                "trip_memory",
                "ramp",
                "cooldown",
                "max_hint",
                "count",
                "cooldown_classes",
                "probe_clears_reports",
                "method",
                "expect"});
    if (auto* n = tbl->get("create")) t.create = bool_of(*n, "table.create");
    if (auto* n = tbl->get("method")) t.method = method_of(*n, "table.method");
    if (auto* n = tbl->get("expect")) t.expect = expect_of(*n, "table.expect");
    if (auto* n = tbl->get("grow")) t.grow = bool_of(*n, "table.grow");
    if (auto* n = tbl->get("slots"))
      t.slots = static_cast<std::uint32_t>(int_of(*n, "table.slots", 1, kMaxCapacity));
    if (auto* n = tbl->get("mode")) t.mode = mode_of(*n, "table.mode", "0644");
    t.policy = parse_policy(*tbl, "table.", Policy{});
    t.cadence = parse_cadence(*tbl, "table.");
  }

  /// The policy keys of one section. Each is checked by validate_policy()
  /// as it is laid over `base`, so the library's message (which names the
  /// field) comes with the key's own line.
  CadenceKeys parse_cadence(const toml::table& t, const std::string& prefix) const {
    CadenceKeys k;
    if (auto* n = t.get("down_interval"))
      k.down_interval = positive_duration(*n, prefix + "down_interval");
    if (auto* n = t.get("spread")) k.spread_permille = spread_of(*n, prefix + "spread");
    return k;
  }

  /// `spread`: a fraction of the interval (0.1) or a percentage ("10%"), at
  /// most half of it, in thousandths.
  std::uint32_t spread_of(const toml::node& n, const std::string& key) const {
    const std::string expected =
        "must be a fraction of the interval such as 0.1 or a percentage such as \"10%\"";
    double fraction = 0;
    if (auto* f = n.as_floating_point()) {
      fraction = f->get();
    } else if (auto* i = n.as_integer()) {
      if (i->get() != 0) fail(n, key, expected);
    } else if (auto* s = n.as_string()) {
      const std::string text = s->get();
      char* end = nullptr;
      const double pct = std::strtod(text.c_str(), &end);
      if (text.empty() || end == text.c_str() || std::string_view(end) != "%")
        fail(n, key, expected);
      fraction = pct / 100;
    } else {
      fail(n, key, expected);
    }
    if (!(fraction >= 0) || fraction > 0.5) // also NaN
      fail(n, key,
           "must be between 0 and 0.5 (50%) of the interval: each probe moves by up to "
           "+- this share");
    return static_cast<std::uint32_t>(fraction * 1000 + 0.5);
  }

  PolicyKeys parse_policy(const toml::table& t, const std::string& prefix, Policy base) const {
    PolicyKeys k;
    const auto set = [&](const char* key, auto&& parse_into) {
      const toml::node* n = t.get(key);
      if (!n) return;
      const std::string name = prefix + key;
      parse_into(*n, name);
      try {
        validate_policy(k.over(base));
      } catch (const Error& e) {
        fail(*n, name, e.what());
      }
    };
    constexpr std::int64_t kU32 = std::numeric_limits<std::uint32_t>::max();
    set("failure_threshold", [&](const toml::node& n, const std::string& key) {
      k.failure_threshold = static_cast<std::uint32_t>(int_of(n, key, 1, kU32));
    });
    set("backoff",
        [&](const toml::node& n, const std::string& key) { k.backoff = duration_of(n, key); });
    set("recover_after", [&](const toml::node& n, const std::string& key) {
      k.recover_after = static_cast<std::uint32_t>(int_of(n, key, 0, kU32));
    });
    set("max_backoff",
        [&](const toml::node& n, const std::string& key) { k.max_backoff = duration_of(n, key); });
    set("jitter", [&](const toml::node& n, const std::string& key) {
      k.jitter_permille = permille_of(n, key);
    });
    set("trip_memory",
        [&](const toml::node& n, const std::string& key) { k.trip_memory = duration_of(n, key); });
    set("ramp", [&](const toml::node& n, const std::string& key) { k.ramp = duration_of(n, key); });
    set("cooldown",
        [&](const toml::node& n, const std::string& key) { k.cooldown = duration_of(n, key); });
    set("max_hint",
        [&](const toml::node& n, const std::string& key) { k.max_hint = duration_of(n, key); });
    set("count",
        [&](const toml::node& n, const std::string& key) { k.counts = classes_of(n, key); });
    set("cooldown_classes",
        [&](const toml::node& n, const std::string& key) { k.cooldowns = classes_of(n, key); });
    set("probe_clears_reports", [&](const toml::node& n, const std::string& key) {
      k.probe_clears_reports = bool_of(n, key);
    });
    return k;
  }

  /// The breaker's jitter: a fraction of the window (0.1) or a percentage
  /// ("10%"), in thousandths. A duration is the probe schedule's `jitter`
  /// (top level), so it is refused here rather than misread.
  std::uint32_t permille_of(const toml::node& n, const std::string& key) const {
    const std::string expected =
        "must be a fraction of the window such as 0.1 or a percentage such as \"10%\" "
        "(the top-level jitter, a duration, spreads probes instead)";
    double fraction = 0;
    if (auto* f = n.as_floating_point()) {
      fraction = f->get();
    } else if (auto* i = n.as_integer()) {
      if (i->get() != 0 && i->get() != 1) fail(n, key, expected);
      fraction = static_cast<double>(i->get());
    } else if (auto* s = n.as_string()) {
      const std::string text = s->get();
      char* end = nullptr;
      const double pct = std::strtod(text.c_str(), &end);
      if (text.empty() || end == text.c_str() || std::string_view(end) != "%")
        fail(n, key, expected);
      fraction = pct / 100;
    } else {
      fail(n, key, expected);
    }
    if (!(fraction >= 0) || fraction > 1) // also NaN
      fail(n, key, "must be between 0 and 1 (0% and 100%) of the window");
    return static_cast<std::uint32_t>(fraction * 1000 + 0.5);
  }

  /// A list of failure class names, as class_name() spells them.
  ClassSet classes_of(const toml::node& n, const std::string& key) const {
    std::string valid;
    for (std::size_t c = 1; c < kFailureClasses; ++c)
      valid += (valid.empty() ? "" : ", ") + std::string(class_name(static_cast<FailureClass>(c)));
    const toml::array* arr = n.as_array();
    if (!arr) fail(n, key, "must be a list of failure classes, e.g. [\"timeout\", \"server\"]");
    ClassSet set = 0;
    for (const toml::node& v : *arr) {
      const std::string name = string_of(v, key);
      bool found = false;
      for (std::size_t c = 1; c < kFailureClasses && !found; ++c) {
        const auto cls = static_cast<FailureClass>(c);
        if (class_name(cls) == name) {
          set = static_cast<ClassSet>(set | class_bit(cls));
          found = true;
        }
      }
      if (!found)
        fail(v, key, "unknown failure class \"" + name + "\" (expected one of: " + valid + ")");
    }
    return set;
  }

  HttpMethod method_of(const toml::node& n, const std::string& key) const {
    const std::string problem = "must be \"GET\" or \"HEAD\"";
    const auto* s = n.as_string();
    if (!s) fail(n, key, problem);
    if (s->get() == "GET") return HttpMethod::get;
    if (s->get() == "HEAD") return HttpMethod::head;
    fail(n, key, "\"" + s->get() + "\" is not a probe method: " + problem);
  }

  /// `[200, "300-399", 404]`: statuses and inclusive ranges, each within
  /// 100..599. 429 alone is refused: it is never healthy (a rate limit), so
  /// listing it would be a promise the probe does not keep; a range may span
  /// it and still leaves it out.
  std::vector<StatusRange> expect_of(const toml::node& n, const std::string& key) const {
    const std::string form =
        "expected a list of statuses 100 to 599 and \"a-b\" ranges, e.g. [200, \"300-399\"]";
    const toml::array* arr = n.as_array();
    if (!arr || arr->empty()) fail(n, key, (arr ? "empty: " : "not a list: ") + form);
    std::vector<StatusRange> out;
    for (const toml::node& v : *arr) {
      StatusRange r;
      std::string text;
      if (const auto* i = v.as_integer()) {
        r.lo = r.hi = static_cast<long>(i->get());
        text = std::to_string(i->get());
      } else if (const auto* s = v.as_string()) {
        text = s->get();
        const auto dash = text.find('-');
        const auto number = [](std::string_view d, long* to) {
          if (d.empty() || d.size() > 3 ||
              !std::all_of(d.begin(), d.end(), [](unsigned char c) { return std::isdigit(c); }))
            return false;
          *to = std::stol(std::string(d));
          return true;
        };
        const std::string_view whole(text);
        const bool ok = dash == std::string::npos ? number(whole, &r.lo) && number(whole, &r.hi)
                                                  : number(whole.substr(0, dash), &r.lo) &&
                                                        number(whole.substr(dash + 1), &r.hi);
        if (!ok) fail(v, key, "\"" + text + "\" is not a status or a range: " + form);
      } else {
        fail(v, key, "not a status or a range: " + form);
      }
      for (const long status : {r.lo, r.hi})
        if (status < 100 || status > 599)
          fail(v, key, std::to_string(status) + " is not an HTTP status: " + form);
      if (r.lo > r.hi)
        fail(v, key,
             "\"" + text + "\" runs backwards: write \"" + std::to_string(r.hi) + "-" +
                 std::to_string(r.lo) + "\"");
      if (r.lo == 429 && r.hi == 429)
        fail(v, key, "429 is never healthy (a rate limit, class rate_limited): leave it out");
      out.push_back(r);
    }
    return out;
  }

  /// "0644" (octal text) or an integer (write 0o644 in TOML).
  std::uint32_t mode_of(const toml::node& n, const std::string& key,
                        const std::string& example) const {
    if (auto* s = n.as_string()) {
      const std::string text = s->get();
      char* end = nullptr;
      const unsigned long v = std::strtoul(text.c_str(), &end, 8);
      if (text.empty() || *end != '\0' || v > 0777)
        fail(n, key, "\"" + text + "\" is not an octal mode such as \"" + example + "\"");
      return static_cast<std::uint32_t>(v);
    }
    // A TOML integer is decimal unless written 0o...: `mode = 644` is 644,
    // which is no mode (or, like 420, not the one meant). Only 0 reads
    // the same in every base.
    if (auto* i = n.as_integer();
        i && i->get() != 0 && (static_cast<unsigned>(i->flags()) & 3u) == 0u) {
      const std::string digits = std::to_string(i->get());
      const bool octal_digits =
          digits.size() <= 3 && digits.find_first_not_of("01234567") == std::string::npos;
      const std::string meant =
          octal_digits ? std::string(4 - digits.size(), '0') + digits : example;
      fail(n, key,
           digits + " is read as decimal " + digits +
               " (a TOML integer is decimal unless written 0o...); write " +
               key.substr(key.rfind('.') + 1) + " = 0o" + meant.substr(1) + " or \"" + meant +
               "\"");
    }
    return static_cast<std::uint32_t>(int_of(n, key, 0, 0777));
  }

  /// A uid: a number, or a user name looked up now.
  std::uint32_t uid_of(const toml::node& n, const std::string& key) const {
    if (n.as_integer()) return static_cast<std::uint32_t>(int_of(n, key, 0, 0xFFFFFFFEll));
    if (auto* s = n.as_string()) {
      const std::string name = s->get();
      std::vector<char> buf(16384);
      passwd pw{};
      passwd* found = nullptr;
      if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found)
        return found->pw_uid;
      fail(n, key, "no user \"" + name + "\"");
    }
    fail(n, key, "must be a uid or a user name");
  }

  /// A gid: a number, or a group name looked up now.
  std::uint32_t gid_of(const toml::node& n, const std::string& key) const {
    if (n.as_integer()) return static_cast<std::uint32_t>(int_of(n, key, 0, 0xFFFFFFFEll));
    if (auto* s = n.as_string()) {
      const std::string name = s->get();
      std::vector<char> buf(16384);
      group gr{};
      group* found = nullptr;
      if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) == 0 && found)
        return found->gr_gid;
      fail(n, key, "no group \"" + name + "\"");
    }
    fail(n, key, "must be a gid or a group name");
  }

  std::vector<std::uint32_t> uids_of(const toml::node& n, const std::string& key) const {
    const toml::array* arr = n.as_array();
    if (!arr) fail(n, key, "must be a list of uids or user names, e.g. [0, \"gateway\"]");
    std::vector<std::uint32_t> out;
    for (const toml::node& v : *arr)
      out.push_back(uid_of(v, key));
    return out;
  }

  void parse_control(const toml::node& node, ControlConfig& c) const {
    const toml::table* tbl = node.as_table();
    if (!tbl) fail(node, "control", "must be a table: write [control]");
    check_keys(
        *tbl, "control.",
        {"enabled", "group", "mode", "allow_uids", "allow_gid", "report_uids", "report_gid"});
    if (auto* n = tbl->get("enabled")) c.enabled = bool_of(*n, "control.enabled");
    if (auto* n = tbl->get("group")) c.group = gid_of(*n, "control.group");
    if (auto* n = tbl->get("mode")) {
      c.mode = mode_of(*n, "control.mode", "0660");
      // Execute and special bits mean nothing on a socket; a typo such as
      // 0770 should not pass as a decision.
      if (c.mode & ~0666u)
        fail(*n, "control.mode",
             "\"" + format_mode(c.mode) +
                 "\" has execute bits; a socket needs only read/write bits, e.g. \"0660\" "
                 "(the group may send) or \"0600\" (only the prober's user)");
      if ((c.mode & 0200) == 0)
        fail(*n, "control.mode",
             "\"" + format_mode(c.mode) + "\" leaves out the owner's write bit (0200)");
    }
    if (auto* n = tbl->get("allow_uids")) c.allow_uids = uids_of(*n, "control.allow_uids");
    if (auto* n = tbl->get("allow_gid")) c.allow_gid = gid_of(*n, "control.allow_gid");
    if (auto* n = tbl->get("report_uids")) c.report_uids = uids_of(*n, "control.report_uids");
    if (auto* n = tbl->get("report_gid")) c.report_gid = gid_of(*n, "control.report_gid");
  }

  /// A secret's file, whole, without a trailing newline. Refused when
  /// others may read or write it: a secret everyone can read is none.
  std::string secret_of(const toml::node& n, const std::string& key) const {
    std::filesystem::path f = string_of(n, key);
    if (f.is_relative()) f = std::filesystem::path(path_).parent_path() / f;
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0)
      fail(n, key, "cannot read \"" + f.string() + "\": " + std::strerror(errno));
    if (st.st_mode & 0007)
      fail(n, key,
           "\"" + f.string() + "\" is open to other users (mode " + format_mode(st.st_mode & 0777) +
               "): chmod 0600 (or 0640 for a group) it");
    const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(n, key, "cannot read \"" + f.string() + "\": " + std::strerror(errno));
    std::string text;
    char buf[512];
    ssize_t got;
    while ((got = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 4096)
      text.append(buf, static_cast<std::size_t>(got));
    const int err = errno;
    ::close(fd);
    if (got < 0) fail(n, key, "cannot read \"" + f.string() + "\": " + std::strerror(err));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
      text.pop_back();
    if (text.empty()) fail(n, key, "\"" + f.string() + "\" is empty");
    return text;
  }

  void parse_fleet(const toml::node& node, FleetConfig& f) const {
    const toml::table* tbl = node.as_table();
    if (!tbl) fail(node, "fleet", "must be a table: write [fleet]");
    check_keys(*tbl, "fleet.",
               {"name", "redis", "host_id", "secret_file", "user", "password_file", "share",
                "trips", "max_skew", "max_deadline", "connect_timeout", "command_timeout",
                "reconnect_min", "reconnect_max"});
    f.enabled = true;
    const toml::node* name = tbl->get("name");
    if (!name)
      fail(node, "fleet.name",
           "missing: name the fleet, e.g. name = \"prod\" (same on every host)");
    f.name = string_of(*name, "fleet.name");
    if (f.name.empty() || f.name.size() > 64 ||
        f.name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            std::string::npos)
      fail(*name, "fleet.name", "\"" + f.name + "\": use 1 to 64 letters, digits, '.', '_' or '-'");
    if (auto* n = tbl->get("redis")) {
      const std::string addr = string_of(*n, "fleet.redis");
      const std::size_t colon = addr.rfind(':');
      int port = 0;
      if (colon == std::string::npos || colon == 0 ||
          std::sscanf(addr.c_str() + colon + 1, "%d", &port) != 1 || port < 1 || port > 65535 ||
          addr.find_first_not_of("0123456789", colon + 1) != std::string::npos)
        fail(*n, "fleet.redis", "\"" + addr + "\": expected host:port, e.g. \"127.0.0.1:6379\"");
      f.redis_host = addr.substr(0, colon);
      f.redis_port = port;
    }
    if (auto* n = tbl->get("host_id")) {
      f.host_id = string_of(*n, "fleet.host_id");
      if (f.host_id.empty() || f.host_id.size() > 64)
        fail(*n, "fleet.host_id", "must be 1 to 64 characters");
    } else {
      char buf[256] = {};
      if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == 0)
        fail(node, "fleet.host_id", "the host has no name: set host_id = \"...\"");
      f.host_id = buf;
    }
    const toml::node* secret = tbl->get("secret_file");
    if (!secret)
      fail(node, "fleet.secret_file",
           "missing: every message is signed with a shared secret; write one (e.g. openssl rand "
           "-hex 32 > /etc/healthprobe/fleet.key; chmod 0600) and set secret_file");
    f.secret_file = string_of(*secret, "fleet.secret_file");
    f.secret = secret_of(*secret, "fleet.secret_file");
    if (f.secret.size() < 16)
      fail(*secret, "fleet.secret_file",
           "the secret is " + std::to_string(f.secret.size()) +
               " bytes; use at least 16 (openssl rand -hex 32)");
    if (auto* n = tbl->get("user")) f.user = string_of(*n, "fleet.user");
    if (auto* n = tbl->get("password_file")) f.password = secret_of(*n, "fleet.password_file");
    if (!f.user.empty() && f.password.empty())
      fail(*tbl->get("user"), "fleet.user", "an ACL user needs its password: set password_file");
    if (auto* n = tbl->get("share")) f.share = classes_of(*n, "fleet.share");
    if (auto* n = tbl->get("trips")) f.trips = bool_of(*n, "fleet.trips");
    const auto dur = [&](const char* key, std::chrono::nanoseconds& out) {
      if (auto* n = tbl->get(key)) out = positive_duration(*n, std::string("fleet.") + key);
    };
    dur("max_skew", f.max_skew);
    dur("max_deadline", f.max_deadline);
    dur("connect_timeout", f.connect_timeout);
    dur("command_timeout", f.command_timeout);
    dur("reconnect_min", f.reconnect_min);
    dur("reconnect_max", f.reconnect_max);
    if (f.reconnect_max < f.reconnect_min)
      fail(tbl->get("reconnect_max") ? *tbl->get("reconnect_max") : *tbl->get("reconnect_min"),
           "fleet.reconnect_max",
           "must not be shorter than reconnect_min (" + format_duration(f.reconnect_min) + ")");
  }

  void parse_metrics(const toml::node& node, MetricsConfig& m) const {
    const toml::table* tbl = node.as_table();
    if (!tbl) fail(node, "metrics", "must be a table: write [metrics]");
    check_keys(*tbl, "metrics.", {"listen"});
    const toml::node* n = tbl->get("listen");
    if (!n) fail(node, "metrics.listen", "missing: write listen = \"127.0.0.1:9464\"");
    m.listen = string_of(*n, "metrics.listen");
    const std::string& text = m.listen;
    const auto bad = [&](const std::string& why) {
      fail(*n, "metrics.listen",
           "\"" + text + "\" " + why +
               ": write a numeric address and a port, e.g. \"127.0.0.1:9464\" or \"[::1]:9464\"");
    };
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size()) bad("has no port");
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
      m.ipv6 = true;
    }
    unsigned char buf[sizeof(in6_addr)];
    if (::inet_pton(m.ipv6 ? AF_INET6 : AF_INET, host.c_str(), buf) != 1)
      bad(m.ipv6 ? "is not an IPv6 address in brackets"
                 : "is not a numeric IPv4 address (write an IPv6 one in brackets)");
    const std::string port = text.substr(colon + 1);
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port) > 65535)
      bad("has a bad port (0 to 65535)");
    m.host = host;
    m.port = static_cast<std::uint16_t>(std::stoul(port));
  }

  void parse_url(const toml::node& n, const std::string& key, const std::string& url) const {
    if (url.find_first_of(" \t\r\n") != std::string::npos)
      fail(n, key, "bad URL \"" + url + "\": contains white space");
    CURLU* u = curl_url();
    if (!u) fail(n, key, "out of memory");
    struct Guard {
      CURLU* u;
      ~Guard() { curl_url_cleanup(u); }
    } guard{u};
    const CURLUcode rc = curl_url_set(u, CURLUPART_URL, url.c_str(), 0);
    if (rc != CURLUE_OK)
      fail(n, key,
           "bad URL \"" + url + "\": " + curl_url_strerror(rc) +
               " (expected http://host[:port]/path or https://...)");
    char* scheme = nullptr;
    char* host = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    const std::string s = scheme ? scheme : "";
    const std::string h = host ? host : "";
    curl_free(scheme);
    curl_free(host);
    if (s != "http" && s != "https")
      fail(n, key, "bad URL \"" + url + "\": scheme must be http or https");
    if (h.empty()) fail(n, key, "bad URL \"" + url + "\": no host");
  }

  void parse_tcp(const toml::node& n, const std::string& key, const std::string& target) const {
    std::string host;
    std::string port;
    if (!target.empty() && target[0] == '[') {
      const auto close = target.find(']');
      if (close == std::string::npos || close + 1 >= target.size() || target[close + 1] != ':')
        fail(n, key, "bad address \"" + target + "\": expected \"[v6-address]:port\"");
      host = target.substr(1, close - 1);
      port = target.substr(close + 2);
    } else {
      const auto colon = target.rfind(':');
      if (colon == std::string::npos)
        fail(n, key, "bad address \"" + target + "\": expected \"host:port\"");
      host = target.substr(0, colon);
      port = target.substr(colon + 1);
      if (host.find(':') != std::string::npos)
        fail(n, key, "bad address \"" + target + "\": write an IPv6 address as \"[addr]:port\"");
      const bool host_ok = std::all_of(host.begin(), host.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '-' || c == '_';
      });
      if (!host_ok) fail(n, key, "bad host in \"" + target + "\"");
    }
    if (host.empty()) fail(n, key, "bad address \"" + target + "\": no host");
    const bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); });
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535)
      fail(n, key, "bad port \"" + port + "\" in \"" + target + "\" (expected 1-65535)");
  }

  std::vector<std::string> parse_headers(const toml::node& node) const {
    const toml::table* t = node.as_table();
    if (!t)
      fail(node, "provider.headers",
           "must be a table, e.g. headers = { Authorization = \"Bearer ${KEY}\" }");
    std::vector<std::string> out;
    for (auto&& [k, v] : *t) {
      const std::string name(k.str());
      const std::string key = "provider.headers." + name;
      const bool token =
          !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
            return std::isalnum(c) ||
                   std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                       std::string_view::npos;
          });
      if (!token)
        throw ConfigError(path_, line_of(k.source()), key, "not a valid HTTP header name");
      std::string value;
      try {
        value = expand_env(string_of(v, key), env_);
      } catch (const std::invalid_argument& e) {
        fail(v, key, e.what());
      }
      if (value.find_first_of("\r\n", 0) != std::string::npos ||
          value.find('\0') != std::string::npos)
        fail(v, key, "value contains a line break or NUL after expansion");
      // "Name:" with nothing after sends an empty header rather than removing one.
      out.push_back(value.empty() ? name + ";" : name + ": " + value);
    }
    return out;
  }

  /// An HTTP provider's method, healthy statuses and body match, over the
  /// [table] defaults. Its own healthy_below replaces the default `expect`:
  /// both say which statuses are healthy, and the provider's own word wins.
  void parse_check(const toml::table& t, const TableConfig& table, ProbeSpec& probe) const {
    probe.method = table.method.value_or(HttpMethod::get);
    if (auto* n = t.get("method")) probe.method = method_of(*n, "provider.method");
    const toml::node* below = t.get("healthy_below");
    const toml::node* expect = t.get("expect");
    if (below && expect)
      fail(*expect, "provider.expect",
           "set together with healthy_below (line " + std::to_string(line_of(below->source())) +
               "): keep one; expect lists the healthy statuses, healthy_below bounds them");
    if (below) probe.healthy_below = int_of(*below, "provider.healthy_below", 101, 999);
    if (expect)
      probe.expect = expect_of(*expect, "provider.expect");
    else if (!below)
      probe.expect = table.expect;
    if (auto* n = t.get("expect_body")) {
      const std::string key = "provider.expect_body";
      probe.expect_body = string_of(*n, key);
      if (probe.expect_body.empty())
        fail(*n, key, "empty: give the text a healthy body contains, or leave the key out");
      if (probe.expect_body.size() > kBodyScanLimit)
        fail(*n, key,
             "longer than the " + std::to_string(kBodyScanLimit) + " bytes of body a probe reads");
      if (probe.method == HttpMethod::head)
        fail(*n, key,
             std::string("a HEAD probe reads no body: ") +
                 (t.get("method") ? "use method = \"GET\""
                                  : "set method = \"GET\" here ([table] method is HEAD)"));
    }
  }

  ProviderConfig parse_provider(const toml::table& t, const Config& cfg) const {
    ProviderConfig p;
    p.line = line_of(t.source());
    check_keys(t, "provider.",
               {"name",
                "http",
                "https",
                "tcp",
                "headers",
                "method",
                "healthy_below",
                "expect",
                "expect_body",
                "ca_file",
                "verify",
                "interval",
                "timeout",
                "down_interval",
                "spread",
                "failure_threshold",
                "backoff",
                "recover_after",
                "max_backoff",
                "jitter",
                "trip_memory",
                "ramp",
                "cooldown",
                "max_hint",
                "count",
                "cooldown_classes",
                "probe_clears_reports",
                "fleet_wide"});
    const toml::node* name = t.get("name");
    if (!name)
      throw ConfigError(path_, p.line, "provider.name", "missing: every [[provider]] needs a name");
    p.name = string_of(*name, "provider.name");
    p.name_line = line_of(name->source());
    try {
      validate_provider_name(p.name);
    } catch (const Error& e) {
      fail(*name, "provider.name", e.what());
    }
    p.probe.provider = p.name;

    const toml::node* probe = nullptr;
    std::string probe_key;
    for (const char* k : {"http", "https", "tcp"}) {
      if (const toml::node* n = t.get(k)) {
        if (probe)
          fail(*n, std::string("provider.") + k,
               "provider \"" + p.name + "\" has two probes (" + probe_key + " and " + k +
                   "): keep one");
        probe = n;
        probe_key = k;
      }
    }
    if (!probe)
      throw ConfigError(path_, p.line, "provider",
                        "provider \"" + p.name +
                            "\" has no probe: add http = \"URL\", "
                            "https = \"URL\" or tcp = \"host:port\"");
    const std::string key = "provider." + probe_key;
    p.probe.target = string_of(*probe, key);
    if (probe_key == "tcp") {
      p.probe.kind = ProbeKind::tcp;
      parse_tcp(*probe, key, p.probe.target);
      for (const char* k :
           {"headers", "method", "healthy_below", "expect", "expect_body", "ca_file", "verify"})
        if (const toml::node* n = t.get(k))
          fail(*n, std::string("provider.") + k, "applies to http/https probes only");
    } else {
      p.probe.kind = ProbeKind::http;
      parse_url(*probe, key, p.probe.target);
      if (auto* n = t.get("headers")) p.probe.headers = parse_headers(*n);
      parse_check(t, cfg.table, p.probe);
      if (auto* n = t.get("verify")) p.probe.verify = bool_of(*n, "provider.verify");
      if (auto* n = t.get("ca_file")) {
        std::filesystem::path f = string_of(*n, "provider.ca_file");
        if (f.is_relative()) f = std::filesystem::path(path_).parent_path() / f;
        if (::access(f.c_str(), R_OK) != 0)
          fail(*n, "provider.ca_file", "cannot read \"" + f.string() + "\"");
        p.probe.ca_file = f.string();
      }
    }
    if (auto* n = t.get("fleet_wide")) p.fleet_wide = bool_of(*n, "provider.fleet_wide");
    p.interval = cfg.interval;
    p.timeout = cfg.timeout;
    if (auto* n = t.get("interval")) p.interval = positive_duration(*n, "provider.interval");
    if (auto* n = t.get("timeout"))
      p.timeout = positive_duration(*n, "provider.timeout");
    else
      p.timeout = std::min(p.timeout, p.interval); // an inherited timeout fits its interval
    if (p.timeout > p.interval)
      throw ConfigError(path_, p.line, "provider.timeout",
                        "provider \"" + p.name + "\": timeout (" + format_duration(p.timeout) +
                            ") must not exceed its interval (" + format_duration(p.interval) + ")");
    p.probe.timeout = std::chrono::ceil<std::chrono::milliseconds>(p.timeout);
    const CadenceKeys own = parse_cadence(t, "provider.");
    p.down_interval =
        own.down_interval.value_or(cfg.table.cadence.down_interval.value_or(p.interval));
    p.spread_permille = own.spread_permille.value_or(cfg.table.cadence.spread_permille.value_or(0));
    p.policy = parse_policy(t, "provider.", cfg.table.policy.over(Policy{}));
    return p;
  }

  std::string path_;
  const EnvLookup& env_;
};

} // namespace

Config parse_config(std::string_view text, const std::string& path, const EnvLookup& env) {
  return Parser(path, env).parse(text);
}

Config load_config(const std::string& path, const EnvLookup& env) {
  // A directory opens and reads as empty, which would be reported as a
  // config without `segment`: say what it is instead.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError(path, 0, "",
                      "is a directory, not a configuration file; name the TOML file in it "
                      "(e.g. --config " +
                          (std::filesystem::path(path) / "healthprobe.toml").string() + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw ConfigError(path, 0, "",
                      std::string("cannot read: ") + std::strerror(err) +
                          (err == ENOENT ? "; check the --config path"
                           : err == EACCES
                               ? "; the prober's user needs read permission on it (and search "
                                 "permission on its directories)"
                               : ""));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, env);
}

} // namespace healthtable::prober
