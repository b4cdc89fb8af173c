// Reporter: a worker's outcomes to the prober, one non-blocking sendto()
// each. Safe inside an asyncio event loop: it never waits for anything.
#include "binding.hpp"

#include <healthtable/outcome_text.hpp>
#include <healthtable/report.hpp>
#include <healthtable/writer.hpp>

#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string_view>

namespace healthtable::python {

namespace {

std::optional<std::chrono::nanoseconds> hint(std::optional<double> retry_after) {
  if (!retry_after) return std::nullopt;
  if (!std::isfinite(*retry_after))
    throw Error(Errc::invalid_argument, "retry_after must be a finite number of seconds");
  // The prober caps a hint at its policy's max_hint anyway; this only keeps
  // the conversion to nanoseconds in range.
  const double s =
      std::clamp(*retry_after, 0.0, std::chrono::duration<double>(kMaxBackoff).count());
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(s * 1e9)));
}

} // namespace

void add_reporter(py::module_& m) {
  py::class_<Reporter>(m, "Reporter",
                       "Tells the table's prober the outcomes a worker sees, so every worker's\n"
                       "failures fold into one breaker. Each call is one non-blocking sendto():\n"
                       "it never blocks and never raises for a prober that is down or busy;\n"
                       "it returns False instead.")
      .def(py::init<std::string_view>(), py::arg("name"),
           "Reporter(name): validates the table name (InvalidName) and makes the\n"
           "socket; a prober that starts later is reached.")
      .def(
          "failure",
          [](Reporter& r, std::string_view provider, std::string_view reason, std::string_view cls,
             std::optional<double> retry_after) {
            const FailureClass c = parse_failure_class(cls, "failure: cls");
            return r.failure(provider, reason, c, hint(retry_after));
          },
          py::arg("provider"), py::arg("reason") = "", py::kw_only(), py::arg("cls") = "other",
          py::arg("retry_after") = py::none(),
          "failure(provider, reason='', *, cls='other', retry_after=None) -> bool\n\n"
          "Reports a failure. `cls`: 'timeout', 'connect', 'server', 'rate_limited',\n"
          "'auth', 'client' or 'other' (InvalidArgument otherwise); `retry_after`:\n"
          "a retry hint in seconds (Retry-After). True when the datagram was queued.")
      .def("success", &Reporter::success, py::arg("provider"),
           "success(provider) -> bool\n\nReports a success. True when the datagram was queued.");
}

} // namespace healthtable::python
