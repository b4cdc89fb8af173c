# What `cmake --install` puts where (GNU install dirs under the prefix), and
# so what the .deb holds (cmake/packaging.cmake installs the same tree into
# /usr):
#   lib/ (LIBDIR)            libhealthtable.a, libhealthtable.so.0[.x.y] + .so
#   include/healthtable/     the public headers (C++ and the C ABI)
#   LIBDIR/cmake/healthtable/ healthtableConfig.cmake + version, the export
#   LIBDIR/pkgconfig/        healthtable.pc
#   bin/                     healthctl, healthprobe
#   share/man/man{1,7,8}/    healthctl(1), healthtable(7), healthprobe(8)
#   share/doc/healthtable/   docs/*.md, examples/
#   share/bash-completion/completions/healthctl
#   lib/systemd/system/      healthprobe.service
#   lib/sysusers.d/, lib/tmpfiles.d/  the prober's user, the run directory
include(CMakePackageConfigHelpers)

set(healthtable_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/healthtable)

# The libraries and the export set. healthtable::healthtable is the static
# library, as it is in this build tree, so find_package and add_subdirectory
# users link the same thing: the read path is inline in table.hpp, and
# nothing has to be found at run time. healthtable::healthtable_shared is
# libhealthtable.so.0, for those who want the shared one.
set(healthtable_install_targets healthtable)
if(TARGET healthtable_shared)
  list(APPEND healthtable_install_targets healthtable_shared)
endif()
install(TARGETS ${healthtable_install_targets}
  EXPORT healthtableTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# The whole directory: every header, detail/ and the C ABI's healthtable.h.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/lib/include/healthtable
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT healthtableTargets
  NAMESPACE healthtable::
  FILE healthtableTargets.cmake
  DESTINATION ${healthtable_cmake_dir})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/healthtableConfig.cmake.in
  ${PROJECT_BINARY_DIR}/healthtableConfig.cmake
  INSTALL_DESTINATION ${healthtable_cmake_dir})
# 0.x: a minor release may change the API, so only the same major.minor is
# compatible while the major is 0; SameMinorVersion says exactly that. (From
# 1.0, SameMajorVersion.)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/healthtableConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/healthtableConfig.cmake
              ${PROJECT_BINARY_DIR}/healthtableConfigVersion.cmake
  DESTINATION ${healthtable_cmake_dir})

# pkg-config: configured here but for the prefix, which is only known at
# install time (cmake --install --prefix, CPack's /usr): the install writes it.
set(healthtable_prefix "@healthtable_prefix@")
configure_file(${PROJECT_SOURCE_DIR}/cmake/healthtable.pc.in
  ${PROJECT_BINARY_DIR}/healthtable.pc.in @ONLY)
install(CODE "
  set(healthtable_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/healthtable.pc.in\"
                 \"${PROJECT_BINARY_DIR}/healthtable.pc.installed\" @ONLY)
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\"
       TYPE FILE RENAME healthtable.pc FILES \"${PROJECT_BINARY_DIR}/healthtable.pc.installed\")")

# Docs and examples.
file(GLOB healthtable_docs ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${healthtable_docs} ${PROJECT_SOURCE_DIR}/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/examples/
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
  PATTERN "__pycache__" EXCLUDE)

# The nginx integration (docs/nginx.md): its Lua module and example config,
# where lua_package_path can name them.
install(FILES ${PROJECT_SOURCE_DIR}/integrations/nginx/healthtable.lua
              ${PROJECT_SOURCE_DIR}/integrations/nginx/nginx.conf.example
  DESTINATION ${CMAKE_INSTALL_DATADIR}/healthtable/nginx)

# The prober's system user and the run directory (packaging/). Files only:
# the .deb's postinst applies them; after a plain `cmake --install` run
# systemd-sysusers and systemd-tmpfiles --create yourself.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/sysusers.d/healthtable.conf
  DESTINATION lib/sysusers.d)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/tmpfiles.d/healthtable.conf
  DESTINATION lib/tmpfiles.d)

if(HEALTHTABLE_BUILD_TOOLS)
  # healthctl and healthprobe install themselves (tools/*/CMakeLists.txt).
  install(FILES ${PROJECT_SOURCE_DIR}/tools/completion/healthctl.bash
    DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
    RENAME healthctl)
  # The example unit names /usr/local (the default prefix); the installed
  # one names the prefix it is installed under, which is only known at
  # install time (cmake --install --prefix, CPack's /usr).
  install(CODE "
    set(healthtable_unit_in \"${PROJECT_SOURCE_DIR}/docs/examples/healthprobe.service\")
    set(healthtable_bindir \"${CMAKE_INSTALL_BINDIR}\")
    set(healthtable_docdir \"${CMAKE_INSTALL_DOCDIR}\")
    set(healthtable_staging_dir \"${PROJECT_BINARY_DIR}\")
    include(\"${PROJECT_SOURCE_DIR}/cmake/install_unit.cmake\")"
   )
endif()

if(HEALTHTABLE_BUILD_MAN)
  install(FILES ${healthtable_man_1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  install(FILES ${healthtable_man_7} DESTINATION ${CMAKE_INSTALL_MANDIR}/man7)
  install(FILES ${healthtable_man_8} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
endif()
