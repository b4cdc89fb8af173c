// healthctl: inspect and administer a health table from the shell.
//
// main() only wires the subcommands (CLI11's subcommand-in-files pattern) and
// turns every failure into one line on stderr and a documented exit code:
// 0 ok, 1 `check` says unavailable (or, with --writer, that the writer is
// gone or STALE), 2 usage, 3..17 healthtable::Errc, 20
// and 21 `route` found no available provider (a panic pick, none), 22
// `watch` has no terminal.
#include "cli_usage.hpp"
#include "commands.hpp"
#include "common.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

/// The one line for a command-line mistake, ending with where to look:
/// "healthctl dump --help" when the error is in `dump`'s arguments. An
/// unknown option is named as one (cli_usage.hpp), and a mistyped command
/// gets its own message (CLI11 would only say that a subcommand is required).
std::string usage_message(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  const std::vector<std::string> extras = app.remaining(true);
  std::string names;
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (sub->parsed() > 0)
      return healthtable::cli::usage_line(e, extras, "healthctl " + sub->get_name());
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  if (argc > 1 && argv[1][0] != '-')
    return "unknown command '" + std::string(argv[1]) + "' (commands: " + names +
           "); run 'healthctl --help'";
  return healthtable::cli::usage_line(e, extras, "healthctl");
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Inspect and administer a healthtable health table in POSIX shared memory "
               "(RUN_DIR/NAME, RUN_DIR = $HEALTHTABLE_RUN_DIR or /run/healthtable).",
               "healthctl"};
  app.set_version_flag("-V,--version", healthctl::version_string());
  app.require_subcommand(1);
  app.fallthrough(); // `healthctl dump NAME --version` works too
  app.footer("Exit codes: 0 ok, 1 `check` found the provider unavailable (`check --writer`: no\n"
             "writer attached, or it is STALE), 2 usage error,\n"
             "3..17 a table error (3 no such table, 11 writer busy, 17 wrong owner, ...; see "
             "docs/cli.md),\n"
             "20 `route` made a panic pick, 21 `route` found nothing to route to,\n"
             "22 `watch` was not given a terminal.");

  healthctl::setup_create(app);
  healthctl::setup_info(app);
  healthctl::setup_dump(app);
  healthctl::setup_check(app);
  healthctl::setup_route(app);
  healthctl::setup_record(app);
  healthctl::setup_set(app);
  healthctl::setup_reset(app);
  healthctl::setup_forget(app);
  healthctl::setup_events(app);
  healthctl::setup_watch(app);
  healthctl::setup_grow(app);
  healthctl::setup_destroy(app);
  healthctl::setup_list(app);

  try {
    app.parse(argc, argv);
    return healthctl::kExitOk;
  } catch (const CLI::RuntimeError& e) { // a subcommand's own non-zero exit
    return e.get_exit_code();
  } catch (const CLI::Success& e) { // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    healthctl::say(usage_message(app, e, argc, argv));
    return healthctl::kExitUsage;
  } catch (const healthctl::CommandError& e) {
    healthctl::say(e.what());
    return e.code();
  } catch (const healthtable::Error& e) {
    healthctl::say(e.what());
    return healthctl::exit_code(e.code());
  } catch (const std::exception& e) {
    healthctl::say(std::string("unexpected error: ") + e.what());
    return healthctl::kExitUnexpected;
  } catch (...) {
    healthctl::say("unexpected error");
    return healthctl::kExitUnexpected;
  }
}
