// The probe engine: runs probes concurrently on one thread, for the
// process's life.
//
// HTTP(S) probes and TCP connects are all libcurl easy handles driven by one
// long-lived multi handle through its socket interface
// (curl_multi_socket_action) and one epoll set, which also watches a
// caller's fd (the daemon's wait set: signalfd, control socket), so a signal
// or a request is seen at once. A probe can be started at any time, beside
// the ones in flight, and its result is handed over as soon as it finishes.
// No thread per probe.
#pragma once

#include <healthtable/layout.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace healthtable::prober {

enum class ProbeKind { http, tcp };

enum class HttpMethod { get, head };

/// HTTP statuses lo..hi, both included (one status: lo == hi).
struct StatusRange {
  long lo = 0;
  long hi = 0;
  friend bool operator==(const StatusRange&, const StatusRange&) = default;
};

/// The most body bytes an `expect_body` check reads: enough for a status
/// document or the start of a model list, never a download.
inline constexpr std::size_t kBodyScanLimit = 64 * 1024;

/// Everything the engine needs to run one probe.
struct ProbeSpec {
  std::string provider;
  ProbeKind kind = ProbeKind::http;
  /// http: the URL (http:// or https://); tcp: "host:port" or "[v6]:port".
  std::string target;
  std::vector<std::string> headers;    ///< "Name: value", already expanded
  HttpMethod method = HttpMethod::get; ///< http
  long healthy_below = 500;            ///< http: a status below this is healthy (unless `expect`)
  /// http: the healthy statuses; empty: every status below healthy_below.
  std::vector<StatusRange> expect;
  /// http: when set, healthy only if the body's first kBodyScanLimit bytes contain it.
  std::string expect_body;
  std::string ca_file; ///< http: trust this CA bundle instead of the system's
  bool verify = true;  ///< http: verify the peer certificate and host name
  std::chrono::milliseconds timeout{3000};

  friend bool operator==(const ProbeSpec&, const ProbeSpec&) = default;
};

/// Whether an answer with this status is healthy for `spec`: one of its
/// `expect`ed statuses, else below its healthy_below. 429 never is: the
/// server answered, but says not to send.
bool status_healthy(const ProbeSpec& spec, long status) noexcept;

/// What one probe found.
struct ProbeResult {
  std::size_t index = 0; ///< the id given to start(); for run(), the probe's position
  bool healthy = false;
  /// Empty when healthy; otherwise in the reference module's spirit:
  /// "probe-timeout (>3s)", "http 503", "connect: connection refused",
  /// "tls: certificate verify failed (...)", "dns: could not resolve host: x",
  /// "http: response header too large", `body: "ok" not found in ...`.
  std::string reason;
  long http_status = 0; ///< 0 when no status was read
  /// none when healthy; otherwise what kind of failure (failure_class()).
  FailureClass failure_class = FailureClass::none;
  /// A failed answer's retry hint: its `retry-after-ms`, else its
  /// `Retry-After` (seconds or an HTTP date), when one parses.
  std::optional<std::chrono::nanoseconds> retry_after;
  std::chrono::nanoseconds elapsed{0};
};

/// The class of a failed HTTP answer: 5xx server, 429 rate_limited, 401 and
/// 403 auth, other 4xx client, anything else other.
FailureClass status_class(long status) noexcept;

struct TickStats {
  std::size_t probes = 0;
  std::size_t healthy = 0;
  std::size_t failed = 0;
  std::size_t abandoned = 0; ///< still running when the tick was interrupted
  bool interrupted = false;  ///< on_wake asked to stop
  std::chrono::nanoseconds elapsed{0};
};

/// "probe-timeout (>3s)": the reason for a probe that ran out of time.
std::string timeout_reason(std::chrono::milliseconds timeout);

/// `body: "ok" not found in the first 2 bytes`: an expected status whose
/// body (the first `bytes` of it read) lacks the expected text. A long text
/// is shortened and control characters escaped, so the reason fits
/// last_error and stays one line.
std::string body_reason(std::string_view text, std::size_t bytes);
using ResultFn = std::function<void(const ProbeResult&)>;

class Engine {
public:
  using Clock = std::chrono::steady_clock;

  Engine(); ///< throws std::runtime_error when curl or epoll cannot start
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Starts one probe now, beside any in flight (the spec is copied). Its
  /// result is handed over by a later poll() with `index == id`; one that
  /// cannot even start is reported failed there too.
  void start(const ProbeSpec& spec, std::size_t id);

  /// One turn of the loop: waits until a probe's socket is ready, the
  /// watched fd is readable, curl's own timer or a probe's backstop is due,
  /// or `until`, whichever comes first (at most a minute); lets curl work;
  /// and calls `on_result` for every probe that finished. A probe still
  /// running 200 ms past its timeout (curl enforces the timeout; this is the
  /// backstop) is reported timed out. True when the watched fd is readable.
  bool poll(Clock::time_point until, const ResultFn& on_result);

  /// Watches `fd` for reading beside the probes (-1: none). One at a time.
  void watch(int fd);

  /// Probes started and not yet handed over.
  std::size_t in_flight() const noexcept;

  /// Stops the probe started with `id` without a result (its connection is
  /// closed); false when none is in flight.
  bool cancel(std::size_t id);

  /// Stops every probe in flight without a result; returns how many.
  std::size_t abandon();

  /// A batch on an otherwise idle engine (tests, the bench): starts every
  /// probe at once and returns when all have an outcome, each
  /// having had at most its own timeout (plus a little slack for the loop).
  /// `on_outcome` is called as each finishes, so results are written while
  /// slower probes run. A probe that cannot even start is reported failed.
  /// When `wake_fd` becomes readable, `on_wake` is called; if it returns true
  /// the tick stops at once: in-flight probes are abandoned (no outcome) and
  /// their connections closed.
  TickStats run(std::span<const ProbeSpec> probes,
                const std::function<void(const ProbeResult&)>& on_outcome, int wake_fd = -1,
                const std::function<bool()>& on_wake = {});

  /// How many times a CA bundle (or the system's trust) has been read from
  /// disk: once per distinct CA setting, however many probes and ticks use
  /// it, unless its file changes. For tests and benchmarks.
  std::size_t trust_loads() const noexcept;

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace healthtable::prober
