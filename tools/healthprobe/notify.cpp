#include "notify.hpp"

#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace healthtable::prober {

namespace {

/// systemctl status shows the line as it is; a busy table changes it every
/// write, and once a second is fresh enough for a person.
constexpr auto kStatusEvery = std::chrono::seconds(1);

} // namespace

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  active_ = socket != nullptr && *socket != '\0';
  std::uint64_t usec = 0;
  // Left in the environment (unset_environment = 0): the prober starts no
  // child process that could inherit it (curl resolves on threads).
  if (!active_ || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
  watchdog_ = std::chrono::microseconds(usec);
  // The timer fires every quarter interval and WATCHDOG=1 goes out every
  // half: a late wake-up still lands well inside the interval.
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0)
    throw std::runtime_error(std::string("timerfd_create: ") + std::strerror(errno));
  const auto quarter = std::chrono::duration_cast<std::chrono::nanoseconds>(watchdog_) / 4;
  itimerspec spec{};
  spec.it_interval.tv_sec = static_cast<time_t>(quarter.count() / 1'000'000'000);
  spec.it_interval.tv_nsec = static_cast<long>(quarter.count() % 1'000'000'000);
  spec.it_value = spec.it_interval;
  ::timerfd_settime(timer_fd_, 0, &spec, nullptr);
}

Notifier::~Notifier() {
  if (timer_fd_ >= 0) ::close(timer_fd_);
}

void Notifier::send(const std::string& message) {
  // Fails only when the manager's socket is gone; nothing to do about it
  // but keep probing.
  (void)sd_notify(0, message.c_str());
}

void Notifier::send_ready(const std::string& summary) {
  ready_ = true;
  last_status_ = summary;
  last_status_at_ = Clock::now();
  send("READY=1\nSTATUS=" + summary);
}

void Notifier::reloading() {
  if (!active_) return;
  ready_ = false;
  send("RELOADING=1");
}

void Notifier::stopping() {
  if (active_) send("STOPPING=1");
}

void Notifier::watchdog() {
  if (watchdog_.count() == 0) return;
  std::uint64_t expirations = 0;
  if (timer_fd_ >= 0) (void)::read(timer_fd_, &expirations, sizeof expirations);
  const auto now = Clock::now();
  if (now - last_kick_ < watchdog_ / 2) return;
  last_kick_ = now;
  send("WATCHDOG=1");
}

bool Notifier::status_due() { return ready_ && Clock::now() - last_status_at_ >= kStatusEvery; }

void Notifier::update_status(std::string line) {
  last_status_at_ = Clock::now();
  if (line == last_status_) return;
  last_status_ = std::move(line);
  send("STATUS=" + last_status_);
}

} // namespace healthtable::prober
