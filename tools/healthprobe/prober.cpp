#include "prober.hpp"
#include "fleet_metrics.hpp"
#include "status_line.hpp"

#include <healthtable/home.hpp>
#include <healthtable/layout.hpp>
#include <healthtable/names.hpp>

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <set>

namespace healthtable::prober {

namespace {

/// Past a deadline before waking for it: the coarse clock the table keeps
/// runs up to a few milliseconds behind, and waking early would only spin.
constexpr auto kDeadlineSlack = std::chrono::milliseconds(20);

/// How often, at most, the table's deadlines are scanned again after writes
/// (a snapshot of every provider): often enough that a window set by a
/// write is seen long before it ends, rarely enough that a thousand results
/// arriving together cost one scan, not a thousand.
constexpr auto kRescanEvery = std::chrono::milliseconds(100);

/// How often, at most, the fleet status file is rewritten while messages
/// keep coming.
constexpr auto kFleetStatusEvery = std::chrono::milliseconds(200);

std::chrono::milliseconds as_ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

/// Backoffs in whole seconds ("60s", "300s") as the reference module logs
/// them; anything finer keeps its unit ("1.5s", "500ms").
std::string backoff_text(std::chrono::nanoseconds d) {
  if (d.count() % 1'000'000'000 == 0) return std::to_string(d.count() / 1'000'000'000) + "s";
  return format_duration(d);
}

std::string class_list(ClassSet set) {
  std::string out;
  for (std::size_t c = 1; c < kFailureClasses; ++c)
    if (set & class_bit(static_cast<FailureClass>(c)))
      out += (out.empty() ? "" : ",") + std::string(class_name(static_cast<FailureClass>(c)));
  return "[" + out + "]";
}

/// The threshold and backoff always (the reference module's two knobs),
/// then whatever differs from the defaults.
std::string describe(const Policy& p) {
  std::string out = "failure threshold " + std::to_string(p.failure_threshold) + ", backoff " +
                    backoff_text(p.backoff);
  const Policy d{};
  const auto dur = [&](const char* name, std::chrono::nanoseconds v, std::chrono::nanoseconds def) {
    if (v != def) out += std::string(", ") + name + " " + format_duration(v);
  };
  if (p.recover_after != d.recover_after)
    out += ", recover after " + std::to_string(p.recover_after);
  dur("max backoff", p.max_backoff, d.max_backoff);
  if (p.jitter_permille != d.jitter_permille)
    out += ", jitter " + std::to_string(p.jitter_permille / 10) + "." +
           std::to_string(p.jitter_permille % 10) + "%";
  dur("trip memory", p.trip_memory, d.trip_memory);
  dur("ramp", p.ramp, d.ramp);
  dur("cooldown", p.cooldown, d.cooldown);
  dur("max hint", p.max_hint, d.max_hint);
  if (p.counts != d.counts) out += ", count " + class_list(p.counts);
  if (p.cooldowns != d.cooldowns) out += ", cooldown classes " + class_list(p.cooldowns);
  if (p.probe_clears_reports != d.probe_clears_reports)
    out += std::string(", probe clears reports ") + (p.probe_clears_reports ? "yes" : "no");
  return out;
}

/// Applies the configured policies: the table default (only when it
/// changes: set_policy(Policy) rewrites every provider's), then each
/// provider's own where it differs from what the table holds. A policy
/// rewrite keeps the breaker's state; unchanged ones are not even written.
/// `table_label` starts the notice ("policy of \"gw\"", "policy").
void apply_policies(Writer& w, const Config& cfg, const Log& log, const std::string& table_label) {
  const Policy before = w.policy();
  const Policy table = cfg.table.policy.over(before);
  if (table != before) {
    w.set_policy(table);
    log(Level::notice, table_label + " set to " + describe(table));
  }
  for (const auto& p : cfg.providers) {
    const Policy wanted = p.policy.over(table);
    if (w.table().find(p.name) && w.policy(p.name) == wanted) continue;
    w.set_policy(p.name, wanted);
    if (p.policy.any())
      log(Level::notice, "policy of provider " + p.name + " set to " + describe(wanted),
          {p.name, {}});
  }
}

/// Makes room, before anything is registered, for the providers the table
/// has never seen: grows it (to twice its slots, or what is needed) unless
/// `[table] grow = false`, which throws table_full instead.
void make_room(Writer& w, const Config& cfg, const Log& log) {
  const TableInfo info = w.table().info();
  std::uint32_t fresh = 0;
  for (const auto& p : cfg.providers)
    if (!w.table().find(p.name)) ++fresh;
  const std::uint64_t needed = std::uint64_t{info.used} + fresh;
  if (needed <= info.capacity) return;
  if (!cfg.table.grow || needed > kMaxCapacity)
    throw Error(Errc::table_full,
                "segment " + quoted(cfg.segment) + " has " + std::to_string(info.capacity) +
                    " slots, " + std::to_string(info.used) + " in use; the config adds " +
                    std::to_string(fresh) + " new providers: " +
                    (needed > kMaxCapacity
                         ? "more than a table can hold (" + std::to_string(kMaxCapacity) +
                               "); split them across tables"
                         : std::string("grow it (healthctl grow ") + cfg.segment +
                               " --slots N, or [table] grow = true) or remove providers"));
  const auto slots = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(kMaxCapacity, std::max<std::uint64_t>(2ull * info.capacity, needed)));
  w.grow(slots);
  log(Level::notice, "table " + quoted(cfg.segment) + " grown from " +
                         std::to_string(info.capacity) + " to " + std::to_string(slots) +
                         " slots: " + std::to_string(needed) + " providers need them");
}

/// systemd's STATUS= line for the table as it is now.
std::string status_of(const Writer& w) {
  const Instant now = Instant::now();
  return status_line(w.table().snapshot(), now.mono_ns, now.unix_ns);
}

} // namespace

Writer open_table(const Config& cfg, const Log& log) {
  // Config problems were all found before this point: the table is only
  // touched by a configuration that parsed completely.
  std::optional<Writer> w;
  try {
    w.emplace(Writer::open(cfg.segment));
  } catch (const Error& e) {
    if (e.code() != Errc::no_such_segment || !cfg.table.create) throw;
  }
  if (!w) {
    CreateOptions opts;
    opts.capacity = cfg.table.slots;
    opts.mode = cfg.table.mode;
    opts.policy = cfg.table.policy.over(Policy{});
    try {
      w.emplace(Writer::create(cfg.segment, opts));
      log(Level::notice, "created segment " + quoted(cfg.segment) + " with " +
                             std::to_string(opts.capacity) + " slots, " + describe(opts.policy));
    } catch (const Error& e) {
      // Another process created it between our open and our create.
      if (e.code() != Errc::already_exists) throw;
      w.emplace(Writer::open(cfg.segment));
    }
  }
  if (w->repaired() > 0)
    log(Level::warning, "repaired " + std::to_string(w->repaired()) +
                            " record(s) left half-written by a writer that died");
  make_room(*w, cfg, log);
  for (const auto& p : cfg.providers)
    w->add(p.name);
  apply_policies(*w, cfg, log, "policy of " + quoted(cfg.segment));
  return std::move(*w);
}

Prober::Prober(Config cfg, Writer writer, const Log& log)
    : cfg_(std::move(cfg)), writer_(std::move(writer)), log_(log), rng_(std::random_device{}()) {
  const auto now = Clock::now();
  for (const auto& p : cfg_.providers)
    providers_.push_back({p, now, 0, {}, 0}); // the first round at once
  rebuild_queue();
  stats_.keep(provider_names());
}

Prober::~Prober() {
  metrics_.reset(); // its thread reads stats_ and fleet_
  if (fleet_) {     // the status file says "running": gone with us
    fleet_.reset();
    std::remove((home_dir(cfg_.segment) + "/fleet").c_str());
  }
  control_.reset();
  if (wait_fd_ >= 0) ::close(wait_fd_);
}

bool Prober::open_control() {
  try {
    control_ = std::make_unique<Control>(cfg_.segment, cfg_.control, writer_, log_);
  } catch (const Error& e) {
    log_(Level::err, e.what());
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = control_->fd();
  if (::epoll_ctl(wait_fd_, EPOLL_CTL_ADD, control_->fd(), &ev) != 0) {
    log_(Level::err, std::string("epoll_ctl: ") + std::strerror(errno));
    control_.reset();
    return false;
  }
  return true;
}

std::string Prober::status() const {
  return status_of(writer_) + (fleet_ ? "; " + fleet_->summary() : std::string());
}

bool Prober::open_fleet() {
  try {
    fleet_ = std::make_unique<Fleet>(cfg_.fleet);
  } catch (const std::exception& e) {
    log_(Level::err, e.what());
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fleet_->fd();
  if (::epoll_ctl(wait_fd_, EPOLL_CTL_ADD, fleet_->fd(), &ev) != 0) {
    log_(Level::err, std::string("epoll_ctl: ") + std::strerror(errno));
    fleet_.reset();
    return false;
  }
  return true;
}

void Prober::serve_fleet() {
  Fleet::Inbox in = fleet_->drain();
  for (const auto& [level, line] : in.logs)
    log_(level, line);
  for (const Envelope& e : in.facts)
    apply_peer(e);
  fleet_dirty_ = true;
  write_fleet_status(!in.logs.empty()); // a state change: at once
}

void Prober::apply_peer(const Envelope& e) {
  const Fact& f = e.fact;
  // Only providers this prober probes: a peer never registers a name here.
  const auto p = std::find_if(cfg_.providers.begin(), cfg_.providers.end(),
                              [&](const ProviderConfig& c) { return c.name == f.provider; });
  if (p == cfg_.providers.end()) return fleet_->refuse(Refusal::unknown_provider);
  const bool shared = f.kind == FactKind::cooldown
                          ? (cfg_.fleet.share & class_bit(f.failure_class)) != 0
                          : cfg_.fleet.trips && p->fleet_wide;
  if (!shared) return fleet_->refuse(Refusal::not_shared);
  try {
    const Instant now = Instant::now();
    // The deadline is wall-clock time; the table keeps its own monotonic
    // one, so it travels as "this long from now" (off by the clocks' skew).
    const auto left = std::chrono::nanoseconds(f.deadline_unix_ns - now.unix_ns);
    if (left.count() <= 0) return fleet_->refuse(Refusal::expired);
    const std::string reason = "peer " + e.host + ": " + f.reason;
    const Outcome o{f.failure_class, reason, Source::peer, left};
    const Transition t = writer_.record(f.provider, o, now);
    const bool moved = t == Transition::cooldown;
    fleet_->applied(moved, Instant::now().unix_ns - e.time_unix_ns);
    if (!moved) return;
    table_dirty_ = true;
    log_(Level::notice,
         "provider " + f.provider + " " + std::string(class_name(f.failure_class)) +
             (f.kind == FactKind::trip ? " trip" : "") + " from peer " + e.host + " (" + f.reason +
             "): unavailable for " +
             format_duration(std::chrono::ceil<std::chrono::seconds>(
                 std::min<std::chrono::nanoseconds>(left, writer_.policy(f.provider).max_hint))),
         {f.provider, transition_name(t)});
  } catch (const Error& err) {
    log_(Level::err, "cannot record a peer fact for provider " + f.provider + ": " + err.what(),
         {f.provider, {}});
  }
}

void Prober::share(const ProviderConfig& p, const ProbeResult& o, Transition t) {
  if (!fleet_) return;
  const Instant now = Instant::now();
  const Policy policy = writer_.policy(p.name);
  const bool cools = (policy.cooldowns & class_bit(o.failure_class)) != 0;
  if ((cfg_.fleet.share & class_bit(o.failure_class)) && (o.retry_after || cools)) {
    // The hint the breaker set: the provider's own, capped, else the
    // cooldown class's default.
    const auto hint = o.retry_after
                          ? std::clamp(*o.retry_after, std::chrono::nanoseconds(0), policy.max_hint)
                          : policy.cooldown;
    if (hint.count() > 0)
      fleet_->publish(
          Fact{FactKind::cooldown, p.name, o.failure_class, now.unix_ns + hint.count(), o.reason});
  }
  const bool fleet_wide =
      std::any_of(cfg_.providers.begin(), cfg_.providers.end(),
                  [&](const ProviderConfig& c) { return c.name == p.name && c.fleet_wide; });
  if (cfg_.fleet.trips && fleet_wide && (t == Transition::tripped || t == Transition::rearmed)) {
    const auto state = writer_.table().get_state(p.name);
    if (state && state->unhealthy_until_unix_ns > now.unix_ns)
      fleet_->publish(
          Fact{FactKind::trip, p.name, o.failure_class, state->unhealthy_until_unix_ns, o.reason});
  }
}

void Prober::write_fleet_status(bool now) {
  if (!fleet_ || !fleet_dirty_) return;
  const auto t = Clock::now();
  if (!now && t - fleet_status_at_ < kFleetStatusEvery) return;
  fleet_status_at_ = t;
  fleet_dirty_ = false;
  std::string text = fleet_->json() + "\n";
  if (text == fleet_status_) return;
  // Beside the control socket in the table's home: readable as the home is,
  // replaced atomically so a reader never sees half of it.
  const std::string path = home_dir(cfg_.segment) + "/fleet";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) {
      log_(Level::debug, "cannot write " + tmp);
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    log_(Level::debug, "cannot rename " + tmp + ": " + std::strerror(errno));
    return;
  }
  fleet_status_ = std::move(text);
}

std::vector<std::string> Prober::provider_names() const {
  std::vector<std::string> names;
  for (const Scheduled& s : providers_)
    names.push_back(s.cfg.name);
  return names;
}

bool Prober::open_metrics() {
  if (!cfg_.metrics.enabled()) return true;
  const std::string segment = cfg_.segment;
  std::vector<MetricsServer::Collector> collectors;
  collectors.push_back([start = start_unix_ns_](metrics::Exposition& out) {
    out.family("healthtable_prober_build_info", metrics::Type::gauge,
               "Always 1; the version label says which healthprobe serves these metrics.")
        .add({{"version", HEALTHPROBE_VERSION}}, 1);
    out.family("healthtable_prober_start_time_seconds", metrics::Type::gauge,
               "Unix time this healthprobe process started serving.")
        .add({}, static_cast<double>(start) / 1e9);
  });
  collectors.push_back(table_collector(segment));
  collectors.push_back(
      [this, segment](metrics::Exposition& out) { stats_.add_metrics(out, segment); });
  if (fleet_) // opened first; metrics_ stops before fleet_ goes (~Prober)
    collectors.push_back([f = fleet_.get()](metrics::Exposition& out) {
      add_fleet_metrics(out, f->config(), f->stats());
    });
  try {
    metrics_ = std::make_unique<MetricsServer>(cfg_.metrics, std::move(collectors));
  } catch (const std::exception& e) {
    log_(Level::err, e.what());
    return false;
  }
  return true;
}

bool Prober::wake(int signal_fd) {
  notify_.watchdog(); // also reads its timer, which is in the wait set
  drain_signals(signal_fd);
  // Requests are applied at once, between two probe outcomes: an
  // operator's `set down` does not wait for a slow probe's timeout.
  if (control_ && !stop_) {
    control_->serve();
    table_dirty_ = true; // a request may have set a window or an override
  }
  if (fleet_ && !stop_) serve_fleet();
  return stop_;
}

Prober::Clock::time_point Prober::next_due(const Scheduled& s) {
  bool down = false;
  try {
    const auto st = writer_.table().get_state(s.cfg.name);
    down = st && (!st->healthy || st->consecutive_failures > 0);
  } catch (const Error&) {
    // Not in the table (record() logged why): its plain interval.
  }
  auto interval = down ? s.cfg.down_interval : s.cfg.interval;
  if (s.cfg.spread_permille > 0) {
    const auto p = static_cast<std::int64_t>(s.cfg.spread_permille);
    std::uniform_int_distribution<std::int64_t> dist(-p, p);
    interval += std::chrono::nanoseconds(static_cast<std::int64_t>(
        static_cast<double>(interval.count()) * static_cast<double>(dist(rng_)) / 1000.0));
  }
  if (cfg_.jitter.count() > 0) {
    std::uniform_int_distribution<std::int64_t> dist(0, cfg_.jitter.count());
    interval += std::chrono::nanoseconds(dist(rng_));
  }
  // From the start of its last probe, so the cadence does not drift by the
  // probe's length.
  return s.started + std::chrono::duration_cast<Clock::duration>(interval);
}

void Prober::schedule(std::size_t i, Clock::time_point due) {
  providers_[i].due = due;
  queue_.emplace(due, i);
}

void Prober::rebuild_queue() {
  queue_.clear();
  flights_.clear();
  for (std::size_t i = 0; i < providers_.size(); ++i) {
    if (providers_[i].probe != 0)
      flights_.emplace(providers_[i].probe, i);
    else
      queue_.emplace(providers_[i].due, i);
  }
}

void Prober::start_due() {
  const auto now = Clock::now();
  if (queue_.empty() || queue_.begin()->first > now) return;
  const std::uint64_t id = next_round_++;
  Round& round = rounds_[id];
  round.start = now;
  while (!queue_.empty() && queue_.begin()->first <= now) {
    const std::size_t i = queue_.begin()->second;
    queue_.erase(queue_.begin());
    Scheduled& s = providers_[i];
    s.probe = next_probe_++;
    s.started = now;
    s.round = id;
    flights_.emplace(s.probe, i);
    ++round.probes;
    ++round.left;
    engine_.start(s.cfg.probe, s.probe);
  }
}

void Prober::finished(const ProbeResult& o) {
  const auto f = flights_.find(o.index);
  if (f == flights_.end()) return; // cancelled by a reload
  const std::size_t i = f->second;
  flights_.erase(f);
  Scheduled& s = providers_[i];
  s.probe = 0;
  stats_.probed(s.cfg.name, o.elapsed, record(s.cfg, o));
  table_dirty_ = true; // the write may have set a window
  schedule(i, next_due(s));
  leave_round(s.round, &o);
}

void Prober::drop_flight(Scheduled& s) {
  if (s.probe == 0) return;
  engine_.cancel(s.probe);
  flights_.erase(s.probe);
  s.probe = 0;
  leave_round(s.round, nullptr);
}

void Prober::leave_round(std::uint64_t id, const ProbeResult* o) {
  const auto it = rounds_.find(id);
  if (it == rounds_.end()) return;
  Round& r = it->second;
  if (o) ++(o->healthy ? r.healthy : r.failed);
  if (--r.left > 0) return;
  log_(Level::debug, "tick: " + std::to_string(r.probes) + " probes, " + std::to_string(r.healthy) +
                         " healthy, " + std::to_string(r.failed) + " failed in " +
                         std::to_string(as_ms(Clock::now() - r.start).count()) + "ms");
  if (id == 1) first_round_written(r);
  rounds_.erase(it);
}

void Prober::first_round_written(const Round& r) {
  log_(Level::info, "first round written: " + std::to_string(r.healthy + r.failed) + " of " +
                        std::to_string(r.probes) + " providers probed in " +
                        format_duration(as_ms(Clock::now() - r.start)));
  first_round_ = true;
  notify_.ready([&] { return status(); }); // systemd: started, the table is fresh
}

void Prober::after_turn() {
  const auto promise = std::chrono::duration_cast<Clock::duration>(cfg_.shortest_interval());
  if (Clock::now() >= last_beat_ + promise) beat();
  notify_.status([&] { return status(); });
  write_fleet_status();
}

Prober::Clock::time_point Prober::next_wake() const {
  auto at = last_beat_ + std::chrono::duration_cast<Clock::duration>(cfg_.shortest_interval());
  if (!queue_.empty()) at = std::min(at, queue_.begin()->first);
  at = std::min(at, table_due_);
  if (table_dirty_) at = std::min(at, table_scanned_ + kRescanEvery);
  if (fleet_dirty_) at = std::min(at, fleet_status_at_ + kFleetStatusEvery);
  return at;
}

void Prober::housekeeping() {
  const auto now = Clock::now();
  if (now >= table_due_) {
    expire();
    // Unknown until the rescan below (perhaps deferred): not expire() again
    // every turn until then.
    table_due_ = Clock::time_point::max();
    table_dirty_ = true;
  }
  if (table_dirty_ && (now >= table_scanned_ + kRescanEvery || engine_.in_flight() == 0)) {
    table_due_ = next_deadline(Clock::time_point::max());
    table_scanned_ = now;
    table_dirty_ = false;
  }
}

void Prober::beat() {
  check_standing();
  if (stop_) return;
  writer_.heartbeat();
  last_beat_ = Clock::now();
}

void Prober::check_standing() {
  const Standing st = writer_.standing();
  if (st == Standing::current) {
    // The home is fine, but our socket file may have been removed.
    if (control_ && !control_->in_place()) {
      log_(Level::err, "control socket " + control_->where() +
                           " was removed under the prober; binding it again");
      reopen_control();
    }
    return;
  }
  const std::string what = st == Standing::unlinked   ? "was unlinked under the prober"
                           : st == Standing::replaced ? "was replaced under the prober"
                                                      : "lost its home under the prober";
  log_(Level::err, "table " + cfg_.segment + " " + what + "; recreating it from its last state");
  try {
    writer_.recreate();
  } catch (const Error& e) {
    log_(Level::err, "cannot recreate table " + cfg_.segment + " (" + e.what() +
                         "); stopping: readers would see a table nobody writes");
    stop_ = true;
    exit_code_ = static_cast<int>(e.code());
    return;
  }
  log_(Level::notice, "table " + cfg_.segment + " recreated at " + writer_.table().info().object +
                          " with its " + std::to_string(writer_.table().info().used) +
                          " providers' states");
  if (control_ && !control_->in_place()) reopen_control();
}

void Prober::reopen_control() {
  control_.reset(); // closing the fd takes it out of the wait set
  if (open_control()) log_(Level::info, "control socket " + control_->where() + " opened");
}

bool Prober::drain_signals(int signal_fd) {
  signalfd_siginfo si{};
  while (::read(signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
      stop_ = true;
      stop_signal_ = si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
    } else if (si.ssi_signo == SIGHUP) {
      reload_ = true;
    }
  }
  return stop_;
}

Transition Prober::record(const ProviderConfig& p, const ProbeResult& o) {
  try {
    const Instant now = Instant::now();
    if (o.healthy) {
      const Transition t = writer_.record(p.name, Outcome{}, now);
      if (t == Transition::recovered)
        log_(Level::notice, "provider " + p.name + " recovered", {p.name, transition_name(t)});
      log_(Level::debug,
           "provider " + p.name + " healthy" +
               (o.http_status ? " (http " + std::to_string(o.http_status) + ")" : "") + " in " +
               format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(o.elapsed)),
           {p.name, {}});
      return t;
    }
    const Outcome outcome{o.failure_class, o.reason, Source::probe, o.retry_after};
    const Transition t = writer_.record(p.name, outcome, now);
    share(p, o, t);
    const auto state = writer_.table().get_state(p.name);
    const Policy policy = writer_.policy(p.name);
    const auto failures = state ? state->consecutive_failures : 0;
    const std::string cls(class_name(o.failure_class));
    // The window this failure set, which grows with repeated trips.
    const auto window =
        state && state->window_ns > 0 ? std::chrono::nanoseconds(state->window_ns) : policy.backoff;
    // PROVIDER= on every line, EVENT= (the transition) on the ones that are
    // events: `journalctl PROVIDER=groq EVENT=tripped`.
    const LogFields fields{p.name, t == Transition::none ? std::string_view() : transition_name(t)};
    if (t == Transition::tripped) {
      log_(Level::warning,
           "provider " + p.name + " marked unhealthy after " + std::to_string(failures) +
               " consecutive failures (" + o.reason + "); backoff " + backoff_text(window) +
               "; class " + cls,
           fields);
    } else if (t == Transition::rearmed) {
      log_(Level::debug,
           "provider " + p.name + " still unhealthy (" + o.reason + "); backoff re-armed " +
               backoff_text(window) + "; class " + cls,
           fields);
    } else if (t == Transition::cooldown) {
      const std::int64_t left = state ? state->unhealthy_until_mono_ns - Instant::now().mono_ns : 0;
      log_(Level::notice,
           "provider " + p.name + " " + cls + " (" + o.reason + "): unavailable for " +
               format_duration(std::chrono::ceil<std::chrono::seconds>(
                   std::chrono::nanoseconds(std::max<std::int64_t>(left, 0)))) +
               (o.retry_after ? " (retry hint " + format_duration(*o.retry_after) + ")"
                              : std::string()),
           fields);
    } else if (!(policy.counts & class_bit(o.failure_class))) {
      log_(Level::debug,
           "provider " + p.name + " failed (" + o.reason + "); class " + cls +
               " does not count toward a trip",
           fields);
    } else {
      log_(Level::debug,
           "provider " + p.name + " failed (" + o.reason + "), " + std::to_string(failures) +
               " of " + std::to_string(policy.failure_threshold) + "; class " + cls,
           fields);
    }
    return t;
  } catch (const Error& e) {
    // A table error for one provider (say, the table filled up under us) is
    // that provider's problem; the others' outcomes still get written.
    log_(Level::err, "cannot record the outcome for provider " + p.name + ": " + e.what(),
         {p.name, {}});
    return Transition::none;
  }
}

void Prober::expire() {
  std::vector<std::string> ended;
  const std::uint64_t from = writer_.table().info().events;
  const Instant now_instant = Instant::now();
  last_expire_mono_ = now_instant.mono_ns;
  try {
    ended = writer_.expire(now_instant);
  } catch (const Error& e) {
    log_(Level::err, std::string("expire: ") + e.what());
    return;
  }
  // Only expire()'s own events: the ring is written by this process alone.
  for (const EventRecord& e : writer_.table().events(from).events)
    if (e.kind == EventKind::override && e.reason == "expired")
      log_(Level::notice,
           "provider " + e.provider + ": override '" +
               std::string(override_name(static_cast<Override>(e.from))) +
               "' expired; the breaker decides again",
           {e.provider, "override"});
  const auto now = Clock::now();
  for (const std::string& name : ended) {
    auto it = std::find_if(providers_.begin(), providers_.end(),
                           [&](const Scheduled& s) { return s.cfg.name == name; });
    if (it == providers_.end()) continue; // not ours to probe (reported, or an admin's)
    // A probe in flight is the half-open probe already: never a second one.
    if (it->probe != 0) continue;
    if (it->due > now) { // half-open: probe now, not at its next interval
      const auto i = static_cast<std::size_t>(it - providers_.begin());
      queue_.erase({it->due, i});
      schedule(i, now);
    }
    log_(Level::debug, "provider " + name + " window ended: probing it now", {name, {}});
  }
}

Prober::Clock::time_point Prober::next_deadline(Clock::time_point limit) const {
  // A deadline on the coarse monotonic clock (Instant), turned into ours.
  const std::int64_t now_mono = Instant::now().mono_ns;
  const auto steady_now = Clock::now();
  auto at = limit;
  const auto consider = [&](std::int64_t mono_ns) {
    // Ends expire() has seen were handled there; a half-open provider keeps
    // its past deadline until its probe answers.
    if (mono_ns <= last_expire_mono_) return;
    const auto d = std::chrono::nanoseconds(std::max<std::int64_t>(mono_ns - now_mono, 0));
    at = std::min(at, steady_now + std::chrono::duration_cast<Clock::duration>(d) + kDeadlineSlack);
  };
  for (const ProviderState& st : writer_.table().snapshot()) {
    consider(st.unhealthy_until_mono_ns);
    if (st.override_mode != Override::automatic) consider(st.override_info.until_mono_ns);
  }
  return at;
}

void Prober::reload() {
  reload_ = false;
  log_(Level::info, "reloading " + cfg_.path);
  Config next;
  try {
    next = load_config(cfg_.path);
    if (next.segment != cfg_.segment)
      throw ConfigError(cfg_.path, 0, "segment",
                        "cannot change from " + quoted(cfg_.segment) + " to " +
                            quoted(next.segment) + " on reload: restart healthprobe");
  } catch (const std::exception& e) {
    log_(Level::err, std::string("reload failed, keeping the previous configuration: ") + e.what());
    return;
  }
  if (next.fleet != cfg_.fleet) {
    log_(Level::warning, "[fleet] changed: the running link keeps the previous one until "
                         "healthprobe restarts");
    next.fleet = cfg_.fleet;
  }
  // Providers the config dropped give their slots back first, so the ones
  // it adds can take them.
  std::size_t forgotten = 0;
  for (auto& s : providers_) {
    const bool kept = std::any_of(next.providers.begin(), next.providers.end(),
                                  [&](const ProviderConfig& p) { return p.name == s.cfg.name; });
    if (kept) continue;
    drop_flight(s); // its answer would be written for a provider the table forgets
    if (!writer_.table().find(s.cfg.name)) continue;
    writer_.forget(s.cfg.name);
    ++forgotten;
    log_(Level::notice,
         "provider " + s.cfg.name + " removed from the config: forgotten, its slot is free",
         {s.cfg.name, "forgotten"});
  }
  try {
    make_room(writer_, next, log_);
  } catch (const std::exception& e) {
    log_(Level::err, std::string("reload failed, keeping the previous configuration: ") + e.what() +
                         (forgotten ? " (the removed providers stay forgotten)" : ""));
    rebuild_queue(); // the dropped probes' providers are probed again, as before
    return;
  }
  if (next.control.enabled && !control_) {
    if (open_control()) log_(Level::info, "control socket " + control_->where() + " opened");
  } else if (!next.control.enabled && control_) {
    log_(Level::info,
         "control socket " + control_->where() + " closed ([control] enabled = false)");
    control_.reset(); // closing the fd removes it from the wait set
  }
  if (control_) {
    try {
      control_->set_config(next.control);
    } catch (const Error& e) {
      log_(Level::err, std::string("[control] not applied, keeping the previous one: ") + e.what());
      next.control = cfg_.control;
    }
  }
  const auto now = Clock::now();
  std::vector<Scheduled> merged;
  std::size_t added = 0, changed = 0;
  std::set<std::string> kept;
  for (const auto& p : next.providers) {
    auto old = std::find_if(providers_.begin(), providers_.end(),
                            [&](const Scheduled& s) { return s.cfg.name == p.name; });
    if (old == providers_.end()) {
      ++added;
      merged.push_back({p, now, 0, {}, 0}); // new: probed at once
    } else if (!old->cfg.same_as(p)) {
      ++changed;
      drop_flight(*old);                    // an answer to the old probe is not this one's
      merged.push_back({p, now, 0, {}, 0}); // changed: probed at once with its new probe
    } else {
      merged.push_back(*old); // unchanged: keeps its schedule, and its probe in flight
    }
    kept.insert(p.name);
    writer_.add(p.name);
  }
  try {
    apply_policies(writer_, next, log_, "policy");
  } catch (const Error& e) {
    // Checked when parsing; a table that refuses it anyway keeps its own.
    log_(Level::err, std::string("policy not applied: ") + e.what());
  }
  const std::size_t removed = static_cast<std::size_t>(
      std::count_if(providers_.begin(), providers_.end(),
                    [&](const Scheduled& s) { return kept.count(s.cfg.name) == 0; }));
  providers_ = std::move(merged);
  rebuild_queue();
  stats_.keep(provider_names());
  table_dirty_ = true;
  if (next.metrics != cfg_.metrics) {
    log_(Level::warning, "[metrics] changed: restart healthprobe to apply it; still serving " +
                             (metrics_ ? "on " + metrics_->where() : std::string("nothing")));
    next.metrics = cfg_.metrics;
  }
  cfg_ = std::move(next);
  writer_.set_heartbeat_interval(cfg_.shortest_interval());
  log_(Level::info, "reloaded " + cfg_.path + ": " + std::to_string(providers_.size()) +
                        " providers (" + std::to_string(added) + " added, " +
                        std::to_string(removed) + " removed, " + std::to_string(changed) +
                        " changed)");
}

int Prober::run(int signal_fd) {
  wait_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (wait_fd_ < 0) {
    log_(Level::err, std::string("epoll_create1: ") + std::strerror(errno));
    return kExitFailure;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = signal_fd;
  if (::epoll_ctl(wait_fd_, EPOLL_CTL_ADD, signal_fd, &ev) != 0) {
    log_(Level::err, std::string("epoll_ctl: ") + std::strerror(errno));
    return kExitFailure;
  }
  // The watchdog's timer wakes the loop, and a tick, often enough to feed it.
  ev.data.fd = notify_.fd();
  if (notify_.fd() >= 0 && ::epoll_ctl(wait_fd_, EPOLL_CTL_ADD, notify_.fd(), &ev) != 0) {
    log_(Level::err, std::string("epoll_ctl: ") + std::strerror(errno));
    return kExitFailure;
  }
  if (cfg_.control.enabled && !open_control()) return kExitFailure;
  if (cfg_.fleet.enabled && !open_fleet()) return kExitFailure;
  start_unix_ns_ = Instant::now().unix_ns;
  if (!open_metrics()) return kExitFailure;
  log_(Level::info,
       "started: pid " + std::to_string(::getpid()) + ", segment " + quoted(cfg_.segment) + ", " +
           std::to_string(providers_.size()) + " providers, interval " +
           format_duration(cfg_.interval) + ", timeout " + format_duration(cfg_.timeout) + ", " +
           describe(writer_.policy()) +
           (control_ ? ", control socket " + control_->where() : std::string()) +
           (metrics_ ? ", metrics on http://" + metrics_->where() + "/metrics" : std::string()));
  // Readers call us stale after three missed beats; the loop beats at least
  // this often, probes in flight or not.
  writer_.set_heartbeat_interval(cfg_.shortest_interval());
  // The engine's epoll set holds our wait set (an epoll fd is readable when
  // any of its fds is) beside the probes' sockets: one wait for everything.
  engine_.watch(wait_fd_);
  beat();
  while (!stop_) {
    notify_.watchdog();
    housekeeping(); // windows and overrides that ended: due at once
    start_due();
    const bool woken = engine_.poll(next_wake(), [&](const ProbeResult& o) { finished(o); });
    if (woken) wake(signal_fd);
    if (stop_) break;
    if (reload_) { // new and changed providers are due now
      notify_.reloading();
      reload();
      if (first_round_) notify_.ready([&] { return status(); });
    }
    after_turn();
  }
  notify_.stopping();
  // In-flight probes are abandoned: their connections close, nothing is written.
  if (const std::size_t n = engine_.abandon(); n > 0)
    log_(Level::info, std::to_string(n) + " probe(s) in flight abandoned");
  if (exit_code_ != kExitOk) return exit_code_;
  log_(Level::info, "stopping on " +
                        (stop_signal_.empty() ? std::string("request") : stop_signal_) +
                        ": releasing the writer lock of " + quoted(cfg_.segment));
  return kExitOk;
}

} // namespace healthtable::prober
