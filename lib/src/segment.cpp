#include "segment.hpp"

#include <healthtable/error.hpp>
#include <healthtable/names.hpp>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

namespace bip = boost::interprocess;

namespace healthtable::detail {

struct Mapping::Native {
  bip::shared_memory_object shm;
  bip::mapped_region region;
};

namespace {

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string describe_format(std::uint64_t f) {
  char buf[128];
  std::snprintf(
      buf, sizeof buf, "%s (layout v%llu, header %llu B, slot %llu B, name %llu, reason %llu)",
      hex(f).c_str(), static_cast<unsigned long long>(f >> 48),
      static_cast<unsigned long long>((f >> 32) & 0xFFFF),
      static_cast<unsigned long long>((f >> 16) & 0xFFFF),
      static_cast<unsigned long long>((f >> 8) & 0xFF), static_cast<unsigned long long>(f & 0xFF));
  return buf;
}

[[noreturn]] void corrupt(std::string_view segment, const std::string& what) {
  throw Error(Errc::corrupt, "segment " + quoted(segment) + " is corrupt: " + what +
                                 "; recreate it with 'healthctl create " + std::string(segment) +
                                 " --force'");
}

} // namespace

std::string shm_name(std::string_view segment) {
  validate_segment_name(segment);
  // Built with append: GCC 12 at -O3 warns falsely (-Wrestrict) on
  // "/" + std::string(...).
  std::string name;
  name.reserve(segment.size() + 1);
  name += '/';
  name += segment;
  return name;
}

std::string shm_path(std::string_view segment) {
  std::string path("/dev/shm/");
  path += segment;
  return path;
}

void throw_errno(int err, std::string_view what, std::string_view segment) {
  const std::string seg = quoted(segment);
  switch (err) {
  case ENOENT:
    throw Error(Errc::no_such_segment, "no health table " + seg + " (" + shm_path(segment) +
                                           " does not exist); create it with 'healthctl create " +
                                           std::string(segment) + "'");
  case EACCES:
  case EPERM:
  case EROFS:
    throw Error(Errc::permission_denied,
                std::string(what) + " " + seg + ": permission denied; run as the segment's owner " +
                    "or ask for a mode that allows it (healthctl create --mode)");
  case ELOOP:
    throw Error(Errc::permission_denied,
                "refusing " + seg + ": " + shm_path(segment) + " is a symbolic link; remove it");
  case EEXIST:
    throw Error(Errc::already_exists, "segment " + seg +
                                          " already exists; use --force to replace it, or pick "
                                          "another name");
  case ENOSPC:
  case ENOMEM:
  case EFBIG:
    throw Error(Errc::no_space, std::string(what) + " " + seg + ": no space left in /dev/shm (" +
                                    std::strerror(err) +
                                    "); free space or enlarge the tmpfs, then retry");
  case EMFILE:
  case ENFILE:
  default:
    throw Error(Errc::system_error,
                std::string(what) + " " + seg + " failed: " + std::strerror(err));
  }
}

void validate_image(const std::uint8_t* base, std::uint64_t size, std::string_view segment) {
  if (size == 0)
    throw Error(Errc::not_ready, "segment " + quoted(segment) +
                                     " is still being created (size 0); retry in a moment, or "
                                     "recreate it with --force if its creator died");
  if (size < sizeof(Header))
    corrupt(segment, "truncated to " + std::to_string(size) + " bytes, smaller than the " +
                         std::to_string(sizeof(Header)) + "-byte header");
  const auto& h = *reinterpret_cast<const Header*>(base);
  // acquire: pairs with the release store that publishes the magic in
  // Writer::create(); everything below was written before it.
  const std::uint64_t magic = h.magic.load(std::memory_order_acquire);
  if (magic == 0)
    throw Error(Errc::not_ready,
                "segment " + quoted(segment) +
                    " is still being created (magic not yet published); retry "
                    "in a moment, or recreate it with --force if its creator died");
  if (magic != kMagic)
    throw Error(Errc::not_a_table, "segment " + quoted(segment) + " is not a health table (magic " +
                                       hex(magic) + ", expected " + hex(kMagic) +
                                       "); check the name, or replace it with 'healthctl create " +
                                       std::string(segment) + " --force'");
  if (h.format != kFormat || h.layout_version != kLayoutVersion)
    throw Error(Errc::incompatible_layout,
                "segment " + quoted(segment) + " has an incompatible layout: expected " +
                    describe_format(kFormat) + ", found " + describe_format(h.format) +
                    "; use tools of the same version as its writer, or recreate it");
  if (h.header_size != sizeof(Header) || h.slot_size != sizeof(Slot))
    corrupt(segment, "header says header " + std::to_string(h.header_size) + " B, slot " +
                         std::to_string(h.slot_size) + " B");
  if (h.capacity < 1 || h.capacity > kMaxCapacity)
    corrupt(segment, "capacity " + std::to_string(h.capacity) + " is outside 1.." +
                         std::to_string(kMaxCapacity));
  if (h.index_size != index_size_for(h.capacity) || h.index_offset != sizeof(Header) ||
      h.slots_offset != slots_offset_for(h.capacity))
    corrupt(segment, "index or slot offsets do not match capacity " + std::to_string(h.capacity));
  if (h.total_size != total_size_for(h.capacity))
    corrupt(segment, "total size " + std::to_string(h.total_size) + " does not match capacity " +
                         std::to_string(h.capacity) + " (expected " +
                         std::to_string(total_size_for(h.capacity)) + ")");
  if (size != h.total_size)
    corrupt(segment, "object is " + std::to_string(size) + " bytes, header says " +
                         std::to_string(h.total_size));
}

Mapping::~Mapping() = default;

std::unique_ptr<Mapping> Mapping::open(std::string_view segment, bool writable) {
  const std::string name = shm_name(segment);
  std::unique_ptr<Mapping> m(new Mapping());
  m->segment_ = std::string(segment);
  const auto mode = writable ? bip::read_write : bip::read_only;
  try {
    // glibc's shm_open adds O_NOFOLLOW | O_CLOEXEC: a planted symlink fails
    // with ELOOP instead of redirecting us.
    bip::shared_memory_object shm(bip::open_only, name.c_str(), mode);
    const int fd = shm.get_mapping_handle().handle;
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno(errno, "cannot stat", segment);
    if (!S_ISREG(st.st_mode))
      throw Error(Errc::not_a_table,
                  "segment " + quoted(segment) + " is not a regular shared-memory object");
    m->fd_ = fd;
    m->dev_ = st.st_dev;
    m->ino_ = st.st_ino;
    m->owner_ = st.st_uid;
    m->mode_ = static_cast<unsigned>(st.st_mode & 07777);
    m->size_ = static_cast<std::uint64_t>(st.st_size);
    if (m->size_ == 0) validate_image(nullptr, 0, segment); // throws not_ready
    bip::mapped_region region(shm, mode, 0, static_cast<std::size_t>(m->size_));
    m->base_ = static_cast<std::uint8_t*>(region.get_address());
    m->native_.reset(new Native{std::move(shm), std::move(region)});
  } catch (const bip::interprocess_exception& e) {
    throw_errno(e.get_native_error() ? e.get_native_error() : EIO, "cannot open", segment);
  }
  validate_image(m->base_, m->size_, segment);
  return m;
}

std::unique_ptr<Mapping> Mapping::create(std::string_view segment, std::uint64_t size,
                                         std::uint32_t mode) {
  const std::string name = shm_name(segment);
  std::unique_ptr<Mapping> m(new Mapping());
  m->segment_ = std::string(segment);
  bool created = false;
  try {
    bip::permissions perm(mode);
    // O_CREAT | O_EXCL: of many concurrent creators exactly one wins.
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, perm);
    created = true;
    const int fd = shm.get_mapping_handle().handle;
    // The umask must not decide who may read the table.
    if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) throw_errno(errno, "cannot chmod", segment);
    // Reserve every page now: a full /dev/shm fails here with ENOSPC instead
    // of raising SIGBUS in some reader on first touch (as PostgreSQL does).
    if (const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size)); err != 0) {
      if (err == EOPNOTSUPP || err == EINVAL) {
        if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
          throw_errno(errno, "cannot size", segment);
      } else {
        throw_errno(err, "cannot reserve space for", segment);
      }
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno(errno, "cannot stat", segment);
    m->fd_ = fd;
    m->dev_ = st.st_dev;
    m->ino_ = st.st_ino;
    m->owner_ = st.st_uid;
    m->mode_ = static_cast<unsigned>(st.st_mode & 07777);
    m->size_ = size;
    bip::mapped_region region(shm, bip::read_write, 0, static_cast<std::size_t>(size));
    m->base_ = static_cast<std::uint8_t*>(region.get_address());
    m->native_.reset(new Native{std::move(shm), std::move(region)});
  } catch (...) {
    // Leave nothing behind: a half-made segment would read as "not ready"
    // forever.
    if (created) ::shm_unlink(name.c_str());
    try {
      throw;
    } catch (const bip::interprocess_exception& e) {
      throw_errno(e.get_native_error() ? e.get_native_error() : EIO, "cannot create", segment);
    }
  }
  return m;
}

void unlink_segment(std::string_view segment) {
  const std::string name = shm_name(segment);
  if (::shm_unlink(name.c_str()) != 0) throw_errno(errno, "cannot remove", segment);
}

int open_lock_fd(const Mapping& same_as) {
  const std::string name = shm_name(same_as.segment());
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
  if (fd < 0) throw_errno(errno, "cannot open", same_as.segment());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_dev != same_as.dev() || st.st_ino != same_as.ino()) {
    ::close(fd);
    throw Error(Errc::writer_busy,
                "segment '" + same_as.segment() + "' was replaced while opening it; retry");
  }
  return fd;
}

bool try_writer_lock(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1; // byte 0 stands for "the writer"
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return true;
  if (errno == EAGAIN || errno == EACCES) return false;
  throw Error(Errc::system_error, std::string("cannot lock segment: ") + std::strerror(errno));
}

bool writer_lock_held(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0)
    throw Error(Errc::system_error,
                std::string("cannot test writer lock: ") + std::strerror(errno));
  return fl.l_type != F_UNLCK;
}

} // namespace healthtable::detail
