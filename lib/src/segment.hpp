// detail: the shared-memory object and its mapping. The only place, with
// segment.cpp, that includes Boost.Interprocess.
#pragma once

#include <healthtable/layout.hpp>

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace healthtable::detail {

/// An open, mapped and validated table object.
class Mapping {
public:
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  /// Opens the object of `segment` with this instance and validates it.
  /// Opens with O_NOFOLLOW | O_NONBLOCK and refuses anything but a regular
  /// file before mapping, so nothing planted at the name can block or
  /// redirect us. `writable` maps PROT_READ|PROT_WRITE from O_RDWR, else
  /// PROT_READ from O_RDONLY. The object must belong to `owner`.
  static std::unique_ptr<Mapping> open(std::string_view segment, std::uint64_t instance,
                                       bool writable, uid_t owner);

  /// Creates a new object with O_EXCL, reserves its space (posix_fallocate:
  /// ENOSPC now, not SIGBUS later) and sets the mode with fchmod (and the
  /// owner with fchown when `chown_to` is given). The header is left zeroed
  /// (magic unpublished): the caller initialises and publishes.
  static std::unique_ptr<Mapping> create(std::string_view segment, std::uint64_t instance,
                                         std::uint64_t size, std::uint32_t mode, int chown_uid,
                                         int chown_gid);

  const std::string& segment() const noexcept { return segment_; }
  std::uint64_t instance() const noexcept { return instance_; }
  const std::string& path() const noexcept { return path_; }
  int fd() const noexcept { return fd_; }
  std::uint8_t* base() const noexcept { return base_; }
  std::uint64_t size() const noexcept { return size_; }
  dev_t dev() const noexcept { return dev_; }
  ino_t ino() const noexcept { return ino_; }
  uid_t owner() const noexcept { return owner_; }
  unsigned mode() const noexcept { return mode_; }
  bool writable() const noexcept { return writable_; }

  Header& header() const noexcept { return *reinterpret_cast<Header*>(base_); }
  SlotHead* heads() const noexcept {
    return reinterpret_cast<SlotHead*>(base_ + header().heads_offset);
  }
  SlotBody* bodies() const noexcept {
    return reinterpret_cast<SlotBody*>(base_ + header().bodies_offset);
  }
  Event* events() const noexcept {
    return reinterpret_cast<Event*>(base_ + header().events_offset);
  }
  std::atomic<std::uint64_t>* index() const noexcept {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(base_ + header().index_offset);
  }

  /// Removes our object's name, if it still names our inode.
  void unlink_if_ours() const noexcept;
  /// The object still has a name (st_nlink > 0).
  bool linked() const noexcept;

  struct Native; // the Boost objects

private:
  Mapping() = default;
  std::string segment_;
  std::string path_;
  std::uint64_t instance_ = 0;
  std::unique_ptr<Native> native_;
  int fd_ = -1;
  std::uint8_t* base_ = nullptr;
  std::uint64_t size_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  uid_t owner_ = 0;
  unsigned mode_ = 0;
  bool writable_ = false;
};

/// Checks a mapped image of `size` bytes: magic, format, then every size and
/// offset against what the capacity implies, and that it says it is
/// `segment`'s object `instance` (0: any). Throws not_ready, not_a_table,
/// incompatible_layout or corrupt. Reads nothing outside [base, base+size).
void validate_image(const std::uint8_t* base, std::uint64_t size, std::string_view segment,
                    std::uint64_t instance);

/// "healthtable.NAME.0123456789abcdef": the object's POSIX name without '/'.
std::string object_name(std::string_view segment, std::uint64_t instance);
/// /dev/shm/ + object_name().
std::string object_path(std::string_view segment, std::uint64_t instance);
/// The instance in an object path of `segment`, or 0 if it is not one.
std::uint64_t instance_of(std::string_view segment, std::string_view path) noexcept;

/// Unlinks every object of `segment` in /dev/shm that `owner` owns, is a
/// regular file and is not `keep`: what a writer killed between creating a
/// new object and pointing the home at it (create --force, grow, recreate)
/// leaves behind. Call with the writer lock held, so no writer is making one
/// now. Readers that still map one keep their mapping. Returns how many.
std::size_t remove_stray_objects(std::string_view segment, uid_t owner,
                                 std::uint64_t keep) noexcept;

/// A random instance, never 0.
std::uint64_t random_instance();

/// Throws Error(system_error or a better code) for errno `err`.
[[noreturn]] void throw_errno(int err, std::string_view what, std::string_view segment);

} // namespace healthtable::detail
