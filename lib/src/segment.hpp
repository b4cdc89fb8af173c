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

/// An open, mapped and validated segment.
class Mapping {
public:
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  /// Opens an existing segment and validates its header. `writable` maps
  /// PROT_READ|PROT_WRITE from an O_RDWR descriptor, else PROT_READ from
  /// O_RDONLY.
  static std::unique_ptr<Mapping> open(std::string_view segment, bool writable);

  /// Creates a new segment with O_EXCL, reserves its space (posix_fallocate:
  /// ENOSPC now, not SIGBUS later) and sets the mode with fchmod. The header
  /// is left zeroed (magic unpublished): the caller initialises and publishes.
  static std::unique_ptr<Mapping> create(std::string_view segment, std::uint64_t size,
                                         std::uint32_t mode);

  const std::string& segment() const noexcept { return segment_; }
  int fd() const noexcept { return fd_; }
  std::uint8_t* base() const noexcept { return base_; }
  std::uint64_t size() const noexcept { return size_; }
  dev_t dev() const noexcept { return dev_; }
  ino_t ino() const noexcept { return ino_; }
  uid_t owner() const noexcept { return owner_; }
  /// Permission bits (st_mode & 07777) when mapped.
  unsigned mode() const noexcept { return mode_; }

  Header& header() const noexcept { return *reinterpret_cast<Header*>(base_); }
  Slot* slots() const noexcept { return reinterpret_cast<Slot*>(base_ + header().slots_offset); }
  std::atomic<std::uint32_t>* index() const noexcept {
    return reinterpret_cast<std::atomic<std::uint32_t>*>(base_ + header().index_offset);
  }

  struct Native; // the Boost objects

private:
  Mapping() = default;
  std::string segment_;
  std::unique_ptr<Native> native_;
  int fd_ = -1;
  std::uint8_t* base_ = nullptr;
  std::uint64_t size_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  uid_t owner_ = 0;
  unsigned mode_ = 0;
};

/// Checks a mapped image of `size` bytes: magic, format, then every size and
/// offset against what the capacity implies. Throws not_ready, not_a_table,
/// incompatible_layout or corrupt. Reads nothing outside [base, base+size).
void validate_image(const std::uint8_t* base, std::uint64_t size, std::string_view segment);

/// The POSIX name with its leading '/', after validation.
std::string shm_name(std::string_view segment);

/// The path of the object on Linux (/dev/shm/NAME), for stat().
std::string shm_path(std::string_view segment);

/// Unlinks the object. Throws no_such_segment, permission_denied.
void unlink_segment(std::string_view segment);

/// Opens the object again, O_RDWR|O_CLOEXEC, for the writer lock, and checks
/// it is the same object as `same_as`. Returns the fd.
int open_lock_fd(const Mapping& same_as);

/// Takes the exclusive open-file-description lock on `fd` without waiting.
/// Returns false if another open file description holds it.
bool try_writer_lock(int fd);

/// True when some open file description holds the writer lock (F_OFD_GETLK;
/// works from a read-only descriptor).
bool writer_lock_held(int fd);

/// Throws Error(system_error or a better code) for errno `err`.
[[noreturn]] void throw_errno(int err, std::string_view what, std::string_view segment);

} // namespace healthtable::detail
