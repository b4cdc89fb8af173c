#include "follow.hpp"

#include <healthtable/error.hpp>

#include <csignal>
#include <ctime>

namespace healthctl {

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_stop(int) { g_stop = 1; }

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

} // namespace

StopOnSignal::StopOnSignal() {
  g_stop = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; // no SA_RESTART: a sleep or poll returns at once with EINTR
  for (int s : kSignals)
    ::sigaction(s, &sa, nullptr);
}

StopOnSignal::~StopOnSignal() {
  for (int s : kSignals)
    std::signal(s, SIG_DFL);
}

bool StopOnSignal::stopped() const noexcept { return g_stop != 0; }

bool StopOnSignal::sleep_for(std::chrono::milliseconds d) const noexcept {
  if (stopped()) return true;
  timespec ts{};
  ts.tv_sec = static_cast<std::time_t>(d.count() / 1000);
  ts.tv_nsec = static_cast<long>(d.count() % 1000) * 1'000'000;
  ::nanosleep(&ts, nullptr); // EINTR when a signal arrives: checked below
  return stopped();
}

TableMove follow(const healthtable::Table& table) {
  if (!table.replaced()) return TableMove::same;
  try {
    return table.refresh() ? TableMove::recreated : TableMove::gone;
  } catch (const healthtable::Error&) {
    return TableMove::gone; // no home, no object: destroyed, perhaps for a while
  }
}

} // namespace healthctl
