// detail: a table's home directory (healthtable/home.hpp draws it): the
// checks that make it trustworthy, its pointer to the current object, and
// the writer lock. Every access goes through the directory's descriptor
// (openat, readlinkat, renameat), so nobody can swap a path under us.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace healthtable::detail {

class Home {
public:
  ~Home();
  Home(const Home&) = delete;
  Home& operator=(const Home&) = delete;

  /// Opens an existing home, checking the run directory (owned by root, by
  /// us or by `expected`; writable by nobody else), the home (a directory,
  /// not a link, writable by its owner alone) and its owner: `expected`,
  /// else $HEALTHTABLE_OWNER, else whoever owns it. Throws no_such_segment,
  /// not_a_table, wrong_owner, permission_denied, invalid_name.
  static std::unique_ptr<Home> open(std::string_view segment,
                                    std::optional<uid_t> expected = std::nullopt);

  /// Opens the home, creating it (and the run directory, 0755) when
  /// missing, owned by `uid`:`gid` (root may give it away). Throws what
  /// open() throws, and permission_denied when we may not create it.
  static std::unique_ptr<Home> make(std::string_view segment, uid_t uid, gid_t gid);

  const std::string& segment() const noexcept { return segment_; }
  const std::string& dir() const noexcept { return dir_; }
  int fd() const noexcept { return fd_; }
  uid_t owner() const noexcept { return owner_; }
  gid_t group() const noexcept { return group_; }

  /// The instance the pointer names now; 0 when there is no pointer.
  /// Throws corrupt when the pointer names something else.
  std::uint64_t current() const;
  /// Points the home at `instance` (a new link renamed over the old one:
  /// readers see the old object or the new, never neither).
  void point_at(std::uint64_t instance) const;
  /// Removes the pointer if it still names `instance`.
  void unpoint(std::uint64_t instance) const noexcept;

  /// Opens the lock file read-write (creating it 0600 when `create`).
  /// Throws permission_denied: only the owner (and root) can open it.
  int open_lock(bool create) const;
  /// Whether some process holds the writer lock: asked with F_OFD_GETLK
  /// when we can open the lock file, else looked up in /proc/locks (which
  /// anyone may read) by the file's inode.
  bool writer_attached() const;

  /// The directory was removed under us.
  bool gone() const noexcept;
  /// Removes the home's own entries (pointer, lock, control socket, stray
  /// links) and the directory if it is then empty. Never follows a link.
  void remove_entries() const noexcept;

private:
  Home() = default;
  std::string segment_;
  std::string dir_;
  int fd_ = -1;
  uid_t owner_ = 0;
  gid_t group_ = 0;
};

/// Throws Error(wrong_owner) naming both owners.
[[noreturn]] void throw_wrong_owner(std::string_view segment, std::string_view path, uid_t found,
                                    uid_t expected);

/// What a user who may read a table but not write it is told: who may
/// write it (its owner, or its prober on a user's behalf), never to change
/// its mode.
std::string not_your_table(std::string_view segment, uid_t owner);

/// Takes the exclusive open-file-description lock on `fd` without waiting.
/// Returns false if another open file description holds it.
bool try_writer_lock(int fd);

} // namespace healthtable::detail
