#include <healthtable/error.hpp>
#include <healthtable/layout.hpp>
#include <healthtable/names.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace healthtable {

namespace {

bool is_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 80)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  if (s.size() > 80) out += "...";
  return out;
}

} // namespace

std::string_view errc_name(Errc code) noexcept {
  switch (code) {
  case Errc::no_such_segment: return "no_such_segment";
  case Errc::not_a_table: return "not_a_table";
  case Errc::incompatible_layout: return "incompatible_layout";
  case Errc::not_ready: return "not_ready";
  case Errc::permission_denied: return "permission_denied";
  case Errc::table_full: return "table_full";
  case Errc::invalid_name: return "invalid_name";
  case Errc::already_exists: return "already_exists";
  case Errc::writer_busy: return "writer_busy";
  case Errc::corrupt: return "corrupt";
  case Errc::no_space: return "no_space";
  case Errc::unknown_provider: return "unknown_provider";
  case Errc::invalid_argument: return "invalid_argument";
  case Errc::system_error: return "system_error";
  case Errc::wrong_owner: return "wrong_owner";
  }
  return "unknown";
}

void validate_segment_name(std::string_view name) {
  if (name.empty()) throw Error(Errc::invalid_name, "segment name is empty");
  if (name.size() > kSegmentNameMax)
    throw Error(Errc::invalid_name, "segment name is " + std::to_string(name.size()) +
                                        " bytes; the limit is " + std::to_string(kSegmentNameMax));
  if (name == "." || name == "..")
    throw Error(Errc::invalid_name, "segment name '" + std::string(name) + "' is not allowed");
  for (const char c : name)
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
      throw Error(Errc::invalid_name, "segment name '" + printable(name) +
                                          "' may contain only letters, digits, '.', '_' and '-'");
}

void validate_provider_name(std::string_view name) {
  if (name.empty()) throw Error(Errc::invalid_name, "provider name is empty");
  if (name.size() > kProviderNameMax)
    throw Error(Errc::invalid_name, "provider name '" + printable(name) + "' is " +
                                        std::to_string(name.size()) + " bytes; the limit is " +
                                        std::to_string(kProviderNameMax));
  for (const char c : name)
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-' && c != ':' && c != '/' && c != '@' &&
        c != '+')
      throw Error(Errc::invalid_name, "provider name '" + printable(name) +
                                          "' may contain only letters, digits and . _ - : / @ +");
}

std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view what) {
  const auto bad = [&](const std::string& why) {
    return Error(Errc::invalid_argument, std::string(what) + " '" + printable(text) + "' " + why +
                                             " (use e.g. 60s, 500ms, 2m, 1h; a plain number is "
                                             "seconds)");
  };
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.'))
    ++i;
  const std::string_view number = text.substr(0, i);
  const std::string_view unit = text.substr(i);
  if (number.empty()) throw bad("is not a duration");
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) throw bad("is not a number");
  double scale = 1e9;
  if (unit.empty() || unit == "s")
    scale = 1e9;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "ns")
    scale = 1;
  else if (unit == "m" || unit == "min")
    scale = 60e9;
  else if (unit == "h")
    scale = 3600e9;
  else
    throw bad("has an unknown unit '" + printable(unit) + "'");
  const double ns = value * scale;
  if (!std::isfinite(ns) || ns > 1e18) throw bad("is too long");
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(ns)));
}

std::string format_duration(std::chrono::nanoseconds d) {
  const std::int64_t ns = d.count();
  const auto fmt = [](std::int64_t v, std::int64_t unit, const char* suffix) {
    char buf[48];
    if (v % unit == 0) {
      std::snprintf(buf, sizeof buf, "%lld%s", static_cast<long long>(v / unit), suffix);
    } else {
      std::snprintf(buf, sizeof buf, "%.3g%s", static_cast<double>(v) / static_cast<double>(unit),
                    suffix);
    }
    return std::string(buf);
  };
  if (ns == 0) return "0s";
  if (ns % 3'600'000'000'000 == 0) return fmt(ns, 3'600'000'000'000, "h");
  if (ns % 60'000'000'000 == 0) return fmt(ns, 60'000'000'000, "m");
  if (ns >= 1'000'000'000) return fmt(ns, 1'000'000'000, "s");
  if (ns >= 1'000'000) return fmt(ns, 1'000'000, "ms");
  if (ns >= 1'000) return fmt(ns, 1'000, "us");
  return fmt(ns, 1, "ns");
}

std::string format_age(std::int64_t ns) {
  ns = std::max<std::int64_t>(ns, 0);
  const long long s = ns / 1'000'000'000;
  char buf[48];
  if (ns < 10'000'000'000)
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ns) / 1e9);
  else if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else if (s < 86400)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  else
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
  return buf;
}

std::string format_mode(std::uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

std::string sanitize_reason(std::string_view text, std::size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max));
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = 0;
    if (c < 0x80)
      len = 1;
    else if ((c & 0xE0) == 0xC0 && c >= 0xC2)
      len = 2;
    else if ((c & 0xF0) == 0xE0)
      len = 3;
    else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
      len = 4;
    bool valid = len > 0 && i + len <= text.size();
    for (std::size_t k = 1; valid && k < len; ++k)
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (valid && len == 3) { // no overlongs, no surrogates
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      valid = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (valid && len == 4) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      valid = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (!valid) len = 1;
    if (out.size() + len > max) break; // never split a code point
    if (!valid)
      out += '?';
    else if (len == 1 && (c < 0x20 || c == 0x7f))
      out += ' ';
    else
      out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

} // namespace healthtable
