// The prober's CPU per tick: N HTTPS providers whose trust is a CA bundle
// the size of the system's, beside N plain HTTP providers, each set probed
// tick after tick by one Engine (as the daemon does). Not a timed test: the
// servers (127.0.0.1, in a child process, so their CPU is not ours) count
// what reached them, and the figures are this process's CPU per tick.
//
//   bench_prober [--providers=1000] [--ticks=5] [--timeout_ms=3000]
//                [--bundle=/etc/ssl/certs/ca-certificates.crt] [--json=FILE]
//
// "https, big bundle" trusts FILE = the system bundle + the test CA, the way
// a provider's certificate is found among the system's CAs; "https, system
// trust" uses the engine's default trust, which does not hold the test CA,
// so every probe fails verification after a full handshake: it shows what
// the default path costs. bench/report.py renders the JSON into
// docs/performance.md.
#include "probe.hpp"
#include "servers.hpp"

#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace hp = healthtable::prober;
namespace ht = healthtable::test;
using namespace std::chrono_literals;

namespace {

struct Args {
  int providers = 1000;
  int ticks = 5;
  int timeout_ms = 3000;
  std::string bundle = "/etc/ssl/certs/ca-certificates.crt";
  std::string json;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string("--") + name + "=";
      return s.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("providers"))
      a.providers = std::max(1, std::atoi(v));
    else if (const char* v2 = value("ticks"))
      a.ticks = std::max(2, std::atoi(v2));
    else if (const char* v3 = value("timeout_ms"))
      a.timeout_ms = std::max(1, std::atoi(v3));
    else if (const char* v4 = value("bundle"))
      a.bundle = v4;
    else if (const char* v5 = value("json"))
      a.json = v5;
    else {
      std::fprintf(stderr, "usage: bench_prober [--providers=N] [--ticks=K] [--timeout_ms=MS] "
                           "[--bundle=PEM] [--json=FILE]\n");
      std::exit(2);
    }
  }
  return a;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

double process_cpu_ms() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

std::string load_average() {
  std::string s = slurp("/proc/loadavg");
  while (!s.empty() && s.back() == '\n')
    s.pop_back();
  return s;
}

/// What the servers have seen so far.
struct Seen {
  std::size_t tls_accepted = 0, tls_handshakes = 0, tls_resumed = 0, tls_requests = 0;
  std::size_t http_requests = 0;
};

/// The servers, in a child forked before this process starts any thread.
/// It answers each byte written to it with one line of counts; EOF stops it.
class Servers {
public:
  explicit Servers(const ht::TempDir& dir) {
    int up[2], down[2];
    if (::pipe(up) != 0 || ::pipe(down) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::close(up[0]);
      ::close(down[1]);
      _exit(serve(dir, down[0], up[1]));
    }
    ::close(up[1]);
    ::close(down[0]);
    to_ = ::fdopen(down[1], "w");
    from_ = ::fdopen(up[0], "r");
    if (std::fscanf(from_, "%d %d", &tls_port_, &http_port_) != 2)
      throw std::runtime_error("the servers did not start");
  }
  ~Servers() {
    std::fclose(to_);
    std::fclose(from_);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  int tls_port() const { return tls_port_; }
  int http_port() const { return http_port_; }
  Seen seen() {
    std::fputc('c', to_);
    std::fflush(to_);
    Seen s;
    if (std::fscanf(from_, "%zu %zu %zu %zu %zu", &s.tls_accepted, &s.tls_handshakes,
                    &s.tls_resumed, &s.tls_requests, &s.http_requests) != 5)
      throw std::runtime_error("the servers stopped answering");
    return s;
  }

private:
  static int serve(const ht::TempDir& dir, int in, int out) {
    ht::TlsServer tls(dir);
    ht::HttpServer http;
    FILE* o = ::fdopen(out, "w");
    std::fprintf(o, "%d %d\n", tls.port(), http.port());
    std::fflush(o);
    char c = 0;
    while (::read(in, &c, 1) == 1) {
      std::fprintf(o, "%zu %zu %zu %zu %zu\n", tls.accepted(), tls.handshakes(), tls.resumed(),
                   tls.requests(), http.requests().size());
      std::fflush(o);
    }
    return 0;
  }

  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  int tls_port_ = 0, http_port_ = 0;
};

struct Variant {
  std::string name;
  std::string label;
  hp::ProbeSpec probe;
};

} // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  ht::raise_file_limit();
  ht::TempDir dir;
  Servers servers(dir);

  const std::string system_bundle = slurp(args.bundle);
  if (system_bundle.empty()) {
    std::fprintf(stderr, "bench_prober: cannot read %s\n", args.bundle.c_str());
    return 1;
  }
  const std::string test_ca = slurp((dir / "ca.pem").string());
  const auto big = dir.write("bundle.pem", system_bundle + "\n" + test_ca);
  std::size_t certs = 0;
  for (auto pos = system_bundle.find("BEGIN CERTIFICATE"); pos != std::string::npos;
       pos = system_bundle.find("BEGIN CERTIFICATE", pos + 1))
    ++certs;

  const auto timeout = std::chrono::milliseconds(args.timeout_ms);
  auto spec = [&](const std::string& url) {
    hp::ProbeSpec s;
    s.target = url;
    s.timeout = timeout;
    return s;
  };
  const std::string https_url = "https://127.0.0.1:" + std::to_string(servers.tls_port()) + "/";
  std::vector<Variant> variants;
  variants.push_back(
      {"http", "http",
       spec("http://127.0.0.1:" + std::to_string(servers.http_port()) + "/status/200")});
  variants.push_back({"https_bundle", "https, big bundle (`ca_file`)", spec(https_url)});
  variants.back().probe.ca_file = big.string();
  variants.push_back({"https_system", "https, system trust (fails verification)", spec(https_url)});
  variants.push_back({"https_noverify", "https, `verify = false`", spec(https_url)});
  variants.back().probe.verify = false;

  nlohmann::json out;
  out["providers"] = args.providers;
  out["ticks"] = args.ticks;
  out["timeout_ms"] = args.timeout_ms;
  out["bundle"] = {{"path", args.bundle}, {"bytes", system_bundle.size()}, {"certs", certs}};
  out["curl"] = curl_version();
  out["load_before"] = load_average();
  {
    const std::time_t now = std::time(nullptr);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&now));
    out["date"] = buf;
  }

  const std::string timeout_reason = hp::timeout_reason(timeout);
  // One Engine per variant, as a daemon has one: its first tick pays any
  // one-time cost. The variants take turns tick by tick, so a burst of load
  // from elsewhere on the machine spreads over all of them.
  std::vector<std::vector<hp::ProbeSpec>> probes(variants.size());
  std::vector<std::unique_ptr<hp::Engine>> engines;
  std::vector<nlohmann::json> ticks(variants.size(), nlohmann::json::array());
  for (std::size_t k = 0; k < variants.size(); ++k) {
    for (int i = 0; i < args.providers; ++i) {
      probes[k].push_back(variants[k].probe);
      probes[k].back().provider = variants[k].name + "-" + std::to_string(i);
    }
    engines.push_back(std::make_unique<hp::Engine>());
  }
  for (int t = 0; t < args.ticks; ++t) {
    for (std::size_t k = 0; k < variants.size(); ++k) {
      const Variant& v = variants[k];
      const Seen before = servers.seen();
      std::size_t timeouts = 0;
      const double cpu0 = process_cpu_ms();
      const hp::TickStats s = engines[k]->run(probes[k], [&](const hp::ProbeResult& o) {
        if (o.reason == timeout_reason) ++timeouts;
      });
      const double cpu = process_cpu_ms() - cpu0;
      const Seen after = servers.seen();
      const bool tls = v.name != "http";
      const std::size_t reached = tls ? after.tls_requests - before.tls_requests
                                      : after.http_requests - before.http_requests;
      nlohmann::json tick = {
          {"cpu_ms", cpu},
          {"wall_ms", static_cast<double>(s.elapsed.count()) / 1e6},
          {"healthy", s.healthy},
          {"failed", s.failed},
          {"timeouts", timeouts},
          {"server_requests", reached},
          {"server_accepted", tls ? after.tls_accepted - before.tls_accepted : reached},
          {"server_handshakes", after.tls_handshakes - before.tls_handshakes},
          {"server_resumed", after.tls_resumed - before.tls_resumed},
      };
      std::printf("%-45s tick %d: CPU %7.1f ms, wall %7.1f ms, %zu healthy, %zu failed "
                  "(%zu timed out), server: %zu requests, %zu handshakes (%zu resumed)\n",
                  v.label.c_str(), t + 1, cpu, tick["wall_ms"].get<double>(), s.healthy, s.failed,
                  timeouts, reached, tick["server_handshakes"].get<std::size_t>(),
                  tick["server_resumed"].get<std::size_t>());
      ticks[k].push_back(std::move(tick));
    }
  }
  for (std::size_t k = 0; k < variants.size(); ++k) {
    std::printf("%-45s CA settings read from disk over %d ticks: %zu\n", variants[k].label.c_str(),
                args.ticks, engines[k]->trust_loads());
    out["variants"].push_back({{"name", variants[k].name},
                               {"label", variants[k].label},
                               {"ticks", ticks[k]},
                               {"trust_loads", engines[k]->trust_loads()}});
  }
  out["load_after"] = load_average();
  // One piece of a handshake's cost that no trust store touches: libcurl
  // 7.88 makes a new SSL_CTX for every connection.
  {
    constexpr int kContexts = 200;
    const double cpu0 = process_cpu_ms();
    for (int i = 0; i < kContexts; ++i)
      SSL_CTX_free(SSL_CTX_new(TLS_client_method()));
    out["ssl_ctx_new_us"] = (process_cpu_ms() - cpu0) * 1000 / kContexts;
    std::printf("SSL_CTX_new + SSL_CTX_free: %.0f us of CPU each\n",
                out["ssl_ctx_new_us"].get<double>());
  }
  if (!args.json.empty()) {
    std::ofstream f(args.json);
    f << out.dump(2) << "\n";
  }
  return 0;
}
