# The extension's sources, in one list: CMake (python/CMakeLists.txt) reads
# it, and setup.py parses it, so pip and CMake build the same files.
set(healthtable_python_sources
  src/errors.cpp
  src/module.cpp
  src/reporter.cpp
  src/states.cpp
  src/table_methods.cpp
  src/table_type.cpp
  src/writer.cpp)
