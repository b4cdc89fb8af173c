#include "fleet.hpp"

#include <healthtable/clock.hpp>
#include <healthtable/names.hpp>

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>

namespace healthtable::prober {

namespace {

/// How often the publishing connection PINGs Redis: a Redis that stopped
/// answering (a partition sends no RST) is noticed within this plus the
/// command timeout, and both connections are made again.
constexpr auto kPingEvery = std::chrono::seconds(1);

timeval to_timeval(std::chrono::nanoseconds d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

std::string random_id() {
  unsigned char b[8] = {};
  if (::getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) {
    std::random_device rd;
    for (auto& c : b)
      c = static_cast<unsigned char>(rd());
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string context_error(const redisContext* c, const char* what) {
  if (!c) return std::string(what) + ": out of memory";
  return std::string(what) + ": " + (c->errstr[0] ? c->errstr : "connection error");
}

struct ReplyGuard {
  redisReply* r;
  ~ReplyGuard() {
    if (r) freeReplyObject(r);
  }
};

} // namespace

std::uint64_t FleetStats::refused_total() const {
  std::uint64_t n = 0;
  for (auto v : refused)
    n += v;
  return n;
}

Fleet::Fleet(const FleetConfig& cfg) : cfg_(cfg), instance_(random_id()) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ready_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0 || ready_fd_ < 0)
    throw std::runtime_error(std::string("fleet: eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { run(); });
}

Fleet::~Fleet() {
  stop_ = true;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  disconnect();
  ::close(wake_fd_);
  ::close(ready_fd_);
}

void Fleet::publish(Fact fact) {
  {
    std::lock_guard lock(mu_);
    if (outbox_.size() >= kMaxQueue) {
      outbox_.pop_front();
      ++stats_.publish_dropped;
    }
    outbox_.push_back(std::move(fact));
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

Fleet::Inbox Fleet::drain() {
  std::uint64_t v;
  [[maybe_unused]] auto n = ::read(ready_fd_, &v, sizeof v);
  std::lock_guard lock(mu_);
  return std::exchange(inbox_, Inbox{});
}

void Fleet::refuse(Refusal r) {
  std::lock_guard lock(mu_);
  ++stats_.refused[static_cast<std::size_t>(r)];
}

void Fleet::applied(bool moved, std::int64_t delay_ns) {
  std::lock_guard lock(mu_);
  ++(moved ? stats_.applied : stats_.unchanged);
  if (moved) {
    stats_.last_delay_ns = delay_ns;
    stats_.max_delay_ns = std::max(stats_.max_delay_ns, delay_ns);
  }
}

FleetStats Fleet::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::string Fleet::summary() const {
  const FleetStats s = stats();
  return "fleet " + cfg_.name + (s.connected ? " connected" : " disconnected") + ": " +
         std::to_string(s.received) + " received, " + std::to_string(s.applied) + " applied, " +
         std::to_string(s.refused_total()) + " refused, " + std::to_string(s.published) +
         " published";
}

std::string Fleet::json() const {
  const FleetStats s = stats();
  nlohmann::json refused = nlohmann::json::object();
  for (std::size_t i = 0; i < kRefusals; ++i)
    refused[std::string(refusal_name(static_cast<Refusal>(i)))] = s.refused[i];
  const nlohmann::json j = {{"fleet", cfg_.name},
                            {"pid", ::getpid()},
                            {"host_id", cfg_.host_id},
                            {"instance", instance_},
                            {"redis", cfg_.redis_host + ":" + std::to_string(cfg_.redis_port)},
                            {"connected", s.connected},
                            {"connects", s.connects},
                            {"reconnects", s.reconnects()},
                            {"connect_failures", s.connect_failures},
                            {"published", s.published},
                            {"publish_dropped", s.publish_dropped},
                            {"received", s.received},
                            {"applied", s.applied},
                            {"unchanged", s.unchanged},
                            {"refused", refused},
                            {"refused_total", s.refused_total()},
                            {"last_delay_ns", s.last_delay_ns},
                            {"max_delay_ns", s.max_delay_ns},
                            {"last_error", s.last_error}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::int64_t Fleet::now_unix() const { return Instant::now().unix_ns; }

void Fleet::signal_ready() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(ready_fd_, &one, sizeof one);
}

void Fleet::log(Level level, std::string line) {
  {
    std::lock_guard lock(mu_);
    inbox_.logs.emplace_back(level, std::move(line));
  }
  signal_ready();
}

void Fleet::wait_for(std::chrono::nanoseconds d) {
  pollfd p{wake_fd_, POLLIN, 0};
  const auto end = std::chrono::steady_clock::now() + d;
  while (!stop_) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    // A fact to publish wakes us too; it waits in the queue until Redis is back.
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      std::uint64_t v;
      [[maybe_unused]] auto n = ::read(wake_fd_, &v, sizeof v);
    }
  }
}

void Fleet::disconnect() {
  if (pub_) redisFree(pub_);
  if (sub_) redisFree(sub_);
  pub_ = sub_ = nullptr;
}

bool Fleet::auth(redisContext* c, std::string& error) {
  if (cfg_.password.empty()) return true;
  auto* r = static_cast<redisReply*>(
      cfg_.user.empty() ? redisCommand(c, "AUTH %b", cfg_.password.data(), cfg_.password.size())
                        : redisCommand(c, "AUTH %b %b", cfg_.user.data(), cfg_.user.size(),
                                       cfg_.password.data(), cfg_.password.size()));
  ReplyGuard g{r};
  if (!r) {
    error = context_error(c, "AUTH");
    return false;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    error = std::string("Redis refused AUTH") + (cfg_.user.empty() ? "" : " as " + cfg_.user) +
            ": " + std::string(r->str, r->len) + " (check [fleet] user and password_file)";
    return false;
  }
  return true;
}

bool Fleet::connect(std::string& error) {
  const timeval ct = to_timeval(cfg_.connect_timeout);
  const timeval rt = to_timeval(cfg_.command_timeout);
  for (redisContext** c : {&pub_, &sub_}) {
    *c = redisConnectWithTimeout(cfg_.redis_host.c_str(), cfg_.redis_port, ct);
    if (!*c || (*c)->err) {
      error = context_error(*c, "connect");
      return false;
    }
    if (redisSetTimeout(*c, rt) != REDIS_OK) {
      error = context_error(*c, "set timeout");
      return false;
    }
    if (!auth(*c, error)) return false;
  }
  auto* r = static_cast<redisReply*>(
      redisCommand(sub_, "SUBSCRIBE %b", cfg_.channel().data(), cfg_.channel().size()));
  ReplyGuard g{r};
  if (!r) {
    error = context_error(sub_, "SUBSCRIBE");
    return false;
  }
  if (r->type != REDIS_REPLY_ARRAY) {
    error = "SUBSCRIBE " + cfg_.channel() + " refused" +
            (r->type == REDIS_REPLY_ERROR ? ": " + std::string(r->str, r->len) : std::string()) +
            " (the ACL user needs +subscribe and +publish on the channel)";
    return false;
  }
  return true;
}

bool Fleet::send_queued(std::string& error) {
  for (;;) {
    Fact f;
    {
      std::lock_guard lock(mu_);
      if (outbox_.empty()) return true;
      f = std::move(outbox_.front());
      outbox_.pop_front();
    }
    const std::int64_t now = now_unix();
    if (f.deadline_unix_ns <= now) { // it waited out its own deadline: nothing to tell
      std::lock_guard lock(mu_);
      ++stats_.publish_dropped;
      continue;
    }
    Envelope e{cfg_.name, cfg_.host_id, instance_, ++seq_, now, std::move(f)};
    const std::string payload = encode(e, cfg_.secret);
    auto* r = static_cast<redisReply*>(redisCommand(pub_, "PUBLISH %b %b", cfg_.channel().data(),
                                                    cfg_.channel().size(), payload.data(),
                                                    payload.size()));
    ReplyGuard g{r};
    if (!r) {
      error = context_error(pub_, "PUBLISH");
      return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      error = "PUBLISH refused: " + std::string(r->str, r->len);
      return false;
    }
    std::lock_guard lock(mu_);
    ++stats_.published;
  }
}

void Fleet::take(const char* payload, std::size_t len) {
  const std::int64_t now = now_unix();
  std::optional<Refusal> refusal;
  std::optional<Envelope> env;
  auto decoded = decode(std::string_view(payload, len), cfg_.secret);
  if (auto* r = std::get_if<Refusal>(&decoded)) {
    refusal = *r;
  } else {
    Envelope& e = std::get<Envelope>(decoded);
    const std::int64_t skew = cfg_.max_skew.count();
    if (e.fleet != cfg_.name)
      refusal = Refusal::wrong_fleet;
    else if (e.host == cfg_.host_id)
      refusal = Refusal::own;
    else if (e.time_unix_ns > now + skew || e.time_unix_ns < now - skew)
      refusal = Refusal::skew;
    else if (auto replayed = replay_.accept(e.host, e.instance, e.seq))
      refusal = *replayed;
    else if (e.fact.deadline_unix_ns <= now)
      refusal = Refusal::expired;
    else if (e.fact.deadline_unix_ns > now + cfg_.max_deadline.count() + skew)
      refusal = Refusal::too_far;
    else
      env = std::move(e);
  }
  bool first = false;
  {
    std::lock_guard lock(mu_);
    ++stats_.received;
    if (env) {
      inbox_.facts.push_back(std::move(*env));
    } else {
      ++stats_.refused[static_cast<std::size_t>(*refusal)];
      first = !std::exchange(refusal_logged_[static_cast<std::size_t>(*refusal)], true);
    }
  }
  // Own echoes are routine: never logged. Each other reason once; the
  // counters (the fleet status file, /metrics) keep the rest.
  if (first && refusal != Refusal::own)
    log(Level::warning, "fleet " + cfg_.name + ": refused a message on " + cfg_.channel() + " (" +
                            std::string(refusal_name(*refusal)) +
                            "); further refusals are only counted");
  signal_ready();
}

bool Fleet::serve(std::string& error) {
  auto next_ping = std::chrono::steady_clock::now() + kPingEvery;
  for (;;) {
    // Replies already read into the buffer first: poll() cannot see them.
    for (;;) {
      void* reply = nullptr;
      if (redisGetReplyFromReader(sub_, &reply) != REDIS_OK) {
        error = context_error(sub_, "read");
        return false;
      }
      if (!reply) break;
      ReplyGuard g{static_cast<redisReply*>(reply)};
      const redisReply* r = g.r;
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
          r->element[0]->type == REDIS_REPLY_STRING &&
          std::string_view(r->element[0]->str, r->element[0]->len) == "message" &&
          r->element[2]->type == REDIS_REPLY_STRING)
        take(r->element[2]->str, r->element[2]->len);
    }
    if (!send_queued(error)) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_ping) {
      auto* r = static_cast<redisReply*>(redisCommand(pub_, "PING"));
      ReplyGuard g{r};
      if (!r) {
        error = context_error(pub_, "PING");
        return false;
      }
      next_ping = now + kPingEvery;
    }
    pollfd p[2] = {{wake_fd_, POLLIN, 0}, {sub_->fd, POLLIN, 0}};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(next_ping - now);
    const int n = ::poll(p, 2, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (stop_) return true;
    if (n < 0 && errno != EINTR) {
      error = std::string("poll: ") + std::strerror(errno);
      return false;
    }
    if (p[0].revents & POLLIN) {
      std::uint64_t v;
      [[maybe_unused]] auto k = ::read(wake_fd_, &v, sizeof v);
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (redisBufferRead(sub_) != REDIS_OK) {
        error = context_error(sub_, "subscription");
        return false;
      }
    }
  }
}

void Fleet::run() {
  const std::string where = cfg_.redis_host + ":" + std::to_string(cfg_.redis_port);
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = cfg_.reconnect_min;
  bool said_down = false; // the link's loss is logged once, not per attempt
  while (!stop_) {
    std::string error;
    if (!connect(error)) {
      disconnect();
      {
        std::lock_guard lock(mu_);
        ++stats_.connect_failures;
        stats_.last_error = error;
      }
      if (!said_down)
        log(Level::warning, "fleet " + cfg_.name + ": cannot reach Redis at " + where + " (" +
                                error + "); local probing goes on; retrying every " +
                                format_duration(cfg_.reconnect_min) + " to " +
                                format_duration(cfg_.reconnect_max));
      said_down = true;
      // Full jitter over the upper half: hosts that lost Redis together do
      // not all come back in the same millisecond.
      std::uniform_int_distribution<std::int64_t> d(backoff.count() / 2, backoff.count());
      wait_for(std::chrono::nanoseconds(d(rng)));
      backoff = std::min(backoff * 2, cfg_.reconnect_max);
      continue;
    }
    std::uint64_t connects;
    {
      std::lock_guard lock(mu_);
      connects = ++stats_.connects;
      stats_.connected = true;
      stats_.last_error.clear();
    }
    log(connects == 1 ? Level::info : Level::notice,
        "fleet " + cfg_.name + ": " + (connects == 1 ? "connected to" : "reconnected to") +
            " Redis at " + where + " as host " + cfg_.host_id + ", channel " + cfg_.channel());
    said_down = false;
    backoff = cfg_.reconnect_min;
    const bool ok = serve(error);
    disconnect();
    {
      std::lock_guard lock(mu_);
      stats_.connected = false;
      if (!ok) stats_.last_error = error;
    }
    if (stop_) break;
    log(Level::warning, "fleet " + cfg_.name + ": lost Redis at " + where + " (" + error +
                            "); local probing goes on; reconnecting");
    said_down = true;
    wait_for(cfg_.reconnect_min);
  }
}

} // namespace healthtable::prober
