#include "trust.hpp"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <string_view>

namespace healthtable::prober {

namespace {

/// libcurl's TLS is usable for a shared store only if it is this very
/// OpenSSL: an SSL_CTX from another library (or another major version
/// loaded beside ours) must never meet our X509_STORE.
bool same_openssl() {
  const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
  if (!v || !v->ssl_version) return false;
  const std::string expected = std::string("OpenSSL/") + OpenSSL_version(OPENSSL_VERSION_STRING);
  return v->ssl_version == expected;
}

std::string curl_default(CURLINFO what) {
  std::string out;
#if LIBCURL_VERSION_NUM >= 0x075400 // CURLINFO_CAINFO, CURLINFO_CAPATH: 7.84.0
  if (CURL* e = curl_easy_init()) {
    char* path = nullptr;
    if (curl_easy_getinfo(e, what, &path) == CURLE_OK && path) out = path;
    curl_easy_cleanup(e);
  }
#else
  (void)what;
#endif
  return out;
}

} // namespace

TrustStores::TrustStores()
    : usable_(same_openssl()), system_file_(curl_default(CURLINFO_CAINFO)),
      system_dir_(curl_default(CURLINFO_CAPATH)) {}

TrustStores::~TrustStores() {
  for (auto& [key, e] : entries_)
    X509_STORE_free(e.store);
}

TrustStores::Stamp TrustStores::stamp(const std::string& path) {
  Stamp s;
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return s;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  s.exists = true;
  return s;
}

void TrustStores::load(Entry& e) {
  X509_STORE_free(e.store);
  e.store = nullptr;
  e.error.clear();
  e.loaded = true;
  e.file_stamp = stamp(e.file);
  e.dir_stamp = stamp(e.dir);
  ++loads_;
  X509_STORE* s = X509_STORE_new();
  if (!s) {
    e.error = "out of memory for a certificate store";
    return;
  }
  // The same sources, in the same order and with the same failures, as
  // libcurl's own loading (vtls/openssl.c) for a verifying connection.
  if (!e.file.empty() && X509_STORE_load_file(s, e.file.c_str()) != 1)
    e.error = "error setting certificate file: " + e.file;
  else if (!e.dir.empty() && X509_STORE_load_path(s, e.dir.c_str()) != 1)
    e.error = "error setting certificate path: " + e.dir;
  else if (e.file.empty() && e.dir.empty() && X509_STORE_set_default_paths(s) != 1)
    e.error = "error setting the default certificate paths";
  // Nothing we leave in this thread's OpenSSL error queue may be mistaken
  // for a handshake's error by curl later.
  ERR_clear_error();
  if (!e.error.empty()) {
    X509_STORE_free(s);
    return;
  }
  // libcurl's flags for a verifying store: build chains from the trusted
  // certificates first, and accept a trusted intermediate as an anchor.
  X509_STORE_set_flags(s, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
  e.store = s;
}

x509_store_st* TrustStores::get(const std::string& ca_file, std::string* error) {
  auto [it, fresh] = entries_.try_emplace(ca_file);
  Entry& e = it->second;
  if (fresh) {
    // A ca_file is trusted instead of the system's CAs, as documented: not
    // beside libcurl's built-in CA directory, which CURLOPT_CAINFO alone
    // would have left in place.
    e.file = ca_file.empty() ? system_file_ : ca_file;
    e.dir = ca_file.empty() ? system_dir_ : std::string();
  }
  if (e.checked_tick != tick_) {
    e.checked_tick = tick_;
    const bool failed = !e.store;
    if (!e.loaded || failed || stamp(e.file) != e.file_stamp || stamp(e.dir) != e.dir_stamp)
      load(e);
  }
  if (!e.store && error) *error = e.error;
  return e.store;
}

} // namespace healthtable::prober
