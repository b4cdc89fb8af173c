#include "exposition.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace healthtable::metrics {

namespace {

bool name_char(char c, bool first, bool colon) noexcept {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (alpha || (colon && c == ':')) return true;
  return !first && c >= '0' && c <= '9';
}

std::string_view type_name(Type t) noexcept {
  switch (t) {
  case Type::counter: return "counter";
  case Type::gauge: return "gauge";
  case Type::histogram: return "histogram";
  }
  return "untyped";
}

} // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // fmt's shortest round-trip form: "3", "0.25", "1e+20"; Prometheus reads
  // them all (Go's ParseFloat).
  return fmt::format("{}", value);
}

bool valid_metric_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, true)) return false;
  return true;
}

bool valid_label_name(std::string_view name) noexcept {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, false)) return false;
  return true;
}

Family::Family(std::string name, Type type, std::string help)
    : name_(std::move(name)), type_(type), help_(std::move(help)) {}

void Family::add_sample(std::string_view suffix, const Labels& labels, const std::string* le,
                        double value) {
  samples_ += name_;
  samples_ += suffix;
  if (!labels.empty() || le) {
    samples_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!valid_label_name(k) || (le && k == "le"))
        throw std::invalid_argument("metric " + name_ + ": invalid label name \"" + k + "\"");
      if (!first) samples_ += ',';
      first = false;
      samples_ += k;
      samples_ += "=\"";
      samples_ += escape_label_value(v);
      samples_ += '"';
    }
    if (le) {
      if (!first) samples_ += ',';
      samples_ += "le=\"";
      samples_ += *le;
      samples_ += '"';
    }
    samples_ += '}';
  }
  samples_ += ' ';
  samples_ += format_value(value);
  samples_ += '\n';
}

Family& Family::add(const Labels& labels, double value) {
  if (type_ == Type::histogram)
    throw std::logic_error("metric " + name_ + ": a histogram takes add_histogram()");
  add_sample("", labels, nullptr, value);
  return *this;
}

Family& Family::add_histogram(const Labels& labels, const std::vector<double>& bounds,
                              const std::vector<std::uint64_t>& cumulative, double sum) {
  if (type_ != Type::histogram)
    throw std::logic_error("metric " + name_ + ": add_histogram() on a " +
                           std::string(type_name(type_)));
  if (cumulative.size() != bounds.size() + 1)
    throw std::invalid_argument("metric " + name_ + ": one count per bound, plus +Inf");
  for (std::size_t i = 0; i < cumulative.size(); ++i) {
    const std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
    add_sample("_bucket", labels, &le, static_cast<double>(cumulative[i]));
  }
  add_sample("_sum", labels, nullptr, sum);
  add_sample("_count", labels, nullptr, static_cast<double>(cumulative.back()));
  return *this;
}

Family& Exposition::family(std::string_view name, Type type, std::string_view help) {
  const auto it = std::find_if(families_.begin(), families_.end(),
                               [&](const Family& f) { return f.name() == name; });
  if (it != families_.end()) {
    if (it->type_ != type || it->help_ != help)
      throw std::logic_error("metric " + std::string(name) +
                             " declared twice with a different type or help");
    return *it;
  }
  if (!valid_metric_name(name))
    throw std::invalid_argument("invalid metric name \"" + std::string(name) + "\"");
  families_.push_back(Family(std::string(name), type, std::string(help)));
  return families_.back();
}

std::string Exposition::text() const {
  std::string out;
  for (const Family& f : families_) {
    out += "# HELP " + f.name_ + ' ' + escape_help(f.help_) + '\n';
    out += "# TYPE " + f.name_ + ' ' + std::string(type_name(f.type_)) + '\n';
    out += f.samples_;
  }
  return out;
}

} // namespace healthtable::metrics
