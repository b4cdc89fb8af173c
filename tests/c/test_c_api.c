/* The C ABI from C11: every function of healthtable.h, its errors
 * included, against a table that the build tree's healthctl creates,
 * trips, overrides and recreates.
 *
 *   test_c_api HEALTHCTL EXPECTED_VERSION
 *
 * It makes its own run directory (HEALTHTABLE_RUN_DIR) and a table name
 * no other run uses, and removes both at exit, whatever failed. */
#define _POSIX_C_SOURCE 200809L

#include <healthtable/healthtable.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char* g_healthctl;
static char g_run_dir[256];
static char g_name[96];
static int g_failures;
static int g_checks;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    ++g_checks;                                                                                    \
    if (!(cond)) {                                                                                 \
      ++g_failures;                                                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

#define CHECK_STR(a, b)                                                                            \
  do {                                                                                             \
    ++g_checks;                                                                                    \
    if (strcmp((a), (b)) != 0) {                                                                   \
      ++g_failures;                                                                                \
      fprintf(stderr, "%s:%d: CHECK_STR failed: '%s' != '%s'\n", __FILE__, __LINE__, (a), (b));    \
    }                                                                                              \
  } while (0)

/* Runs `healthctl ARGS` quietly; returns its exit status. */
static int healthctl(const char* args) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>&1", g_healthctl, args);
  const int rc = system(cmd);
  return rc == -1 ? -1 : (rc >> 8) & 0xff;
}

/* The same, with stderr kept in *err (truncated to cap). */
static int healthctl_stderr(const char* args, char* err, size_t cap) {
  char path[300], cmd[1200];
  snprintf(path, sizeof path, "%s/stderr", g_run_dir);
  snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", g_healthctl, args, path);
  const int rc = system(cmd);
  err[0] = '\0';
  FILE* f = fopen(path, "r");
  if (f) {
    const size_t n = fread(err, 1, cap - 1, f);
    err[n] = '\0';
    fclose(f);
  }
  remove(path);
  return rc == -1 ? -1 : (rc >> 8) & 0xff;
}

static void must(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "test_c_api: setup failed: %s\n", what);
    exit(2); /* the atexit handler cleans up */
  }
}

static void cleanup(void) {
  char args[200], cmd[400];
  if (g_name[0]) {
    snprintf(args, sizeof args, "destroy %s --force", g_name);
    (void)healthctl(args);
  }
  if (g_run_dir[0]) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_run_dir);
    (void)system(cmd);
  }
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Polls is_healthy(h) until it equals `want`, for up to 10 s. */
static int eventually_healthy(const healthtable_t* t, healthtable_handle_t h, bool want) {
  for (int i = 0; i < 2000; ++i) {
    if (healthtable_is_healthy(t, h) == want) return 1;
    sleep_ms(5);
  }
  return 0;
}

static void ctl(const char* fmt, const char* provider, const char* rest) {
  char args[400];
  snprintf(args, sizeof args, fmt, g_name, provider, rest);
  must(healthctl(args) == 0, args);
}

static void* other_thread(void* arg) {
  /* The last error is per thread: nothing has failed on this one. */
  *(int*)arg =
      strcmp(healthtable_last_error(), "") == 0 && healthtable_last_errc() == HEALTHTABLE_OK;
  return NULL;
}

static void test_errors_before_the_table_exists(void) {
  healthtable_t* t = (healthtable_t*)&g_checks; /* must be reset to NULL */
  CHECK(healthtable_open(g_name, &t) == HEALTHTABLE_E_NO_SUCH_SEGMENT);
  CHECK(t == NULL);
  CHECK(healthtable_last_errc() == HEALTHTABLE_E_NO_SUCH_SEGMENT);
  /* The same one-line message healthctl prints for the same failure. */
  char message[1024];
  snprintf(message, sizeof message, "%s", healthtable_last_error());
  CHECK(strlen(message) > 0);
  CHECK(strchr(message, '\n') == NULL);
  CHECK(strstr(message, g_name) != NULL);
  char args[200], err[2048];
  snprintf(args, sizeof args, "info %s", g_name);
  CHECK(healthctl_stderr(args, err, sizeof err) == HEALTHTABLE_E_NO_SUCH_SEGMENT);
  CHECK(strstr(err, message) != NULL);

  int clean = 0;
  pthread_t th;
  must(pthread_create(&th, NULL, other_thread, &clean) == 0, "pthread_create");
  pthread_join(th, NULL);
  CHECK(clean);

  CHECK(healthtable_open("bad/name", &t) == HEALTHTABLE_E_INVALID_NAME);
  CHECK(t == NULL);
  CHECK(strstr(healthtable_last_error(), "segment name") != NULL);
  CHECK(healthtable_open("", &t) == HEALTHTABLE_E_INVALID_NAME);
  CHECK(healthtable_open(NULL, &t) == HEALTHTABLE_E_INVALID_ARGUMENT);
  CHECK(strstr(healthtable_last_error(), "NULL") != NULL);
  CHECK(healthtable_open(g_name, NULL) == HEALTHTABLE_E_INVALID_ARGUMENT);

  healthtable_reporter_t* r = NULL;
  CHECK(healthtable_reporter_open("bad/name", &r) == HEALTHTABLE_E_INVALID_NAME);
  CHECK(r == NULL);
  CHECK(healthtable_reporter_open(NULL, &r) == HEALTHTABLE_E_INVALID_ARGUMENT);

  healthtable_close(NULL);
  healthtable_reporter_close(NULL);
}

static void test_codes(void) {
  static const int codes[] = {0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 100, 101};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; ++i) {
    CHECK(strcmp(healthtable_strerror(codes[i]), "unknown error code") != 0);
    CHECK(strcmp(healthtable_errname(codes[i]), "unknown") != 0);
  }
  CHECK_STR(healthtable_strerror(HEALTHTABLE_E_NO_SUCH_SEGMENT), "the table does not exist");
  CHECK_STR(healthtable_errname(HEALTHTABLE_E_NO_SUCH_SEGMENT), "no_such_segment");
  CHECK_STR(healthtable_errname(HEALTHTABLE_E_WRONG_OWNER), "wrong_owner");
  CHECK_STR(healthtable_errname(HEALTHTABLE_E_NO_MEMORY), "no_memory");
  CHECK_STR(healthtable_strerror(42), "unknown error code");
  CHECK_STR(healthtable_errname(42), "unknown");
  CHECK_STR(healthtable_pick_reason_name(HEALTHTABLE_PICK_REASON_PANIC), "panic");
  CHECK_STR(healthtable_pick_reason_name(99), "unknown");
}

static void test_reads(healthtable_t* t) {
  healthtable_handle_t groq = HEALTHTABLE_HANDLE_NONE, openai, again, bad = {0};
  CHECK(healthtable_handle(t, "groq", &groq) == HEALTHTABLE_OK);
  CHECK(healthtable_handle(t, "openai", &openai) == HEALTHTABLE_OK);
  CHECK(healthtable_handle(t, "groq", &again) == HEALTHTABLE_OK);
  CHECK(memcmp(&groq, &again, sizeof groq) == 0); /* same name, same handle */
  CHECK_STR(healthtable_handle_name(groq), "groq");
  CHECK(healthtable_handle(t, "no spaces", &bad) == HEALTHTABLE_E_INVALID_NAME);
  CHECK(bad.cell_ == NULL);
  CHECK(strstr(healthtable_last_error(), "provider name") != NULL);
  CHECK(healthtable_handle(t, NULL, &bad) == HEALTHTABLE_E_INVALID_ARGUMENT);
  CHECK(healthtable_handle(NULL, "groq", &bad) == HEALTHTABLE_E_INVALID_ARGUMENT);
  CHECK_STR(healthtable_handle_name(bad), "");
  CHECK(!healthtable_is_healthy(t, bad)); /* names nothing: never available */

  /* Not registered yet: healthy. */
  CHECK(healthtable_is_healthy(t, groq));
  CHECK(healthtable_is_healthy_name(t, "groq"));
  CHECK(healthtable_is_healthy_name(t, "never-registered"));
  CHECK(healthtable_is_healthy_name(t, NULL));

  healthtable_state_t st;
  memset(&st, 0x5a, sizeof st);
  st.size = sizeof st;
  CHECK(healthtable_get_state(t, groq, &st) == HEALTHTABLE_OK);
  CHECK(st.version == HEALTHTABLE_STATE_VERSION);
  CHECK(st.size == sizeof st);
  CHECK_STR(st.name, "groq");
  CHECK((st.flags & HEALTHTABLE_STATE_REGISTERED) == 0);
  CHECK(st.flags & HEALTHTABLE_STATE_AVAILABLE);

  /* Trip groq: two failures (the table's threshold). */
  ctl("record %s %s failure --class server --reason %s", "groq", "'http 503'");
  ctl("record %s %s failure --class server --reason %s", "groq", "'http 503'");
  CHECK(!healthtable_is_healthy(t, groq));
  CHECK(!healthtable_is_healthy_name(t, "groq"));
  CHECK(healthtable_is_healthy(t, openai));

  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  CHECK(healthtable_get_state(t, groq, &st) == HEALTHTABLE_OK);
  CHECK(st.flags & HEALTHTABLE_STATE_REGISTERED);
  CHECK((st.flags & HEALTHTABLE_STATE_HEALTHY) == 0);
  CHECK((st.flags & HEALTHTABLE_STATE_AVAILABLE) == 0);
  CHECK(st.flags & HEALTHTABLE_STATE_HAS_LAST_ERROR);
  CHECK((st.flags & HEALTHTABLE_STATE_TRUNCATED) == 0);
  CHECK(st.consecutive_failures == 2);
  CHECK(st.failures == 2);
  CHECK(st.transitions == 1);
  CHECK(st.trips == 1);
  CHECK_STR(st.last_error, "http 503");
  CHECK(st.last_class == HEALTHTABLE_CLASS_SERVER);
  CHECK(st.class_failures[HEALTHTABLE_CLASS_SERVER] == 2);
  CHECK(st.last_source == HEALTHTABLE_SOURCE_ADMIN);
  CHECK(st.unhealthy_until_unix_ns > st.last_check_unix_ns);
  CHECK(st.unhealthy_until_mono_ns > 0);
  CHECK(st.window_ns == 60000000000LL); /* the table's backoff */
  CHECK(st.override_mode == HEALTHTABLE_OVERRIDE_AUTO);

  /* The same by name; and a provider the table does not have. */
  healthtable_state_t by_name;
  memset(&by_name, 0, sizeof by_name);
  by_name.size = sizeof by_name;
  CHECK(healthtable_get_state_name(t, "groq", &by_name) == HEALTHTABLE_OK);
  CHECK(by_name.consecutive_failures == 2);
  CHECK(by_name.generation == st.generation);
  CHECK(healthtable_get_state_name(t, "mistral", &by_name) == HEALTHTABLE_OK);
  CHECK_STR(by_name.name, "mistral");
  CHECK((by_name.flags & HEALTHTABLE_STATE_REGISTERED) == 0);
  CHECK(by_name.failures == 0);
  CHECK(healthtable_get_state_name(t, "no spaces", &by_name) == HEALTHTABLE_E_INVALID_NAME);
  CHECK(healthtable_get_state_name(t, NULL, &by_name) == HEALTHTABLE_E_INVALID_ARGUMENT);

  /* ABI growth: an older caller's shorter struct gets only its prefix. */
  unsigned char small[sizeof(healthtable_state_t)];
  memset(small, 0xA5, sizeof small);
  const size_t prefix = offsetof(healthtable_state_t, last_error);
  healthtable_state_t* sp = (healthtable_state_t*)(void*)small;
  sp->size = (uint32_t)prefix;
  CHECK(healthtable_get_state(t, groq, sp) == HEALTHTABLE_OK);
  CHECK(sp->size == prefix);
  CHECK_STR(sp->name, "groq");
  CHECK(sp->consecutive_failures == 2);
  int untouched = 1;
  for (size_t i = prefix; i < sizeof small; ++i)
    untouched &= small[i] == 0xA5;
  CHECK(untouched);
  sp->size = 8;
  CHECK(healthtable_get_state(t, groq, sp) == HEALTHTABLE_E_INVALID_ARGUMENT);
  CHECK(strstr(healthtable_last_error(), "sizeof(healthtable_state_t)") != NULL);
  CHECK(healthtable_get_state(t, groq, NULL) == HEALTHTABLE_E_INVALID_ARGUMENT);
  st.size = sizeof st;
  CHECK(healthtable_get_state(t, bad, &st) == HEALTHTABLE_E_INVALID_ARGUMENT);
  CHECK(healthtable_get_state(NULL, groq, &st) == HEALTHTABLE_E_INVALID_ARGUMENT);

  /* pick: groq is tripped, so openai. */
  const healthtable_handle_t chain[2] = {groq, openai};
  healthtable_pick_t p;
  CHECK(healthtable_pick(t, chain, 2, HEALTHTABLE_PICK_PANIC, &p) == 1);
  CHECK(p.index == 1 && p.available && !p.panic);
  CHECK(p.reason == HEALTHTABLE_PICK_REASON_AVAILABLE);
  CHECK(healthtable_pick(t, chain, 2, HEALTHTABLE_PICK_PANIC, NULL) == 1);
  CHECK(healthtable_pick(t, chain + 1, 1, HEALTHTABLE_PICK_NONE, &p) == 0);
  CHECK(healthtable_pick(t, chain, 0, HEALTHTABLE_PICK_PANIC, &p) == -1);
  CHECK(p.reason == HEALTHTABLE_PICK_REASON_EMPTY);
  /* Only groq: nowhere under NONE (with a retry time), groq under PANIC. */
  CHECK(healthtable_pick(t, chain, 1, HEALTHTABLE_PICK_NONE, &p) == -1);
  CHECK(p.index == -1 && !p.available && p.reason == HEALTHTABLE_PICK_REASON_NONE);
  CHECK(p.has_retry_at);
  CHECK(p.retry_at_unix_ns >= st.unhealthy_until_unix_ns - 1000000000LL);
  CHECK(healthtable_pick(t, chain, 1, HEALTHTABLE_PICK_PANIC, &p) == 0);
  CHECK(p.panic && !p.available && p.reason == HEALTHTABLE_PICK_REASON_PANIC);
  /* Bad arguments: a negated code, last error set, out says nowhere. */
  const healthtable_handle_t with_none[2] = {openai, {0}};
  CHECK(healthtable_pick(t, with_none, 2, HEALTHTABLE_PICK_PANIC, &p) ==
        -HEALTHTABLE_E_INVALID_ARGUMENT);
  CHECK(p.index == -1);
  CHECK(strstr(healthtable_last_error(), "chain[1]") != NULL);
  CHECK(healthtable_pick(t, chain, 2, 7, &p) == -HEALTHTABLE_E_INVALID_ARGUMENT);
  CHECK(strstr(healthtable_last_error(), "policy 7") != NULL);
  CHECK(healthtable_pick(t, NULL, 2, HEALTHTABLE_PICK_PANIC, &p) ==
        -HEALTHTABLE_E_INVALID_ARGUMENT);
  CHECK(healthtable_pick(NULL, chain, 2, HEALTHTABLE_PICK_PANIC, &p) ==
        -HEALTHTABLE_E_INVALID_ARGUMENT);
  /* A chain longer than the stack copy: 20 x groq, then openai. */
  healthtable_handle_t longer[21];
  for (int i = 0; i < 20; ++i)
    longer[i] = groq;
  longer[20] = openai;
  CHECK(healthtable_pick(t, longer, 21, HEALTHTABLE_PICK_NONE, &p) == 20);

  /* Overrides. */
  ctl("set %s %s %s", "groq", "up");
  CHECK(healthtable_is_healthy(t, groq));
  CHECK(healthtable_pick(t, chain, 2, HEALTHTABLE_PICK_PANIC, NULL) == 0);
  ctl("set %s %s %s", "openai", "down --create");
  CHECK(!healthtable_is_healthy(t, openai));
  st.size = sizeof st;
  CHECK(healthtable_get_state(t, openai, &st) == HEALTHTABLE_OK);
  CHECK(st.override_mode == HEALTHTABLE_OVERRIDE_DOWN);
  CHECK(st.flags & HEALTHTABLE_STATE_HAS_OVERRIDE_UID);
  CHECK(st.override_uid == (uint32_t)getuid());
  CHECK(st.override_set_unix_ns > 0);
  CHECK(strlen(st.override_user) > 0);
  ctl("set %s %s %s", "groq", "auto");
  CHECK(!healthtable_is_healthy(t, groq)); /* back to the breaker: tripped */
  CHECK(healthtable_pick(t, chain, 2, HEALTHTABLE_PICK_NONE, &p) == -1);
  ctl("set %s %s %s", "openai", "auto");
  /* Recovery. */
  ctl("record %s %s %s", "groq", "success");
  CHECK(healthtable_is_healthy(t, groq));
  CHECK(healthtable_pick(t, chain, 2, HEALTHTABLE_PICK_PANIC, &p) == 0);
  CHECK(p.available && p.reason == HEALTHTABLE_PICK_REASON_AVAILABLE);

  /* The handle follows the table across its recreation. */
  char args[200];
  snprintf(args, sizeof args, "destroy %s --force", g_name);
  must(healthctl(args) == 0, args);
  snprintf(args, sizeof args, "create %s", g_name);
  must(healthctl(args) == 0, args);
  ctl("record %s %s failure --reason %s", "groq", "gone");
  ctl("record %s %s failure --reason %s", "groq", "gone");
  CHECK(eventually_healthy(t, groq, false));
  st.size = sizeof st;
  CHECK(healthtable_get_state(t, groq, &st) == HEALTHTABLE_OK);
  CHECK_STR(st.last_error, "gone");
  CHECK(healthtable_pick(t, chain, 2, HEALTHTABLE_PICK_PANIC, NULL) == 1);
  ctl("record %s %s %s", "groq", "success");
  CHECK(eventually_healthy(t, groq, true));
}

/* Reports go to the control socket as the prober's request lines; the
 * test stands in for the prober by binding that socket itself. */
static void test_reports(void) {
  healthtable_reporter_t* r = NULL;
  CHECK(healthtable_reporter_open(g_name, &r) == HEALTHTABLE_OK);
  must(r != NULL, "reporter");
  /* Nobody listening: not queued, and no blocking, no error. */
  CHECK(!healthtable_report_success(r, "groq"));

  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  const int len = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s/control", g_run_dir, g_name);
  must(len > 0 && (size_t)len < sizeof sa.sun_path, "the control socket's path fits");
  const int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  must(fd >= 0, "socket");
  must(bind(fd, (const struct sockaddr*)&sa, sizeof sa) == 0, "bind the control socket");

  char line[600];
  ssize_t n;
  CHECK(healthtable_report_failure(r, "groq", "http 429", HEALTHTABLE_CLASS_RATE_LIMITED,
                                   30000000000LL));
  n = recv(fd, line, sizeof line - 1, 0);
  CHECK(n > 0);
  line[n > 0 ? n : 0] = '\0';
  CHECK_STR(line, "record groq failure class=rate_limited retry=30s http 429");
  CHECK(healthtable_report_failure(r, "groq", NULL, HEALTHTABLE_CLASS_TIMEOUT, -1));
  n = recv(fd, line, sizeof line - 1, 0);
  line[n > 0 ? n : 0] = '\0';
  CHECK_STR(line, "record groq failure class=timeout");
  CHECK(healthtable_report_success(r, "groq"));
  n = recv(fd, line, sizeof line - 1, 0);
  line[n > 0 ? n : 0] = '\0';
  CHECK_STR(line, "record groq success");
  /* Refused without sending. */
  CHECK(!healthtable_report_failure(r, "groq", "x", HEALTHTABLE_CLASS_NONE, -1));
  CHECK(!healthtable_report_failure(r, "groq", "x", 8, -1));
  CHECK(!healthtable_report_failure(r, "no spaces", "x", HEALTHTABLE_CLASS_OTHER, -1));
  CHECK(!healthtable_report_success(r, NULL));
  CHECK(!healthtable_report_success(NULL, "groq"));
  CHECK(recv(fd, line, sizeof line, MSG_DONTWAIT) < 0); /* nothing else arrived */
  close(fd);
  unlink(sa.sun_path);
  healthtable_reporter_close(r);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_c_api HEALTHCTL EXPECTED_VERSION\n");
    return 2;
  }
  g_healthctl = argv[1];
  atexit(cleanup);
  snprintf(g_run_dir, sizeof g_run_dir, "/tmp/healthtable-test-c-XXXXXX");
  must(mkdtemp(g_run_dir) != NULL, "mkdtemp");
  must(setenv("HEALTHTABLE_RUN_DIR", g_run_dir, 1) == 0, "setenv");
  snprintf(g_name, sizeof g_name, "healthtable-test-c-%ld", (long)getpid());

  CHECK_STR(healthtable_version(), argv[2]);
  CHECK(HEALTHTABLE_ABI_VERSION == 0);
  CHECK_STR(healthtable_last_error(), "");
  test_codes();
  test_errors_before_the_table_exists();

  char args[200];
  snprintf(args, sizeof args, "create %s", g_name);
  must(healthctl(args) == 0, args);
  healthtable_t* t = NULL;
  CHECK(healthtable_open(g_name, &t) == HEALTHTABLE_OK);
  must(t != NULL, healthtable_last_error());
  CHECK_STR(healthtable_name(t), g_name);
  test_reads(t);
  healthtable_close(t);
  test_reports();

  printf("test_c_api: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
