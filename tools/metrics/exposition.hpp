// The Prometheus text exposition format (version 0.0.4), built in one place:
// healthprobe's /metrics and `healthctl dump --format prometheus` both write
// through it. A family is declared once, with its HELP and TYPE, and every
// sample of that name goes under it, so the output never repeats a family
// (Prometheus rejects a scrape that does). Label values and HELP text are
// escaped here; names are checked here, so a bad one is a programming error
// caught by the first test that renders it.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace healthtable::metrics {

/// The exposition's content type, for an HTTP response.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type { counter, gauge, histogram };

/// Label name and value pairs, in the order they are written.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// A label value as the format writes it between quotes: backslash,
/// double quote and newline escaped (\\, \", \n); everything else as is.
std::string escape_label_value(std::string_view value);
/// HELP text: backslash and newline escaped (quotes stay).
std::string escape_help(std::string_view text);
/// A sample value: integers without a fraction or exponent, others with
/// enough digits to read back the same double; NaN, +Inf, -Inf.
std::string format_value(double value);

/// Whether `name` is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label
/// name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", which Prometheus
/// reserves).
bool valid_metric_name(std::string_view name) noexcept;
bool valid_label_name(std::string_view name) noexcept;

class Exposition;

/// One metric family: its samples, in the order they were added.
class Family {
public:
  const std::string& name() const noexcept { return name_; }
  Type type() const noexcept { return type_; }

  /// A sample named after the family (a counter or gauge).
  Family& add(const Labels& labels, double value);
  /// A histogram's buckets (cumulative counts at each upper bound, ending
  /// with +Inf: `counts` has one more entry than `bounds`), _sum and _count.
  /// The count is the +Inf bucket, so the three always agree.
  Family& add_histogram(const Labels& labels, const std::vector<double>& bounds,
                        const std::vector<std::uint64_t>& cumulative, double sum);

private:
  friend class Exposition;
  Family(std::string name, Type type, std::string help);
  void add_sample(std::string_view suffix, const Labels& labels, const std::string* le,
                  double value);

  std::string name_;
  Type type_;
  std::string help_;
  std::string samples_; ///< rendered sample lines
};

/// A whole exposition: families in the order they were first declared.
class Exposition {
public:
  /// The family `name`, declared on first use. Declaring it again returns
  /// the same family; a different type or help is a programming error
  /// (std::logic_error), as is an invalid name (std::invalid_argument).
  Family& family(std::string_view name, Type type, std::string_view help);

  /// The text: for each family "# HELP", "# TYPE", then its samples; every
  /// line ends with '\n'.
  std::string text() const;

private:
  std::deque<Family> families_; ///< a deque: references stay valid as it grows
};

} // namespace healthtable::metrics
