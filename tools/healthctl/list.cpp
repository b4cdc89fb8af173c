// healthctl list: the tables on this host, read from the run directory
// (docs/home.md): one home per table, each opened as a reader would, so an
// entry that cannot be read (another owner, a broken home, a foreign
// object) is listed with the reason instead of ending the listing.
#include "commands.hpp"
#include "common.hpp"

#include <healthtable/home.hpp>
#include <healthtable/names.hpp>
#include <healthtable/table.hpp>

#include <fmt/format.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace healthctl {
namespace {

struct ListOptions {
  std::string owner; ///< --owner: empty for the library's default (each home's owner)
  bool json = false;
  std::string stale_after;
};

/// One entry of the run directory: a table, or why it could not be read.
struct Entry {
  std::string name;
  std::optional<healthtable::TableInfo> info; ///< nothing: unreadable
  WriterView writer;
  std::optional<healthtable::Errc> error;
  std::string reason;
};

/// What a run-directory entry that is not a directory is.
std::string_view kind_of(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISFIFO(mode)) return "a FIFO";
  return "a device";
}

/// The names in the run directory, sorted; nothing when it does not exist.
std::optional<std::vector<std::string>> run_dir_names(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return std::nullopt;
    const int err = errno;
    throw healthtable::Error(
        err == EACCES ? healthtable::Errc::permission_denied : healthtable::Errc::system_error,
        fmt::format("cannot list the run directory {}: {}; set HEALTHTABLE_RUN_DIR to the one "
                    "the tables are in",
                    dir, std::strerror(err)));
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Entry read_entry(const std::string& dir, const std::string& name, const ListOptions& o,
                 std::optional<std::chrono::nanoseconds> stale_after) {
  Entry e;
  e.name = name;
  struct stat st {};
  if (::fstatat(AT_FDCWD, (dir + "/" + name).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    e.error = healthtable::Errc::system_error;
    e.reason = fmt::format("cannot stat {}/{}: {}", dir, printable(name), std::strerror(errno));
    return e;
  }
  if (!S_ISDIR(st.st_mode)) {
    e.error = healthtable::Errc::not_a_table;
    e.reason = fmt::format("{}/{} is {}, not a table's home directory", dir, printable(name),
                           kind_of(st.st_mode));
    return e;
  }
  try {
    const healthtable::Table table = healthtable::Table::open(name, open_options(o.owner));
    e.info = table.info();
    e.writer = view_writer(table, *e.info, stale_after, healthtable::Instant::now().mono_ns);
  } catch (const healthtable::Error& err) {
    e.error = err.code();
    e.reason = err.what();
  }
  return e;
}

std::string owner_text(std::uint32_t uid) {
  const std::string user = healthtable::user_of_uid(uid);
  return user.empty() ? std::to_string(uid) : printable(user);
}

std::string writer_text(const WriterView& w) {
  switch (writer_health(w)) {
  case WriterHealth::live:
  case WriterHealth::stale:
    return fmt::format("{} pid {}", writer_health_name(writer_health(w)), w.pid);
  case WriterHealth::none: break;
  }
  return w.pid > 0 ? fmt::format("none (last pid {})", w.pid) : std::string("none");
}

nlohmann::ordered_json entry_json(const Entry& e, const std::string& dir) {
  using json = nlohmann::ordered_json;
  json j;
  j["name"] = e.name;
  j["home"] = dir + "/" + e.name;
  const bool ok = e.info.has_value();
  j["object"] = ok ? json(e.info->object) : json(nullptr);
  j["used"] = ok ? json(e.info->used) : json(nullptr);
  j["capacity"] = ok ? json(e.info->capacity) : json(nullptr);
  j["owner_uid"] = ok ? json(e.info->owner_uid) : json(nullptr);
  const std::string user = ok ? healthtable::user_of_uid(e.info->owner_uid) : std::string();
  j["owner"] = user.empty() ? json(nullptr) : json(user);
  j["generation"] = ok ? json(e.info->generation) : json(nullptr);
  if (ok) {
    std::string state(writer_health_name(writer_health(e.writer)));
    std::transform(state.begin(), state.end(), state.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    j["writer_state"] = state;
    j["writer"] = writer_json(e.writer);
    j["error"] = nullptr;
  } else {
    j["writer_state"] = nullptr;
    j["writer"] = nullptr;
    json err;
    err["code"] = static_cast<int>(*e.error);
    err["name"] = healthtable::errc_name(*e.error);
    err["message"] = e.reason;
    j["error"] = err;
  }
  return j;
}

void print_text(const std::vector<Entry>& entries, const std::string& dir) {
  std::vector<std::vector<std::string>> rows{
      {"NAME", "SLOTS", "WRITER", "HEARTBEAT", "OWNER", "GENERATION"}};
  for (const Entry& e : entries) {
    if (!e.info) continue;
    rows.push_back({printable(e.name), fmt::format("{}/{}", e.info->used, e.info->capacity),
                    writer_text(e.writer),
                    e.writer.heartbeat_age_ns
                        ? fmt::format("{} ago", format_age(*e.writer.heartbeat_age_ns))
                        : std::string("never"),
                    owner_text(e.info->owner_uid), format_hex(e.info->generation)});
  }
  if (rows.size() > 1) {
    std::vector<std::size_t> width(rows.front().size(), 0);
    for (const auto& r : rows)
      for (std::size_t c = 0; c < r.size(); ++c)
        width[c] = std::max(width[c], r[c].size());
    for (const auto& r : rows) {
      std::string line;
      for (std::size_t c = 0; c < r.size(); ++c)
        line += c + 1 < r.size() ? fmt::format("{:<{}}  ", r[c], width[c]) : r[c];
      fmt::print("{}\n", line);
    }
  }
  const auto unreadable = static_cast<std::size_t>(
      std::count_if(entries.begin(), entries.end(), [](const Entry& e) { return !e.info; }));
  if (rows.size() == 1 && unreadable == 0) {
    fmt::print("no tables in {}\n", dir);
    return;
  }
  if (unreadable == 0) return;
  if (rows.size() > 1) fmt::print("\n");
  for (const Entry& e : entries)
    if (!e.info)
      fmt::print("{}: cannot read ({}): {}\n", printable(e.name), healthtable::errc_name(*e.error),
                 printable(e.reason));
}

int run_list(const ListOptions& o) {
  const auto stale_after = parse_optional_duration(o.stale_after, "--stale-after");
  if (!o.owner.empty()) (void)open_options(o.owner); // a bad --owner is exit 15, once
  const std::string dir = healthtable::run_dir();
  const auto names = run_dir_names(dir);
  if (!names)
    say(fmt::format("no run directory {}: no table has been created on this host (or "
                    "HEALTHTABLE_RUN_DIR names another)",
                    dir));
  std::vector<Entry> entries;
  for (const std::string& name : names.value_or(std::vector<std::string>{}))
    entries.push_back(read_entry(dir, name, o, stale_after));

  if (o.json) {
    nlohmann::ordered_json doc;
    doc["run_dir"] = dir;
    doc["tables"] = nlohmann::ordered_json::array();
    for (const Entry& e : entries)
      doc["tables"].push_back(entry_json(e, dir));
    fmt::print("{}\n", to_json_text(doc));
    return kExitOk;
  }
  print_text(entries, dir);
  return kExitOk;
}

} // namespace

void setup_list(CLI::App& app) {
  auto opt = std::make_shared<ListOptions>();
  CLI::App* sub = app.add_subcommand(
      "list", "List the tables on this host (RUN_DIR): slots used, writer, owner; entries that "
              "cannot be read are listed with the reason");
  sub->add_flag("--json", opt->json, "Print one JSON document instead of a table");
  sub->add_option("--stale-after", opt->stale_after,
                  "Call a writer stale when its last heartbeat is older than this (default: 3 "
                  "of the intervals the writer promised; 0 never)")
      ->type_name("DURATION");
  add_owner_option(*sub, opt->owner);
  sub->callback([opt] { finish(run_list(*opt)); });
}

} // namespace healthctl
