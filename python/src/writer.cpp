// Writer: the one process that changes a table directly (tests, tools, and
// healthtable.compat's private tables). In production the prober writes;
// workers use Reporter.
#include "binding.hpp"

#include <healthtable/names.hpp>
#include <healthtable/outcome_text.hpp>
#include <healthtable/writer.hpp>

#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace healthtable::python {

namespace {

/// The Writer, shared with the Tables taken from it (Writer.table), so the
/// writer lock is released when the last of them goes.
struct PyWriter {
  std::shared_ptr<Writer> writer;
  py::object table; ///< the TableObject over writer->table(), made once

  Writer& get() const {
    if (!writer) throw py::value_error("this Writer is closed");
    return *writer;
  }
};

std::chrono::nanoseconds duration(double s, const char* what) {
  if (!std::isfinite(s) || s < 0 || s > std::chrono::duration<double>(kMaxBackoff).count())
    throw Error(Errc::invalid_argument,
                std::string(what) + " must be a number of seconds from 0 to 365 days");
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(s * 1e9)));
}

Instant at(std::optional<std::int64_t> mono_ns, std::optional<std::int64_t> unix_ns) {
  if (!mono_ns && !unix_ns) return Instant::now();
  const Instant now = Instant::now();
  return Instant{mono_ns.value_or(now.mono_ns), unix_ns.value_or(now.unix_ns)};
}

Override parse_override(std::string_view mode) {
  if (mode == "auto") return Override::automatic;
  if (mode == "down") return Override::forced_down;
  if (mode == "up") return Override::forced_up;
  throw Error(Errc::invalid_argument,
              "override '" + sanitize_reason(mode, 40) + "' is not one of 'auto', 'down', 'up'");
}

std::string transition(Transition t) { return std::string(transition_name(t)); }

PyWriter wrap(Writer w) {
  PyWriter p{std::make_shared<Writer>(std::move(w)), py::none()};
  p.table = wrap_table(std::shared_ptr<const Table>(p.writer, &p.writer->table()));
  return p;
}

} // namespace

void add_writer(py::module_& m) {
  py::class_<PyWriter>(m, "Writer",
                       "The single process allowed to change a table (its writer lock). In\n"
                       "production the prober is that process and workers use Reporter; this\n"
                       "is for tests, tools and private tables.")
      .def_static(
          "create",
          [](std::string_view name, std::uint32_t failure_threshold, double backoff,
             std::uint32_t capacity, std::uint32_t mode, bool replace) {
            CreateOptions o;
            o.capacity = capacity;
            o.mode = mode;
            o.replace = replace;
            o.policy.failure_threshold = failure_threshold;
            o.policy.backoff = duration(backoff, "backoff");
            validate_policy(o.policy);
            return wrap(Writer::create(name, o));
          },
          py::arg("name"), py::kw_only(), py::arg("failure_threshold") = kDefaultFailureThreshold,
          py::arg("backoff") = static_cast<double>(kDefaultBackoffNs) / 1e9,
          py::arg("capacity") = kDefaultCapacity, py::arg("mode") = 0644,
          py::arg("replace") = false,
          "create(name, *, failure_threshold=2, backoff=60.0, capacity=64, mode=0o644,\n"
          "       replace=False) -> Writer\n\n"
          "Creates the table and takes its writer lock. Raises AlreadyExists,\n"
          "InvalidName, InvalidArgument, PermissionDenied, NoSpace, WriterBusy.")
      .def_static(
          "open", [](std::string_view name) { return wrap(Writer::open(name)); }, py::arg("name"),
          "open(name) -> Writer\n\nTakes the writer lock of an existing table; WriterBusy when\n"
          "another process holds it (the prober, usually).")
      .def_static("destroy", &Writer::destroy, py::arg("name"), py::kw_only(),
                  py::arg("force") = false,
                  "destroy(name, *, force=False)\n\nRemoves the table; its readers see it gone.")
      .def_property_readonly(
          "table",
          [](const PyWriter& w) {
            w.get();
            return w.table;
          },
          "A Table over the writer's own mapping.")
      .def(
          "add", [](PyWriter& w, std::string_view p) { w.get().add(p); }, py::arg("provider"),
          "Registers a provider (idempotent). Raises InvalidName, TableFull.")
      .def(
          "forget", [](PyWriter& w, std::string_view p) { w.get().forget(p); }, py::arg("provider"),
          "Gives a provider's slot back. Raises UnknownProvider.")
      .def(
          "mark_healthy",
          [](PyWriter& w, std::string_view p, std::optional<std::int64_t> mono_ns,
             std::optional<std::int64_t> unix_ns) {
            return transition(w.get().mark_healthy(p, at(mono_ns, unix_ns)));
          },
          py::arg("provider"), py::kw_only(), py::arg("mono_ns") = py::none(),
          py::arg("unix_ns") = py::none(),
          "mark_healthy(provider, *, mono_ns=None, unix_ns=None) -> str\n\n"
          "A success; returns the transition ('none', 'recovered', ...). mono_ns and\n"
          "unix_ns give the moment explicitly (CLOCK_MONOTONIC and Unix ns).")
      .def(
          "mark_unhealthy",
          [](PyWriter& w, std::string_view p, std::string_view reason,
             std::optional<std::int64_t> mono_ns, std::optional<std::int64_t> unix_ns) {
            return transition(w.get().mark_unhealthy(p, reason, at(mono_ns, unix_ns)));
          },
          py::arg("provider"), py::arg("reason"), py::kw_only(), py::arg("mono_ns") = py::none(),
          py::arg("unix_ns") = py::none(),
          "mark_unhealthy(provider, reason, *, mono_ns=None, unix_ns=None) -> str\n\n"
          "A failure of class 'other'; returns the transition ('tripped', 'rearmed', ...).")
      .def(
          "record",
          [](PyWriter& w, std::string_view p, std::string_view cls, std::string_view reason,
             std::optional<double> retry_after, std::optional<std::int64_t> mono_ns,
             std::optional<std::int64_t> unix_ns) {
            Outcome o;
            o.failure_class = cls == "none" ? FailureClass::none : parse_failure_class(cls, "cls");
            o.reason = reason;
            o.source = Source::admin;
            if (retry_after) o.retry_after = duration(*retry_after, "retry_after");
            return transition(w.get().record(p, o, at(mono_ns, unix_ns)));
          },
          py::arg("provider"), py::arg("cls"), py::arg("reason") = "", py::kw_only(),
          py::arg("retry_after") = py::none(), py::arg("mono_ns") = py::none(),
          py::arg("unix_ns") = py::none(),
          "record(provider, cls, reason='', *, retry_after=None, mono_ns=None,\n"
          "       unix_ns=None) -> str\n\n"
          "One outcome through the provider's breaker: cls 'none' is a success, else\n"
          "a failure class. Returns the transition.")
      .def(
          "set_override",
          [](PyWriter& w, std::string_view p, std::string_view mode,
             std::optional<double> expires_after, std::string reason) {
            OverrideRequest r;
            r.mode = parse_override(mode);
            if (expires_after) r.expires_after = duration(*expires_after, "expires_after");
            r.reason = std::move(reason);
            w.get().set_override(p, r);
          },
          py::arg("provider"), py::arg("mode"), py::kw_only(),
          py::arg("expires_after") = py::none(), py::arg("reason") = "",
          "set_override(provider, mode, *, expires_after=None, reason='')\n\n"
          "mode 'down', 'up' or 'auto'; registers an unknown provider.")
      .def(
          "reset",
          [](PyWriter& w, std::optional<std::string> p) {
            if (p)
              w.get().reset(*p);
            else
              w.get().reset();
          },
          py::arg("provider") = py::none(),
          "reset(provider=None)\n\nOne provider (or all) back to the zero state.")
      .def(
          "grow", [](PyWriter& w, std::uint32_t capacity) { w.get().grow(capacity); },
          py::arg("capacity"), "Moves the table into a larger object; readers follow.")
      .def(
          "recreate", [](PyWriter& w) { w.get().recreate(); },
          "A fresh object at the same capacity; readers follow.")
      .def(
          "heartbeat", [](PyWriter& w) { w.get().heartbeat(); }, "Stamps the writer heartbeat.")
      .def(
          "set_heartbeat_interval",
          [](PyWriter& w, double s) { w.get().set_heartbeat_interval(duration(s, "interval")); },
          py::arg("seconds"), "Promises a heartbeat at least this often (0: no promise).")
      .def(
          "close",
          [](PyWriter& w) {
            w.table = py::none();
            w.writer.reset();
          },
          "Gives up this object's hold on the writer lock; the lock goes when the\n"
          "Tables taken from Writer.table (and their handles) are gone too.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyWriter& w, py::args) {
        w.table = py::none();
        w.writer.reset();
      });
}

} // namespace healthtable::python
