// Table's methods off the read path, through pybind11: opening, handles,
// copies of records, header facts and picks. Each may allocate; none takes
// a lock on the table or writes to it.
#include "states.hpp"

#include <healthtable/clock.hpp>

#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace healthtable::python {

namespace {

/// Binds `f` as method `name` of the Table type (a heap type of our own,
/// so pybind11 attaches it as it would to one of its classes).
template <class F, class... Extra> void def_method(const char* name, F&& f, const Extra&... extra) {
  py::handle cls(reinterpret_cast<PyObject*>(g_table_type));
  py::cpp_function cf(std::forward<F>(f), py::name(name), py::is_method(cls),
                      py::sibling(py::getattr(cls, name, py::none())), extra...);
  cls.attr(name) = cf;
}

std::string_view name_of(py::handle s) {
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(s.ptr(), &n);
  if (p == nullptr) throw py::error_already_set();
  return {p, static_cast<std::size_t>(n)};
}

PickPolicy parse_policy(std::string_view p) {
  if (p == "panic") return PickPolicy::panic;
  if (p == "none") return PickPolicy::none;
  throw Error(Errc::invalid_argument,
              "pick: policy '" + std::string(p) + "' is not one of 'panic', 'none'");
}

PickView pick_view(const Pick& p, std::optional<std::string_view> chosen) {
  PickView v;
  v.index = p.index;
  if (chosen) v.provider = std::string(*chosen);
  v.available = p.available;
  v.panic = p.panic;
  v.reason = std::string(pick_reason_name(p.reason));
  if (p.retry_at) v.retry_at = seconds(p.retry_at->unix_ns);
  return v;
}

PickView pick(py::handle self, const py::sequence& chain, std::string_view policy_name) {
  const Table& table = table_of(self);
  const PickPolicy policy = parse_policy(policy_name);
  const auto n = static_cast<std::size_t>(py::len(chain));
  if (n == 0) return pick_view(table.pick(std::span<const Handle>{}, policy), std::nullopt);
  if (is_handle(chain[0].ptr())) {
    std::vector<Handle> handles;
    handles.reserve(n);
    for (py::handle h : chain) {
      if (!is_handle(h.ptr()))
        throw py::type_error("pick: a chain is all Handles or all names, not a mix");
      handles.push_back(handle_of(self, h));
    }
    const Pick p = table.pick(handles, policy);
    return pick_view(p, p.index ? std::optional(handles[*p.index].name()) : std::nullopt);
  }
  // The str objects own the UTF-8 the views point into: hold them for the
  // pick (a sequence may hand out new objects on each access).
  std::vector<py::object> owners;
  std::vector<std::string_view> names;
  owners.reserve(n);
  names.reserve(n);
  for (py::handle s : chain) {
    if (!PyUnicode_Check(s.ptr()))
      throw py::type_error("pick: a chain is all Handles or all names (str), not " +
                           std::string(Py_TYPE(s.ptr())->tp_name));
    owners.push_back(py::reinterpret_borrow<py::object>(s));
    names.push_back(name_of(owners.back()));
  }
  const Pick p = table.pick(names, policy);
  return pick_view(p, p.index ? std::optional(names[*p.index]) : std::nullopt);
}

std::optional<StateView> get_state(py::handle self, py::handle provider) {
  const Table& table = table_of(self);
  if (is_handle(provider.ptr())) {
    ProviderState s = table.get_state(handle_of(self, provider));
    if (!s.registered) return std::nullopt;
    return state_view(std::move(s));
  }
  if (!PyUnicode_Check(provider.ptr()))
    throw py::type_error("get_state() takes a Handle or a provider name (str), not " +
                         std::string(Py_TYPE(provider.ptr())->tp_name));
  std::optional<ProviderState> s = table.get_state(name_of(provider));
  if (!s) return std::nullopt;
  return state_view(std::move(*s));
}

py::dict snapshot(py::handle self, const std::optional<std::vector<std::string>>& expected) {
  const Table& table = table_of(self);
  std::vector<ProviderState> all = expected ? table.snapshot(*expected) : table.snapshot();
  py::dict out;
  for (ProviderState& s : all) {
    py::str key(s.name);
    out[key] = py::cast(state_view(std::move(s)));
  }
  return out;
}

bool is_healthy_at(py::handle self, py::handle provider, std::int64_t mono_ns) {
  const Table& table = table_of(self);
  if (is_handle(provider.ptr())) return table.is_healthy(handle_of(self, provider), mono_ns);
  if (!PyUnicode_Check(provider.ptr()))
    throw py::type_error("is_healthy_at() takes a Handle or a provider name (str)");
  return table.is_healthy(name_of(provider), mono_ns);
}

} // namespace

void add_table_methods(py::module_& m) {
  py::handle cls(reinterpret_cast<PyObject*>(g_table_type));
  cls.attr("open") = py::staticmethod(py::cpp_function(
      [](std::string_view name, std::optional<std::uint32_t> owner) {
        OpenOptions options;
        options.owner = owner;
        return wrap_table(std::make_shared<const Table>(Table::open(name, options)));
      },
      py::name("open"), py::arg("name"), py::kw_only(), py::arg("owner") = py::none(),
      "open(name, *, owner=None) -> Table\n\n"
      "Opens the table `name` read-only. `owner`: the uid it must belong to\n"
      "(default: $HEALTHTABLE_OWNER, else its home's owner). Raises NoSuchTable,\n"
      "PermissionDenied, WrongOwner, NotReady, NotATable, IncompatibleLayout,\n"
      "Corrupt, InvalidName."));
  def_method(
      "handle",
      [](py::handle self, std::string_view provider) { return make_handle(self, provider); },
      py::arg("provider"),
      "handle(provider) -> Handle\n\n"
      "The handle of a provider, registered or not. Takes a process-private\n"
      "lock: call it at start-up, not per request. Raises InvalidName.");
  def_method("get_state", &get_state, py::arg("provider"),
             "get_state(provider) -> ProviderState | None\n\n"
             "A consistent copy of the record of `provider` (a Handle or a name);\n"
             "None when the table does not have it.");
  def_method("snapshot", &snapshot, py::kw_only(), py::arg("expected") = py::none(),
             "snapshot(*, expected=None) -> dict[str, ProviderState]\n\n"
             "Copies of every registered provider, plus zero-state placeholders\n"
             "(registered=False) for expected names the table does not have.");
  def_method(
      "info", [](py::handle self) { return info_view(table_of(self)); },
      "info() -> TableInfo\n\nHeader facts, writer liveness (asked of the kernel: a few\n"
      "system calls) and the data's age.");
  def_method("pick", &pick, py::arg("chain"), py::kw_only(), py::arg("policy") = "panic",
             "pick(chain, *, policy='panic') -> Pick\n\n"
             "The first provider of `chain` (all Handles or all names) that\n"
             "is_healthy() would route to. When none is: policy 'panic' routes to the\n"
             "one whose window ends first (pick.panic), 'none' routes nowhere and\n"
             "gives pick.retry_at.");
  def_method("is_healthy_at", &is_healthy_at, py::arg("provider"), py::arg("mono_ns"),
             "is_healthy_at(provider, mono_ns) -> bool\n\n"
             "is_healthy() at an explicit moment on this process's CLOCK_MONOTONIC, in\n"
             "nanoseconds (tests, replays).");
  def_method(
      "replaced", [](py::handle self) { return table_of(self).replaced(); },
      "replaced() -> bool\n\nWhether the table at this name is no longer the one this view\n"
      "maps. Handles follow by themselves; this is for tools.");
  def_method(
      "refresh", [](py::handle self) { return table_of(self).refresh(); },
      "refresh() -> bool\n\nRe-opens the table by name if it was replaced; True when it moved.");
  (void)m;
}

} // namespace healthtable::python
