#include "metrics_server.hpp"

#include <table_metrics.hpp>

#include <healthtable/table.hpp>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace healthtable::prober {

namespace {

/// At most this many scrapers at once; more wait in the kernel's backlog.
constexpr unsigned kConnectionLimit = 16;
/// A connection idle this long is closed (a stuck scraper holds nothing).
constexpr unsigned kIdleTimeoutSeconds = 10;

MHD_Result reply(MHD_Connection* c, unsigned status, std::string_view body,
                 const char* content_type, const char* allow = nullptr) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                    MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  const MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method,
                      const char* /*version*/, const char* /*upload_data*/,
                      std::size_t* /*upload_data_size*/, void** /*con_cls*/) {
  const auto* server = static_cast<const MetricsServer*>(cls);
  const std::string_view m(method);
  if (m != MHD_HTTP_METHOD_GET && m != MHD_HTTP_METHOD_HEAD)
    return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", "text/plain", "GET, HEAD");
  if (std::string_view(url) != "/metrics")
    return reply(c, MHD_HTTP_NOT_FOUND, "not found: healthprobe serves /metrics only\n",
                 "text/plain");
  std::string body;
  try {
    body = server->render();
  } catch (const std::exception& e) {
    return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, std::string(e.what()) + "\n", "text/plain");
  }
  // libmicrohttpd sends a HEAD request the headers (Content-Length too) only.
  return reply(c, MHD_HTTP_OK, body, std::string(metrics::kContentType).c_str());
}

/// A bound, listening socket for `cfg`; throws the one-line message.
int listen_on(const MetricsConfig& cfg, std::string& where) {
  const auto fail = [&](const std::string& what) {
    return std::runtime_error("cannot listen for metrics on " + cfg.listen + ": " + what +
                              " (change [metrics] listen, or free the address)");
  };
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (cfg.ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(cfg.port);
    if (::inet_pton(AF_INET6, cfg.host.c_str(), &a->sin6_addr) != 1) throw fail("bad address");
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(cfg.port);
    if (::inet_pton(AF_INET, cfg.host.c_str(), &a->sin_addr) != 1) throw fail("bad address");
    len = sizeof *a;
  }
  const int fd = ::socket(cfg.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw fail(std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (cfg.ipv6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 64) != 0) {
    const int err = errno;
    ::close(fd);
    throw fail(std::strerror(err));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  std::uint16_t port = cfg.port;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) == 0)
    port = ntohs(cfg.ipv6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  where = (cfg.ipv6 ? "[" + cfg.host + "]" : cfg.host) + ":" + std::to_string(port);
  return fd;
}

} // namespace

MetricsServer::MetricsServer(const MetricsConfig& cfg, std::vector<Collector> collectors)
    : collectors_(std::move(collectors)) {
  const int fd = listen_on(cfg, where_);
  // One internal thread polls every connection: scrapes are served one at
  // a time, and the probing loop never sees them.
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
  if (cfg.ipv6) flags |= MHD_USE_IPv6;
  daemon_ =
      MHD_start_daemon(flags, 0, nullptr, nullptr, &on_request, this, MHD_OPTION_LISTEN_SOCKET, fd,
                       MHD_OPTION_CONNECTION_LIMIT, kConnectionLimit, MHD_OPTION_CONNECTION_TIMEOUT,
                       kIdleTimeoutSeconds, MHD_OPTION_END);
  if (!daemon_) {
    ::close(fd);
    throw std::runtime_error("cannot listen for metrics on " + cfg.listen +
                             ": libmicrohttpd did not start");
  }
}

MetricsServer::~MetricsServer() {
  if (daemon_) MHD_stop_daemon(daemon_); // joins its thread, closes the socket
}

std::string MetricsServer::render() const {
  metrics::Exposition out;
  for (const Collector& c : collectors_)
    c(out);
  return out.text();
}

MetricsServer::Collector table_collector(const std::string& segment) {
  auto table = std::make_shared<std::optional<Table>>();
  return [segment, table](metrics::Exposition& out) {
    try {
      if (!*table) table->emplace(Table::open(segment));
      const TableInfo info = (*table)->info();
      const std::vector<ProviderState> providers = (*table)->snapshot();
      // The prober is the table's writer: attached while it serves.
      metrics::add_table_metrics(out, info, providers, Instant::now(), metrics::WriterFacts{true});
    } catch (const Error&) {
      table->reset(); // opened again by the next scrape
    }
  };
}

} // namespace healthtable::prober
