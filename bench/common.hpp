// Shared pieces of the benchmark binaries: segment names that are removed
// on exit, provider names of a chosen length, a read-only mapping of our own
// for the floor, and the lock-guarded tables users would otherwise write.
#pragma once

#include "record.hpp" // lib/src: the latch read, measured as the library runs it

#include <healthtable/clock.hpp>
#include <healthtable/layout.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace htbench {

/// "htbench-<pid>-<tag>": never collides with another run or a test.
std::string segment_name(std::string_view tag);

/// A distinct provider name of exactly `len` bytes (8..63). The number sits
/// at the end, so names share a long prefix and a hit compares every byte.
/// `registered == false` yields a name of the same shape that is never added.
std::string provider_name(std::size_t i, std::size_t len, bool registered = true);

/// A health table created for a benchmark and destroyed with it.
struct BenchTable {
  BenchTable(std::string_view tag, std::uint32_t providers, std::size_t name_len,
             healthtable::Policy policy = {}, std::uint32_t capacity = 0);
  ~BenchTable();
  BenchTable(const BenchTable&) = delete;
  BenchTable& operator=(const BenchTable&) = delete;

  std::string segment;
  std::optional<healthtable::Writer> writer;
  std::vector<std::string> names;   ///< registered, in slot order
  std::vector<std::string> missing; ///< same shape, never registered
};

/// The table's object mapped PROT_READ by us, not by the library: the floor
/// loads SlotHead::word through it, and the latch counter reads slot bodies.
class ReadOnlyMap {
public:
  explicit ReadOnlyMap(const std::string& segment);
  ~ReadOnlyMap();
  ReadOnlyMap(const ReadOnlyMap&) = delete;
  ReadOnlyMap& operator=(const ReadOnlyMap&) = delete;

  const healthtable::SlotBody& body(std::uint32_t i) const noexcept { return bodies_[i]; }
  const std::atomic<std::uint64_t>* word(std::uint32_t i) const noexcept {
    return &heads_[i].word;
  }

private:
  void* base_ = nullptr;
  std::size_t size_ = 0;
  const healthtable::SlotHead* heads_ = nullptr;
  const healthtable::SlotBody* bodies_ = nullptr;
};

/// The library's own latch read (lib/src/record.hpp read_record()), asked
/// for what it does not report in normal use: how many times a read
/// re-copied the record because the writer moved the latch. Returns the
/// number of retries (0: first copy was stable), or -1 if it gave up after
/// the library's limit of kMaxReadAttempts.
using RecordCopy = healthtable::detail::RecordValue;
int read_record_counting(const healthtable::SlotBody& s, RecordCopy& out) noexcept;

// ---------------------------------------------------------------------------
// Baselines: the same records as a plain struct array in shared memory,
// guarded by one lock for the whole table — what a user would write instead.

/// One provider, as a user's struct would hold it.
struct PlainRecord {
  char name[healthtable::kProviderNameMax + 1];
  std::uint32_t name_len;
  bool healthy;
  std::uint8_t override_mode;
  bool has_error;
  std::uint8_t reason_len;
  std::uint32_t consecutive_failures;
  std::int64_t last_check_unix_ns;
  std::int64_t unhealthy_until_unix_ns;
  std::int64_t unhealthy_until_mono_ns;
  std::uint64_t transitions, successes, failures;
  char reason[healthtable::kReasonMax];
};

enum class LockKind { pthread_rwlock, boost_mutex, boost_sharable_mutex };
std::string_view lock_name(LockKind k) noexcept;

/// The table and its lock in one shared-memory object, mapped read-write
/// (a lock-based reader must write the lock word, so it needs write access).
class LockedTable {
public:
  LockedTable(LockKind kind, std::string_view tag, std::uint32_t providers, std::size_t name_len);
  ~LockedTable();
  LockedTable(const LockedTable&) = delete;
  LockedTable& operator=(const LockedTable&) = delete;

  /// The reader's answer: lock (shared where the lock has a shared mode),
  /// read the fields, unlock, then the clock outside the lock if tripped.
  bool is_healthy(std::uint32_t i) const noexcept;
  /// Lock, copy the record, unlock, then build the same ProviderState the
  /// library returns (its allocations are outside the lock).
  healthtable::ProviderState get_state(std::uint32_t i) const;
  /// Only the locked part of get_state(): lock, copy, unlock.
  void copy_record(std::uint32_t i, PlainRecord& out) const noexcept;
  /// Exclusive lock, then the breaker's failure / success update.
  void mark_unhealthy(std::uint32_t i, std::string_view reason, std::int64_t backoff_ns);
  void mark_healthy(std::uint32_t i);

  LockKind kind() const noexcept { return kind_; }

private:
  struct Shared;
  PlainRecord* records() const noexcept;
  void lock_shared() const noexcept;
  void unlock_shared() const noexcept;
  void lock() const noexcept;
  void unlock() const noexcept;

  LockKind kind_;
  std::string segment_;
  Shared* shared_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace htbench
