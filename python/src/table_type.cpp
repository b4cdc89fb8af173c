// The Table and Handle types, and the read path: table.is_healthy(x) and
// handle.is_healthy() are METH_O / METH_NOARGS functions that call the
// library's inline Table::is_healthy() directly. What they cost is
// CPython's own call overhead plus one acquire load (docs/performance.md).
#include "binding.hpp"

#include <new>
#include <string>
#include <string_view>

namespace healthtable::python {

PyTypeObject* g_table_type = nullptr;
PyTypeObject* g_handle_type = nullptr;

namespace {

TableObject* as_table(PyObject* o) noexcept { return reinterpret_cast<TableObject*>(o); }
HandleObject* as_handle(PyObject* o) noexcept { return reinterpret_cast<HandleObject*>(o); }

PyObject* foreign_handle(PyObject* h) {
  PyErr_Format(PyExc_ValueError,
               "handle of '%s' belongs to another Table; take handles from the Table that "
               "reads them",
               std::string(as_handle(h)->handle.name()).c_str());
  return nullptr;
}

PyObject* not_a_provider(PyObject* arg) {
  PyErr_Format(PyExc_TypeError, "is_healthy() takes a Handle or a provider name (str), not %.100s",
               Py_TYPE(arg)->tp_name);
  return nullptr;
}

// table.is_healthy(handle_or_name): the hot path. The handle branch comes
// first and does no more than the C++ reader: one type test, one pointer
// compare, then the inline read.
PyObject* table_is_healthy(PyObject* self, PyObject* arg) {
  if (is_handle(arg)) [[likely]] {
    HandleObject* h = as_handle(arg);
    if (h->owner != self) [[unlikely]]
      return foreign_handle(arg);
    return PyBool_FromLong(h->table->is_healthy(h->handle));
  }
  if (PyUnicode_Check(arg)) {
    Py_ssize_t n = 0;
    // ASCII str objects hand out their own bytes: no copy, no allocation.
    const char* s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (s == nullptr) return nullptr;
    return PyBool_FromLong(
        as_table(self)->table->is_healthy(std::string_view(s, static_cast<std::size_t>(n))));
  }
  return not_a_provider(arg);
}

PyObject* handle_is_healthy(PyObject* self, PyObject*) {
  HandleObject* h = as_handle(self);
  return PyBool_FromLong(h->table->is_healthy(h->handle));
}

PyObject* handle_name(PyObject* self, void*) {
  const std::string_view n = as_handle(self)->handle.name();
  return PyUnicode_FromStringAndSize(n.data(), static_cast<Py_ssize_t>(n.size()));
}

PyObject* handle_table(PyObject* self, void*) {
  PyObject* owner = as_handle(self)->owner;
  Py_INCREF(owner);
  return owner;
}

PyObject* handle_repr(PyObject* self) {
  const std::string name(as_handle(self)->handle.name());
  const std::string& segment = as_handle(self)->table->segment();
  return PyUnicode_FromFormat("<healthtable.Handle '%s' of table '%s'>", name.c_str(),
                              segment.c_str());
}

void handle_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  Py_DECREF(as_handle(self)->owner);
  type->tp_free(self);
  Py_DECREF(type); // heap types are referenced by their instances
}

PyObject* table_name(PyObject* self, void*) {
  const std::string& s = as_table(self)->table->segment();
  return PyUnicode_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
}

PyObject* table_repr(PyObject* self) {
  return PyUnicode_FromFormat("<healthtable.Table '%s'>", as_table(self)->table->segment().c_str());
}

void table_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  as_table(self)->table.~shared_ptr();
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef g_table_methods[] = {
    {"is_healthy", table_is_healthy, METH_O,
     "is_healthy(provider) -> bool\n\n"
     "Whether to route to `provider`, a Handle of this table (the fast path:\n"
     "one load from shared memory when it is healthy) or a name (an index\n"
     "probe first). A provider the table does not have is healthy. No lock,\n"
     "no system call, no write to shared memory."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef g_handle_methods[] = {{"is_healthy", handle_is_healthy, METH_NOARGS,
                                   "is_healthy() -> bool\n\nThe same as table.is_healthy(handle)."},
                                  {nullptr, nullptr, 0, nullptr}};

PyGetSetDef g_handle_getset[] = {
    {"name", handle_name, nullptr, "The provider's name.", nullptr},
    {"table", handle_table, nullptr, "The Table this handle reads.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyGetSetDef g_table_getset[] = {{"name", table_name, nullptr, "The table's name.", nullptr},
                                {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot g_table_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("A read-only view of one health table, following it when it is recreated,\n"
                       "grown or replaced. Open with Table.open(name).")},
    {Py_tp_methods, g_table_methods},
    {Py_tp_getset, g_table_getset},
    {Py_tp_repr, reinterpret_cast<void*>(table_repr)},
    {Py_tp_dealloc, reinterpret_cast<void*>(table_dealloc)},
    {0, nullptr}};

PyType_Slot g_handle_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("A provider of one Table, taken once with table.handle(name). It stays\n"
                       "right for the life of its Table: when the provider registers, is\n"
                       "forgotten, or the table is recreated, its next read binds again.")},
    {Py_tp_methods, g_handle_methods},
    {Py_tp_getset, g_handle_getset},
    {Py_tp_repr, reinterpret_cast<void*>(handle_repr)},
    {Py_tp_dealloc, reinterpret_cast<void*>(handle_dealloc)},
    {0, nullptr}};

// Neither type can be made from Python: Table.open() and table.handle() do.
PyType_Spec g_table_spec = {"healthtable.Table", sizeof(TableObject), 0,
                            Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, g_table_slots};
PyType_Spec g_handle_spec = {"healthtable.Handle", sizeof(HandleObject), 0,
                             Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION |
                                 Py_TPFLAGS_IMMUTABLETYPE,
                             g_handle_slots};

PyTypeObject* make_type(PyType_Spec& spec) {
  PyObject* t = PyType_FromSpec(&spec);
  if (t == nullptr) throw py::error_already_set();
  return reinterpret_cast<PyTypeObject*>(t);
}

} // namespace

void add_table_types(py::module_& m) {
  g_table_type = make_type(g_table_spec);
  g_handle_type = make_type(g_handle_spec);
  // The module keeps one reference each; the globals borrow them.
  m.add_object("Table",
               py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(g_table_type)));
  m.add_object("Handle",
               py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(g_handle_type)));
}

py::object wrap_table(std::shared_ptr<const Table> table) {
  PyObject* o = g_table_type->tp_alloc(g_table_type, 0);
  if (o == nullptr) throw py::error_already_set();
  new (&as_table(o)->table) std::shared_ptr<const Table>(std::move(table));
  return py::reinterpret_steal<py::object>(o);
}

py::object make_handle(py::handle owner, std::string_view provider) {
  const Table& table = table_of(owner);
  const Handle h = table.handle(provider); // throws invalid_name before we allocate
  PyObject* o = g_handle_type->tp_alloc(g_handle_type, 0);
  if (o == nullptr) throw py::error_already_set();
  HandleObject* ho = as_handle(o);
  ho->table = &table;
  new (&ho->handle) Handle(h);
  ho->owner = owner.inc_ref().ptr();
  return py::reinterpret_steal<py::object>(o);
}

const Table& table_of(py::handle self) {
  if (!PyObject_TypeCheck(self.ptr(), g_table_type))
    throw py::type_error(std::string("expected a healthtable.Table, not ") +
                         Py_TYPE(self.ptr())->tp_name);
  return *as_table(self.ptr())->table;
}

Handle handle_of(py::handle owner, py::handle h) {
  if (!is_handle(h.ptr()))
    throw py::type_error(std::string("expected a healthtable.Handle, not ") +
                         Py_TYPE(h.ptr())->tp_name);
  if (as_handle(h.ptr())->owner != owner.ptr()) {
    foreign_handle(h.ptr());
    throw py::error_already_set();
  }
  return as_handle(h.ptr())->handle;
}

} // namespace healthtable::python
