#include "segment.hpp"

#include "home.hpp"

#include <healthtable/error.hpp>
#include <healthtable/home.hpp>
#include <healthtable/names.hpp>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace bip = boost::interprocess;

namespace healthtable::detail {

namespace {

/// Boost.Interprocess maps anything that names its descriptor: this lets
/// us open the object ourselves (O_NONBLOCK, O_NOFOLLOW, fstat first) and
/// still map it through mapped_region.
struct FdMappable {
  int fd;
  bip::mapping_handle_t get_mapping_handle() const noexcept {
    return bip::ipcdetail::mapping_handle_from_file_handle(fd);
  }
};

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string describe_format(std::uint64_t f) {
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "%s (layout v%llu, header %llu B, slot %llu+%llu B, event %llu B, name %llu, "
                "reason %llu)",
                hex(f).c_str(), static_cast<unsigned long long>(f >> 56),
                static_cast<unsigned long long>(((f >> 48) & 0xFF) * 64),
                static_cast<unsigned long long>(((f >> 40) & 0xFF) * 64),
                static_cast<unsigned long long>(((f >> 32) & 0xFF) * 64),
                static_cast<unsigned long long>(((f >> 24) & 0xFF) * 64),
                static_cast<unsigned long long>((f >> 16) & 0xFF),
                static_cast<unsigned long long>((f >> 8) & 0xFF));
  return buf;
}

[[noreturn]] void corrupt(std::string_view segment, const std::string& what) {
  throw Error(Errc::corrupt, "table " + quoted(segment) + " is corrupt: " + what +
                                 "; recreate it with 'healthctl create " + std::string(segment) +
                                 " --force'");
}

void fill_identity(int fd, std::string_view segment, dev_t& dev, ino_t& ino, uid_t& owner,
                   unsigned& mode, std::uint64_t& size) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno(errno, "cannot stat", segment);
  if (!S_ISREG(st.st_mode))
    throw Error(Errc::not_a_table, "table " + quoted(segment) +
                                       ": its object is not a regular shared-memory object; "
                                       "remove it with 'healthctl destroy " +
                                       std::string(segment) + " --force'");
  dev = st.st_dev;
  ino = st.st_ino;
  owner = st.st_uid;
  mode = static_cast<unsigned>(st.st_mode & 07777);
  size = static_cast<std::uint64_t>(st.st_size);
}

} // namespace

std::string object_name(std::string_view segment, std::uint64_t instance) {
  char id[24];
  std::snprintf(id, sizeof id, ".%016llx", static_cast<unsigned long long>(instance));
  std::string name("healthtable.");
  name += segment;
  name += id;
  return name;
}

std::string object_path(std::string_view segment, std::uint64_t instance) {
  std::string path("/dev/shm/");
  path += object_name(segment, instance);
  return path;
}

std::uint64_t instance_of(std::string_view segment, std::string_view path) noexcept {
  const std::string prefix = "/dev/shm/healthtable." + std::string(segment) + ".";
  if (!path.starts_with(prefix) || path.size() != prefix.size() + 16) return 0;
  std::uint64_t v = 0;
  for (const char c : path.substr(prefix.size())) {
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= static_cast<std::uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= static_cast<std::uint64_t>(c - 'a' + 10);
    else
      return 0;
  }
  return v;
}

std::size_t remove_stray_objects(std::string_view segment, uid_t owner,
                                 std::uint64_t keep) noexcept {
  const int dir = ::open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return 0;
  DIR* d = ::fdopendir(dir);
  if (!d) {
    ::close(dir);
    return 0;
  }
  std::size_t removed = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::uint64_t instance = instance_of(segment, std::string("/dev/shm/") + e->d_name);
    if (instance == 0 || instance == keep) continue;
    struct stat st {};
    // Another user's object of our name is theirs to remove, and whatever
    // is not a regular file is not one of ours.
    if (::fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != owner)
      continue;
    if (::unlinkat(dir, e->d_name, 0) == 0) ++removed;
  }
  ::closedir(d); // closes dir
  return removed;
}

std::uint64_t random_instance() {
  std::uint64_t v = 0;
  while (v == 0)
    if (::getrandom(&v, sizeof v, 0) != sizeof v)
      throw Error(Errc::system_error, std::string("getrandom: ") + std::strerror(errno));
  return v;
}

void throw_errno(int err, std::string_view what, std::string_view segment) {
  const std::string seg = quoted(segment);
  switch (err) {
  case ENOENT:
    throw Error(Errc::no_such_segment, "no health table " + seg + " (" + home_dir(segment) +
                                           " has none); create it with 'healthctl create " +
                                           std::string(segment) + "'");
  case EACCES:
  case EPERM:
  case EROFS:
    throw Error(Errc::permission_denied,
                std::string(what) + " " + seg +
                    ": permission denied; to read it, be its owner or in the group it was "
                    "created for (healthctl create --mode 0640); to write it, run as its owner, "
                    "or send 'healthctl record/set/reset' to its prober ([control] allow_uids, "
                    "allow_gid)");
  case ENXIO: // a socket (or a device without a driver) at the path
  case ENODEV:
  case ELOOP: // O_NOFOLLOW met a link
    throw Error(Errc::not_a_table, "refusing " + seg + ": its object is " +
                                       (err == ELOOP ? "a symbolic link" : "a socket or a device") +
                                       ", not a table; remove it with 'healthctl destroy " +
                                       std::string(segment) + " --force'");
  case EEXIST:
    throw Error(Errc::already_exists, "table " + seg +
                                          " already exists; use --force to replace it, or pick "
                                          "another name");
  case ENOSPC:
  case ENOMEM:
  case EFBIG:
    throw Error(Errc::no_space, std::string(what) + " " + seg + ": no space left in /dev/shm (" +
                                    std::strerror(err) +
                                    "); free space or enlarge the tmpfs, then retry");
  default:
    throw Error(Errc::system_error,
                std::string(what) + " " + seg + " failed: " + std::strerror(err));
  }
}

void validate_image(const std::uint8_t* base, std::uint64_t size, std::string_view segment,
                    std::uint64_t instance) {
  if (size == 0)
    throw Error(Errc::not_ready, "table " + quoted(segment) +
                                     " is still being created (size 0); retry in a moment, or "
                                     "recreate it with --force if its creator died");
  if (size < 64) corrupt(segment, "truncated to " + std::to_string(size) + " bytes");
  const auto& h = *reinterpret_cast<const Header*>(base);
  // acquire: pairs with the release store that publishes the magic in
  // Writer::create(); everything below was written before it.
  const std::uint64_t magic = h.magic.load(std::memory_order_acquire);
  if (magic == 0)
    throw Error(Errc::not_ready,
                "table " + quoted(segment) +
                    " is still being created (magic not yet published); retry "
                    "in a moment, or recreate it with --force if its creator died");
  if (magic != kMagic)
    throw Error(Errc::not_a_table, "table " + quoted(segment) + " is not a health table (magic " +
                                       hex(magic) + ", expected " + hex(kMagic) +
                                       "); check the name, or replace it with 'healthctl create " +
                                       std::string(segment) + " --force'");
  // v1 kept layout_version at offset 16 and its format's top 16 bits.
  const auto v1_version = *reinterpret_cast<const std::uint32_t*>(base + 16);
  if (v1_version == 1 || (h.format >> 48) == 1)
    throw Error(Errc::incompatible_layout,
                "table " + quoted(segment) +
                    " is layout v1; this build reads v2: stop its writer " +
                    "and recreate it with 'healthctl create " + std::string(segment) + " --force'");
  if (size < sizeof(Header))
    corrupt(segment, "truncated to " + std::to_string(size) + " bytes, smaller than the " +
                         std::to_string(sizeof(Header)) + "-byte header");
  if (h.format != kFormat || h.layout_version != kLayoutVersion)
    throw Error(Errc::incompatible_layout,
                "table " + quoted(segment) + " has an incompatible layout: expected " +
                    describe_format(kFormat) + ", found " + describe_format(h.format) +
                    "; use tools of the same version as its writer, or recreate it");
  if (h.header_size != sizeof(Header) || h.head_size != sizeof(SlotHead) ||
      h.body_size != sizeof(SlotBody) || h.event_size != sizeof(Event))
    corrupt(segment, "its header gives sizes that do not match its format stamp");
  if (h.capacity < 1 || h.capacity > kMaxCapacity)
    corrupt(segment, "capacity " + std::to_string(h.capacity) + " is outside 1.." +
                         std::to_string(kMaxCapacity));
  if (h.events_capacity != events_size_for(h.events_capacity) || h.events_capacity < 16)
    corrupt(segment, "event ring of " + std::to_string(h.events_capacity) +
                         " entries is not a power of two from 16 to " + std::to_string(kMaxEvents));
  const Offsets o = offsets_for(h.capacity, h.events_capacity);
  if (h.index_size != index_size_for(h.capacity) || h.index_offset != o.index ||
      h.heads_offset != o.heads || h.bodies_offset != o.bodies || h.events_offset != o.events)
    corrupt(segment, "offsets do not match capacity " + std::to_string(h.capacity));
  if (h.total_size != o.total)
    corrupt(segment, "total size " + std::to_string(h.total_size) + " does not match capacity " +
                         std::to_string(h.capacity) + " (expected " + std::to_string(o.total) +
                         ")");
  if (size != h.total_size)
    corrupt(segment, "object is " + std::to_string(size) + " bytes, header says " +
                         std::to_string(h.total_size));
  if (h.name_len != segment.size() || std::memcmp(h.name, segment.data(), segment.size()) != 0)
    corrupt(segment, "its header names another table");
  if (instance != 0 && h.instance != instance)
    corrupt(segment,
            "its header gives instance " + hex(h.instance) + ", its name " + hex(instance));
}

struct Mapping::Native {
  bip::mapped_region region;
};

Mapping::~Mapping() {
  native_.reset();
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<Mapping> Mapping::open(std::string_view segment, std::uint64_t instance,
                                       bool writable, uid_t owner) {
  std::unique_ptr<Mapping> m(new Mapping());
  m->segment_ = std::string(segment);
  m->instance_ = instance;
  m->path_ = object_path(segment, instance);
  m->writable_ = writable;
  // O_NONBLOCK: a FIFO planted at the name cannot hold open() (fstat below
  // refuses it); O_NOFOLLOW: a symlink cannot redirect us.
  const int fd = ::open(m->path_.c_str(),
                        (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw_errno(errno, "cannot open", segment);
  m->fd_ = fd;
  fill_identity(fd, segment, m->dev_, m->ino_, m->owner_, m->mode_, m->size_);
  if (m->owner_ != owner) throw_wrong_owner(segment, m->path_, m->owner_, owner);
  if (m->size_ == 0) validate_image(nullptr, 0, segment, instance); // throws not_ready
  try {
    const auto mode = writable ? bip::read_write : bip::read_only;
    bip::mapped_region region(FdMappable{fd}, mode, 0, static_cast<std::size_t>(m->size_));
    m->base_ = static_cast<std::uint8_t*>(region.get_address());
    m->native_.reset(new Native{std::move(region)});
  } catch (const bip::interprocess_exception& e) {
    throw_errno(e.get_native_error() ? e.get_native_error() : EIO, "cannot map", segment);
  }
  validate_image(m->base_, m->size_, segment, instance);
  return m;
}

std::unique_ptr<Mapping> Mapping::create(std::string_view segment, std::uint64_t instance,
                                         std::uint64_t size, std::uint32_t mode, int chown_uid,
                                         int chown_gid) {
  const std::string name = "/" + object_name(segment, instance);
  std::unique_ptr<Mapping> m(new Mapping());
  m->segment_ = std::string(segment);
  m->instance_ = instance;
  m->path_ = object_path(segment, instance);
  m->writable_ = true;
  bool created = false;
  try {
    // O_CREAT | O_EXCL through Boost: a random instance makes a collision
    // astronomically unlikely, and EXCL makes it harmless.
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write,
                                  bip::permissions(mode));
    created = true;
    const int fd = ::dup(shm.get_mapping_handle().handle);
    if (fd < 0) throw_errno(errno, "cannot create", segment);
    m->fd_ = fd;
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    // The umask must not decide who may read the table.
    if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) throw_errno(errno, "cannot chmod", segment);
    if (chown_uid >= 0 &&
        ::fchown(fd, static_cast<uid_t>(chown_uid), static_cast<gid_t>(chown_gid)) != 0)
      throw_errno(errno, "cannot chown", segment);
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
    std::uint64_t got = 0;
    fill_identity(fd, segment, m->dev_, m->ino_, m->owner_, m->mode_, got);
    m->size_ = size;
    bip::mapped_region region(FdMappable{fd}, bip::read_write, 0, static_cast<std::size_t>(size));
    m->base_ = static_cast<std::uint8_t*>(region.get_address());
    m->native_.reset(new Native{std::move(region)});
  } catch (...) {
    // Leave nothing behind; the name is ours alone (random, O_EXCL).
    if (created) ::shm_unlink(name.c_str());
    try {
      throw;
    } catch (const bip::interprocess_exception& e) {
      throw_errno(e.get_native_error() ? e.get_native_error() : EIO, "cannot create", segment);
    }
  }
  return m;
}

void Mapping::unlink_if_ours() const noexcept {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
    ::unlink(path_.c_str());
}

bool Mapping::linked() const noexcept {
  struct stat st {};
  return ::fstat(fd_, &st) == 0 && st.st_nlink > 0;
}

} // namespace healthtable::detail
