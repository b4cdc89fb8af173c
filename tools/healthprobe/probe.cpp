// The probe engine: one curl multi handle, one epoll set, one thread.
//
// TCP probes are curl easy handles with CURLOPT_CONNECT_ONLY rather than our
// own non-blocking connect(): curl then resolves host names on its
// asynchronous (threaded) resolver instead of a blocking getaddrinfo() in
// the loop, races IPv6 against IPv4 (happy eyeballs) like real clients, and
// every probe shares one code path for timeouts, cancellation and the
// reasons we report. A TCP probe costs the same sockets either way.
#include "probe.hpp"
#include "trust.hpp"

#include <healthtable/clock.hpp>
#include <healthtable/names.hpp>
#include <healthtable/retry_after.hpp>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>

namespace healthtable::prober {

namespace {

using Clock = std::chrono::steady_clock;

/// Slack past a probe's timeout before the engine abandons it itself: curl
/// enforces each timeout; this is the backstop.
constexpr auto kDeadlineSlack = std::chrono::milliseconds(200);
/// How often started probes look for changed CA files (TrustStores::new_tick).
constexpr auto kTrustRecheck = std::chrono::seconds(1);
/// The longest poll() sleeps, whatever it is asked: a bound, not a schedule.
constexpr auto kLongestWait = std::chrono::seconds(60);

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("curl_global_init failed");
  });
}

/// "Connection refused" reads "connection refused" after a prefix; a first
/// word with capitals inside ("OpenSSL", "SSL") is a name and stays as it is.
std::string lower_first(std::string s) {
  const auto word_end = s.find_first_of(" :/_", 0);
  const auto rest = std::string_view(s).substr(0, word_end).substr(s.empty() ? 0 : 1);
  const bool name =
      std::any_of(rest.begin(), rest.end(), [](unsigned char c) { return std::isupper(c); });
  if (!s.empty() && !name) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

std::string os_error(long err) { return lower_first(std::strerror(static_cast<int>(err))); }

/// One probe in flight.
struct Running {
  std::size_t index = 0;
  const ProbeSpec* spec = nullptr; ///< points at `owned`
  ProbeSpec owned;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  bool body_seen = false;       ///< the status line and headers are in
  std::size_t body_scanned = 0; ///< expect_body: body bytes searched so far
  bool body_found = false;      ///< expect_body: the text is in them
  /// expect_body: the last bytes searched, too few to hold the text, which
  /// the next chunk may complete.
  std::string body_tail;
  TrustStores* trust = nullptr; ///< set when this probe verifies with a shared store
  std::string trust_error;      ///< why its store could not be read
  Clock::time_point started;
  Clock::time_point deadline; ///< the engine's backstop: timeout + kDeadlineSlack
  std::array<char, CURL_ERROR_SIZE> errbuf{};

  ~Running() {
    if (easy) curl_easy_cleanup(easy);
    if (headers) curl_slist_free_all(headers);
  }
};

/// The first body bytes mean the status and headers have arrived: without a
/// body check that is all a probe needs, so stop there (returning 0 aborts
/// with CURLE_WRITE_ERROR) rather than download a model list every tick.
/// With one, read until the text turns up or kBodyScanLimit bytes have gone
/// by, keeping only the tail a match could start in.
std::size_t on_body(char* data, std::size_t size, std::size_t count, void* userdata) {
  auto& r = *static_cast<Running*>(userdata);
  r.body_seen = true;
  const std::string& want = r.spec->expect_body;
  if (want.empty()) return 0;
  long status = 0;
  curl_easy_getinfo(r.easy, CURLINFO_RESPONSE_CODE, &status);
  if (!status_healthy(*r.spec, status)) return 0; // failed already: its body does not matter
  const std::size_t bytes = size * count;
  const std::size_t take = std::min(bytes, kBodyScanLimit - r.body_scanned);
  std::string window = std::move(r.body_tail);
  window.append(data, take);
  r.body_scanned += take;
  if (window.find(want) != std::string::npos) {
    r.body_found = true;
    return 0;
  }
  if (r.body_scanned >= kBodyScanLimit) return 0;
  r.body_tail = window.substr(window.size() - std::min(window.size(), want.size() - 1));
  return bytes;
}

/// Hands a verifying handshake the shared store for its CA setting.
///
/// As the SSL_CTX's *verify* store, not its cert store: libcurl fills and
/// caches the cert store itself (7.88 does so after this callback, newer
/// versions before it; its cache would hand one probe's store to the next),
/// while the verify store is ours alone and OpenSSL prefers it when checking
/// the server's chain. curl was told to read no CA file or directory, so the
/// cert store it fills stays empty and costs nothing.
CURLcode on_ssl_ctx(CURL*, void* ssl_ctx, void* userdata) {
  auto& r = *static_cast<Running*>(userdata);
  X509_STORE* store = r.trust->get(r.spec->ca_file, &r.trust_error);
  if (!store) return CURLE_SSL_CACERT_BADFILE;
  SSL_CTX_set1_verify_cert_store(static_cast<SSL_CTX*>(ssl_ctx), store); // its own reference
  return CURLE_OK;
}

/// curl's message for a failed transfer, without the trailing blank or
/// line break some of its messages end in.
std::string errbuf_or(const Running& r, CURLcode code) {
  std::string text = r.errbuf.data();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.pop_back();
  if (text.empty()) text = curl_easy_strerror(code);
  return text;
}

std::string tls_detail(std::string text) {
  static constexpr std::string_view kPrefix = "SSL certificate problem: ";
  if (text.rfind(kPrefix, 0) == 0) text.erase(0, kPrefix.size());
  return text;
}

/// Whether curl gave up on the response headers for their size. libcurl
/// 7.88 says so in two ways: one header line past 100 KiB is
/// CURLE_OUT_OF_MEMORY with no message (its bounded header buffer refused
/// to grow), all of them past 300 KiB is CURLE_RECV_ERROR "Too large
/// response headers: ..."; 8.6 and later say CURLE_TOO_LARGE. Out of memory
/// once the request is out is that bound: a real allocation failure is not
/// something a server can cause, and would not wait for the answer.
bool header_too_large(const Running& r, CURLcode code) {
#if LIBCURL_VERSION_NUM >= 0x080600
  if (code == CURLE_TOO_LARGE) return true;
#endif
  if (code == CURLE_OUT_OF_MEMORY) {
    long sent = 0;
    curl_easy_getinfo(r.easy, CURLINFO_REQUEST_SIZE, &sent);
    return sent > 0;
  }
  if (code == CURLE_RECV_ERROR) {
    static constexpr std::string_view kTotal = "too large response headers";
    return lower_first(r.errbuf.data()).rfind(kTotal, 0) == 0;
  }
  return false;
}

/// Why a transfer failed, in the reference module's words: every reason
/// starts with what failed (dns, connect, tls, connection, http, proxy);
/// curl's own text only ever follows such a prefix, as the detail.
/// "probe-error:" is left for what no server can cause (curl itself failing).
std::string failure_reason(const Running& r, CURLcode code) {
  long os_errno = 0;
  curl_easy_getinfo(r.easy, CURLINFO_OS_ERRNO, &os_errno);
  if (header_too_large(r, code)) return "http: response header too large";
  switch (code) {
  case CURLE_OPERATION_TIMEDOUT: return timeout_reason(r.spec->timeout);
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return "dns: " + lower_first(errbuf_or(r, code));
  case CURLE_COULDNT_CONNECT:
    if (os_errno != 0) return "connect: " + os_error(os_errno);
    return "connect: " + lower_first(errbuf_or(r, code));
  case CURLE_PEER_FAILED_VERIFICATION:
    return "tls: certificate verify failed (" + tls_detail(errbuf_or(r, code)) + ")";
  case CURLE_SSL_CACERT_BADFILE:
    if (!r.trust_error.empty()) return "tls: " + r.trust_error;
    return "tls: " + lower_first(errbuf_or(r, code));
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_USE_SSL_FAILED:
#if LIBCURL_VERSION_NUM >= 0x074D00
  case CURLE_SSL_CLIENTCERT:
#endif
    return "tls: " + lower_first(errbuf_or(r, code));
#if LIBCURL_VERSION_NUM >= 0x074900
  case CURLE_PROXY: return "proxy: " + lower_first(errbuf_or(r, code));
#endif
  case CURLE_GOT_NOTHING: return "http: empty reply from server";
  case CURLE_PARTIAL_FILE: return "connection: closed before the end of the answer";
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
    if (os_errno != 0) return "connection: " + os_error(os_errno);
    return "connection: " + lower_first(errbuf_or(r, code));
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM: return "http: " + lower_first(errbuf_or(r, code));
  default: return "probe-error: " + lower_first(errbuf_or(r, code));
  }
}

/// The class of a transfer that got no answer.
FailureClass transfer_class(CURLcode code) noexcept {
  switch (code) {
  case CURLE_OPERATION_TIMEDOUT: return FailureClass::timeout;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_USE_SSL_FAILED:
#if LIBCURL_VERSION_NUM >= 0x074D00
  case CURLE_SSL_CLIENTCERT:
#endif
#if LIBCURL_VERSION_NUM >= 0x074900
  case CURLE_PROXY:
#endif
    return FailureClass::connect;
  default: return FailureClass::other;
  }
}

/// The value of a response header of the last request, if it came.
std::optional<std::string_view> header(CURL* easy, const char* name) {
  curl_header* h = nullptr;
  if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h || !h->value)
    return std::nullopt;
  return std::string_view(h->value);
}

/// retry-after-ms is the finer of the two when a server sends both.
std::optional<std::chrono::nanoseconds> retry_hint(CURL* easy) {
  if (const auto ms = header(easy, "retry-after-ms"))
    if (auto hint = parse_retry_after_ms(*ms)) return hint;
  if (const auto v = header(easy, "Retry-After"))
    return parse_retry_after(*v, Instant::now().unix_ns);
  return std::nullopt;
}

ProbeResult classify(const Running& r, CURLcode code) {
  ProbeResult out;
  out.index = r.index;
  out.elapsed = Clock::now() - r.started;
  if (r.spec->kind == ProbeKind::tcp) {
    out.healthy = code == CURLE_OK;
    if (!out.healthy) {
      out.reason = failure_reason(r, code);
      out.failure_class = transfer_class(code);
    }
    return out;
  }
  // A transfer we cut short after the headers counts as a complete answer.
  if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && r.body_seen)) {
    long status = 0;
    curl_easy_getinfo(r.easy, CURLINFO_RESPONSE_CODE, &status);
    out.http_status = status;
    if (status <= 0) {
      out.reason = "http: no status line";
      out.failure_class = FailureClass::other;
    } else if (!status_healthy(*r.spec, status)) {
      out.reason = "http " + std::to_string(status);
      out.failure_class = status_class(status);
      out.retry_after = retry_hint(r.easy);
    } else if (!r.spec->expect_body.empty() && !r.body_found) {
      out.reason = body_reason(r.spec->expect_body, r.body_scanned);
      out.failure_class = FailureClass::other;
    } else {
      out.healthy = true;
    }
    return out;
  }
  out.reason = failure_reason(r, code);
  out.failure_class = transfer_class(code);
  return out;
}

} // namespace

FailureClass status_class(long status) noexcept {
  if (status >= 500 && status <= 599) return FailureClass::server;
  if (status == 429) return FailureClass::rate_limited;
  if (status == 401 || status == 403) return FailureClass::auth;
  if (status >= 400 && status <= 499) return FailureClass::client;
  return FailureClass::other;
}

bool status_healthy(const ProbeSpec& spec, long status) noexcept {
  if (status == 429) return false;
  if (spec.expect.empty()) return status < spec.healthy_below;
  return std::any_of(spec.expect.begin(), spec.expect.end(),
                     [&](const StatusRange& r) { return status >= r.lo && status <= r.hi; });
}

std::string timeout_reason(std::chrono::milliseconds timeout) {
  return "probe-timeout (>" + format_duration(timeout) + ")";
}

std::string body_reason(std::string_view text, std::size_t bytes) {
  // last_error keeps kReasonMax bytes: leave room for the words around the text.
  constexpr std::size_t kShown = 40;
  std::string shown;
  std::size_t used = 0;
  for (; used < text.size() && shown.size() < kShown; ++used) {
    const auto c = static_cast<unsigned char>(text[used]);
    if (c == '"' || c == '\\') {
      shown += '\\';
      shown += static_cast<char>(c);
    } else if (c == '\n') {
      shown += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      shown += "\\x";
      shown += kHex[c >> 4];
      shown += kHex[c & 0xF];
    } else {
      shown += static_cast<char>(c);
    }
  }
  // Cut on a code point boundary: back off continuation bytes of a cut character.
  if (used < text.size()) {
    while (used > 0 && (static_cast<unsigned char>(text[used]) & 0xC0) == 0x80) {
      --used;
      shown.pop_back();
    }
    shown += "...";
  }
  return "body: \"" + shown + "\" not found in the first " + std::to_string(bytes) + " bytes";
}

struct Engine::Impl {
  CURLM* multi = nullptr;
  TrustStores trust;                 ///< shared by the handshakes of every probe
  Clock::time_point trust_checked{}; ///< the last TrustStores::new_tick()
  int epfd = -1;
  int watched = -1; ///< the caller's fd in our epoll set, or -1
  /// When curl wants CURL_SOCKET_TIMEOUT next (nullopt: no timer).
  std::optional<Clock::time_point> timer_at;
  std::unordered_map<CURL*, std::unique_ptr<Running>> running;
  /// Results not yet handed over: probes that could not start, backstops.
  std::vector<ProbeResult> undelivered;
  std::array<epoll_event, 256> events{};

  ~Impl() {
    for (auto& entry : running) // out of the multi handle before it goes
      curl_multi_remove_handle(multi, entry.first);
    running.clear();
    if (multi) curl_multi_cleanup(multi);
    if (epfd >= 0) ::close(epfd);
  }

  /// Takes a probe out of the multi handle and frees it (its connection closes).
  void finish(CURL* e) {
    curl_multi_remove_handle(multi, e);
    running.erase(e); // destroys the easy handle with the node
  }

  // curl tells us which sockets to watch for what; epoll keeps the set.
  static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void* socketp) {
    auto* self = static_cast<Impl*>(userp);
    if (what == CURL_POLL_REMOVE) {
      // The fd may already be closed (epoll then dropped it): ignore errors.
      ::epoll_ctl(self->epfd, EPOLL_CTL_DEL, s, nullptr);
      curl_multi_assign(self->multi, s, nullptr);
      return 0;
    }
    epoll_event ev{};
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    ev.data.fd = s;
    // A closed-and-reused fd number can make our bookkeeping stale; fall back
    // between ADD and MOD instead of trusting it.
    const int first = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (::epoll_ctl(self->epfd, first, s, &ev) != 0) {
      const int second = first == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
      if (::epoll_ctl(self->epfd, second, s, &ev) != 0) return -1;
    }
    if (!socketp) curl_multi_assign(self->multi, s, self);
    return 0;
  }

  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<Impl*>(userp);
    if (timeout_ms < 0)
      self->timer_at.reset();
    else
      self->timer_at = Clock::now() + std::chrono::milliseconds(timeout_ms);
    return 0;
  }

  CURL* make_easy(Running& r) {
    const ProbeSpec& spec = *r.spec;
    CURL* e = curl_easy_init();
    if (!e) return nullptr;
    r.easy = e;
    const long timeout_ms = static_cast<long>(std::max<std::int64_t>(spec.timeout.count(), 1));
    curl_easy_setopt(e, CURLOPT_PRIVATE, &r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r.errbuf.data());
    // No SIGALRM-based timeouts: we are one thread with signals on a signalfd.
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    // Every probe opens its own connection: it must exercise DNS, connect and
    // the TLS handshake like a client's first request, and nothing idles
    // between ticks (an idle keep-alive socket would outlive the server's).
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    // Resolve afresh each time: probes of one tick start together, so a
    // cache would save nothing within a tick and would hide DNS changes (or
    // a broken resolver) from the next one.
    curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
#if LIBCURL_VERSION_NUM >= 0x075700
    // Abandoning a probe must not wait for a stuck getaddrinfo() thread to
    // finish (curl would join it inside our loop): detach it instead.
    curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    curl_easy_setopt(e, CURLOPT_USERAGENT, "healthprobe/0.1");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if (spec.kind == ProbeKind::tcp) {
      const std::string url = "http://" + spec.target + "/";
      curl_easy_setopt(e, CURLOPT_URL, url.c_str()); // curl copies strings
      curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
      curl_easy_setopt(e, CURLOPT_PROXY, ""); // a TCP probe never goes via a proxy
      return e;
    }
    curl_easy_setopt(e, CURLOPT_URL, spec.target.c_str());
    if (spec.method == HttpMethod::head)
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L); // a HEAD: curl reads no body after the headers
    else
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
    for (const auto& h : spec.headers) {
      curl_slist* next = curl_slist_append(r.headers, h.c_str());
      if (!next) return nullptr;
      r.headers = next;
    }
    if (r.headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, r.headers);
    // Each probe makes a full handshake with its own server, as a client's
    // first request does: no TLS session carried over from another probe,
    // whichever handles a libcurl version lets share its session cache.
    curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    if (spec.verify && trust.usable()) {
      // curl reads no CA file or directory itself (it would for every
      // connection); on_ssl_ctx installs the shared store instead. The
      // callback serves an HTTPS proxy's handshake too, and cannot tell it
      // from the provider's: the proxy is verified against the same trust.
      r.trust = &trust;
      curl_easy_setopt(e, CURLOPT_CAINFO, nullptr);
      curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
      curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, nullptr);
      curl_easy_setopt(e, CURLOPT_PROXY_CAPATH, nullptr);
      curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, &on_ssl_ctx);
      curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, &r);
    } else if (!spec.ca_file.empty()) {
      curl_easy_setopt(e, CURLOPT_CAINFO, spec.ca_file.c_str());
    }
    if (!spec.verify) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return e;
  }
};

Engine::Engine() : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->multi = curl_multi_init();
  if (!impl_->multi) throw std::runtime_error("curl_multi_init failed");
  impl_->epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (impl_->epfd < 0)
    throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  CURLM* m = impl_->multi;
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, impl_.get());
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, impl_.get());
  // All probes of a tick start at once: no cap on connections in flight...
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  // ...each on its own connection: no HTTP/2 multiplexing of providers that
  // share a host onto one socket (each probe must test its own path)...
  curl_multi_setopt(m, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_NOTHING));
  // ...and no cache of idle connections (FORBID_REUSE closes them anyway;
  // the default would size the cache at 4x the handles in flight).
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 1L);
}

Engine::~Engine() = default;

std::size_t Engine::trust_loads() const noexcept { return impl_->trust.loads(); }

void Engine::start(const ProbeSpec& spec, std::size_t id) {
  Impl& im = *impl_;
  const auto now = Clock::now();
  // A CA file's changes are looked for at most once a second, not once per
  // probe: a stat() per handshake would be the cost the shared store saves.
  if (now - im.trust_checked >= kTrustRecheck) {
    im.trust.new_tick();
    im.trust_checked = now;
  }
  auto r = std::make_unique<Running>();
  r->index = id;
  r->owned = spec;
  r->spec = &r->owned;
  r->started = now;
  r->deadline = now + spec.timeout + kDeadlineSlack;
  CURL* e = im.make_easy(*r);
  CURLMcode mc = CURLM_OUT_OF_MEMORY;
  if (e) mc = curl_multi_add_handle(im.multi, e);
  if (mc != CURLM_OK) {
    // Cannot even start: a failure for this provider alone.
    ProbeResult o;
    o.index = id;
    o.reason = std::string("probe-error: cannot start: ") + curl_multi_strerror(mc);
    o.failure_class = FailureClass::other;
    im.undelivered.push_back(std::move(o));
    return;
  }
  im.running.emplace(e, std::move(r));
}

void Engine::watch(int fd) {
  Impl& im = *impl_;
  if (fd == im.watched) return;
  if (im.watched >= 0) ::epoll_ctl(im.epfd, EPOLL_CTL_DEL, im.watched, nullptr);
  im.watched = fd;
  if (fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(im.epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
    throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
}

std::size_t Engine::in_flight() const noexcept {
  return impl_->running.size() + impl_->undelivered.size();
}

bool Engine::cancel(std::size_t id) {
  Impl& im = *impl_;
  for (auto it = im.running.begin(); it != im.running.end(); ++it)
    if (it->second->index == id) {
      im.finish(it->first);
      return true;
    }
  const auto u = std::find_if(im.undelivered.begin(), im.undelivered.end(),
                              [&](const ProbeResult& o) { return o.index == id; });
  if (u == im.undelivered.end()) return false;
  im.undelivered.erase(u);
  return true;
}

std::size_t Engine::abandon() {
  Impl& im = *impl_;
  const std::size_t n = in_flight();
  while (!im.running.empty())
    im.finish(im.running.begin()->first);
  im.undelivered.clear();
  return n;
}

bool Engine::poll(Clock::time_point until, const ResultFn& on_result) {
  Impl& im = *impl_;
  auto now = Clock::now();
  // Backstops first: whatever ran past its own timeout and the slack.
  auto wake_at = std::min(until, now + kLongestWait);
  for (auto it = im.running.begin(); it != im.running.end();) {
    const Running& r = *it->second;
    if (r.deadline > now) {
      wake_at = std::min(wake_at, r.deadline);
      ++it;
      continue;
    }
    ProbeResult o;
    o.index = r.index;
    o.reason = timeout_reason(r.spec->timeout);
    o.failure_class = FailureClass::timeout;
    o.elapsed = now - r.started;
    CURL* e = it->first;
    ++it;
    im.finish(e);
    im.undelivered.push_back(std::move(o));
  }
  if (im.timer_at) wake_at = std::min(wake_at, *im.timer_at);
  if (!im.undelivered.empty()) wake_at = now; // results to hand over: do not sleep

  // Round up: waking a hair early would spin until curl's timer is due.
  const auto wait_ms =
      std::chrono::ceil<std::chrono::milliseconds>(std::max(wake_at - now, Clock::duration{0}))
          .count();
  const int n = ::epoll_wait(im.epfd, im.events.data(), static_cast<int>(im.events.size()),
                             static_cast<int>(wait_ms));
  if (n < 0 && errno != EINTR)
    throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
  bool woken = false;
  int still = 0;
  for (int i = 0; i < n; ++i) {
    const int fd = im.events[static_cast<std::size_t>(i)].data.fd;
    const auto ev = im.events[static_cast<std::size_t>(i)].events;
    if (fd == im.watched && im.watched >= 0) {
      woken = true;
      continue;
    }
    int flags = 0;
    if (ev & (EPOLLIN | EPOLLHUP)) flags |= CURL_CSELECT_IN;
    if (ev & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    if (ev & EPOLLERR) flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(im.multi, fd, flags, &still);
  }
  if (im.timer_at && Clock::now() >= *im.timer_at) {
    im.timer_at.reset();
    curl_multi_socket_action(im.multi, CURL_SOCKET_TIMEOUT, 0, &still);
  }

  // Hand over what finished. The queue is swapped out first: on_result may
  // start new probes, whose start failures belong to the next turn.
  std::vector<ProbeResult> ready;
  ready.swap(im.undelivered);
  for (const ProbeResult& o : ready)
    on_result(o);
  int pending = 0;
  while (CURLMsg* msg = curl_multi_info_read(im.multi, &pending)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* e = msg->easy_handle;
    const CURLcode code = msg->data.result;
    auto it = im.running.find(e);
    if (it == im.running.end()) continue;
    const ProbeResult o = classify(*it->second, code);
    im.finish(e);
    on_result(o);
  }
  return woken;
}

TickStats Engine::run(std::span<const ProbeSpec> probes,
                      const std::function<void(const ProbeResult&)>& on_outcome, int wake_fd,
                      const std::function<bool()>& on_wake) {
  Impl& im = *impl_;
  TickStats stats;
  stats.probes = probes.size();
  const auto start_at = Clock::now();
  const auto report = [&](const ProbeResult& o) {
    (o.healthy ? stats.healthy : stats.failed)++;
    on_outcome(o);
  };
  // A batch is a tick: its CA files are checked for changes once, at its start.
  im.trust.new_tick();
  im.trust_checked = start_at;
  const int watched_before = im.watched;
  watch(wake_fd);
  im.running.reserve(probes.size());
  for (std::size_t i = 0; i < probes.size(); ++i)
    start(probes[i], i);
  while (in_flight() > 0) {
    if (poll(Clock::time_point::max(), report) && on_wake && on_wake()) {
      stats.interrupted = true;
      stats.abandoned = abandon();
    }
  }
  watch(watched_before);
  stats.elapsed = Clock::now() - start_at;
  return stats;
}

} // namespace healthtable::prober
