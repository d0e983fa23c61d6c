# cmake -DHEAD=... -DOUTPUT=... -DPROGRAMS="exe1;exe2" -P AssembleCompletion.cmake
# The completion script: the shared function, each program's generated data, the registration.
file(READ ${HEAD} text)
string(APPEND text "\n# Generated from each program's command-line definition.\n")
set(names "")
foreach(exe IN LISTS PROGRAMS)
  execute_process(COMMAND ${exe} --generate-bash-completion OUTPUT_VARIABLE data
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${exe} --generate-bash-completion failed: ${rc}")
  endif()
  string(APPEND text "${data}")
  get_filename_component(name ${exe} NAME)
  list(APPEND names ${name})
endforeach()
list(JOIN names " " joined)
string(APPEND text "complete -F _xenbake ${joined}\n")
file(WRITE ${OUTPUT}.tmp "${text}")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
