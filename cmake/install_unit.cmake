# Run at install time (install(CODE) in cmake/install.cmake): installs
# docs/examples/healthprobe.service with the paths of this install. The
# example names the default prefix, /usr/local; CMAKE_INSTALL_PREFIX here is
# the one the install runs with (cmake --install --prefix, CPack's /usr).
#
# In: healthtable_unit_in, healthtable_staging_dir (a build directory),
# healthtable_bindir, healthtable_docdir (relative
# GNU install dirs).
file(READ "${healthtable_unit_in}" unit)
string(REPLACE "/usr/local/bin/healthprobe" "${CMAKE_INSTALL_PREFIX}/${healthtable_bindir}/healthprobe"
       unit "${unit}")
string(REPLACE "file:///usr/local/share/doc/healthtable/"
       "file://${CMAKE_INSTALL_PREFIX}/${healthtable_docdir}/" unit "${unit}")
string(FIND "${unit}" "/usr/local" leftover)
if(NOT leftover EQUAL -1 AND NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr/local")
  message(FATAL_ERROR "healthprobe.service still names /usr/local after the rewrite: "
                      "cmake/install_unit.cmake must learn the new path")
endif()
set(staged "${healthtable_staging_dir}/healthprobe.service.installed")
file(WRITE "${staged}" "${unit}")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     RENAME healthprobe.service FILES "${staged}")
