// healthtable::Error to Python: one exception class per Errc, all under
// healthtable.Error, defined in healthtable/_errors.py so that their
// docstrings, bases (ValueError, PermissionError, ...) and .code live with
// the Python API. Looked up by the code's value, which is stable.
#include "binding.hpp"

#include <healthtable/error.hpp>

namespace healthtable::python {

void add_error_translator(py::module_&) {
  // Leaked on purpose: the translator may run while the interpreter shuts
  // down, after module globals are gone.
  static PyObject* by_code =
      py::object(py::module_::import("healthtable._errors").attr("BY_CODE")).release().ptr();
  static PyObject* base =
      py::object(py::module_::import("healthtable._errors").attr("Error")).release().ptr();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      py::int_ code(static_cast<int>(e.code()));
      PyObject* cls = PyDict_GetItem(by_code, code.ptr()); // borrowed
      PyErr_SetString(cls != nullptr ? cls : base, e.what());
    }
  });
}

} // namespace healthtable::python
