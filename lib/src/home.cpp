#include "home.hpp"

#include "segment.hpp"

#include <healthtable/error.hpp>
#include <healthtable/home.hpp>
#include <healthtable/names.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace healthtable {

namespace {
constexpr const char* kPointer = "table";
constexpr const char* kLock = "lock";
constexpr const char* kControl = "control";

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }
std::string octal(unsigned mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}
} // namespace

std::string run_dir() {
  const char* env = std::getenv("HEALTHTABLE_RUN_DIR");
  if (env && *env) return env;
  return "/run/healthtable";
}

std::string home_dir(std::string_view segment) {
  validate_segment_name(segment);
  std::string dir = run_dir();
  dir += '/';
  dir += segment;
  return dir;
}

std::string control_path(std::string_view segment) { return home_dir(segment) + "/" + kControl; }

std::uint32_t parse_user(std::string_view text) {
  if (text.empty()) throw Error(Errc::invalid_argument, "user is empty");
  std::uint32_t uid = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), uid);
  if (ec == std::errc() && end == text.data() + text.size()) return uid;
  const std::string name(text);
  passwd pw{}, *found = nullptr;
  char buf[4096];
  if (::getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &found) != 0 || !found)
    throw Error(Errc::invalid_argument,
                "no user " + quoted(sanitize_reason(text, 64)) + " (give a user name or a uid)");
  return found->pw_uid;
}

std::optional<std::uint32_t> owner_from_env() {
  const char* env = std::getenv("HEALTHTABLE_OWNER");
  if (!env || !*env) return std::nullopt;
  try {
    return parse_user(env);
  } catch (const Error& e) {
    throw Error(Errc::invalid_argument, std::string("HEALTHTABLE_OWNER: ") + e.what());
  }
}

std::string user_of_uid(std::uint32_t uid) {
  passwd pw{}, *found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) return found->pw_name;
  return {};
}

std::string describe_uid(std::uint32_t uid) {
  const std::string user = user_of_uid(uid);
  return "uid " + std::to_string(uid) + (user.empty() ? "" : " (" + user + ")");
}

namespace detail {

void throw_wrong_owner(std::string_view segment, std::string_view path, uid_t found,
                       uid_t expected) {
  throw Error(Errc::wrong_owner,
              "table " + quoted(segment) + ": " + std::string(path) + " belongs to " +
                  describe_uid(found) + ", expected " + describe_uid(expected) +
                  "; if that owner is right, expect it (--owner, HEALTHTABLE_OWNER), if not, "
                  "someone else made it: remove it");
}

std::string not_your_table(std::string_view segment, uid_t owner) {
  return "table " + quoted(segment) + " belongs to " + describe_uid(owner) +
         ", and only its owner writes it (its mode lets others read, never write): run this as "
         "that user, or, while its prober runs, 'healthctl record/set/reset' reach it through "
         "its control socket if its [control] allow_uids or allow_gid admit you";
}

namespace {

[[noreturn]] void untrusted(std::string_view segment, const std::string& path, unsigned mode,
                            const std::string& who) {
  throw Error(Errc::wrong_owner,
              "table " + quoted(segment) + ": " + path + " is writable by " + who + " (mode " +
                  octal(mode) + "), so anyone could plant a table there; make it 0755 (chmod " +
                  "go-w " + path + ")");
}

/// Checks the run directory: only root, we, or the expected owner may own
/// it, and nobody else may write it.
int open_run_dir(std::string_view segment, std::optional<uid_t> expected, bool must_exist) {
  const std::string base = run_dir();
  const int fd = ::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && must_exist)
      throw Error(Errc::no_such_segment, "no health table " + quoted(segment) + " (" + base +
                                             " does not exist); create it with 'healthctl "
                                             "create " +
                                             std::string(segment) + "'");
    if (errno == ENOENT) return -1;
    if (errno == ENOTDIR)
      throw Error(Errc::not_a_table, "run directory " + base + " is not a directory");
    throw_errno(errno, "cannot open run directory " + base + " for", segment);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw_errno(errno, "cannot stat " + base + " for", segment);
  }
  const uid_t me = ::geteuid();
  if (st.st_uid != 0 && st.st_uid != me && (!expected || st.st_uid != *expected)) {
    ::close(fd);
    throw Error(Errc::wrong_owner,
                "table " + quoted(segment) + ": run directory " + base + " belongs to " +
                    describe_uid(st.st_uid) + ", not to root or " + describe_uid(me) +
                    "; set HEALTHTABLE_RUN_DIR to a directory that root or you own");
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    ::close(fd);
    untrusted(segment, base, st.st_mode & 07777,
              (st.st_mode & S_IWOTH) ? "every user" : "its group");
  }
  return fd;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

} // namespace

Home::~Home() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<Home> Home::open(std::string_view segment, std::optional<uid_t> expected) {
  std::unique_ptr<Home> h(new Home());
  h->segment_ = std::string(segment);
  h->dir_ = home_dir(segment);
  if (!expected) expected = owner_from_env();
  Fd base{open_run_dir(segment, expected, true)};
  // O_NOFOLLOW | O_DIRECTORY: a link or anything but a directory fails here
  // at once; O_NONBLOCK keeps a FIFO from holding us even for a moment.
  const int fd = ::openat(base.fd, h->segment_.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw_errno(ENOENT, "cannot open", segment);
    if (errno == ELOOP || errno == ENOTDIR)
      throw Error(Errc::not_a_table, "table " + quoted(segment) + ": " + h->dir_ +
                                         " is not a directory (a link or a file is there); "
                                         "remove it, then create the table");
    throw_errno(errno, "cannot open the home of", segment);
  }
  h->fd_ = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno(errno, "cannot stat the home of", segment);
  h->owner_ = st.st_uid;
  h->group_ = st.st_gid;
  if (expected && st.st_uid != *expected) throw_wrong_owner(segment, h->dir_, st.st_uid, *expected);
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    untrusted(segment, h->dir_, st.st_mode & 07777,
              (st.st_mode & S_IWOTH) ? "every user" : "its group");
  return h;
}

std::unique_ptr<Home> Home::make(std::string_view segment, uid_t uid, gid_t gid) {
  validate_segment_name(segment);
  Fd base{open_run_dir(segment, uid, false)};
  if (base.fd < 0) {
    const std::string dir = run_dir();
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      if (errno == EACCES || errno == EPERM)
        throw Error(Errc::permission_denied,
                    "cannot create run directory " + dir +
                        ": permission denied; as root run 'install -d -m 0755 " + dir +
                        "', or set HEALTHTABLE_RUN_DIR to a directory you own");
      throw_errno(errno, "cannot create run directory " + dir + " for", segment);
    }
    ::chmod(dir.c_str(), 0755); // whatever the umask
    base.fd = open_run_dir(segment, uid, true);
  }
  const std::string name(segment);
  if (::mkdirat(base.fd, name.c_str(), 0755) == 0) {
    const int fd = ::openat(base.fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      ::fchmod(fd, 0755);
      if (uid != ::geteuid() || gid != ::getegid()) {
        if (::fchown(fd, uid, gid) != 0) {
          const int err = errno;
          ::close(fd);
          ::unlinkat(base.fd, name.c_str(), AT_REMOVEDIR);
          throw_errno(err, "cannot give the home to " + describe_uid(uid) + " for", segment);
        }
      }
      ::close(fd);
    }
  } else if (errno == EACCES || errno == EPERM) {
    throw Error(Errc::permission_denied,
                "cannot create the home of table " + quoted(segment) + " in " + run_dir() +
                    ": permission denied; as root run 'healthctl create " + name +
                    " --owner USER' (or give the prober RuntimeDirectory=healthtable/" + name +
                    "), or set HEALTHTABLE_RUN_DIR to a directory you own");
  } else if (errno != EEXIST) {
    throw_errno(errno, "cannot create the home of", segment);
  }
  return open(segment, uid);
}

std::uint64_t Home::current() const {
  char buf[512];
  const ssize_t n = ::readlinkat(fd_, kPointer, buf, sizeof buf - 1);
  if (n < 0) {
    if (errno == ENOENT) return 0;
    if (errno == EINVAL)
      throw Error(Errc::corrupt, "table " + quoted(segment_) + ": " + dir_ + "/" + kPointer +
                                     " is not a link; remove it with 'healthctl destroy " +
                                     segment_ + " --force'");
    throw_errno(errno, "cannot read the pointer of", segment_);
  }
  const std::string_view target(buf, static_cast<std::size_t>(n));
  const std::uint64_t instance = instance_of(segment_, target);
  if (instance == 0)
    throw Error(Errc::corrupt, "table " + quoted(segment_) + ": " + dir_ + "/" + kPointer +
                                   " points at " + sanitize_reason(target, 120) +
                                   ", which is not one of its objects; remove it with "
                                   "'healthctl destroy " +
                                   segment_ + " --force'");
  return instance;
}

void Home::point_at(std::uint64_t instance) const {
  const std::string target = object_path(segment_, instance);
  char tmp[48];
  std::snprintf(tmp, sizeof tmp, "%s.%016llx", kPointer, static_cast<unsigned long long>(instance));
  ::unlinkat(fd_, tmp, 0);
  if (::symlinkat(target.c_str(), fd_, tmp) != 0)
    throw_errno(errno, "cannot point the home at the new object of", segment_);
  // Root making a table for another user: the link is theirs too, like
  // everything else in their home.
  if (owner_ != ::geteuid())
    ::fchownat(fd_, tmp, owner_, static_cast<gid_t>(-1), AT_SYMLINK_NOFOLLOW);
  if (::renameat(fd_, tmp, fd_, kPointer) != 0) {
    const int err = errno;
    ::unlinkat(fd_, tmp, 0);
    throw_errno(err, "cannot point the home at the new object of", segment_);
  }
}

void Home::unpoint(std::uint64_t instance) const noexcept {
  try {
    if (current() == instance) ::unlinkat(fd_, kPointer, 0);
  } catch (...) {
  }
}

int Home::open_lock(bool create) const {
  const int flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (create ? O_CREAT : 0);
  const int fd = ::openat(fd_, kLock, flags, 0600);
  if (fd < 0) {
    if (errno == ENOENT) throw_errno(ENOENT, "cannot open the lock of", segment_);
    throw_errno(errno, "cannot open the writer lock of", segment_);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(Errc::not_a_table, "table " + quoted(segment_) + ": " + dir_ + "/" + kLock +
                                       " is not a regular file; remove it");
  }
  if (st.st_uid != owner_ && ::geteuid() != 0) {
    ::close(fd);
    throw_wrong_owner(segment_, dir_ + "/" + kLock, st.st_uid, owner_);
  }
  if (create) ::fchmod(fd, 0600);
  return fd;
}

bool try_writer_lock(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0; // the whole file: it exists for nothing else
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return true;
  if (errno == EAGAIN || errno == EACCES) return false;
  throw Error(Errc::system_error, std::string("cannot lock table: ") + std::strerror(errno));
}

bool Home::writer_attached() const {
  const int fd = ::openat(fd_, kLock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    const int rc = ::fcntl(fd, F_OFD_GETLK, &fl);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
      throw Error(Errc::system_error,
                  std::string("cannot test the writer lock: ") + std::strerror(err));
    return fl.l_type != F_UNLCK;
  }
  if (errno == ENOENT) return false;
  // Not ours to open (0600): /proc/locks lists every lock by device and
  // inode, readable by anyone, and we need only to know one exists.
  struct stat st {};
  if (::fstatat(fd_, kLock, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  char want[64];
  std::snprintf(want, sizeof want, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string f;
    while (fields >> f)
      if (f == want) return true;
  }
  return false;
}

bool Home::gone() const noexcept {
  struct stat st {};
  return ::fstat(fd_, &st) != 0 || st.st_nlink == 0;
}

void Home::remove_entries() const noexcept {
  ::unlinkat(fd_, kPointer, 0);
  ::unlinkat(fd_, kLock, 0);
  ::unlinkat(fd_, kControl, 0);
  // Leftover links of a writer that died between symlinkat and renameat.
  const int dup = ::dup(fd_);
  if (dup >= 0) {
    if (DIR* d = ::fdopendir(dup)) {
      while (dirent* e = ::readdir(d)) {
        const std::string_view n = e->d_name;
        if (n.starts_with(std::string(kPointer) + ".")) ::unlinkat(fd_, e->d_name, 0);
      }
      ::closedir(d);
    } else {
      ::close(dup);
    }
  }
  const std::string base = run_dir();
  const int b = ::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (b >= 0) {
    ::unlinkat(b, segment_.c_str(), AT_REMOVEDIR); // fails harmlessly if not empty
    ::close(b);
  }
}

} // namespace detail
} // namespace healthtable
