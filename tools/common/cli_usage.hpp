// How healthctl and healthprobe name a command-line mistake, built here once
// so both say it alike: "unknown option '--bogus'; run 'healthctl dump
// --help'". CLI11's own text ("The following argument was not expected")
// does not say whether the word was a misspelt option or one argument too
// many.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace healthtable::cli {

/// The one line for the parse error `e`. `extras` are the arguments the
/// parser could not place (CLI::App::remaining()); `command` is what to
/// run with --help ("healthctl dump", "healthprobe").
inline std::string usage_line(const CLI::ParseError& e, const std::vector<std::string>& extras,
                              const std::string& command) {
  std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && !extras.empty()) {
    const auto option = std::find_if(extras.begin(), extras.end(), [](const std::string& a) {
      return a.size() > 1 && a.front() == '-';
    });
    if (option != extras.end())
      what = "unknown option '" + option->substr(0, option->find('=')) + "'";
    else
      what = "unexpected argument '" + extras.front() + "'";
  }
  return what + "; run '" + command + " --help'";
}

} // namespace healthtable::cli
