// The CA certificates HTTPS probes verify against: one OpenSSL X509_STORE
// per CA setting (the system's trust, or one `ca_file`), read from disk once
// and shared by every handshake that uses that setting.
//
// Why: libcurl builds a fresh store for every connection, parsing the whole
// bundle (the system's: ~150 certificates, ~20 ms of CPU) each time. Its own
// cache (CURLOPT_CA_CACHE_TIMEOUT, 7.87+) does not apply when a CA directory
// is configured, and Debian's libcurl has one built in (/etc/ssl/certs), so
// the cache never engages for system trust; where it does, it keeps one
// store per multi handle, which providers with different `ca_file`s evict
// from each other. Installing our own store from CURLOPT_SSL_CTX_FUNCTION
// works whatever libcurl's build-time paths are, for any number of settings
// (probe.cpp, on_ssl_ctx, says how it is installed).
//
// A store holds trust anchors only: sharing it shares no TLS session, so
// every probe still makes a full handshake with its own server.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include <sys/types.h>

struct x509_store_st; // X509_STORE, kept out of this header

namespace healthtable::prober {

class TrustStores {
public:
  TrustStores();
  ~TrustStores();
  TrustStores(const TrustStores&) = delete;
  TrustStores& operator=(const TrustStores&) = delete;

  /// False when libcurl's TLS library is not the OpenSSL we link (another
  /// backend, or another OpenSSL version): then a store cannot be handed to
  /// curl, and curl keeps reading CA files itself.
  bool usable() const noexcept { return usable_; }

  /// Files are checked for changes at most once per tick: call at its start.
  void new_tick() noexcept { ++tick_; }

  /// The store for `ca_file` (empty: the system's trust, which is what
  /// libcurl would load: its built-in CA file and directory, else OpenSSL's
  /// default paths). Read on first use, and again when the file (or
  /// directory) has changed since, so a rotated bundle is picked up without a
  /// restart. Null when it cannot be read; `*error` then says why, as curl
  /// would ("error setting certificate file: /path").
  x509_store_st* get(const std::string& ca_file, std::string* error);

  /// How many times a CA setting has been read from disk: what a test
  /// counts to prove the bundle is read once, not once per handshake.
  std::size_t loads() const noexcept { return loads_; }

private:
  /// What a source file or directory looked like when it was read.
  struct Stamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    long long mtime_ns = 0;
    bool exists = false;
    bool operator==(const Stamp&) const = default;
  };
  struct Entry {
    std::string file; ///< CA bundle to read, or empty
    std::string dir;  ///< hashed CA directory to consult, or empty
    x509_store_st* store = nullptr;
    std::string error; ///< why the last read failed
    Stamp file_stamp, dir_stamp;
    unsigned long long checked_tick = 0;
    bool loaded = false; ///< a read was attempted (store or error is set)
  };
  static Stamp stamp(const std::string& path);
  void load(Entry& e);

  bool usable_ = false;
  std::string system_file_, system_dir_; ///< libcurl's built-in defaults
  std::map<std::string, Entry> entries_; ///< by ca_file; "" is the system's
  unsigned long long tick_ = 1;
  std::size_t loads_ = 0;
};

} // namespace healthtable::prober
