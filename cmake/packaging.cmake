# The Debian package (CPack's DEB generator): everything `cmake --install`
# puts in the tree (cmake/install.cmake), under /usr, plus maintainer
# scripts (packaging/debian/) that apply the sysusers.d and tmpfiles.d
# entries. Build it from a configured, built tree:
#   cpack --config build/ci/CPackConfig.cmake -G DEB -B OUTDIR
# tests/install's install_deb builds, installs and purges it.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME healthtable)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
    "One prober (healthprobe) writes circuit-breaker state into a fixed-slot table in\n"
    "POSIX shared memory; router workers read it without locks. Holds the C++ and C\n"
    "libraries (static and libhealthtable.so.0), headers, CMake and pkg-config files,\n"
    "healthctl and healthprobe, the systemd unit, man pages and documentation.")
set(CPACK_PACKAGE_CONTACT "healthtable maintainers <healthtable@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # healthtable_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Depends: from the binaries' shared libraries (dpkg-shlibdeps, dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The postinst uses systemd's sysusers and tmpfiles when they are there.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# The library's SONAME goes into the package's shlibs file (and ldconfig runs
# through the triggers dpkg adds for it).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")
include(CPack)
