// What the extension's files share: the two objects the read path touches,
// written against the CPython C API so that table.is_healthy(handle) is one
// METH_O call into the library's inline read, with no pybind11 dispatch.
#pragma once

#include <Python.h>

#include <healthtable/table.hpp>

#include <pybind11/pybind11.h>

#include <memory>

namespace healthtable::python {

namespace py = pybind11;

/// A Table as Python sees it. The view is shared, not owned, so a Writer's
/// own view (Writer.table) lives as long as the Writer and its Tables do.
struct TableObject {
  PyObject ob_base; // PyObject_HEAD, spelt out so clang-format keeps it a member
  std::shared_ptr<const Table> table;
};

/// A Handle: the library's handle, the view it reads, and a strong
/// reference to the TableObject that owns that view, so the view cannot go
/// while a handle still reads it.
struct HandleObject {
  PyObject ob_base; // PyObject_HEAD, spelt out so clang-format keeps it a member
  const Table* table;
  Handle handle;
  PyObject* owner;
};

extern PyTypeObject* g_table_type;
extern PyTypeObject* g_handle_type;

/// Creates the Table and Handle types and adds them to `m`.
void add_table_types(py::module_& m);
/// Table's slow methods (open, get_state, snapshot, info, pick, events ...).
void add_table_methods(py::module_& m);
/// ProviderState, TableInfo and Pick: the objects those methods return.
void add_state_types(py::module_& m);
/// Reporter and Writer.
void add_reporter(py::module_& m);
void add_writer(py::module_& m);
/// Maps healthtable::Error to healthtable.Error's subclasses.
void add_error_translator(py::module_& m);

/// A new TableObject over `table`.
py::object wrap_table(std::shared_ptr<const Table> table);
/// A new HandleObject for `provider` in `owner` (a TableObject).
py::object make_handle(py::handle owner, std::string_view provider);
/// The view of `self`, which must be a TableObject (TypeError otherwise).
const Table& table_of(py::handle self);
/// The library handle of a HandleObject that belongs to `owner`; throws
/// TypeError for other objects and ValueError for another Table's handle.
Handle handle_of(py::handle owner, py::handle h);
inline bool is_handle(PyObject* o) noexcept { return Py_IS_TYPE(o, g_handle_type); }

/// Unix nanoseconds to Unix seconds; 0 stays 0.0 (the reference's "never").
inline double seconds(std::int64_t ns) noexcept { return static_cast<double>(ns) / 1e9; }

} // namespace healthtable::python
