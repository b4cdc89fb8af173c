// The C ABI (healthtable.h) over the C++ API: every function catches
// everything, so no exception crosses into C, and leaves the exception's
// one-line message in a thread-local buffer.
#include <healthtable/error.hpp>
#include <healthtable/healthtable.h>
#include <healthtable/names.hpp>
#include <healthtable/report.hpp>
#include <healthtable/table.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

// Set by lib/sources.cmake from project(); python/setup.py, which builds
// these sources into the extension without CMake (and without using the C
// ABI), does not set it.
#ifndef HEALTHTABLE_VERSION_STRING
#define HEALTHTABLE_VERSION_STRING "unknown"
#endif

namespace ht = healthtable;

struct healthtable_table {
  ht::Table table;
};

struct healthtable_reporter {
  ht::Reporter reporter;
};

namespace {

// The C enums are the C++ ones, value for value.
static_assert(HEALTHTABLE_E_NO_SUCH_SEGMENT == static_cast<int>(ht::Errc::no_such_segment));
static_assert(HEALTHTABLE_E_NOT_A_TABLE == static_cast<int>(ht::Errc::not_a_table));
static_assert(HEALTHTABLE_E_INCOMPATIBLE_LAYOUT == static_cast<int>(ht::Errc::incompatible_layout));
static_assert(HEALTHTABLE_E_NOT_READY == static_cast<int>(ht::Errc::not_ready));
static_assert(HEALTHTABLE_E_PERMISSION_DENIED == static_cast<int>(ht::Errc::permission_denied));
static_assert(HEALTHTABLE_E_TABLE_FULL == static_cast<int>(ht::Errc::table_full));
static_assert(HEALTHTABLE_E_INVALID_NAME == static_cast<int>(ht::Errc::invalid_name));
static_assert(HEALTHTABLE_E_ALREADY_EXISTS == static_cast<int>(ht::Errc::already_exists));
static_assert(HEALTHTABLE_E_WRITER_BUSY == static_cast<int>(ht::Errc::writer_busy));
static_assert(HEALTHTABLE_E_CORRUPT == static_cast<int>(ht::Errc::corrupt));
static_assert(HEALTHTABLE_E_NO_SPACE == static_cast<int>(ht::Errc::no_space));
static_assert(HEALTHTABLE_E_UNKNOWN_PROVIDER == static_cast<int>(ht::Errc::unknown_provider));
static_assert(HEALTHTABLE_E_INVALID_ARGUMENT == static_cast<int>(ht::Errc::invalid_argument));
static_assert(HEALTHTABLE_E_SYSTEM_ERROR == static_cast<int>(ht::Errc::system_error));
static_assert(HEALTHTABLE_E_WRONG_OWNER == static_cast<int>(ht::Errc::wrong_owner));
static_assert(HEALTHTABLE_OVERRIDE_DOWN == static_cast<int>(ht::Override::forced_down));
static_assert(HEALTHTABLE_OVERRIDE_UP == static_cast<int>(ht::Override::forced_up));
static_assert(HEALTHTABLE_CLASS_OTHER == static_cast<int>(ht::FailureClass::other));
static_assert(HEALTHTABLE_CLASS_RATE_LIMITED == static_cast<int>(ht::FailureClass::rate_limited));
static_assert(HEALTHTABLE_FAILURE_CLASSES == ht::kFailureClasses);
static_assert(HEALTHTABLE_SOURCE_PEER == static_cast<int>(ht::Source::peer));
static_assert(HEALTHTABLE_PICK_NONE == static_cast<int>(ht::PickPolicy::none));
static_assert(HEALTHTABLE_PICK_REASON_EMPTY == static_cast<int>(ht::PickReason::empty));
static_assert(HEALTHTABLE_PICK_REASON_FORCED_DOWN == static_cast<int>(ht::PickReason::forced_down));
static_assert(HEALTHTABLE_PROVIDER_NAME_MAX == ht::kProviderNameMax);
static_assert(HEALTHTABLE_REASON_MAX == ht::kReasonMax);
static_assert(HEALTHTABLE_NOTE_MAX == ht::kNoteMax);
static_assert(HEALTHTABLE_USER_MAX == ht::kUserMax);

// A C handle is a C++ Handle's bits: one pointer to the Table's cell.
static_assert(sizeof(healthtable_handle_t) == sizeof(ht::Handle));
static_assert(std::is_trivially_copyable_v<ht::Handle>);

ht::Handle to_cpp(healthtable_handle_t h) noexcept { return std::bit_cast<ht::Handle>(h); }
healthtable_handle_t to_c(ht::Handle h) noexcept { return std::bit_cast<healthtable_handle_t>(h); }

// The last failure on this thread. A fixed buffer: recording an error
// must not itself allocate (or throw).
thread_local char t_message[1024];
thread_local healthtable_err_t t_code = HEALTHTABLE_OK;

healthtable_err_t fail(healthtable_err_t code, std::string_view message) noexcept {
  const std::size_t n = std::min(message.size(), sizeof t_message - 1);
  std::memcpy(t_message, message.data(), n);
  t_message[n] = '\0';
  t_code = code;
  return code;
}

/// Runs `body`, turning whatever it throws into a code and a message.
template <class F> healthtable_err_t guarded(F&& body) noexcept {
  try {
    body();
    return HEALTHTABLE_OK;
  } catch (const ht::Error& e) {
    return fail(static_cast<healthtable_err_t>(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(HEALTHTABLE_E_NO_MEMORY, "out of memory; free memory or raise the limit");
  } catch (const std::exception& e) {
    char buf[sizeof t_message];
    std::snprintf(buf, sizeof buf, "unexpected error (a bug, please report it): %s", e.what());
    return fail(HEALTHTABLE_E_INTERNAL, buf);
  } catch (...) {
    return fail(HEALTHTABLE_E_INTERNAL,
                "unexpected error of unknown type (a bug, please report it)");
  }
}

healthtable_err_t null_argument(const char* what) noexcept {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s is NULL; pass a valid pointer", what);
  return fail(HEALTHTABLE_E_INVALID_ARGUMENT, buf);
}

/// Copies `s` into `dst[cap]`, NUL-terminated, cutting on a UTF-8
/// boundary; true when it had to cut.
bool copy_string(char* dst, std::size_t cap, std::string_view s) noexcept {
  std::size_t n = s.size();
  bool cut = false;
  if (n >= cap) {
    n = cap - 1;
    // back up to the start of a code point (never leave a partial one)
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
      --n;
    cut = true;
  }
  std::memcpy(dst, s.data(), n);
  std::memset(dst + n, 0, cap - n);
  return cut;
}

template <std::size_t N> bool copy_string(char (&dst)[N], std::string_view s) noexcept {
  return copy_string(dst, N, s);
}

/// The prefix of healthtable_state_t every version has.
constexpr std::size_t kStateMinSize =
    offsetof(healthtable_state_t, name) + HEALTHTABLE_PROVIDER_NAME_MAX + 1;

void fill_state(const ht::ProviderState& st, healthtable_state_t& out) noexcept {
  std::uint32_t flags = 0;
  if (st.registered) flags |= HEALTHTABLE_STATE_REGISTERED;
  if (st.healthy) flags |= HEALTHTABLE_STATE_HEALTHY;
  if (st.available(ht::Instant::now().mono_ns)) flags |= HEALTHTABLE_STATE_AVAILABLE;
  bool cut = copy_string(out.name, st.name);
  if (st.last_error) {
    flags |= HEALTHTABLE_STATE_HAS_LAST_ERROR;
    cut |= copy_string(out.last_error, *st.last_error);
  } else {
    copy_string(out.last_error, "");
  }
  out.consecutive_failures = st.consecutive_failures;
  out.last_check_unix_ns = st.last_check_unix_ns;
  out.unhealthy_until_unix_ns = st.unhealthy_until_unix_ns;
  out.unhealthy_until_mono_ns = st.unhealthy_until_mono_ns;
  out.transitions = st.transitions;
  out.successes = st.successes;
  out.failures = st.failures;
  out.slot = st.slot;
  out.generation = st.generation;
  out.last_class = static_cast<std::int32_t>(st.last_class);
  out.last_source = static_cast<std::int32_t>(st.last_source);
  out.trips = st.trips;
  out.success_run = st.success_run;
  out.window_ns = st.window_ns;
  out.ramp_ns = st.ramp_ns;
  for (std::size_t i = 0; i < ht::kFailureClasses; ++i)
    out.class_failures[i] = st.class_failures[i];
  const ht::OverrideInfo& o = st.override_info;
  out.override_mode = static_cast<std::int32_t>(st.override_mode);
  out.override_uid = o.uid.value_or(0);
  if (o.uid) flags |= HEALTHTABLE_STATE_HAS_OVERRIDE_UID;
  out.override_set_unix_ns = o.set_unix_ns;
  out.override_until_unix_ns = o.until_unix_ns;
  out.override_until_mono_ns = o.until_mono_ns;
  cut |= copy_string(out.override_user, o.user);
  cut |= copy_string(out.override_reason, o.reason);
  if (cut) flags |= HEALTHTABLE_STATE_TRUNCATED;
  out.flags = flags;
  out.version = HEALTHTABLE_STATE_VERSION;
}

/// Writes the whole record, but only the `out->size` bytes the caller's
/// struct has.
healthtable_err_t deliver_state(const ht::ProviderState& st, healthtable_state_t* out) noexcept {
  healthtable_state_t full{};
  fill_state(st, full);
  const std::uint32_t size = out->size;
  full.size = static_cast<std::uint32_t>(std::min<std::size_t>(size, sizeof full));
  std::memcpy(out, &full, full.size);
  return HEALTHTABLE_OK;
}

healthtable_err_t check_state_out(healthtable_state_t* out) noexcept {
  if (!out) return null_argument("the state pointer");
  if (out->size < kStateMinSize) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "healthtable_state_t.size is %u, less than %zu; set it to "
                  "sizeof(healthtable_state_t) before the call",
                  out->size, kStateMinSize);
    return fail(HEALTHTABLE_E_INVALID_ARGUMENT, buf);
  }
  return HEALTHTABLE_OK;
}

void fill_pick(const ht::Pick& p, healthtable_pick_t* out) noexcept {
  if (!out) return;
  out->index = p.index ? static_cast<std::int64_t>(*p.index) : -1;
  out->reason = static_cast<std::int32_t>(p.reason);
  out->available = p.available;
  out->panic = p.panic;
  out->has_retry_at = p.retry_at.has_value();
  out->retry_at_unix_ns = p.retry_at ? p.retry_at->unix_ns : 0;
  out->retry_at_mono_ns = p.retry_at ? p.retry_at->mono_ns : 0;
}

int pick_error(healthtable_err_t code, healthtable_pick_t* out) noexcept {
  if (out) *out = healthtable_pick_t{-1, HEALTHTABLE_PICK_REASON_EMPTY, false, false, false, 0, 0};
  return -static_cast<int>(code);
}

} // namespace

extern "C" {

const char* healthtable_strerror(int code) {
  switch (code) {
  case HEALTHTABLE_OK: return "success";
  case HEALTHTABLE_E_NO_SUCH_SEGMENT: return "the table does not exist";
  case HEALTHTABLE_E_NOT_A_TABLE: return "the object is not a health table";
  case HEALTHTABLE_E_INCOMPATIBLE_LAYOUT: return "the table has another layout version";
  case HEALTHTABLE_E_NOT_READY: return "the table is still being created";
  case HEALTHTABLE_E_PERMISSION_DENIED: return "permission denied";
  case HEALTHTABLE_E_TABLE_FULL: return "every slot of the table is registered";
  case HEALTHTABLE_E_INVALID_NAME: return "a table or provider name that is not allowed";
  case HEALTHTABLE_E_ALREADY_EXISTS: return "the table already exists";
  case HEALTHTABLE_E_WRITER_BUSY: return "another process holds the writer lock";
  case HEALTHTABLE_E_CORRUPT: return "the table's header does not add up";
  case HEALTHTABLE_E_NO_SPACE: return "no space left for the table";
  case HEALTHTABLE_E_UNKNOWN_PROVIDER: return "the table does not have that provider";
  case HEALTHTABLE_E_INVALID_ARGUMENT: return "invalid argument";
  case HEALTHTABLE_E_SYSTEM_ERROR: return "a system call failed";
  case HEALTHTABLE_E_WRONG_OWNER: return "the table belongs to another user than expected";
  case HEALTHTABLE_E_NO_MEMORY: return "out of memory";
  case HEALTHTABLE_E_INTERNAL: return "internal error";
  }
  return "unknown error code";
}

const char* healthtable_errname(int code) {
  switch (code) {
  case HEALTHTABLE_OK: return "ok";
  case HEALTHTABLE_E_NO_MEMORY: return "no_memory";
  case HEALTHTABLE_E_INTERNAL: return "internal";
  default: break;
  }
  // errc_name()'s views are of string literals: NUL-terminated.
  return ht::errc_name(static_cast<ht::Errc>(code)).data();
}

const char* healthtable_last_error(void) { return t_message; }
healthtable_err_t healthtable_last_errc(void) { return t_code; }

const char* healthtable_version(void) { return HEALTHTABLE_VERSION_STRING; }

healthtable_err_t healthtable_open(const char* name, healthtable_t** out) {
  if (!out) return null_argument("the output pointer");
  *out = nullptr;
  if (!name) return null_argument("the table name");
  return guarded([&] { *out = new healthtable_table{ht::Table::open(name)}; });
}

void healthtable_close(healthtable_t* table) { delete table; }

const char* healthtable_name(const healthtable_t* table) {
  return table ? table->table.segment().c_str() : "";
}

healthtable_err_t healthtable_handle(const healthtable_t* table, const char* provider,
                                     healthtable_handle_t* out) {
  if (!out) return null_argument("the output handle pointer");
  *out = healthtable_handle_t{nullptr};
  if (!table) return null_argument("the table");
  if (!provider) return null_argument("the provider name");
  return guarded([&] { *out = to_c(table->table.handle(provider)); });
}

const char* healthtable_handle_name(healthtable_handle_t handle) {
  // Handle::name() views the cell's std::string: NUL-terminated.
  return handle.cell_ ? to_cpp(handle).name().data() : "";
}

bool healthtable_is_healthy(const healthtable_t* table, healthtable_handle_t handle) {
  if (!handle.cell_) [[unlikely]]
    return false;
  return table->table.is_healthy(to_cpp(handle));
}

bool healthtable_is_healthy_name(const healthtable_t* table, const char* provider) {
  if (!table) return false;
  return table->table.is_healthy(std::string_view(provider ? provider : ""));
}

healthtable_err_t healthtable_get_state(const healthtable_t* table, healthtable_handle_t handle,
                                        healthtable_state_t* out) {
  if (const auto rc = check_state_out(out)) return rc;
  if (!table) return null_argument("the table");
  if (!handle.cell_)
    return fail(HEALTHTABLE_E_INVALID_ARGUMENT,
                "the handle is HEALTHTABLE_HANDLE_NONE; take one with healthtable_handle()");
  return guarded([&] {
    // One record per thread, reused: no allocation once warm.
    thread_local ht::ProviderState st;
    table->table.get_state(to_cpp(handle), st);
    deliver_state(st, out);
  });
}

healthtable_err_t healthtable_get_state_name(const healthtable_t* table, const char* provider,
                                             healthtable_state_t* out) {
  if (const auto rc = check_state_out(out)) return rc;
  if (!table) return null_argument("the table");
  if (!provider) return null_argument("the provider name");
  return guarded([&] {
    ht::validate_provider_name(provider);
    auto st = table->table.get_state(provider);
    if (!st) {
      st.emplace();
      st->name = provider;
    }
    deliver_state(*st, out);
  });
}

int healthtable_pick(const healthtable_t* table, const healthtable_handle_t* chain, size_t n,
                     int policy, healthtable_pick_t* out) {
  if (!table) return pick_error(null_argument("the table"), out);
  if (!chain && n > 0) return pick_error(null_argument("the chain"), out);
  if (policy != HEALTHTABLE_PICK_PANIC && policy != HEALTHTABLE_PICK_NONE) {
    char buf[128];
    std::snprintf(buf, sizeof buf,
                  "pick policy %d is not HEALTHTABLE_PICK_PANIC (0) or HEALTHTABLE_PICK_NONE (1)",
                  policy);
    return pick_error(fail(HEALTHTABLE_E_INVALID_ARGUMENT, buf), out);
  }
  const auto pol = static_cast<ht::PickPolicy>(policy);
  // C++ Handles from the C ones: a copy (the caller's array holds C
  // objects), on the stack for any chain a router would configure.
  constexpr std::size_t kStack = 16;
  alignas(ht::Handle) unsigned char stack[kStack * sizeof(ht::Handle)];
  std::vector<ht::Handle> heap;
  ht::Handle* handles = reinterpret_cast<ht::Handle*>(stack);
  if (n > kStack) {
    try {
      heap.reserve(n);
    } catch (const std::bad_alloc&) {
      return pick_error(fail(HEALTHTABLE_E_NO_MEMORY, "out of memory for a pick chain"), out);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!chain[i].cell_) [[unlikely]] {
      char buf[128];
      std::snprintf(buf, sizeof buf,
                    "chain[%zu] is HEALTHTABLE_HANDLE_NONE; take it with healthtable_handle()", i);
      return pick_error(fail(HEALTHTABLE_E_INVALID_ARGUMENT, buf), out);
    }
    if (n > kStack)
      heap.push_back(to_cpp(chain[i]));
    else
      new (handles + i) ht::Handle(to_cpp(chain[i]));
  }
  if (n > kStack) handles = heap.data();
  const ht::Pick p = table->table.pick(std::span<const ht::Handle>(handles, n), pol);
  fill_pick(p, out);
  return p.index ? static_cast<int>(*p.index) : -1;
}

const char* healthtable_pick_reason_name(int reason) {
  if (reason < HEALTHTABLE_PICK_REASON_AVAILABLE || reason > HEALTHTABLE_PICK_REASON_EMPTY)
    return "unknown";
  return ht::pick_reason_name(static_cast<ht::PickReason>(reason)).data();
}

healthtable_err_t healthtable_reporter_open(const char* name, healthtable_reporter_t** out) {
  if (!out) return null_argument("the output pointer");
  *out = nullptr;
  if (!name) return null_argument("the table name");
  return guarded([&] { *out = new healthtable_reporter{ht::Reporter(name)}; });
}

void healthtable_reporter_close(healthtable_reporter_t* reporter) { delete reporter; }

bool healthtable_report_success(healthtable_reporter_t* reporter, const char* provider) {
  if (!reporter || !provider) return false;
  return reporter->reporter.success(provider);
}

bool healthtable_report_failure(healthtable_reporter_t* reporter, const char* provider,
                                const char* reason, int cls, int64_t retry_after_ns) {
  if (!reporter || !provider) return false;
  if (cls <= HEALTHTABLE_CLASS_NONE || cls > HEALTHTABLE_CLASS_OTHER) return false;
  std::optional<std::chrono::nanoseconds> hint;
  if (retry_after_ns >= 0) hint = std::chrono::nanoseconds(retry_after_ns);
  return reporter->reporter.failure(provider, reason ? reason : "",
                                    static_cast<ht::FailureClass>(cls), hint);
}

} // extern "C"
