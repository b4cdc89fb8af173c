# The man pages, generated at build time so they cannot drift:
#   healthctl(1), healthprobe(8)  help2man from the built binaries' --help
#       and --version (healthctl's COMMANDS section from every subcommand's
#       --help, cmake/man_commands.sh), plus the hand-written sections in
#       docs/man/*.h2m (description, exit status, environment, files);
#   healthtable(7)  pandoc from docs/man/healthtable.7.md, an overview that no
#       binary prints.
# Options and subcommands thus come from the code; tests/install's
# install_man checks the pages against the binaries.
if(NOT HEALTHTABLE_BUILD_TOOLS)
  message(FATAL_ERROR "HEALTHTABLE_BUILD_MAN needs HEALTHTABLE_BUILD_TOOLS (the pages are "
                      "generated from healthctl and healthprobe); turn one on or the other off")
endif()
find_program(HEALTHTABLE_HELP2MAN help2man)
find_program(HEALTHTABLE_PANDOC pandoc)
foreach(tool HELP2MAN PANDOC)
  if(NOT HEALTHTABLE_${tool})
    string(TOLOWER ${tool} pkg)
    message(FATAL_ERROR "${pkg} not found: the man pages are generated with help2man and pandoc; "
                        "install them (apt-get install help2man pandoc, or scripts/install-deps.sh) "
                        "or configure with -DHEALTHTABLE_BUILD_MAN=OFF")
  endif()
endforeach()

set(man_dir ${PROJECT_BINARY_DIR}/man)
set(man_src ${PROJECT_SOURCE_DIR}/docs/man)
file(MAKE_DIRECTORY ${man_dir})
# A sanitizer build's binaries run here too; a leak report at exit must not
# turn --help into a failed build (the test suite is where leaks fail).
set(man_env ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0)

add_custom_command(OUTPUT ${man_dir}/healthctl-commands.h2m
  COMMAND ${man_env} ${PROJECT_SOURCE_DIR}/cmake/man_commands.sh $<TARGET_FILE:healthctl>
          ${man_dir}/healthctl-commands.h2m
  DEPENDS healthctl ${PROJECT_SOURCE_DIR}/cmake/man_commands.sh
  COMMENT "healthctl(1): every subcommand's --help"
  VERBATIM)
add_custom_command(OUTPUT ${man_dir}/healthctl.1
  COMMAND ${man_env} ${HEALTHTABLE_HELP2MAN} --no-info --section=1 "--source=healthtable ${PROJECT_VERSION}"
          --name "inspect and administer a healthtable health table"
          --include=${man_src}/healthctl.h2m --include=${man_dir}/healthctl-commands.h2m
          --output=${man_dir}/healthctl.1 $<TARGET_FILE:healthctl>
  DEPENDS healthctl ${man_src}/healthctl.h2m ${man_dir}/healthctl-commands.h2m
  COMMENT "healthctl(1) with help2man"
  VERBATIM)
add_custom_command(OUTPUT ${man_dir}/healthprobe.8
  COMMAND ${man_env} ${HEALTHTABLE_HELP2MAN} --no-info --section=8 "--source=healthtable ${PROJECT_VERSION}"
          --name "keep a healthtable health table fresh by probing providers"
          --include=${man_src}/healthprobe.h2m
          --output=${man_dir}/healthprobe.8 $<TARGET_FILE:healthprobe>
  DEPENDS healthprobe ${man_src}/healthprobe.h2m
  COMMENT "healthprobe(8) with help2man"
  VERBATIM)
add_custom_command(OUTPUT ${man_dir}/healthtable.7
  COMMAND ${HEALTHTABLE_PANDOC} --standalone --to man
          "--metadata=footer:healthtable ${PROJECT_VERSION}"
          --output ${man_dir}/healthtable.7 ${man_src}/healthtable.7.md
  DEPENDS ${man_src}/healthtable.7.md
  COMMENT "healthtable(7) with pandoc"
  VERBATIM)
add_custom_target(healthtable_man ALL
  DEPENDS ${man_dir}/healthctl.1 ${man_dir}/healthprobe.8 ${man_dir}/healthtable.7)

set(healthtable_man_1 ${man_dir}/healthctl.1)
set(healthtable_man_7 ${man_dir}/healthtable.7)
set(healthtable_man_8 ${man_dir}/healthprobe.8)
