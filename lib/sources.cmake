# The library's sources, in one list: the main build (lib/CMakeLists.txt)
# and the fuzzer's instrumented copy (fuzz/CMakeLists.txt) both include it,
# so a new source file cannot be left out of one of them.
set(healthtable_sources
  src/breaker.cpp
  src/c_api.cpp
  src/clock.cpp
  src/event_text.cpp
  src/home.cpp
  src/names.cpp
  src/outcome_text.cpp
  src/override_text.cpp
  src/pick.cpp
  src/policy.cpp
  src/ramp_offset.cpp
  src/report.cpp
  src/reset_text.cpp
  src/retry_after.cpp
  src/segment.cpp
  src/table.cpp
  src/view.cpp
  src/writer.cpp)
# The C ABI's healthtable_version() (in both builds that use this list).
set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/src/c_api.cpp APPEND PROPERTY COMPILE_DEFINITIONS
             HEALTHTABLE_VERSION_STRING="${PROJECT_VERSION}")
