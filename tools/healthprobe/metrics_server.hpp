// healthprobe's GET /metrics: libmicrohttpd serving on its own thread, so a
// scrape (or a slow scraper) never holds up the probing loop. Each scrape
// builds a fresh exposition from the collectors: the table read through
// the server's own read-only mapping (lock-free, as any reader), the
// prober's atomic counters, and whatever else is added to the list.
#pragma once

#include "config.hpp"

#include <exposition.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

struct MHD_Daemon;

namespace healthtable::prober {

class MetricsServer {
public:
  /// Adds one part of the exposition; called on the server's thread, one
  /// scrape at a time. Must not block on the prober.
  using Collector = std::function<void(metrics::Exposition&)>;

  /// Binds `cfg.listen` and starts serving. Throws std::runtime_error with
  /// a one-line message ("cannot listen for metrics on ADDR: ...") when the
  /// address cannot be bound.
  MetricsServer(const MetricsConfig& cfg, std::vector<Collector> collectors);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// The bound address, "127.0.0.1:9464" (the actual port when 0 was asked).
  const std::string& where() const noexcept { return where_; }
  /// One exposition, as a scrape gets it.
  std::string render() const;

private:
  std::vector<Collector> collectors_;
  std::string where_;
  MHD_Daemon* daemon_ = nullptr;
};

/// The collector of the table's own series (metrics::add_table_metrics)
/// for `segment`, read through a read-only Table it opens on first use
/// and again after any error (a scrape while the table is being recreated
/// gets the prober's series only).
MetricsServer::Collector table_collector(const std::string& segment);

} // namespace healthtable::prober
