// Where a table lives, and whom readers trust (docs/home.md).
//
//   $HEALTHTABLE_RUN_DIR (default /run/healthtable)   root's, or ours; 0755
//     NAME/                 the table's home: its owner's, nobody else writes it
//       table -> /dev/shm/healthtable.NAME.ID    which object is the table now
//       lock                the writer lock (0600: no reader can hold it)
//       control             the prober's control socket (its mode says who may send)
//
// The object in /dev/shm has a random ID, so nobody can squat its name
// ahead of us, and recreating or growing a table is one atomic rename of
// `table`. Readers trust a home because only root (or the run directory's
// owner) can make one; they refuse an object whose owner is not the home's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace healthtable {

/// $HEALTHTABLE_RUN_DIR if set and not empty, else "/run/healthtable".
std::string run_dir();

/// run_dir() + "/" + segment. Throws Error(invalid_name).
std::string home_dir(std::string_view segment);

/// The control socket's path, home_dir(segment) + "/control".
std::string control_path(std::string_view segment);

/// A uid from $HEALTHTABLE_OWNER (a user name or a number), if set.
/// Throws Error(invalid_argument) for a name no user has.
std::optional<std::uint32_t> owner_from_env();

/// A user name or a decimal uid as a uid. Throws Error(invalid_argument).
std::uint32_t parse_user(std::string_view text);

/// "uid 0 (root)", or "uid 1234" when no user has that uid.
std::string describe_uid(std::uint32_t uid);

/// The user name of `uid` ("root"), or "" when no user has it.
std::string user_of_uid(std::uint32_t uid);

} // namespace healthtable
