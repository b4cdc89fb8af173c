/* healthtable's C ABI: read a health table and report outcomes to its
 * prober from C, or from anything with a C FFI (LuaJIT, ctypes, cgo).
 *
 *   healthtable_t *t;
 *   if (healthtable_open("gateway", &t) != HEALTHTABLE_OK) {
 *     fprintf(stderr, "%s\n", healthtable_last_error());
 *     return 1;
 *   }
 *   healthtable_handle_t groq;
 *   healthtable_handle(t, "groq", &groq);          -- once, at start-up
 *   if (healthtable_is_healthy(t, groq)) ...       -- per request: one load
 *   healthtable_close(t);
 *
 * The same library as the C++ API (libhealthtable.so.0), the same rules:
 * a handle is taken once and follows its provider across re-registration
 * and across the table's recreation, growth or replacement; the read
 * functions take no lock, make no system call and write nothing shared
 * when the provider is healthy. No C++ exception crosses this ABI: a
 * failing call returns a healthtable_err_t and leaves a one-line message
 * (what happened, what to do) in healthtable_last_error().
 *
 * ABI policy (docs/c-api.md): the healthtable_* symbols below are the
 * library's stable C ABI for SONAME libhealthtable.so.0. Within it
 * functions and enum values are only added, never changed or removed;
 * structs grow only at their end, behind their `size` field.
 *
 * C11 or later (or C++); needs <stdbool.h>, <stddef.h> and <stdint.h>. */
#ifndef HEALTHTABLE_HEALTHTABLE_H
#define HEALTHTABLE_HEALTHTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HEALTHTABLE_API __attribute__((visibility("default")))
#else
#define HEALTHTABLE_API
#endif

/* The SONAME's number: a change of it is an ABI break. */
#define HEALTHTABLE_ABI_VERSION 0

/* Longest provider name, failure reason, override reason and user name in
 * bytes (without the NUL), as the table stores them. */
#define HEALTHTABLE_PROVIDER_NAME_MAX 63
#define HEALTHTABLE_REASON_MAX 120
#define HEALTHTABLE_NOTE_MAX 64
#define HEALTHTABLE_USER_MAX 32
#define HEALTHTABLE_FAILURE_CLASSES 8

/* ---- Errors ------------------------------------------------------------ */

/* What went wrong. The values are healthctl's exit codes (docs/cli.md) and
 * those of healthtable::Errc; they never change. */
typedef enum healthtable_err {
  HEALTHTABLE_OK = 0,
  HEALTHTABLE_E_NO_SUCH_SEGMENT = 3,     /* the table does not exist */
  HEALTHTABLE_E_NOT_A_TABLE = 4,         /* the object is not a health table */
  HEALTHTABLE_E_INCOMPATIBLE_LAYOUT = 5, /* a table of another layout version */
  HEALTHTABLE_E_NOT_READY = 6,           /* still being created */
  HEALTHTABLE_E_PERMISSION_DENIED = 7,   /* the OS refused the open */
  HEALTHTABLE_E_TABLE_FULL = 8,
  HEALTHTABLE_E_INVALID_NAME = 9, /* a table or provider name that is not allowed */
  HEALTHTABLE_E_ALREADY_EXISTS = 10,
  HEALTHTABLE_E_WRITER_BUSY = 11,
  HEALTHTABLE_E_CORRUPT = 12, /* sizes or offsets in the header do not add up */
  HEALTHTABLE_E_NO_SPACE = 13,
  HEALTHTABLE_E_UNKNOWN_PROVIDER = 14,
  HEALTHTABLE_E_INVALID_ARGUMENT = 15, /* a NULL pointer, a bad size or value */
  HEALTHTABLE_E_SYSTEM_ERROR = 16,     /* any other failed system call */
  HEALTHTABLE_E_WRONG_OWNER = 17,      /* the table belongs to another uid */
  /* C ABI only: */
  HEALTHTABLE_E_NO_MEMORY = 100, /* an allocation failed */
  HEALTHTABLE_E_INTERNAL = 101   /* a failure the library did not expect (a bug) */
} healthtable_err_t;

/* A short, stable description of a code ("the table does not exist"), for
 * any value; never NULL. Static storage. */
HEALTHTABLE_API const char* healthtable_strerror(int code);
/* Its stable identifier ("no_such_segment"), as JSON output uses it. */
HEALTHTABLE_API const char* healthtable_errname(int code);
/* The one-line message of the last call that failed on this thread (the
 * same text as the C++ API's exception), "" if none has. Like errno: a call
 * that succeeds leaves it alone. Valid until the next failing call on this
 * thread. */
HEALTHTABLE_API const char* healthtable_last_error(void);
/* The code of that call (HEALTHTABLE_OK if none has failed). */
HEALTHTABLE_API healthtable_err_t healthtable_last_errc(void);

/* The library's version, "MAJOR.MINOR.PATCH". */
HEALTHTABLE_API const char* healthtable_version(void);

/* ---- Tables and handles ------------------------------------------------ */

/* A read-only view of one table (healthtable::Table). Safe to share
 * between threads; not across fork() into a child that outlives the parent's
 * mapping — open it in each worker. */
typedef struct healthtable_table healthtable_t;

/* A provider, taken once with healthtable_handle(). Copy it freely; it is
 * valid until healthtable_close() of the table it came from. A zeroed one
 * (HEALTHTABLE_HANDLE_NONE, what a failed healthtable_handle() leaves) names
 * nothing and is never available. */
typedef struct healthtable_handle_s {
  const struct healthtable_cell_* cell_; /* opaque */
} healthtable_handle_t;
#define HEALTHTABLE_HANDLE_NONE                                                                    \
  { 0 }

/* Opens the table NAME read-only (its owner checked as in docs/home.md;
 * $HEALTHTABLE_RUN_DIR and $HEALTHTABLE_OWNER apply). On success *out is
 * the table; on failure *out is NULL. Errors: NO_SUCH_SEGMENT,
 * PERMISSION_DENIED, WRONG_OWNER, NOT_READY, NOT_A_TABLE,
 * INCOMPATIBLE_LAYOUT, CORRUPT, INVALID_NAME, INVALID_ARGUMENT (NULL). */
HEALTHTABLE_API healthtable_err_t healthtable_open(const char* name, healthtable_t** out);
/* Unmaps the table and frees its handles. NULL is allowed. */
HEALTHTABLE_API void healthtable_close(healthtable_t* table);
/* The name it was opened by (static for the table's life). */
HEALTHTABLE_API const char* healthtable_name(const healthtable_t* table);

/* The handle of PROVIDER, registered or not (an unknown provider is
 * healthy until it registers); the same name gives the same handle. Takes
 * a process-private lock: call it at start-up, not per request. Errors:
 * INVALID_NAME, INVALID_ARGUMENT (NULL), NO_MEMORY. */
HEALTHTABLE_API healthtable_err_t healthtable_handle(const healthtable_t* table,
                                                     const char* provider,
                                                     healthtable_handle_t* out);
/* The provider's name ("" for HEALTHTABLE_HANDLE_NONE). */
HEALTHTABLE_API const char* healthtable_handle_name(healthtable_handle_t handle);

/* The hot path: whether to route to the provider now. Two loads from the
 * handle and one acquire load from the table; a clock read only when it is
 * tripped or half-open. false for HEALTHTABLE_HANDLE_NONE. `table` must be
 * the table the handle came from. */
HEALTHTABLE_API bool healthtable_is_healthy(const healthtable_t* table,
                                            healthtable_handle_t handle);
/* The same by name: an index probe, no lock, no allocation. true for a
 * provider the table does not have (and for a name no provider can have). */
HEALTHTABLE_API bool healthtable_is_healthy_name(const healthtable_t* table, const char* provider);

/* ---- State ------------------------------------------------------------- */

typedef enum healthtable_override {
  HEALTHTABLE_OVERRIDE_AUTO = 0, /* the circuit breaker decides */
  HEALTHTABLE_OVERRIDE_DOWN = 1, /* forced down */
  HEALTHTABLE_OVERRIDE_UP = 2    /* forced up */
} healthtable_override_t;

typedef enum healthtable_class {
  HEALTHTABLE_CLASS_NONE = 0, /* a success */
  HEALTHTABLE_CLASS_TIMEOUT = 1,
  HEALTHTABLE_CLASS_CONNECT = 2,
  HEALTHTABLE_CLASS_SERVER = 3,       /* 5xx */
  HEALTHTABLE_CLASS_RATE_LIMITED = 4, /* 429 */
  HEALTHTABLE_CLASS_AUTH = 5,         /* 401, 403 */
  HEALTHTABLE_CLASS_CLIENT = 6,       /* other 4xx */
  HEALTHTABLE_CLASS_OTHER = 7
} healthtable_class_t;

typedef enum healthtable_source {
  HEALTHTABLE_SOURCE_PROBE = 0,
  HEALTHTABLE_SOURCE_REPORT = 1,
  HEALTHTABLE_SOURCE_ADMIN = 2,
  HEALTHTABLE_SOURCE_PEER = 3
} healthtable_source_t;

#define HEALTHTABLE_STATE_VERSION 1
/* healthtable_state_t.flags */
#define HEALTHTABLE_STATE_REGISTERED 0x1u /* the table has the provider */
#define HEALTHTABLE_STATE_HEALTHY 0x2u    /* the breaker's flag (false from trip to success) */
#define HEALTHTABLE_STATE_AVAILABLE 0x4u  /* what is_healthy() answers now */
#define HEALTHTABLE_STATE_HAS_LAST_ERROR 0x8u
#define HEALTHTABLE_STATE_HAS_OVERRIDE_UID 0x10u
#define HEALTHTABLE_STATE_TRUNCATED 0x20u /* a string did not fit its buffer */

/* One provider's record (healthtable::ProviderState), one consistent copy.
 * Set `size` to sizeof(healthtable_state_t) before the call: the library
 * fills what fits in `size` bytes (so a program built against an older,
 * shorter struct keeps working) and sets `version`. Enums are stored as
 * int32_t so the layout does not depend on the compiler's enum size. The
 * buffers are sized to the table's maxima, so nothing is cut today; a
 * string that ever does not fit is cut on a UTF-8 boundary, NUL-terminated,
 * and HEALTHTABLE_STATE_TRUNCATED is set. Times are nanoseconds: *_unix_ns
 * since the epoch, *_mono_ns on this process's CLOCK_MONOTONIC; 0 = never
 * or none. */
typedef struct healthtable_state {
  uint32_t size;    /* in: sizeof(healthtable_state_t) */
  uint32_t version; /* out: HEALTHTABLE_STATE_VERSION */
  uint32_t flags;   /* HEALTHTABLE_STATE_* */
  uint32_t consecutive_failures;
  char name[HEALTHTABLE_PROVIDER_NAME_MAX + 1];
  char last_error[HEALTHTABLE_REASON_MAX + 1]; /* "" unless HAS_LAST_ERROR */
  int64_t last_check_unix_ns;
  int64_t unhealthy_until_unix_ns;
  int64_t unhealthy_until_mono_ns;
  uint64_t transitions; /* healthy<->unhealthy flips */
  uint64_t successes;
  uint64_t failures;
  uint32_t slot;
  uint32_t generation; /* the registration; a reused slot gets a new one */
  int32_t last_class;  /* healthtable_class_t */
  int32_t last_source; /* healthtable_source_t */
  uint32_t trips;      /* trips in a row */
  uint32_t success_run;
  int64_t window_ns; /* length of the current window */
  int64_t ramp_ns;   /* slow start after a window */
  uint64_t class_failures[HEALTHTABLE_FAILURE_CLASSES];
  /* The override. */
  int32_t override_mode; /* healthtable_override_t */
  uint32_t override_uid; /* valid with HAS_OVERRIDE_UID */
  int64_t override_set_unix_ns;
  int64_t override_until_unix_ns; /* 0: no expiry */
  int64_t override_until_mono_ns;
  char override_user[HEALTHTABLE_USER_MAX + 1];
  char override_reason[HEALTHTABLE_NOTE_MAX + 1];
} healthtable_state_t;

/* A copy of the handle's record into *out (flags without REGISTERED and
 * the rest zero for a provider the table does not have). Reads only; no
 * allocation once warm. Errors: INVALID_ARGUMENT (NULL, a zero handle, or
 * `size` smaller than the fields up to `name`), NO_MEMORY. */
HEALTHTABLE_API healthtable_err_t healthtable_get_state(const healthtable_t* table,
                                                        healthtable_handle_t handle,
                                                        healthtable_state_t* out);
/* The same by name, without taking a handle. */
HEALTHTABLE_API healthtable_err_t healthtable_get_state_name(const healthtable_t* table,
                                                             const char* provider,
                                                             healthtable_state_t* out);

/* ---- Choosing from a chain --------------------------------------------- */

/* What healthtable_pick() does when no provider of the chain is available. */
typedef enum healthtable_pick_policy {
  /* Route anyway, to the provider whose window ends first (flagged panic);
   * one forced down with no expiry is never chosen. */
  HEALTHTABLE_PICK_PANIC = 0,
  /* Route nowhere (index -1), and say when to retry. */
  HEALTHTABLE_PICK_NONE = 1
} healthtable_pick_policy_t;

typedef enum healthtable_pick_reason {
  HEALTHTABLE_PICK_REASON_AVAILABLE = 0,   /* the first provider available now */
  HEALTHTABLE_PICK_REASON_PANIC = 1,       /* none was; the one whose window ends first */
  HEALTHTABLE_PICK_REASON_NONE = 2,        /* none was, and the policy is NONE */
  HEALTHTABLE_PICK_REASON_FORCED_DOWN = 3, /* every one forced down with no expiry */
  HEALTHTABLE_PICK_REASON_EMPTY = 4        /* the chain is empty */
} healthtable_pick_reason_t;

/* The answer of healthtable_pick() (healthtable::Pick). Fixed for ABI 0. */
typedef struct healthtable_pick_s {
  int64_t index;  /* into the chain; -1: route nowhere */
  int32_t reason; /* healthtable_pick_reason_t */
  bool available; /* `index` is available now */
  bool panic;     /* none was available; `index` is the panic choice */
  bool has_retry_at;
  /* With has_retry_at: when a provider of the chain becomes available to
   * this process, on both clocks. */
  int64_t retry_at_unix_ns;
  int64_t retry_at_mono_ns;
} healthtable_pick_t;

/* The first provider of CHAIN (N handles, in order of preference) that
 * is_healthy() would route to now, and when none is, what POLICY says.
 * Returns the index (0..N-1), -1 to route nowhere, or a negated
 * healthtable_err_t (-HEALTHTABLE_E_INVALID_ARGUMENT for a NULL table, a
 * NULL chain with N > 0, a zero handle, a bad policy; -NO_MEMORY). OUT may
 * be NULL; otherwise it is filled with the whole answer (index -1 on an
 * error). When the first provider is available this costs what
 * is_healthy() does; no lock, no syscall, no shared write. */
HEALTHTABLE_API int healthtable_pick(const healthtable_t* table, const healthtable_handle_t* chain,
                                     size_t n, int policy, healthtable_pick_t* out);
/* A short name of a reason ("available", "panic", ...); never NULL. */
HEALTHTABLE_API const char* healthtable_pick_reason_name(int reason);

/* ---- Reporting outcomes to the prober ---------------------------------- */

/* Tells the table's prober (healthprobe) the outcomes a worker sees,
 * over its control socket (healthtable::Reporter): each report is one
 * non-blocking datagram, so it never blocks, and it is a system call, so
 * it belongs on a request's failure path, not its read path. Safe to share
 * between threads. */
typedef struct healthtable_reporter healthtable_reporter_t;

/* Creates a reporter for the table NAME (which need not exist yet: a
 * prober that starts later is reached). Errors: INVALID_NAME,
 * SYSTEM_ERROR, INVALID_ARGUMENT (NULL), NO_MEMORY. */
HEALTHTABLE_API healthtable_err_t healthtable_reporter_open(const char* name,
                                                            healthtable_reporter_t** out);
/* NULL is allowed. */
HEALTHTABLE_API void healthtable_reporter_close(healthtable_reporter_t* reporter);

/* "record PROVIDER success". Returns whether the datagram was queued:
 * false when no prober listens, its queue is full, or an argument is bad.
 * Nothing says whether the prober accepted it. */
HEALTHTABLE_API bool healthtable_report_success(healthtable_reporter_t* reporter,
                                                const char* provider);
/* "record PROVIDER failure class=CLASS [retry=...] REASON": CLS a
 * healthtable_class_t other than NONE; RETRY_AFTER_NS a retry hint
 * (Retry-After) in nanoseconds, sent in whole milliseconds rounded up, or
 * negative for none; REASON may be NULL (no reason) and is made printable
 * and cut to HEALTHTABLE_REASON_MAX bytes. Returns as
 * healthtable_report_success() does, and false, sending nothing, for
 * CLASS_NONE or a value that is not a class. */
HEALTHTABLE_API bool healthtable_report_failure(healthtable_reporter_t* reporter,
                                                const char* provider, const char* reason, int cls,
                                                int64_t retry_after_ns);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HEALTHTABLE_HEALTHTABLE_H */
