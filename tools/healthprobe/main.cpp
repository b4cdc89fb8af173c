// healthprobe: the one process that writes a health table. It probes every
// configured provider on a schedule and records each outcome through the
// table's circuit breaker. See docs/prober.md.
#include "cli_usage.hpp"
#include "config.hpp"
#include "log.hpp"
#include "prober.hpp"

#include <healthtable/error.hpp>

#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>

using namespace healthtable;
using namespace healthtable::prober;

namespace {

/// Each probe in flight holds a socket (two while IPv6 races IPv4), so a
/// thousand providers need more than the usual soft limit of 1024 files.
void raise_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"healthprobe: probes providers and keeps a health table fresh (docs/prober.md)"};
  std::string config_path;
  bool check_only = false;
  bool verbose = false;
  app.add_option("-c,--config", config_path, "TOML configuration file")->required();
  app.add_flag("--check", check_only, "check the configuration and exit (0: valid, 78: not)");
  app.add_flag("-v,--verbose", verbose, "also log every probe outcome and tick timings");
  app.set_version_flag("-V,--version", "healthprobe 0.1.0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage; // --help, --version: stdout
  } catch (const CLI::ParseError& e) {
    std::cerr << "healthprobe: " << cli::usage_line(e, app.remaining(), "healthprobe") << '\n';
    return kExitUsage;
  }

  Log log(verbose);

  // Signals arrive on a signalfd read by the event loop, never in a
  // handler. Block them before any thread exists (curl's resolver threads
  // inherit the mask, so the kernel delivers to the fd, not to them).
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) {
    log(Level::err, "cannot block signals");
    return kExitFailure;
  }
  std::signal(SIGPIPE, SIG_IGN); // a peer closing mid-write is a probe failure, not our death
  const int sfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    log(Level::err, std::string("signalfd: ") + std::strerror(errno));
    return kExitFailure;
  }
  raise_file_limit();

  Config cfg;
  try {
    cfg = load_config(config_path);
  } catch (const ConfigError& e) {
    log(Level::err, std::string("config error: ") + e.what());
    return kExitConfig;
  }
  log.set_segment(cfg.segment); // SEGMENT= on every journal entry from here on
  if (check_only) {
    std::cout << config_path << ": OK, " << cfg.providers.size() << " providers, segment \""
              << cfg.segment << "\"\n";
    return kExitOk;
  }

  try {
    Writer writer = open_table(cfg, log);
    Prober prober(std::move(cfg), std::move(writer), log);
    const int rc = prober.run(sfd);
    return rc; // the Writer dies with the Prober: lock released
  } catch (const Error& e) {
    log(Level::err, e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    log(Level::err, e.what());
    return kExitFailure;
  }
}
