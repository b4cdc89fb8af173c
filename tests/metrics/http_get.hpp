// A blocking HTTP request with libcurl, for tests that scrape /metrics or
// ask Prometheus's query API.
#pragma once

#include <curl/curl.h>

#include <optional>
#include <string>

namespace healthtable::test {

struct HttpAnswer {
  long status = 0; ///< 0: no answer (refused, timed out)
  std::string body;
  std::string content_type;
};

inline HttpAnswer http_request(const std::string& url, const char* method = "GET") {
  HttpAnswer a;
  CURL* c = curl_easy_init();
  if (!c) return a;
  const auto write = +[](char* p, std::size_t n, std::size_t m, void* out) -> std::size_t {
    static_cast<std::string*>(out)->append(p, n * m);
    return n * m;
  };
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (std::string(method) == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    char* ct = nullptr;
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) a.content_type = ct;
  }
  curl_easy_cleanup(c);
  return a;
}

/// The value of the sample line that starts with `series` ("name{labels}"),
/// or nothing.
inline std::optional<std::string> sample(const std::string& text, const std::string& series) {
  std::size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      const std::size_t start = at + series.size() + 1;
      return text.substr(start, text.find('\n', start) - start);
    }
    ++at;
  }
  return std::nullopt;
}

} // namespace healthtable::test
