// The objects the slow reads return, with the reference module's field
// names (healthy, consecutive_failures, last_check, last_error,
// unhealthy_until: times in Unix seconds, 0.0 for "never") beside what the
// table adds. Each is a copy: reading one never touches the table again.
#include "states.hpp"

#include <healthtable/clock.hpp>

#include <pybind11/stl.h>

#include <string>

namespace healthtable::python {

namespace {

py::object optional_seconds(std::int64_t unix_ns) {
  return unix_ns == 0 ? py::object(py::none()) : py::object(py::float_(seconds(unix_ns)));
}

py::str state_repr(const StateView& v) {
  const ProviderState& s = v.state;
  return py::str(
             "ProviderState(name={!r}, healthy={!r}, available={!r}, consecutive_failures={!r}, "
             "last_check={!r}, last_error={!r}, unhealthy_until={!r}, override={!r}, "
             "registered={!r})")
      .format(s.name, s.healthy, v.available, s.consecutive_failures, seconds(s.last_check_unix_ns),
              s.last_error, seconds(s.unhealthy_until_unix_ns),
              std::string(override_name(s.override_mode)), s.registered);
}

void add_provider_state(py::module_& m) {
  using S = StateView;
  py::class_<S>(m, "ProviderState",
                "One provider's record, copied consistently: the reference module's fields\n"
                "(healthy, consecutive_failures, last_check, last_error, unhealthy_until;\n"
                "times in Unix seconds, 0.0 for never) and the table's additions.")
      .def_property_readonly("name", [](const S& v) { return v.state.name; })
      .def_property_readonly(
          "registered", [](const S& v) { return v.state.registered; },
          "False for a placeholder: a provider the table does not have.")
      .def_property_readonly(
          "healthy", [](const S& v) { return v.state.healthy; },
          "The breaker's flag: False from a trip until a success, even half-open.")
      .def_property_readonly(
          "available", [](const S& v) { return v.available; },
          "What is_healthy() answered when this copy was taken (overrides and\n"
          "the window included, before any slow-start ramp).")
      .def_property_readonly("consecutive_failures",
                             [](const S& v) { return v.state.consecutive_failures; })
      .def_property_readonly(
          "last_check", [](const S& v) { return seconds(v.state.last_check_unix_ns); },
          "Unix seconds of the last outcome; 0.0: never checked.")
      .def_property_readonly(
          "last_error", [](const S& v) { return v.state.last_error; },
          "The last failure's reason; None after a success.")
      .def_property_readonly(
          "unhealthy_until", [](const S& v) { return seconds(v.state.unhealthy_until_unix_ns); },
          "Unix seconds at which the window ends; 0.0: not tripped.")
      .def_property_readonly(
          "override", [](const S& v) { return std::string(override_name(v.state.override_mode)); },
          "'auto', 'down' or 'up'.")
      .def_property_readonly("override_reason",
                             [](const S& v) { return v.state.override_info.reason; })
      .def_property_readonly(
          "override_until",
          [](const S& v) { return optional_seconds(v.state.override_info.until_unix_ns); },
          "Unix seconds at which the override expires; None: until set back.")
      .def_property_readonly("transitions", [](const S& v) { return v.state.transitions; })
      .def_property_readonly("successes", [](const S& v) { return v.state.successes; })
      .def_property_readonly("failures", [](const S& v) { return v.state.failures; })
      .def_property_readonly("slot", [](const S& v) { return v.state.slot; })
      .def_property_readonly("generation", [](const S& v) { return v.state.generation; })
      .def_property_readonly(
          "last_class", [](const S& v) { return std::string(class_name(v.state.last_class)); },
          "The last failure's class ('timeout', 'rate_limited', ...; 'none').")
      .def_property_readonly(
          "last_source", [](const S& v) { return std::string(source_name(v.state.last_source)); },
          "Where the last outcome came from: 'probe', 'report', 'admin', 'peer'.")
      .def_property_readonly("trips", [](const S& v) { return v.state.trips; })
      .def_property_readonly("success_run", [](const S& v) { return v.state.success_run; })
      .def_property_readonly(
          "window", [](const S& v) { return seconds(v.state.window_ns); },
          "Length of the current window, seconds.")
      .def_property_readonly(
          "ramp", [](const S& v) { return seconds(v.state.ramp_ns); },
          "Slow-start span after a window, seconds.")
      .def_property_readonly(
          "class_failures",
          [](const S& v) {
            py::dict d;
            for (std::size_t c = 1; c < kFailureClasses; ++c)
              d[py::str(std::string(class_name(static_cast<FailureClass>(c))))] =
                  v.state.class_failures[c];
            return d;
          },
          "Failures recorded per class, all time.")
      .def("__repr__", &state_repr);
}

void add_table_info(py::module_& m) {
  using I = InfoView;
  py::class_<I>(m, "TableInfo",
                "The table's header facts, whether a writer holds it, and how old its\n"
                "data is (seconds since the writer's last heartbeat).")
      .def_property_readonly("segment", [](const I& v) { return v.info.segment; })
      .def_property_readonly("home", [](const I& v) { return v.info.home; })
      .def_property_readonly("object", [](const I& v) { return v.info.object; })
      .def_property_readonly("layout_version", [](const I& v) { return v.info.layout_version; })
      .def_property_readonly("capacity", [](const I& v) { return v.info.capacity; })
      .def_property_readonly("used", [](const I& v) { return v.info.used; })
      .def_property_readonly("events_capacity", [](const I& v) { return v.info.events_capacity; })
      .def_property_readonly("total_size", [](const I& v) { return v.info.total_size; })
      .def_property_readonly("failure_threshold",
                             [](const I& v) { return v.info.failure_threshold; })
      .def_property_readonly(
          "backoff", [](const I& v) { return seconds(v.info.backoff_ns); },
          "The table's first backoff window, seconds.")
      .def_property_readonly("generation", [](const I& v) { return v.info.generation; })
      .def_property_readonly("created", [](const I& v) { return seconds(v.info.created_unix_ns); })
      .def_property_readonly(
          "writer_pid", [](const I& v) { return v.info.writer_pid; },
          "The last writer to attach; 0: none since create.")
      .def_property_readonly(
          "writer_attached", [](const I& v) { return v.writer_attached; },
          "Whether a writer holds the writer lock now (asked of the kernel).")
      .def_property_readonly(
          "heartbeat", [](const I& v) { return optional_seconds(v.info.heartbeat_unix_ns); },
          "Unix seconds of the writer's last heartbeat; None: never.")
      .def_property_readonly(
          "heartbeat_interval",
          [](const I& v) {
            return v.info.heartbeat_interval_ns == 0
                       ? py::object(py::none())
                       : py::object(py::float_(seconds(v.info.heartbeat_interval_ns)));
          },
          "How often the writer promised to beat, seconds; None: no promise.")
      .def_property_readonly(
          "data_age", [](const I& v) { return v.data_age; },
          "Seconds since the writer's last heartbeat: how old the table's\n"
          "facts may be. None: no heartbeat yet.")
      .def_property_readonly(
          "writer_stale", [](const I& v) { return v.writer_stale; },
          "True when no writer holds the table, or its writer missed 3 promised\n"
          "heartbeats: the table is not being kept fresh.")
      .def_property_readonly("updates", [](const I& v) { return v.info.updates; })
      .def_property_readonly("reports_dropped", [](const I& v) { return v.info.reports_dropped; })
      .def_property_readonly("reports_refused", [](const I& v) { return v.info.reports_refused; })
      .def_property_readonly("events", [](const I& v) { return v.info.events; })
      .def_property_readonly(
          "state",
          [](const I& v) { return v.info.state == SegmentState::live ? "live" : "retired"; })
      .def_property_readonly("owner_uid", [](const I& v) { return v.info.owner_uid; })
      .def_property_readonly("mode", [](const I& v) { return v.info.mode; })
      .def("__repr__", [](const I& v) {
        return "TableInfo(segment='" + v.info.segment + "', used=" + std::to_string(v.info.used) +
               ", capacity=" + std::to_string(v.info.capacity) +
               ", writer_attached=" + (v.writer_attached ? "True" : "False") +
               ", writer_stale=" + (v.writer_stale ? "True" : "False") + ")";
      });
}

void add_pick(py::module_& m) {
  using P = PickView;
  py::class_<P>(m, "Pick", "The answer of Table.pick(chain).")
      .def_readonly("index", &P::index, "Into the chain; None: route nowhere.")
      .def_readonly("provider", &P::provider, "The chosen provider's name; None with index.")
      .def_readonly("available", &P::available, "The chosen provider is available now.")
      .def_readonly("panic", &P::panic,
                    "None was available; this is the one whose window ends first.")
      .def_readonly("reason", &P::reason, "'available', 'panic', 'none', 'forced_down' or 'empty'.")
      .def_readonly("retry_at", &P::retry_at,
                    "When none is available: Unix seconds at which one of the chain is\n"
                    "back for this process. None otherwise, or when all are forced down.")
      .def("__bool__", [](const P& p) { return p.index.has_value(); })
      .def("__repr__", [](const P& p) {
        return py::str("Pick(index={!r}, provider={!r}, reason={!r}, retry_at={!r})")
            .format(p.index, p.provider, p.reason, p.retry_at);
      });
}

} // namespace

StateView state_view(ProviderState s) {
  const bool available = !s.registered || s.available(Instant::now().mono_ns);
  return StateView{std::move(s), available};
}

InfoView info_view(const Table& table) {
  InfoView v{table.info(), table.writer_status() == WriterStatus::attached, py::none(), true};
  if (v.info.heartbeat_mono_ns != 0) {
    const std::int64_t age = detail::coarse_mono_ns() - v.info.heartbeat_mono_ns;
    v.data_age = py::float_(seconds(age < 0 ? 0 : age));
    // Tools call a writer stale after 3 missed beats (table.hpp, TableInfo).
    v.writer_stale = !v.writer_attached ||
                     (v.info.heartbeat_interval_ns > 0 && age > 3 * v.info.heartbeat_interval_ns);
  } else {
    v.writer_stale = !v.writer_attached;
  }
  return v;
}

void add_state_types(py::module_& m) {
  add_provider_state(m);
  add_table_info(m);
  add_pick(m);
}

} // namespace healthtable::python
