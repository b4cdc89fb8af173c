// One frame of `healthctl watch`, rendered as a pure function of what was
// read, so the screen can be tested without a terminal: the same provider
// table as `dump`, and the newest events as `events` prints them.
#pragma once

#include <healthtable/clock.hpp>
#include <healthtable/table.hpp>

#include <string>
#include <vector>

namespace healthctl {

struct WatchFrame {
  std::string segment;
  healthtable::Instant now;
  std::string writer; ///< describe_writer()'s line
  std::string table;  ///< "4 of 64 slots used, 17 events"
  std::string note;   ///< "table recreated", "table gone: waiting": empty for none
  std::vector<healthtable::ProviderState> providers;
  std::vector<healthtable::EventRecord> events; ///< oldest first; the newest that fit are shown
};

/// The frame as the bytes to write: cursor home, each line cut to `cols`
/// and cleared to its end, the rest of the screen cleared, `rows` lines at
/// most. Events fill what the providers leave, newest last.
std::string render_watch(const WatchFrame& f, int rows, int cols);

} // namespace healthctl
