// healthtable._healthtable: the extension behind `import healthtable`.
#include "binding.hpp"

PYBIND11_MODULE(_healthtable, m) {
  namespace hp = healthtable::python;
  m.doc() = "The healthtable C++ library, bound for Python (see the healthtable package).";
  hp::add_error_translator(m);
  hp::add_table_types(m);
  hp::add_state_types(m);
  hp::add_table_methods(m);
  hp::add_reporter(m);
  hp::add_writer(m);
}
