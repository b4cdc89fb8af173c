// Errors: one exception type with a code that tools map to exit codes.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace healthtable {

/// What went wrong. healthctl's exit code for each is given beside it and in
/// docs/cli.md; the values are stable.
enum class Errc {
  no_such_segment = 3,     ///< the shared-memory object does not exist
  not_a_table = 4,         ///< the object exists but is not a health table (foreign magic)
  incompatible_layout = 5, ///< a health table of another layout version or build
  not_ready = 6,           ///< still being created (or abandoned mid-creation)
  permission_denied = 7,   ///< the OS refused the open or the operation
  table_full = 8,          ///< every slot is registered
  invalid_name = 9,        ///< a segment or provider name that is not allowed
  already_exists = 10,     ///< create on an existing segment without --force
  writer_busy = 11,        ///< another process holds the writer lock
  corrupt = 12,            ///< sizes or offsets in the header do not add up
  no_space = 13,           ///< /dev/shm (or its tmpfs) is full
  unknown_provider = 14,   ///< a write names a provider the table does not have
  invalid_argument = 15,   ///< a bad option value (threshold, backoff, mode, ...)
  system_error = 16,       ///< any other failed system call
  wrong_owner = 17,        ///< the table or its home belongs to another uid than expected
};

/// Short stable identifier for an Errc ("no_such_segment", ...), used in JSON.
std::string_view errc_name(Errc code) noexcept;

/// Every failure the library reports. what() is one line: what happened and
/// what to do about it.
class Error : public std::runtime_error {
public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

private:
  Errc code_;
};

} // namespace healthtable
