# Included once every program has called xenbake_program_docs: the bash completion script covering
# all of them, installed under each program's name (bash-completion loads a command's completion
# from the file named after it).
get_property(programs GLOBAL PROPERTY XENBAKE_PROGRAMS)
set(script ${CMAKE_BINARY_DIR}/xenbake-completion.bash)
set(exes "")
foreach(target IN LISTS programs)
  list(APPEND exes $<TARGET_FILE:${target}>)
endforeach()
add_custom_command(OUTPUT ${script}
  COMMAND ${CMAKE_COMMAND} -DHEAD=${XENBAKE_COMPLETION_HEAD} -DOUTPUT=${script}
          "-DPROGRAMS=${exes}" -P ${CMAKE_CURRENT_LIST_DIR}/AssembleCompletion.cmake
  DEPENDS ${programs} ${XENBAKE_COMPLETION_HEAD} ${CMAKE_CURRENT_LIST_DIR}/AssembleCompletion.cmake
  VERBATIM)
add_custom_target(xenbake-completion ALL DEPENDS ${script})
foreach(target IN LISTS programs)
  install(FILES ${script} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
          RENAME ${target})
endforeach()
