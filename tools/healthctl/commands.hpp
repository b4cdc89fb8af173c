// The healthctl subcommands. Each lives in its own file with an options
// struct, a run_x() that does the work, and the setup_x() declared here that
// adds the subcommand and its options to the application.
#pragma once

#include <CLI/CLI.hpp>

namespace healthctl {

void setup_create(CLI::App& app);
void setup_info(CLI::App& app);
void setup_dump(CLI::App& app);
void setup_check(CLI::App& app);
void setup_route(CLI::App& app);
void setup_record(CLI::App& app);
void setup_set(CLI::App& app);
void setup_reset(CLI::App& app);
void setup_forget(CLI::App& app);
void setup_events(CLI::App& app);
void setup_watch(CLI::App& app);
void setup_grow(CLI::App& app);
void setup_destroy(CLI::App& app);
void setup_list(CLI::App& app);

} // namespace healthctl
